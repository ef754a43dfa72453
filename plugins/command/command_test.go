package command

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
)

var now = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// fakeJWT builds an unsigned JWT with the given claims (the backend
// reads claims, it does not verify).
func fakeJWT(claims map[string]any) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]string{"alg": "RS256", "kid": "k"}) + "." + enc(claims) + "." + base64.RawURLEncoding.EncodeToString([]byte("signature"))
}

var jwtHour = fakeJWT(map[string]any{"iss": "https://iam.example.org", "sub": "a", "exp": now.Add(time.Hour).Unix(), "scope": "storage.read:/ openid", "aud": "https://se.example.org"})

// script writes an executable shell script and returns its path.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "get-token")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

func backend(t *testing.T, p config.Profile) *Backend {
	t.Helper()
	if p.Name == "" {
		p.Name = "site"
	}
	b, err := New(&p, Env{Environ: os.Environ, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func req() helper.Request { return helper.Request{Profile: "site", MinValid: time.Minute} }

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		p    config.Profile
		want string
	}{
		{config.Profile{Name: "x"}, `profile "x" uses the command backend but sets no command`},
		{config.Profile{Name: "x", Command: "  "}, "sets no command"},
		{config.Profile{Name: "x", Command: "t", Options: map[string]string{OptionLoginExitCodes: "4,x"}}, `options.login_exit_codes: "x" is not an exit status`},
		{config.Profile{Name: "x", Command: "t", Options: map[string]string{OptionLoginExitCodes: "0"}}, "not an exit status"},
	} {
		_, err := New(&tc.p, OSEnv())
		if !helper.IsKind(err, helper.KindConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v", tc.p, err)
		}
	}
	if _, err := New(nil, OSEnv()); !helper.IsKind(err, helper.KindConfig) {
		t.Error("nil profile")
	}
	for cmd, shell := range map[string]bool{
		"oidc-token wlcg": false,
		"/usr/bin/htgettoken -a vault.example.org --nooidc": false,
		"oidc-token $ACCOUNT":                               true,
		"mytoken AT --MT-profile=wlcg":                      true,
		"get-token | tr -d '\\n'":                           true,
		"cat ~/token":                                       true,
		"a;b":                                               true,
	} {
		if b := backend(t, config.Profile{Command: cmd}); b.Shell() != shell {
			t.Errorf("%q: shell %v, want %v", cmd, b.Shell(), shell)
		}
	}
}

func TestOutputs(t *testing.T) {
	exp := now.Add(2 * time.Hour)
	for _, tc := range []struct {
		name   string
		out    string
		expiry time.Time
		issuer string
		scopes []string
	}{
		{"bare JWT", jwtHour, now.Add(time.Hour), "https://iam.example.org", []string{"storage.read:/", "openid"}},
		{"bare JWT, blank lines", "\n\n" + jwtHour + "\r\n\n", now.Add(time.Hour), "https://iam.example.org", nil},
		{"opaque", "opaque-token_42~", time.Time{}, "", nil},
		{"JSON expires_in", `{"access_token":"opaque-1","expires_in":7200,"token_type":"Bearer"}`, exp, "", nil},
		{"JSON expires_at number", fmt.Sprintf(`{"access_token":"opaque-1","expires_at":%d}`, exp.Unix()), exp, "", nil},
		{"JSON expires_at string", fmt.Sprintf(`{"access_token":"opaque-1","expires_at":"%d"}`, exp.Unix()), exp, "", nil},
		{"JSON expires_at RFC 3339", `{"access_token":"opaque-1","expires_at":"` + exp.Format(time.RFC3339) + `","issuer":"https://x","scope":"a b"}`, exp, "https://x", []string{"a", "b"}},
		{"JSON JWT exp", `{"access_token":"` + jwtHour + `","refresh_token":"never-used"}`, now.Add(time.Hour), "https://iam.example.org", nil},
		{"JSON expires_in beats exp", `{"access_token":"` + jwtHour + `","expires_in":7200}`, exp, "https://iam.example.org", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "out")
			if err := os.WriteFile(p, []byte(tc.out), 0o600); err != nil {
				t.Fatal(err)
			}
			tok, err := backend(t, config.Profile{Command: "cat " + p}).Token(context.Background(), req())
			if err != nil {
				t.Fatal(err)
			}
			if !tok.Expiry.Equal(tc.expiry) {
				t.Errorf("expiry %s, want %s", tok.Expiry, tc.expiry)
			}
			if tc.issuer != "" && tok.Issuer != tc.issuer {
				t.Errorf("issuer %q", tok.Issuer)
			}
			if tc.scopes != nil && strings.Join(tok.Scopes, " ") != strings.Join(tc.scopes, " ") {
				t.Errorf("scopes %q", tok.Scopes)
			}
			if tok.Profile != "site" || tok.Source != "command cat" {
				t.Errorf("profile %q source %q", tok.Profile, tok.Source)
			}
		})
	}
}

