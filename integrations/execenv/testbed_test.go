package execenv

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/discovery"
	"github.com/tokenhelper/tokenhelper/helper/jwtinfo"
	"github.com/tokenhelper/tokenhelper/integrations/renew"
	"github.com/tokenhelper/tokenhelper/integrations/testbed"
)

// refreshSource is a small backend for tests: a refresh-token grant at the
// test bed through golang.org/x/oauth2 (rotated refresh tokens kept), so
// each call that reaches the provider brings a fresh access token.
type refreshSource struct {
	cfg    oauth2.Config
	client *http.Client

	mu sync.Mutex
	rt string
	n  int
}

func newRefreshSource(t *testing.T, tb *testbed.Testbed, scopes []string) *refreshSource {
	t.Helper()
	rt, err := tb.RefreshTokenFor("alice", testbed.DemoClientID, scopes)
	if err != nil {
		t.Fatal(err)
	}
	return &refreshSource{
		cfg:    oauth2.Config{ClientID: testbed.DemoClientID, Endpoint: tb.OAuth2Endpoint(), Scopes: scopes},
		client: tb.HTTPClient(), rt: rt,
	}
}

func (s *refreshSource) source(ctx context.Context, _ time.Duration) (*helper.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	tok, err := s.cfg.TokenSource(context.WithValue(ctx, oauth2.HTTPClient, s.client), &oauth2.Token{RefreshToken: s.rt}).Token()
	if err != nil {
		return nil, helper.Wrap(helper.KindUnavailable, err, "refresh failed")
	}
	s.n++
	if tok.RefreshToken != "" {
		s.rt = tok.RefreshToken
	}
	info, err := jwtinfo.Parse(tok.AccessToken)
	if err != nil {
		return nil, err
	}
	return &helper.Token{AccessToken: tok.AccessToken, Expiry: info.Expiry}, nil
}

// child is a shell that answers commands on its stdin: "tok" prints the
// token file, "env" its BEARER_* variables, "exit N" exits.
type child struct {
	t   *testing.T
	in  *os.File
	out *bufio.Reader
}

const childScript = `while read cmd arg; do
  case $cmd in
    tok) cat "$BEARER_TOKEN_FILE" || echo MISSING ;;
    env) env | grep '^BEARER_' | sort | tr '\n' ' '; echo ;;
    exit) exit "$arg" ;;
  esac
done`

func newChild(t *testing.T, c *Child) *child {
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c.Stdin, c.Stdout, c.Stderr = inR, outW, os.Stderr
	t.Cleanup(func() { inR.Close(); inW.Close(); outR.Close(); outW.Close() })
	return &child{t: t, in: inW, out: bufio.NewReader(outR)}
}

func (c *child) ask(cmd string) string {
	c.t.Helper()
	if _, err := c.in.WriteString(cmd + "\n"); err != nil {
		c.t.Fatal(err)
	}
	line := make(chan string, 1)
	go func() {
		s, _ := c.out.ReadString('\n')
		line <- strings.TrimSuffix(s, "\n")
	}()
	select {
	case s := <-line:
		return s
	case <-time.After(10 * time.Second):
		c.t.Fatalf("no answer to %q within 10 s", cmd)
		return ""
	}
}

