package gitcred

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Credential
	}{
		{
			name: "git 2.39 get",
			in:   "protocol=https\nhost=gitlab.example.org\n\n",
			want: Credential{Protocol: "https", Host: "gitlab.example.org"},
		},
		{
			name: "end of file ends the record",
			in:   "protocol=https\nhost=gitlab.example.org",
			want: Credential{Protocol: "https", Host: "gitlab.example.org"},
		},
		{
			name: "nothing after the blank line is read",
			in:   "protocol=https\n\nhost=evil.example\n",
			want: Credential{Protocol: "https"},
		},
		{
			name: "CRLF line ends",
			in:   "protocol=https\r\nhost=h\r\n\r\n",
			want: Credential{Protocol: "https", Host: "h"},
		},
		{
			name: "git 2.46 get with capabilities and challenges",
			in:   "capability[]=authtype\ncapability[]=state\nprotocol=https\nhost=h:8443\npath=group/repo.git\nwwwauth[]=Bearer realm=\"x\"\nwwwauth[]=Basic realm=\"y\"\n\n",
			want: Credential{Protocol: "https", Host: "h:8443", Path: "group/repo.git", HasPath: true,
				Capabilities: []string{"authtype", "state"}, WWWAuth: []string{`Bearer realm="x"`, `Basic realm="y"`}},
		},
		{
			name: "an empty list value clears the list",
			in:   "wwwauth[]=Basic\nwwwauth[]=\nwwwauth[]=Bearer\ncapability[]=authtype\ncapability[]=\n",
			want: Credential{WWWAuth: []string{"Bearer"}},
		},
		{
			name: "unknown keys and lists are ignored, a value may contain =",
			in:   "frobnicate=1\nfuture[]=x\nstate[]=a=b\nprotocol=https\nhost=h\nusername=a=b\n",
			want: Credential{Protocol: "https", Host: "h", Username: "a=b"},
		},
		{
			name: "later values replace earlier ones",
			in:   "host=a\nhost=b\nprotocol=http\nprotocol=https\n",
			want: Credential{Protocol: "https", Host: "b"},
		},
		{
			name: "erase from git 2.39",
			in:   "protocol=https\nhost=h\nusername=oauth2\npassword=tok\npassword_expiry_utc=1700000000\n\n",
			want: Credential{Protocol: "https", Host: "h", Username: "oauth2", Password: "tok", PasswordExpiry: time.Unix(1700000000, 0).UTC()},
		},
		{
			name: "erase from git 2.46",
			in:   "capability[]=authtype\nauthtype=Bearer\ncredential=tok\nephemeral=1\nprotocol=https\nhost=h\n\n",
			want: Credential{Protocol: "https", Host: "h", AuthType: "Bearer", Credential: "tok", Ephemeral: true, Capabilities: []string{"authtype"}},
		},
		{
			name: "bad expiry is no expiry",
			in:   "password_expiry_utc=soon\n",
			want: Credential{},
		},
		{
			name: "url is expanded and replaces what came before",
			in:   "protocol=http\nhost=old\npath=old\nusername=old\nurl=https://alice:s%40cret@Git.Example.org:8443/group/repo.git/\n",
			want: Credential{Protocol: "https", Host: "Git.Example.org:8443", Path: "group/repo.git", HasPath: true, Username: "alice", Password: "s@cret"},
		},
		{
			name: "url without path",
			in:   "url=https://h\n",
			want: Credential{Protocol: "https", Host: "h"},
		},
		{
			name: "url with @ in the path only",
			in:   "url=https://h/a@b\n",
			want: Credential{Protocol: "https", Host: "h", Path: "a@b", HasPath: true},
		},
		{
			name: "url with user and port",
			in:   "url=https://bob@h:444/r\n",
			want: Credential{Protocol: "https", Host: "h:444", Username: "bob", Path: "r", HasPath: true},
		},
		{
			name: "fields after url apply",
			in:   "url=https://h/r\npath=other\n",
			want: Credential{Protocol: "https", Host: "h", Path: "other", HasPath: true},
		},
		{
			name: "empty path is a known root path",
			in:   "protocol=https\nhost=h\npath=\n",
			want: Credential{Protocol: "https", Host: "h", HasPath: true},
		},
		{
			name: "empty input",
			in:   "",
			want: Credential{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("Parse =\n%#v\nwant\n%#v", *got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	long := strings.Repeat("x", MaxLine+1)
	manyLines := strings.Repeat("k="+strings.Repeat("v", 1000)+"\n", MaxRecord/1000)
	tests := []struct {
		name, in, msg string
	}{
		{"NUL", "protocol=https\nhost=h\x00\n", "line 2 contains a NUL byte"},
		{"no equals sign", "protocol=https\nsecret-token-value\n", "line 2 is not key=value"},
		{"empty key", "=value\n", "line 1 has an empty key"},
		{"line too long", "k=" + long + "\n", "longer than 64 KiB"},
		{"line too long without newline", "k=" + long, "longer than 64 KiB"},
		{"record too large", manyLines, "larger than 1 MiB"},
		{"url without scheme", "url=gitlab.example.org/repo\n", "line 1: url has no scheme"},
		{"url with encoded newline", "url=https://h/a%0ab\n", "encoded newline"},
		{"url with encoded NUL", "url=https://u%00@h/\n", "encoded newline or NUL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("Parse = %#v, want an error", c)
			}
			if !helper.IsKind(err, helper.KindUsage) {
				t.Errorf("kind %v, want usage: %v", helper.KindOf(err), err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not contain %q", err, tt.msg)
			}
			if strings.Contains(err.Error(), "secret-token-value") {
				t.Errorf("error repeats the input: %q", err)
			}
		})
	}
}

// A record of exactly MaxRecord bytes is accepted; a line of exactly
// MaxLine bytes too.
func TestParseLimits(t *testing.T) {
	line := "k=" + strings.Repeat("v", MaxLine-2)
	c, err := Parse(strings.NewReader(line + "\nhost=h\n"))
	if err != nil || c.Host != "h" {
		t.Fatalf("a line of MaxLine bytes: %v, %#v", err, c)
	}
	var b strings.Builder
	for b.Len()+len(line)+1 <= MaxRecord-len("host=h\n") {
		b.WriteString(line + "\n")
	}
	b.WriteString("host=h\n")
	for b.Len() < MaxRecord {
		b.WriteString("\n")
	}
	if b.Len() != MaxRecord {
		t.Fatalf("built %d bytes", b.Len())
	}
	c, err = Parse(strings.NewReader(b.String()))
	if err != nil || c.Host != "h" {
		t.Fatalf("a record of MaxRecord bytes: %v", err)
	}
	// Junk after the blank line does not count.
	c, err = Parse(io.MultiReader(strings.NewReader("host=h\n\n"), bytes.NewReader(make([]byte, 2*MaxRecord))))
	if err != nil || c.Host != "h" {
		t.Fatalf("record followed by junk: %v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("boom") }

func TestParseReadError(t *testing.T) {
	_, err := Parse(errReader{})
	if !helper.IsKind(err, helper.KindInternal) {
		t.Fatalf("err = %v, want internal", err)
	}
}

func TestTarget(t *testing.T) {
	tests := []struct {
		name string
		c    Credential
		want config.RouteTarget
		ok   bool
		err  bool
	}{
		{"host only", Credential{Protocol: "https", Host: "h"}, config.RouteTarget{Scheme: "https", Host: "h"}, true, false},
		{"host and port", Credential{Protocol: "https", Host: "h:8443"}, config.RouteTarget{Scheme: "https", Host: "h", Port: 8443}, true, false},
		{"IPv6 with port", Credential{Protocol: "http", Host: "[::1]:8080"}, config.RouteTarget{Scheme: "http", Host: "::1", Port: 8080}, true, false},
		{"IPv6 without port", Credential{Protocol: "http", Host: "[::1]"}, config.RouteTarget{Scheme: "http", Host: "[::1]"}, true, false},
		{"path", Credential{Protocol: "https", Host: "h", Path: "g/r.git", HasPath: true}, config.RouteTarget{Scheme: "https", Host: "h", Path: "/g/r.git", PathKnown: true}, true, false},
		{"bad port", Credential{Protocol: "https", Host: "h:https"}, config.RouteTarget{}, false, false},
		{"port zero", Credential{Protocol: "https", Host: "h:0"}, config.RouteTarget{}, false, false},
		{"port too large", Credential{Protocol: "https", Host: "h:65536"}, config.RouteTarget{}, false, false},
		{"empty port", Credential{Protocol: "https", Host: "h:"}, config.RouteTarget{}, false, false},
		{"empty host with port", Credential{Protocol: "https", Host: ":443"}, config.RouteTarget{}, false, false},
		{"no host", Credential{Protocol: "https"}, config.RouteTarget{}, false, true},
		{"no protocol", Credential{Host: "h"}, config.RouteTarget{}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := tt.c.Target()
			if (err != nil) != tt.err {
				t.Fatalf("err = %v", err)
			}
			if ok != tt.ok || got != tt.want {
				t.Errorf("Target = %#v, %v; want %#v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestChallengeSchemes(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{`Basic realm="git"`, []string{"Basic"}},
		{`Bearer`, []string{"Bearer"}},
		{`Basic realm="a, Bearer x", Bearer realm="b", error="invalid_token"`, []string{"Basic", "Bearer"}},
		{`Negotiate abc==, NTLM`, []string{"Negotiate", "NTLM"}},
		{`realm="x"`, nil},
		{`Basic realm="unterminated`, []string{"Basic"}},
		{`Bearer realm="a\"b, Basic"`, []string{"Bearer"}},
		{``, nil},
	}
	for _, tt := range tests {
		if got := challengeSchemes(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("challengeSchemes(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestWriteRecordRefusesLineBreaks(t *testing.T) {
	for _, a := range []Attr{{"password", "sec\nret"}, {"password", "sec\rret"}, {"password", "sec\x00ret"}, {"a=b", "secret"}, {"", "secret"}} {
		var out bytes.Buffer
		err := WriteRecord(&out, []Attr{{"username", "u"}, a})
		if err == nil || out.Len() != 0 {
			t.Errorf("WriteRecord(%q) = %v, wrote %q", a, err, out.String())
		}
		if err != nil && strings.Contains(err.Error(), a.Value) {
			t.Errorf("error repeats the value: %v", err)
		}
	}
}