// What the command printed never appears in an error.
func TestBadOutputs(t *testing.T) {
	const secret = "s3cr3t-t0ken-value"
	big := strings.Repeat("A", MaxOutput+1)
	for _, tc := range []struct {
		name, out string
		kind      helper.Kind
		want      string
	}{
		{"nothing", "", helper.KindUnavailable, "printed nothing"},
		{"two words", secret + " " + secret, helper.KindUnavailable, "printed 2 words"},
		{"two lines", secret + "\n" + secret, helper.KindUnavailable, "printed 2 words"},
		{"not b64token", secret + "!", helper.KindUnavailable, "not a bearer token (19 bytes"},
		{"damaged JWT", "eyJhbGciOiJSUzI1NiJ9." + secret, helper.KindUnavailable, "damaged JWT"},
		{"bad JSON", `{"access_token":"` + secret, helper.KindUnavailable, "not one JSON object"},
		{"two JSON objects", `{"access_token":"a"}{"access_token":"` + secret + `"}`, helper.KindUnavailable, "not one JSON object"},
		{"JSON without token", `{"token":"` + secret + `"}`, helper.KindUnavailable, "without access_token"},
		{"JSON token type", `{"access_token":"` + secret + `","token_type":"MAC"}`, helper.KindUnavailable, `of type "MAC"`},
		{"JSON bad expires_in", `{"access_token":"` + secret + `","expires_in":"soon"}`, helper.KindUnavailable, "expires_in"},
		{"JSON bad expires_at", `{"access_token":"` + secret + `","expires_at":"tomorrow"}`, helper.KindUnavailable, "expires_at"},
		{"expired", fakeJWT(map[string]any{"exp": now.Add(-time.Hour).Unix(), "jti": secret}), helper.KindNoToken, "printed a token that expired 1h"},
		{"within min-valid", `{"access_token":"` + secret + `","expires_in":30}`, helper.KindNoToken, "expires in 30s, less than min-valid 1m0s"},
		{"too much", big, helper.KindUnavailable, "printed more than 64 KiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "out")
			if err := os.WriteFile(p, []byte(tc.out), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := backend(t, config.Profile{Command: "cat " + p}).Token(context.Background(), req())
			if !helper.IsKind(err, tc.kind) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want kind %s and %q", err, tc.kind, tc.want)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "AAAAAAAA") {
				t.Fatalf("error shows the output: %v", err)
			}
		})
	}
}

func TestFailures(t *testing.T) {
	opts := map[string]string{OptionLoginExitCodes: "4, 5", OptionLoginHint: "run: htgettoken -a vault.example.org"}
	for _, tc := range []struct {
		name, body string
		opts       map[string]string
		kind       helper.Kind
		want       []string
	}{
		{"exit status", "echo 'vault: permission denied' >&2; exit 1", nil, helper.KindUnavailable,
			[]string{`command "get-token" failed (exit status 1): vault: permission denied`, "login_exit_codes in [profiles.site.options]"}},
		{"login needed", "echo 'no valid kerberos ticket' >&2; exit 4", opts, helper.KindLoginNeeded,
			[]string{"says a login is needed (exit status 4): no valid kerberos ticket", "run: htgettoken -a vault.example.org"}},
		{"login needed, default hint", "exit 5", map[string]string{OptionLoginExitCodes: "5"}, helper.KindLoginNeeded,
			[]string{"log in with the tool"}},
		{"not a login status", "exit 4", nil, helper.KindUnavailable, []string{"exit status 4"}},
		{"signal", "kill -9 $$", nil, helper.KindUnavailable, []string{"killed by signal killed"}},
		{"token echoed to stderr", "echo " + jwtHour + "; echo \"bad token " + jwtHour + "\" >&2; exit 1", nil, helper.KindUnavailable,
			[]string{"bad token [redacted]"}},
		{"nothing printed", "echo 'no account configured with that short name' >&2", nil, helper.KindUnavailable,
			[]string{"printed nothing: no account configured with that short name"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := backend(t, config.Profile{Command: script(t, tc.body), Options: tc.opts})
			_, err := b.Token(context.Background(), req())
			if !helper.IsKind(err, tc.kind) {
				t.Fatalf("kind %s: %v", helper.KindOf(err), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), jwtHour) {
				t.Errorf("error shows the token")
			}
		})
	}
	b := backend(t, config.Profile{Command: "tokenhelper-no-such-program wlcg"})
	if _, err := b.Token(context.Background(), req()); !helper.IsKind(err, helper.KindConfig) || !strings.Contains(err.Error(), "cannot run command") {
		t.Fatalf("missing program: %v", err)
	}
}

func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}