func storageStatus(t *testing.T, tb *testbed.Testbed, tok string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, tb.StorageURL+"data/none", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := tb.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestExecAcrossLifetimes: a command that runs for five token lifetimes
// (3 s each) reads a token the storage accepts whenever it looks; an
// inherited BEARER_TOKEN is removed; the exit status passes through and
// the token file and its directory are gone afterwards.
func TestExecAcrossLifetimes(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time test (about 15 s)")
	}
	life := 3 * time.Second
	tb := testbed.Start(t, testbed.Options{Storage: true, Lifetimes: testbed.Lifetimes{Access: life}})
	src := newRefreshSource(t, tb, []string{"openid", "storage.read:/"})
	first, err := src.source(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(t.TempDir(), "run")
	c := shChild(t, childScript)
	c.Env = append(c.Env, "BEARER_TOKEN=stale-token-from-the-parent", "BEARER_TOKEN_FILE=/nonexistent")
	ch := newChild(t, &c)
	var warnings []string
	var mu sync.Mutex
	r := &renew.Renewer{
		Env:      discovery.Env{UID: os.Geteuid(), TmpDir: t.TempDir()},
		MinRetry: 200 * time.Millisecond, MaxSleep: 500 * time.Millisecond,
		Warn: func(s string) { mu.Lock(); warnings = append(warnings, s); mu.Unlock() },
	}
	res := make(chan int, 1)
	go func() {
		code, err := Exec(Options{Child: c, Base: base, Token: first, Source: src.source, Name: "test", Renewer: r})
		if err != nil {
			t.Errorf("Exec: %v", err)
		}
		res <- code
	}()

	env := ch.ask("env")
	file, ok := strings.CutPrefix(strings.TrimSpace(env), "BEARER_TOKEN_FILE=")
	if !ok || strings.Contains(file, " ") || !strings.HasPrefix(file, base+"/exec-") {
		t.Fatalf("child environment %q: want only BEARER_TOKEN_FILE under %s", env, base)
	}
	for p, mode := range map[string]os.FileMode{file: 0o600, filepath.Dir(file): 0o700} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != mode {
			t.Fatalf("%s: %v, want mode %04o", p, fi.Mode(), mode)
		}
	}

	seen := map[string]bool{}
	for end := time.Now().Add(5 * life); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		tok := ch.ask("tok")
		info, err := jwtinfo.Parse(tok)
		if err != nil || !info.Expiry.After(time.Now()) {
			t.Fatalf("the child read an unusable or expired token (%v) after %d tokens; warnings %q", err, len(seen), warnings)
		}
		if !seen[tok] {
			seen[tok] = true
			if code := storageStatus(t, tb, tok); code != http.StatusNotFound {
				t.Fatalf("storage answered %d to the child's token", code)
			}
		}
	}
	if len(seen) < 5 {
		t.Fatalf("the child saw %d tokens over 5 lifetimes, want ≥ 5", len(seen))
	}
	if _, err := ch.in.WriteString("exit 3\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-res:
		if code != 3 {
			t.Fatalf("exit status %d, want 3", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Exec did not return")
	}
	if _, err := os.Stat(filepath.Dir(file)); !os.IsNotExist(err) {
		t.Fatal("the token directory is still there")
	}
	if len(warnings) != 0 {
		t.Fatalf("warnings: %q", warnings)
	}
}

func TestExecEnvToken(t *testing.T) {
	tb := testbed.Start(t, testbed.Options{})
	src := newRefreshSource(t, tb, []string{"openid"})
	first, err := src.source(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	c := shChild(t, childScript)
	ch := newChild(t, &c)
	res := make(chan int, 1)
	go func() {
		code, err := Exec(Options{Child: c, Base: t.TempDir(), Token: first, Source: src.source, EnvToken: true,
			Renewer: &renew.Renewer{Env: discovery.Env{UID: os.Geteuid()}}})
		if err != nil {
			t.Errorf("Exec: %v", err)
		}
		res <- code
	}()
	env := ch.ask("env")
	if !strings.Contains(env, "BEARER_TOKEN="+first.AccessToken+" ") || !strings.Contains(env, "BEARER_TOKEN_FILE=") {
		t.Fatal("BEARER_TOKEN (trimmed) and BEARER_TOKEN_FILE not both set")
	}
	if tok := ch.ask("tok"); tok != first.AccessToken {
		t.Fatal("the file does not hold the first token")
	}
	if _, err := ch.in.WriteString("exit 0\n"); err != nil {
		t.Fatal(err)
	}
	if code := <-res; code != 0 {
		t.Fatalf("exit status %d", code)
	}
}
