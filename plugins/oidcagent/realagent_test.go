package oidcagent

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/integrations/testbed"
)

// Tests against the real oidc-agent (Debian oidc-agent-cli, 4.2.6),
// started as a child with a private socket, HOME and OIDC_CONFIG_DIR,
// configured without prompts (oidc-gen -f client.json --rt-env --pw-env)
// against the loopback test bed over https. Nothing secret goes into argv.

// needTool returns the path of an external tool. Missing, the test fails
// under CI=true and is skipped otherwise.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (CI=true): install the Debian package oidc-agent-cli", name)
	}
	t.Skipf("%s is not installed (Debian package oidc-agent-cli)", name)
	return ""
}

// Fake oidc-prompt programs, first in the agent's PATH. oidc-agent runs
// oidc-prompt for the password of an account it must autoload and for
// confirmations; a real one would open a window.
const (
	// promptCancel: the user closes the popup.
	promptCancel = "#!/bin/sh\nexit 1\n"
	// promptHang: the popup stays open. It first tells the test (through
	// the FIFO $PROMPT_FIFO) that it is showing.
	promptHang = "#!/bin/sh\necho shown > \"$PROMPT_FIFO\"\nexec sleep 120\n"
)

type realAgent struct {
	dir, home, conf, sock, bin, fifo string
	cmd                              *exec.Cmd
	exited                           chan struct{}
	stderr                           *lockedBuffer
	pw                               string
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startRealAgent starts oidc-agent in its own process group with prompt
// as its oidc-prompt, and waits until it answers.
func startRealAgent(t *testing.T, prompt string) *realAgent {
	t.Helper()
	agentPath := needTool(t, "oidc-agent")
	needTool(t, "oidc-gen")
	needTool(t, "oidc-add")
	dir := socketDir(t)
	a := &realAgent{
		dir: dir, home: filepath.Join(dir, "home"), conf: filepath.Join(dir, "conf"),
		sock: filepath.Join(dir, "agent.sock"), bin: filepath.Join(dir, "bin"), fifo: filepath.Join(dir, "prompt.fifo"),
		exited: make(chan struct{}), stderr: &lockedBuffer{}, pw: randomHex(t),
	}
	for _, d := range []string{a.home, a.conf, a.bin} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(a.bin, "oidc-prompt"), []byte(prompt), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(a.fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	a.cmd = exec.Command(agentPath, "-d", "--socket-path="+a.sock)
	a.cmd.Env = a.baseEnv()
	a.cmd.Stdout = a.stderr
	a.cmd.Stderr = a.stderr
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = a.cmd.Wait(); close(a.exited) }()
	t.Cleanup(func() {
		// The whole group: the agent, its forked helper and any prompt.
		_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
		<-a.exited
		if t.Failed() {
			t.Logf("oidc-agent output:\n%s", a.stderr.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := LoadedAccounts(ctx, a.env(t))
		cancel()
		if err == nil {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("oidc-agent did not come up: %v\n%s", err, a.stderr.String())
		}
		select {
		case <-a.exited:
			t.Fatalf("oidc-agent exited: %s", a.stderr.String())
		case <-time.After(20 * time.Millisecond): // readiness poll, bounded above
		}
	}
}

func (a *realAgent) baseEnv() []string {
	return []string{
		"PATH=" + a.bin + ":/usr/local/bin:/usr/bin:/bin",
		"HOME=" + a.home,
		"OIDC_CONFIG_DIR=" + a.conf,
		"TMPDIR=" + a.dir,
		"PROMPT_FIFO=" + a.fifo,
		"LANG=C",
	}
}

// env is the Env the package sees: OIDC_SOCK only.
func (a *realAgent) env(t *testing.T) Env {
	return testEnv(t, map[string]string{EnvSock: a.sock})
}

// run runs an oidc-agent tool against this agent. Secrets go through the
// environment (extra) or files, never argv.
func (a *realAgent) run(t *testing.T, extra []string, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(append(a.baseEnv(), "OIDC_SOCK="+a.sock), extra...)
	cmd.Stdin = nil
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// addAccount registers a confidential client at the test bed, logs user
// in (a refresh token as after a device flow) and creates the oidc-agent
// account with oidc-gen, which also loads it.
func (a *realAgent) addAccount(t *testing.T, tb *testbed.Testbed, account, user string, scopes []string) {
	t.Helper()
	// Refresh only: with the device grant, oidc-agent answers a revoked
	// refresh token by re-authenticating (polling a device flow for
	// minutes) instead of failing.
	spec, err := tb.RegisterClient(testbed.ClientSpec{Name: "oidc-agent " + account, Grants: []string{"refresh"}})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := tb.RefreshTokenFor(user, spec.ID, scopes)
	if err != nil {
		t.Fatal(err)
	}
	client, _ := json.Marshal(map[string]any{
		"name": account, "issuer_url": tb.IssuerURL, "client_id": spec.ID, "client_secret": spec.Secret,
		"scope": strings.Join(scopes, " "), "redirect_uris": []string{},
	})
	file := filepath.Join(a.dir, "client-"+account+".json")
	if err := os.WriteFile(file, client, 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{account, "--file=" + file, "--rt-env", "--pw-env", "--prompt=none", "--confirm-default"}
	if tb.CAFile != "" {
		args = append(args, "--cp="+tb.CAFile)
	}
	a.run(t, []string{"OIDC_ENCRYPTION_PW=" + a.pw, "OIDC_REFRESH_TOKEN=" + rt}, "oidc-gen", args...)
	os.Remove(file)
}

func randomHex(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// claims decodes a JWT payload for assertions.
func claims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT (%d parts)", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func claimTime(t *testing.T, c map[string]any, name string) time.Time {
	t.Helper()
	f, ok := c[name].(float64)
	if !ok {
		t.Fatalf("claim %s missing: %v", name, c)
	}
	return time.Unix(int64(f), 0)
}

var aliceScopes = []string{"openid", "offline_access", "storage.read:/", "storage.modify:/home/alice", "compute.read", "wlcg.groups"}

// rawToken asks the agent directly, to see what it reports itself.
func rawToken(t *testing.T, a *realAgent, req map[string]any) map[string]any {
	t.Helper()
	msg, _ := json.Marshal(req)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	raw, err := exchange(ctx, 30*time.Second, Endpoint{Network: "unix", Address: a.sock, Source: SourceSock}, msg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("agent reply is not JSON (%d bytes)", len(raw))
	}
	return m
}

func TestRealAgent(t *testing.T) {
	a := startRealAgent(t, promptCancel)
	tb := testbed.Start(t, testbed.Options{HTTPS: true})
	a.addAccount(t, tb, "wlcg", "alice", aliceScopes)
	ctx := context.Background()
	env := a.env(t)
	b, err := New(&config.Profile{Name: "wlcg", Backend: BackendName, Account: "wlcg"}, env)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("plain token", func(t *testing.T) {
		tok, err := b.Token(ctx, helper.Request{})
		if err != nil {
			t.Fatal(err)
		}
		c := claims(t, tok.AccessToken)
		if c["iss"] != tb.IssuerURL || tok.Issuer != tb.IssuerURL || tok.Source != "oidc-agent" || tok.Profile != "wlcg" {
			t.Fatalf("token issuer %q claims %v", tok.Issuer, c)
		}
		if exp := claimTime(t, c, "exp"); !tok.Expiry.Equal(exp) {
			t.Fatalf("expiry %v, token exp %v", tok.Expiry, exp)
		}
		if left := time.Until(tok.Expiry); left < 15*time.Minute || left > 21*time.Minute {
			t.Fatalf("token valid for %v, the test bed issues 20m", left)
		}
	})

	t.Run("scoped token expiry from the JWT", func(t *testing.T) {
		// Scoped tokens live 5 minutes from now on; the agent's cached
		// default token keeps its 20. oidc-agent reports the default
		// token's expires_at for scoped requests.
		life := tb.Lifetimes()
		tb.SetLifetimes(testbed.Lifetimes{Access: 5 * time.Minute})
		defer tb.SetLifetimes(life)
		raw := rawToken(t, a, map[string]any{"request": "access_token", "account": "wlcg", "scope": "storage.read:/"})
		rawExp := time.Unix(int64(raw["expires_at"].(float64)), 0)
		rawJWTExp := claimTime(t, claims(t, raw["access_token"].(string)), "exp")
		if rawExp.Sub(rawJWTExp) < 5*time.Minute {
			t.Logf("note: this oidc-agent reports expires_at %v for a token with exp %v (no quirk)", rawExp, rawJWTExp)
		}

		tok, err := b.Token(ctx, helper.Request{Scopes: []string{"storage.read:/", "openid"}})
		if err != nil {
			t.Fatal(err)
		}
		c := claims(t, tok.AccessToken)
		if c["scope"] != "storage.read:/ openid" && c["scope"] != "openid storage.read:/" {
			t.Fatalf("scope claim %q", c["scope"])
		}
		exp := claimTime(t, c, "exp")
		if !tok.Expiry.Equal(exp) || time.Until(tok.Expiry) > 6*time.Minute {
			t.Fatalf("expiry %v, token exp %v (agent said %v)", tok.Expiry, exp, rawExp)
		}
		if strings.Join(tok.Scopes, " ") != "storage.read:/ openid" {
			t.Fatalf("scopes %q", tok.Scopes)
		}
	})

	t.Run("audience", func(t *testing.T) {
		tok, err := b.Token(ctx, helper.Request{Audiences: []string{"https://se.example.org:1094"}})
		if err != nil {
			t.Fatal(err)
		}
		if aud := claims(t, tok.AccessToken)["aud"]; aud != "https://se.example.org:1094" {
			t.Fatalf("aud %v", aud)
		}
		if strings.Join(tok.Audiences, " ") != "https://se.example.org:1094" {
			t.Fatalf("audiences %q", tok.Audiences)
		}
	})

	t.Run("cached, then forced", func(t *testing.T) {
		first, err := b.Token(ctx, helper.Request{})
		if err != nil {
			t.Fatal(err)
		}
		tb.ResetCounters()
		again, err := b.Token(ctx, helper.Request{})
		if err != nil {
			t.Fatal(err)
		}
		if again.AccessToken != first.AccessToken || tb.Counters().Grant("refresh") != 0 {
			t.Fatalf("agent did not answer from its cache (%d refreshes)", tb.Counters().Grant("refresh"))
		}
		forced, err := b.Token(ctx, helper.Request{Force: true})
		if err != nil {
			t.Fatal(err)
		}
		if forced.AccessToken == first.AccessToken || tb.Counters().Grant("refresh") != 1 {
			t.Fatalf("force did not refresh (%d refreshes)", tb.Counters().Grant("refresh"))
		}
		if claims(t, forced.AccessToken)["jti"] == claims(t, first.AccessToken)["jti"] {
			t.Fatal("same jti after force")
		}
	})

	t.Run("min-valid", func(t *testing.T) {
		cur, err := b.Token(ctx, helper.Request{})
		if err != nil {
			t.Fatal(err)
		}
		tb.ResetCounters()
		// 10 minutes: the cached token (about 20 left) will do.
		same, err := b.Token(ctx, helper.Request{MinValid: 10 * time.Minute})
		if err != nil || same.AccessToken != cur.AccessToken || tb.Counters().Grant("refresh") != 0 {
			t.Fatalf("min-valid 10m: %v, refreshes %d", err, tb.Counters().Grant("refresh"))
		}
		// 25 minutes: the agent must refresh; the provider now issues 30.
		life := tb.Lifetimes()
		tb.SetLifetimes(testbed.Lifetimes{Access: 30 * time.Minute})
		defer tb.SetLifetimes(life)
		longer, err := b.Token(ctx, helper.Request{MinValid: 25 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if longer.AccessToken == cur.AccessToken || tb.Counters().Grant("refresh") != 1 || time.Until(longer.Expiry) < 25*time.Minute {
			t.Fatalf("min-valid 25m: refreshes %d, valid %v", tb.Counters().Grant("refresh"), time.Until(longer.Expiry))
		}
		// 2 hours: no token can last that long; refused, not handed out.
		_, err = b.Token(ctx, helper.Request{MinValid: 2 * time.Hour})
		if helper.KindOf(err) != helper.KindConfig || !strings.Contains(err.Error(), "less than the 2h0m0s asked for") {
			t.Fatalf("min-valid 2h: %v", err)
		}
	})

	t.Run("by issuer", func(t *testing.T) {
		bi, err := New(&config.Profile{Name: "iam", Issuer: tb.IssuerURL}, env)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := bi.Token(ctx, helper.Request{})
		if err != nil {
			t.Fatal(err)
		}
		if claims(t, tok.AccessToken)["sub"] == nil || tok.Issuer != tb.IssuerURL {
			t.Fatalf("issuer %q", tok.Issuer)
		}
	})

	t.Run("status and zero config", func(t *testing.T) {
		st, err := b.Status(ctx)
		if err != nil || !st.OK || !strings.Contains(strings.Join(st.Lines, "\n"), "loaded accounts: wlcg") {
			t.Fatalf("%+v %v", st, err)
		}
		p, err := ZeroConfig(ctx, env)
		if err != nil || p.Account != "wlcg" {
			t.Fatalf("%+v %v", p, err)
		}
	})

	t.Run("unknown account", func(t *testing.T) {
		bu, _ := New(&config.Profile{Name: "x", Account: "nope"}, env)
		_, err := bu.Token(ctx, helper.Request{})
		if !errors.Is(err, ErrUnknownAccount) || helper.KindOf(err) != helper.KindConfig || !strings.Contains(err.Error(), "oidc-gen nope") {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("account not loaded", func(t *testing.T) {
		a.run(t, nil, "oidc-add", "-r", "wlcg")
		// oidc-agent tries to autoload it through oidc-prompt; the user
		// closes the popup.
		_, err := b.Token(ctx, helper.Request{})
		if !errors.Is(err, ErrNotLoaded) || helper.KindOf(err) != helper.KindLoginNeeded || !strings.Contains(err.Error(), "run: oidc-add wlcg") {
			t.Fatalf("got %v", err)
		}
		st, err := b.Status(ctx)
		if err != nil || st.OK || !strings.Contains(strings.Join(st.Lines, "\n"), `account "wlcg": not loaded (run: oidc-add wlcg)`) {
			t.Fatalf("%+v %v", st, err)
		}
		a.run(t, []string{"OIDC_ENCRYPTION_PW=" + a.pw}, "oidc-add", "--pw-env", "wlcg")
		if _, err := b.Token(ctx, helper.Request{}); err != nil {
			t.Fatalf("after oidc-add: %v", err)
		}
	})

	t.Run("slow provider", func(t *testing.T) {
		if err := tb.Inject(testbed.EndpointToken, testbed.Hang().Once()); err != nil {
			t.Fatal(err)
		}
		p := &config.Profile{Name: "wlcg", Account: "wlcg", Timeout: config.Duration(time.Second)}
		bs, _ := New(p, env)
		start := time.Now()
		_, err := bs.Token(ctx, helper.Request{Force: true})
		if !errors.Is(err, ErrTimeout) || time.Since(start) > 10*time.Second || !strings.Contains(err.Error(), "within 1s") {
			t.Fatalf("got %v after %v", err, time.Since(start))
		}
	})
}

// TestRealAgentRefreshTokenRevoked runs with an agent of its own: on
// invalid_grant, oidc-agent 4.2.6 re-authenticates the account
// ({"request":"reauthenticate"} from its proxy to oidcd), and when that
// fails oidcd frees the account but leaves it in its list of loaded
// accounts (valgrind: invalid reads of the 160-byte account allocated by
// "gen" and freed in the reauthenticate handler). oidcd then crashes
// (SIGSEGV, "oidcd died") once the freed memory is reused, which depends
// on timing: under nice -n 5 or strace, every time at TestRealAgent's
// oidc-add --pw-env wlcg when this ran as one of its subtests.
func TestRealAgentRefreshTokenRevoked(t *testing.T) {
	a := startRealAgent(t, promptCancel)
	tb := testbed.Start(t, testbed.Options{HTTPS: true})
	a.addAccount(t, tb, "revoked", "bob", []string{"openid", "offline_access"})
	if err := tb.Inject(testbed.EndpointToken, testbed.OAuthError("invalid_grant").Once()); err != nil {
		t.Fatal(err)
	}
	br, err := New(&config.Profile{Name: "r", Account: "revoked"}, a.env(t))
	if err != nil {
		t.Fatal(err)
	}
	_, err = br.Token(context.Background(), helper.Request{Force: true})
	if helper.KindOf(err) != helper.KindLoginNeeded || !strings.Contains(err.Error(), "oidc-gen revoked --reauthenticate") {
		t.Fatalf("got %v", err)
	}
}

// popupAgent starts an agent whose account "wlcg" is configured but not
// loaded, so that a token request makes it autoload the account through a
// password popup that nobody answers. shown reports when the popup is up
// (the agent is then inside the request).
func popupAgent(t *testing.T) (a *realAgent, shown <-chan error) {
	a = startRealAgent(t, promptHang)
	tb := testbed.Start(t, testbed.Options{HTTPS: true})
	a.addAccount(t, tb, "wlcg", "alice", aliceScopes)
	a.run(t, nil, "oidc-add", "-r", "wlcg")
	ch := make(chan error, 1)
	go func() {
		f, err := os.Open(a.fifo) // blocks until the prompt writes
		if err == nil {
			_, err = f.Read(make([]byte, 16))
			f.Close()
		}
		ch <- err
	}()
	return a, ch
}

// The agent waits on a password popup and serves nobody meanwhile: the
// call ends at the profile's timeout with the fix.
func TestRealAgentPopupTimeout(t *testing.T) {
	a, shown := popupAgent(t)
	b, _ := New(&config.Profile{Name: "wlcg", Account: "wlcg", Timeout: config.Duration(time.Second)}, a.env(t))
	start := time.Now()
	_, err := b.Token(context.Background(), helper.Request{})
	if !errors.Is(err, ErrTimeout) || helper.KindOf(err) != helper.KindUnavailable || time.Since(start) > 10*time.Second {
		t.Fatalf("got %v after %v", err, time.Since(start))
	}
	if !strings.Contains(err.Error(), "did not answer within 1s (it may be waiting for you in a popup: password") ||
		!strings.Contains(err.Error(), "oidc-add NAME") {
		t.Fatalf("message %q", err)
	}
	if err := <-shown; err != nil {
		t.Fatal(err)
	}
	// Status is bounded the same way.
	st, err := b.Status(context.Background())
	if !errors.Is(err, ErrTimeout) || st.OK {
		t.Fatalf("status %+v %v", st, err)
	}
}

// The agent dies in the middle of a request; the next call meets the
// socket file it left behind.
func TestRealAgentKilledMidRequestThenStale(t *testing.T) {
	a, shown := popupAgent(t)
	env := a.env(t)
	b, _ := New(&config.Profile{Name: "wlcg", Account: "wlcg", Timeout: config.Duration(30 * time.Second)}, env)
	done := make(chan error, 1)
	go func() {
		_, err := b.Token(context.Background(), helper.Request{})
		done <- err
	}()
	if err := <-shown; err != nil { // the agent has read the request and is inside it
		t.Fatal(err)
	}
	// The whole group: the popup's shell inherited the connection and
	// would keep it open.
	if err := syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("request did not end when the agent died")
	}
	if helper.KindOf(err) != helper.KindUnavailable || !errors.Is(err, ErrBadReply) ||
		!strings.Contains(err.Error(), "closed the connection without answering") || !strings.Contains(err.Error(), "oidc-agent-service use") {
		t.Fatalf("killed mid-request: %v", err)
	}
	<-a.exited

	if fi, err := os.Stat(a.sock); err != nil || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("socket file after SIGKILL: %v", err)
	}
	_, err = b.Token(context.Background(), helper.Request{})
	if !errors.Is(err, ErrNoAgent) || helper.KindOf(err) != helper.KindUnavailable ||
		!strings.Contains(err.Error(), "oidc-agent is not running (stale socket at "+a.sock) ||
		!strings.Contains(err.Error(), "start it with eval $(oidc-agent-service use) or eval $(oidc-agent)") {
		t.Fatalf("stale socket: %v", err)
	}
	st, err := b.Status(context.Background())
	if !errors.Is(err, ErrNoAgent) || st.OK {
		t.Fatalf("status %+v %v", st, err)
	}
}

// The agent dies while it refreshes at a provider that does not answer.
func TestRealAgentKilledWhileRefreshing(t *testing.T) {
	a := startRealAgent(t, promptCancel)
	tb := testbed.Start(t, testbed.Options{HTTPS: true})
	a.addAccount(t, tb, "wlcg", "alice", aliceScopes)
	if err := tb.Inject(testbed.EndpointToken, testbed.Hang().Once()); err != nil {
		t.Fatal(err)
	}
	b, _ := New(&config.Profile{Name: "wlcg", Account: "wlcg", Timeout: config.Duration(30 * time.Second)}, a.env(t))
	done := make(chan error, 1)
	go func() {
		_, err := b.Token(context.Background(), helper.Request{Force: true})
		done <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := tb.WaitCounters(ctx, func(c testbed.Counters) bool { return c.Faults[testbed.EndpointToken] >= 1 }); err != nil {
		t.Fatalf("the agent never reached the provider: %v", err)
	}
	if err := syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("request did not end when the agent died")
	}
	if !errors.Is(err, ErrBadReply) || !strings.Contains(err.Error(), "closed the connection without answering") {
		t.Fatalf("got %v", err)
	}
}

// An agent stopped normally removes its socket: the next call says there
// is no socket, with the fix.
func TestRealAgentStopped(t *testing.T) {
	a := startRealAgent(t, promptCancel)
	env := a.env(t)
	if err := syscall.Kill(a.cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-a.exited
	_, err := LoadedAccounts(context.Background(), env)
	if !errors.Is(err, ErrNoAgent) || helper.KindOf(err) != helper.KindUnavailable {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(err.Error(), "oidc-agent is not running (") || !strings.Contains(err.Error(), "start it with eval $(oidc-agent-service use) or eval $(oidc-agent)") {
		t.Fatalf("message %q", err)
	}
}