// At the deadline the whole process group dies, background children
// included.
func TestTimeoutKillsTheGroup(t *testing.T) {
	dir := t.TempDir()
	b := backend(t, config.Profile{Timeout: config.Duration(700 * time.Millisecond),
		Command: script(t, fmt.Sprintf("sleep 300 &\necho $! > %s/child\necho 'waiting for the vault' >&2\nsleep 300", dir))})
	start := time.Now()
	_, err := b.Token(context.Background(), req())
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("took %s", took)
	}
	if !helper.IsKind(err, helper.KindUnavailable) || !strings.Contains(err.Error(), "did not finish in time (ran 700ms, timeout 700ms); killed it: waiting for the vault") {
		t.Fatalf("err = %v", err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "child"))
	if err != nil {
		t.Fatal(err)
	}
	child, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	for i := 0; alive(child) && i < 100; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if alive(child) {
		t.Fatalf("background child %d survived", child)
	}
	// The caller's earlier deadline wins over the profile's timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	b = backend(t, config.Profile{Command: "sleep 300"})
	if _, err := b.Token(ctx, req()); !helper.IsKind(err, helper.KindUnavailable) || !strings.Contains(err.Error(), "timeout 30s") {
		t.Fatalf("caller deadline: %v", err)
	}
}

// A command that leaves something running in the background with its
// stdout still open is not waited for.
func TestBackgroundChildKeepsStdout(t *testing.T) {
	dir := t.TempDir()
	b := backend(t, config.Profile{Command: script(t, fmt.Sprintf("sleep 30 &\necho $! > %s/child\necho opaque-token", dir))})
	t.Cleanup(func() { // the background child is the command's business; the test ends it
		if b, err := os.ReadFile(filepath.Join(dir, "child")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	start := time.Now()
	tok, err := b.Token(context.Background(), req())
	if err != nil || tok.AccessToken != "opaque-token" {
		t.Fatalf("Token = %v, %v", tok, err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %s", took)
	}
}

func TestEnvironmentAndStdin(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PLUGIN_MIN_PORT", "10000")
	t.Setenv("TOKENHELPER_PLUGIN", "cookie")
	t.Setenv("TOKENHELPER_OPTION_STALE", "x")
	b := backend(t, config.Profile{Options: map[string]string{"vo": "cms", "Site.Name": "T2"},
		Command: script(t, fmt.Sprintf("if read x; then echo 'stdin had data' >&2; exit 1; fi\nenv > %s/env\necho opaque-token", dir))})
	r := helper.Request{Profile: "site", Scopes: []string{"storage.read:/a", "openid"}, Audiences: []string{"https://se"}, MinValid: 90500 * time.Millisecond, Force: true}
	if _, err := b.Token(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "env"))
	if err != nil {
		t.Fatal(err)
	}
	env := "\n" + string(data)
	for _, w := range []string{"\nTOKENHELPER_PROFILE=site\n", "\nTOKENHELPER_SCOPES=storage.read:/a openid\n", "\nTOKENHELPER_AUDIENCES=https://se\n",
		"\nTOKENHELPER_MIN_VALID=91\n", "\nTOKENHELPER_FORCE=1\n", "\nTOKENHELPER_OPTION_VO=cms\n", "\nTOKENHELPER_OPTION_SITE_NAME=T2\n", "\nPATH="} {
		if !strings.Contains(env, w) {
			t.Errorf("environment lacks %q", strings.TrimSpace(w))
		}
	}
	for _, bad := range []string{"\nPLUGIN_MIN_PORT=", "\nTOKENHELPER_PLUGIN=", "\nTOKENHELPER_OPTION_STALE="} {
		if strings.Contains(env, bad) {
			t.Errorf("environment has %q", strings.TrimSpace(bad))
		}
	}
}

func TestStatus(t *testing.T) {
	st, err := backend(t, config.Profile{Command: "sh -c true", Timeout: config.Duration(time.Minute)}).Status(context.Background())
	if err != nil || !st.OK || !strings.Contains(st.Lines[0], `runs "sh …" (`) || !strings.Contains(st.Lines[0], "timeout 1m0s") {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	st, _ = backend(t, config.Profile{Command: "tokenhelper-no-such-program"}).Status(context.Background())
	if st.OK || !strings.Contains(st.Lines[0], "is not installed") {
		t.Fatalf("missing program: %+v", st)
	}
}

// FuzzParse: no output makes the parser panic, and no error repeats
// what was printed.
func FuzzParse(f *testing.F) {
	for _, s := range []string{jwtHour, `{"access_token":"abc","expires_in":60}`, `{"access_token":"abc","expires_at":"2030-01-01T00:00:00Z"}`, "a b", "{", `{"access_token":null}`} {
		f.Add([]byte(s))
	}
	b := &Backend{prog: `"t"`, command: "t", env: Env{Now: func() time.Time { return now }}}
	f.Fuzz(func(t *testing.T, out []byte) {
		tok, err := b.parse(out)
		if err != nil {
			for _, w := range strings.Fields(string(out)) {
				if len(w) >= 12 && strings.Contains(err.Error(), w) {
					t.Fatalf("error %q repeats output %q", err, w)
				}
			}
			return
		}
		if !helper.IsB64Token(tok.AccessToken) {
			t.Fatalf("accepted %q", tok.AccessToken)
		}
	})
}
