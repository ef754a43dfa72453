package dockercred

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tokenhelper/tokenhelper/helper"
)

type fakeSource struct {
	creds  map[string]*Credentials
	err    error
	erased []string
}

func (f *fakeSource) Get(ctx context.Context, server string) (*Credentials, error) {
	if f.err != nil {
		return nil, f.err
	}
	c, ok := f.creds[server]
	if !ok {
		return nil, nil
	}
	cp := *c
	return &cp, nil
}

func (f *fakeSource) Erase(ctx context.Context, server string) error {
	f.erased = append(f.erased, server)
	return f.err
}

func (f *fakeSource) List(ctx context.Context) (map[string]string, error) {
	if f.err != nil {
		return nil, f.err
	}
	m := map[string]string{}
	for k, c := range f.creds {
		m[k] = c.Username
	}
	return m, nil
}

func newFake() *fakeSource {
	return &fakeSource{creds: map[string]*Credentials{
		"harbor.example.org":           {Username: "oauth2", Secret: "eyJ.tok.sig"},
		"https://registry.example.org": {Username: "robot", Secret: "eyJ.two.sig"},
	}}
}

// Transcripts: literal stdin and stdout, with the error line docker would
// read from stdout when the exit status is 1.
func TestHandleTranscripts(t *testing.T) {
	tests := []struct {
		name, action, stdin, stdout string
		fail                        bool
	}{
		{"get", "get", "harbor.example.org\n", `{"ServerURL":"harbor.example.org","Username":"oauth2","Secret":"eyJ.tok.sig"}` + "\n", false},
		{"get without newline", "get", "https://registry.example.org", `{"ServerURL":"https://registry.example.org","Username":"robot","Secret":"eyJ.two.sig"}` + "\n", false},
		{"get for an unknown registry", "get", "index.docker.io\n", "credentials not found in native keychain\n", true},
		{"get with empty input", "get", "\n", "tokenhelper: docker credential input: no server URL: docker sends the registry's server URL on stdin (see docker-credential-helpers)\n", true},
		{"store is accepted and ignored", "store", `{"ServerURL":"harbor.example.org","Username":"u","Secret":"s"}`, "", false},
		{"store with bad JSON", "store", `not json`, "tokenhelper: docker credential input: store expects a JSON object {\"ServerURL\",\"Username\",\"Secret\"}: docker sends the registry's server URL on stdin (see docker-credential-helpers)\n", true},
		{"erase", "erase", "harbor.example.org\n", "", false},
		{"list", "list", "", `{"harbor.example.org":"oauth2","https://registry.example.org":"robot"}` + "\n", false},
		{"unknown action", "frob", "", "tokenhelper: unknown docker credential helper action \"frob\": use get, store, erase or list\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := Handle(context.Background(), newFake(), tt.action, strings.NewReader(tt.stdin), &out)
			if (err != nil) != tt.fail {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				if out.Len() != 0 {
					t.Fatalf("output before the error: %q", out.String())
				}
				WriteError(&out, err)
			}
			if out.String() != tt.stdout {
				t.Errorf("stdout:\n%s\nwant:\n%s", out.String(), tt.stdout)
			}
		})
	}
}

func TestEraseReachesSource(t *testing.T) {
	src := newFake()
	if err := Handle(context.Background(), src, "erase", strings.NewReader("  harbor.example.org \n"), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if len(src.erased) != 1 || src.erased[0] != "harbor.example.org" {
		t.Fatalf("erased %q", src.erased)
	}
}

func TestSourceErrors(t *testing.T) {
	login := helper.LoginNeeded("wlcg", "the session has expired")
	for _, action := range []string{"get", "erase", "list"} {
		src := newFake()
		src.err = login
		var out bytes.Buffer
		err := Handle(context.Background(), src, action, strings.NewReader("harbor.example.org\n"), &out)
		if !errors.Is(err, login) || out.Len() != 0 {
			t.Errorf("%s: err %v, out %q", action, err, out.String())
		}
		WriteError(&out, err)
		if out.String() != "tokenhelper: the session has expired: run: tokenhelper login -p wlcg\n" {
			t.Errorf("%s: error line %q", action, out.String())
		}
	}
}

func TestParseServerURL(t *testing.T) {
	good := map[string]string{
		"harbor.example.org\n":               "harbor.example.org",
		"\t https://index.docker.io/v1/\r\n": "https://index.docker.io/v1/",
		"localhost:5000":                     "localhost:5000",
	}
	for in, want := range good {
		got, err := ParseServerURL(strings.NewReader(in))
		if err != nil || got != want {
			t.Errorf("ParseServerURL(%q) = %q, %v", in, got, err)
		}
	}
	bad := []string{"", " \n", "a b", "a\x00b", "a\nb", "\xff", strings.Repeat("a", MaxInput+1)}
	for _, in := range bad {
		if got, err := ParseServerURL(strings.NewReader(in)); !helper.IsKind(err, helper.KindUsage) {
			t.Errorf("ParseServerURL(%.20q) = %q, %v; want a usage error", in, got, err)
		}
	}
}

func TestTargetURL(t *testing.T) {
	for in, want := range map[string]string{
		"harbor.example.org":          "https://harbor.example.org",
		"harbor.example.org:5000":     "https://harbor.example.org:5000",
		"https://index.docker.io/v1/": "https://index.docker.io/v1/",
		"http://127.0.0.1:5000":       "http://127.0.0.1:5000",
	} {
		if got := TargetURL(in); got != want {
			t.Errorf("TargetURL(%q) = %q, want %q", in, got, want)
		}
	}
}
