package gitcred

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
)

// fakeSource serves the hosts in answers (keyed by RouteTarget.Host) and
// records what it was asked.
type fakeSource struct {
	answers map[string]*Answer
	err     error
	cached  string // the token Forget recognises

	targets []config.RouteTarget
	forgot  []string
}

func (f *fakeSource) Token(ctx context.Context, t config.RouteTarget) (*Answer, error) {
	f.targets = append(f.targets, t)
	if f.err != nil {
		return nil, f.err
	}
	return f.answers[t.Host], nil
}

func (f *fakeSource) Forget(ctx context.Context, t config.RouteTarget, secret string) (bool, error) {
	f.targets = append(f.targets, t)
	if f.err != nil {
		return false, f.err
	}
	if _, ok := f.answers[t.Host]; !ok || secret != f.cached {
		return false, nil
	}
	f.forgot = append(f.forgot, secret)
	return true, nil
}

var expiry = time.Date(2026, 11, 5, 12, 0, 0, 0, time.UTC) // 1793880000

func newFake() *fakeSource {
	return &fakeSource{
		answers: map[string]*Answer{
			"git.example.org": {Token: &helper.Token{AccessToken: "eyJ.tok.sig", Expiry: expiry}},
			"gitlab.cern.ch":  {Token: &helper.Token{AccessToken: "eyJ.cern.sig"}, Username: "x-token"},
		},
		cached: "eyJ.tok.sig",
	}
}

// Transcripts: literal stdin and stdout of one helper run, as git 2.39 and
// git ≥ 2.46 speak.
func TestHandleTranscripts(t *testing.T) {
	tests := []struct {
		name   string
		action string
		stdin  string
		stdout string
		notice string
	}{
		{
			name:   "git 2.39 get: Basic with the default user name",
			action: "get",
			stdin:  "protocol=https\nhost=git.example.org\n\n",
			stdout: "username=oauth2\npassword=eyJ.tok.sig\npassword_expiry_utc=1793880000\n",
		},
		{
			name:   "git 2.39 get: the profile's user name, no expiry known",
			action: "get",
			stdin:  "protocol=https\nhost=gitlab.cern.ch\npath=atlas/repo.git\n\n",
			stdout: "username=x-token\npassword=eyJ.cern.sig\n",
		},
		{
			name:   "git 2.39 get: the user name git already has wins",
			action: "get",
			stdin:  "protocol=https\nhost=git.example.org\nusername=alice\n\n",
			stdout: "username=alice\npassword=eyJ.tok.sig\npassword_expiry_utc=1793880000\n",
		},
		{
			name:   "git 2.46 get: Bearer",
			action: "get",
			stdin:  "capability[]=authtype\ncapability[]=state\nprotocol=https\nhost=git.example.org\n\n",
			stdout: "capability[]=authtype\nauthtype=Bearer\ncredential=eyJ.tok.sig\nephemeral=1\npassword_expiry_utc=1793880000\n",
		},
		{
			name:   "git 2.46 get: Bearer when the server offers it",
			action: "get",
			stdin:  "capability[]=authtype\nprotocol=https\nhost=git.example.org\nwwwauth[]=Basic realm=\"git\"\nwwwauth[]=Bearer realm=\"git\"\n\n",
			stdout: "capability[]=authtype\nauthtype=Bearer\ncredential=eyJ.tok.sig\nephemeral=1\npassword_expiry_utc=1793880000\n",
		},
		{
			name:   "git 2.46 get: Basic when the server offers only Basic",
			action: "get",
			stdin:  "capability[]=authtype\nprotocol=https\nhost=git.example.org\nwwwauth[]=Basic realm=\"GitLab\"\n\n",
			stdout: "capability[]=authtype\nusername=oauth2\npassword=eyJ.tok.sig\nephemeral=1\npassword_expiry_utc=1793880000\n",
		},
		{
			name:   "git 2.41 get: challenges but no capability: Basic",
			action: "get",
			stdin:  "protocol=https\nhost=git.example.org\nwwwauth[]=Bearer realm=\"git\"\n\n",
			stdout: "username=oauth2\npassword=eyJ.tok.sig\npassword_expiry_utc=1793880000\n",
		},
		{
			name:   "get for a host nothing serves: decline",
			action: "get",
			stdin:  "capability[]=authtype\nprotocol=https\nhost=github.com\n\n",
			stdout: "",
		},
		{
			name:   "get for a client certificate: decline",
			action: "get",
			stdin:  "protocol=cert\nhost=\npath=/home/u/cert.pem\n\n",
		},
		{
			name:   "get with a port git could not have used: decline",
			action: "get",
			stdin:  "protocol=https\nhost=git.example.org:99999\n\n",
		},
		{
			name:   "get through url=",
			action: "get",
			stdin:  "url=https://git.example.org/group/repo.git\n\n",
			stdout: "username=oauth2\npassword=eyJ.tok.sig\npassword_expiry_utc=1793880000\n",
		},
		{
			name:   "git 2.39 erase of our token: dropped, with a notice",
			action: "erase",
			stdin:  "protocol=https\nhost=git.example.org\nusername=oauth2\npassword=eyJ.tok.sig\n\n",
			notice: "tokenhelper: https://git.example.org refused the token; dropped it from the token cache, the next attempt gets a new one\n",
		},
		{
			name:   "git 2.46 erase of our Bearer token",
			action: "erase",
			stdin:  "capability[]=authtype\nauthtype=Bearer\ncredential=eyJ.tok.sig\nephemeral=1\nprotocol=https\nhost=git.example.org\npath=g/r.git\n\n",
			notice: "tokenhelper: https://git.example.org/g/r.git refused the token; dropped it from the token cache, the next attempt gets a new one\n",
		},
		{
			name:   "erase of another helper's password: left alone",
			action: "erase",
			stdin:  "protocol=https\nhost=git.example.org\nusername=alice\npassword=hunter2\n\n",
		},
		{
			name:   "erase without a secret",
			action: "erase",
			stdin:  "protocol=https\nhost=git.example.org\n\n",
		},
		{
			name:   "store is ignored",
			action: "store",
			stdin:  "protocol=https\nhost=git.example.org\nusername=oauth2\npassword=eyJ.tok.sig\n\n",
		},
		{
			name:   "store ignores bad input too",
			action: "store",
			stdin:  "\x00\x01garbage",
		},
		{
			name:   "capability",
			action: "capability",
			stdout: "version 0\ncapability authtype\n",
		},
		{
			name:   "unknown action is ignored",
			action: "frobnicate",
			stdin:  "protocol=https\nhost=git.example.org\n\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newFake()
			var out, notices bytes.Buffer
			h := &Handler{Source: src, Notices: &notices}
			if err := h.Handle(context.Background(), tt.action, strings.NewReader(tt.stdin), &out); err != nil {
				t.Fatalf("Handle: %v", err)
			}
			if out.String() != tt.stdout {
				t.Errorf("stdout:\n%s\nwant:\n%s", out.String(), tt.stdout)
			}
			if notices.String() != tt.notice {
				t.Errorf("notices: %q, want %q", notices.String(), tt.notice)
			}
			if strings.Contains(notices.String(), "eyJ") {
				t.Errorf("a notice shows the token")
			}
		})
	}
}

func TestHandleErase(t *testing.T) {
	src := newFake()
	h := &Handler{Source: src}
	in := "protocol=https\nhost=git.example.org\nusername=oauth2\npassword=eyJ.tok.sig\n\n"
	if err := h.Handle(context.Background(), "erase", strings.NewReader(in), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if len(src.forgot) != 1 || src.forgot[0] != "eyJ.tok.sig" {
		t.Fatalf("forgot = %q", src.forgot)
	}
	want := config.RouteTarget{Scheme: "https", Host: "git.example.org"}
	if len(src.targets) != 1 || src.targets[0] != want {
		t.Fatalf("targets = %#v", src.targets)
	}
}

// The target passed to the Source carries the port and, with
// credential.useHttpPath, the path.
func TestHandleTarget(t *testing.T) {
	src := newFake()
	h := &Handler{Source: src}
	in := "protocol=https\nhost=git.example.org:8443\npath=group/sub/repo.git\n\n"
	if err := h.Handle(context.Background(), "get", strings.NewReader(in), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	want := config.RouteTarget{Scheme: "https", Host: "git.example.org", Port: 8443, Path: "/group/sub/repo.git", PathKnown: true}
	if len(src.targets) != 1 || src.targets[0] != want {
		t.Fatalf("targets = %#v, want %#v", src.targets, want)
	}
}

// Errors leave stdout empty (git sees a decline) and come back for the
// caller to report on stderr.
func TestHandleErrors(t *testing.T) {
	login := helper.LoginNeeded("wlcg", "the session of profile \"wlcg\" has expired")
	tests := []struct {
		name   string
		action string
		stdin  string
		srcErr error
		kind   helper.Kind
	}{
		{"login needed", "get", "protocol=https\nhost=git.example.org\n\n", login, helper.KindLoginNeeded},
		{"path needed", "get", "protocol=https\nhost=git.example.org\n\n",
			helper.Errorf(helper.KindNoProfile, "the routes depend on the path").WithFix("run: git config --global credential.useHttpPath true"), helper.KindNoProfile},
		{"erase fails", "erase", "protocol=https\nhost=git.example.org\npassword=x\n\n", helper.Errorf(helper.KindUnavailable, "cache locked"), helper.KindUnavailable},
		{"NUL in get", "get", "protocol=https\x00\nhost=h\n\n", nil, helper.KindUsage},
		{"no host in get", "get", "protocol=https\n\n", nil, helper.KindUsage},
		{"garbage in erase", "erase", "garbage\n", nil, helper.KindUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newFake()
			src.err = tt.srcErr
			var out bytes.Buffer
			err := (&Handler{Source: src}).Handle(context.Background(), tt.action, strings.NewReader(tt.stdin), &out)
			if helper.KindOf(err) != tt.kind {
				t.Fatalf("err = %v (kind %v), want kind %v", err, helper.KindOf(err), tt.kind)
			}
			if out.Len() != 0 {
				t.Errorf("stdout = %q, want nothing", out.String())
			}
		})
	}
}

// An Answer with no token is a decline too.
func TestHandleEmptyAnswer(t *testing.T) {
	src := &fakeSource{answers: map[string]*Answer{"h": {}, "i": {Token: &helper.Token{}}}}
	for _, host := range []string{"h", "i"} {
		var out bytes.Buffer
		if err := (&Handler{Source: src}).Handle(context.Background(), "get", strings.NewReader("protocol=https\nhost="+host+"\n"), &out); err != nil || out.Len() != 0 {
			t.Errorf("host %s: %v, %q", host, err, out.String())
		}
	}
}
