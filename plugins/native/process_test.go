package native_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/cache"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/helper/secret"
	"github.com/tokenhelper/tokenhelper/integrations/testbed"
	"github.com/tokenhelper/tokenhelper/plugins/native"
)

// procEnv runs the real tokenhelper CLI (this test binary, re-executed)
// as separate processes against a test bed on the real clock, with a
// private HOME.
type procEnv struct {
	t       *testing.T
	tb      *testbed.Testbed
	home    string
	dirs    config.Dirs
	exe     string
	profile *config.Profile
}

func newProcEnv(t *testing.T) *procEnv {
	t.Helper()
	tb := testbed.Start(t, testbed.Options{})
	home := filepath.Join(t.TempDir(), "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	dirs, err := config.ResolveDirs(config.MapEnv(map[string]string{"HOME": home}))
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pe := &procEnv{t: t, tb: tb, home: home, dirs: dirs, exe: exe,
		profile: &config.Profile{Name: "p", Backend: config.BackendNative, Issuer: tb.IssuerURL, Scopes: testScopes,
			PassphraseEnv: "TEST_PASS", UnlockFor: config.Duration(-time.Second)}}
	cfg := fmt.Sprintf(`[profiles.p]
backend = "native"
issuer = %q
scopes = %s
passphrase_env = "TEST_PASS"
unlock_for = "-1s"   # keep the machine's kernel keyring out of tests
timeout = "20s"
`, tb.IssuerURL, tomlList(testScopes))
	if err := os.MkdirAll(filepath.Dir(dirs.ConfigFile), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dirs.ConfigFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return pe
}

func tomlList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// backend is the native backend on the same state, in this process.
func (pe *procEnv) backend(sleep func(context.Context, time.Duration) error) *native.Backend {
	pe.t.Helper()
	var mu sync.Mutex
	var skip time.Duration // what sleep skipped: the backend's clock runs ahead
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return time.Now().Add(skip) }
	if sleep != nil {
		inner := sleep
		sleep = func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			skip += d
			mu.Unlock()
			return inner(ctx, d)
		}
	}
	b, err := native.New(pe.profile, native.Options{
		Dirs:        pe.dirs,
		Now:         now,
		LookupEnv:   func(k string) (string, bool) { return testPass, k == "TEST_PASS" },
		HTTPClient:  pe.tb.HTTPClient(),
		UnlockCache: secret.NewMemoryCache(helper.SystemClock{}),
		KeyOptions:  secret.KeyOptions{WorkFactor: 10}, // children unlock it fast too
		Headless:    true,
		Sleep:       sleep,
		UI:          &fakeUI{now: time.Now},
	})
	if err != nil {
		pe.t.Fatal(err)
	}
	return b
}

// login registers the profile in this process, the device flow approved
// by alice as soon as it starts polling.
func (pe *procEnv) login() {
	pe.t.Helper()
	approve := func(ctx context.Context, d time.Duration) error {
		if p := pe.tb.PendingDevices(); len(p) > 0 {
			if err := pe.tb.ApproveDevice(p[0].UserCode, "alice"); err != nil {
				return err
			}
		}
		return ctx.Err() // no wait: the next poll is right away
	}
	if _, err := pe.backend(approve).Register(context.Background(), native.Registration{Force: true}, pe.request(nil, nil)); err != nil {
		pe.t.Fatalf("register: %v", err)
	}
}

// request is the one the CLI builds for `token -p p [-s …] [--aud …]`.
func (pe *procEnv) request(scopes, auds []string) helper.Request {
	if scopes == nil {
		scopes = pe.profile.Scopes
	}
	return helper.Request{Profile: "p", Scopes: scopes, Audiences: auds}.Normalized()
}

// expireCache stores an expired token as the cache entry for req, as a
// cache looks after the token's lifetime has passed.
func (pe *procEnv) expireCache(req helper.Request) {
	pe.t.Helper()
	raw, err := pe.tb.Mint(testbed.TokenSpec{User: "alice", Scopes: req.Scopes, Lifetime: -time.Minute})
	if err != nil {
		pe.t.Fatal(err)
	}
	c := &cache.Cache{Dir: filepath.Join(pe.dirs.CacheDir, "tokens")}
	if err := c.Put(context.Background(), req, &helper.Token{AccessToken: raw, Expiry: time.Now().Add(-time.Minute), Profile: "p"}); err != nil {
		pe.t.Fatal(err)
	}
}

func (pe *procEnv) command(ctx context.Context, env []string, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, pe.exe, args...)
	// A race-enabled child otherwise sleeps a second at exit.
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	c.Env = append([]string{envBeTokenhelper + "=1", "HOME=" + pe.home, "PATH=" + os.Getenv("PATH"), "TZ=UTC", "TEST_PASS=" + testPass, "GORACE=" + gorace}, env...)
	c.Stdin = nil // /dev/null
	return c
}

type result struct {
	code           int
	killed         bool
	stdout, stderr string
	took           time.Duration
}

func (pe *procEnv) run(env []string, args ...string) result {
	pe.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := pe.command(ctx, env, args...)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	start := time.Now()
	err := c.Run()
	return pe.result(c, err, &out, &errb, time.Since(start))
}

func (pe *procEnv) result(c *exec.Cmd, err error, out, errb *bytes.Buffer, took time.Duration) result {
	r := result{stdout: out.String(), stderr: errb.String(), took: took}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.killed = true
		}
	default:
		pe.t.Fatalf("cannot run tokenhelper: %v", err)
	}
	return r
}

// started is a running child.
type started struct {
	cmd      *exec.Cmd
	out, err bytes.Buffer
	start    time.Time
}

func (pe *procEnv) startAll(n int, argsFor func(i int) []string) []*started {
	pe.t.Helper()
	procs := make([]*started, n)
	for i := range n {
		s := &started{}
		s.cmd = pe.command(context.Background(), nil, argsFor(i)...)
		s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.err
		s.start = time.Now()
		if err := s.cmd.Start(); err != nil {
			pe.t.Fatal(err)
		}
		procs[i] = s
	}
	pe.t.Cleanup(func() {
		for _, s := range procs {
			if s.cmd.ProcessState == nil {
				_ = s.cmd.Process.Kill()
				_ = s.cmd.Wait()
			}
		}
	})
	return procs
}

func (pe *procEnv) waitAll(procs []*started) []result {
	out := make([]result, len(procs))
	for i, s := range procs {
		err := s.cmd.Wait()
		out[i] = pe.result(s.cmd, err, &s.out, &s.err, time.Since(s.start))
	}
	return out
}

func (pe *procEnv) storedRT() string {
	return storedSecret(pe.t, filepath.Join(pe.dirs.StateDir, "profiles", "p", "account.json"),
		filepath.Join(pe.dirs.StateDir, "profiles", "p", "key.json"), "refresh_token")
}

func (pe *procEnv) clientID() string {
	b, err := os.ReadFile(filepath.Join(pe.dirs.StateDir, "profiles", "p", "account.json"))
	if err != nil {
		pe.t.Fatal(err)
	}
	i := bytes.Index(b, []byte(`"client_id": "`))
	if i < 0 {
		pe.t.Fatal("no client_id in account.json")
	}
	rest := b[i+len(`"client_id": "`):]
	return string(rest[:bytes.IndexByte(rest, '"')])
}

// 100 tokenhelper processes on an expired cache: one refresh at the
// provider, every process gets the token, and the rotated refresh token
// is the one stored.
func TestProcessesShareOneRefresh(t *testing.T) {
	pe := newProcEnv(t)
	pe.login()
	pe.expireCache(pe.request(nil, nil))
	rt0 := pe.storedRT()
	pe.tb.ResetCounters()

	procs := pe.startAll(100, func(int) []string { return []string{"token", "-p", "p"} })
	results := pe.waitAll(procs)
	first := results[0].stdout
	for i, r := range results {
		if r.code != 0 || r.stdout != first || r.stdout == "" {
			t.Errorf("process %d: exit %d, stdout %d bytes (same as the first: %v), stderr %q", i, r.code, len(r.stdout), r.stdout == first, r.stderr)
		}
	}
	if n := pe.tb.Counters().Grant(testbed.GrantRefreshToken); n != 1 {
		t.Errorf("%d refreshes at the provider, want exactly 1", n)
	}
	rt1 := pe.storedRT()
	if rt1 == rt0 || !introspect(t, pe.tb, pe.clientID(), rt1) {
		t.Fatal("the rotated refresh token was not stored")
	}
	if r := pe.run(nil, "token", "-p", "p", "--force"); r.code != 0 {
		t.Fatalf("token --force with the stored refresh token: exit %d: %s", r.code, r.stderr)
	}
}

// 100 processes asking for 4 different down-scoped tokens: one refresh per
// scope set, serialized by the profile lock, none presenting a refresh
// token another already redeemed.
func TestProcessesMixedScopes(t *testing.T) {
	pe := newProcEnv(t)
	pe.login()
	pe.tb.ResetCounters()
	sets := [][]string{{"storage.read:/"}, {"storage.create:/"}, {"storage.read:/home"}, {"storage.modify:/home/alice"}}
	procs := pe.startAll(100, func(i int) []string {
		return []string{"token", "-p", "p", "-s", sets[i%4][0], "--aud", "https://se.example.org"}
	})
	results := pe.waitAll(procs)
	for i, r := range results {
		if r.code != 0 {
			t.Errorf("process %d: exit %d: %s", i, r.code, r.stderr)
			continue
		}
		if r.stdout != results[i%4].stdout {
			t.Errorf("process %d got another token than process %d for the same scopes", i, i%4)
		}
		if cl := claims(t, strings.TrimSpace(r.stdout)); cl["scope"] != sets[i%4][0] || cl["aud"] != "https://se.example.org" {
			t.Errorf("process %d: scope %v aud %v", i, cl["scope"], cl["aud"])
		}
	}
	if n := pe.tb.Counters().Grant(testbed.GrantRefreshToken); n != 4 {
		t.Errorf("%d refreshes, want 4 (one per scope set)", n)
	}
	if !introspect(t, pe.tb, pe.clientID(), pe.storedRT()) {
		t.Error("the stored refresh token is not the latest")
	}
}

// SIGKILL while the refresh request is in flight (held by the provider),
// many times: the refresh token on disk stays the valid one, and the
// processes that were not killed all get the token.
func TestProcessesKilledDuringRefresh(t *testing.T) {
	pe := newProcEnv(t)
	pe.login()
	rng := rand.New(rand.NewPCG(1, 2))
	rounds := 12
	if testing.Short() {
		rounds = 3
	}
	for round := range rounds {
		pe.expireCache(pe.request(nil, nil))
		pe.tb.ResetCounters()
		if err := pe.tb.Inject(testbed.EndpointToken, testbed.Delay(time.Second).Once().ForGrant(testbed.GrantRefreshToken)); err != nil {
			t.Fatal(err)
		}
		procs := pe.startAll(6, func(int) []string { return []string{"token", "-p", "p"} })
		// Wait until one of them has its refresh held by the provider.
		deadline := time.Now().Add(30 * time.Second)
		for pe.tb.Counters().Faults[testbed.EndpointToken] == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: no refresh reached the provider", round)
			}
			time.Sleep(2 * time.Millisecond)
		}
		// Kill a random subset (all of them in some rounds).
		killed := map[int]bool{}
		for i, s := range procs {
			if round%4 == 3 || rng.IntN(2) == 0 {
				_ = s.cmd.Process.Signal(syscall.SIGKILL) // it may have ended already
				killed[i] = true
			}
		}
		results := pe.waitAll(procs)
		var token string
		for i, r := range results {
			if killed[i] {
				continue
			}
			if r.code != 0 {
				t.Errorf("round %d: surviving process %d: exit %d: %s", round, i, r.code, r.stderr)
			}
			if token == "" {
				token = r.stdout
			} else if r.stdout != token {
				t.Errorf("round %d: survivors got different tokens", round)
			}
		}
		rt := pe.storedRT()
		if !introspect(t, pe.tb, pe.clientID(), rt) {
			t.Fatalf("round %d (%d of 6 killed): the stored refresh token is no longer valid", round, len(killed))
		}
	}
	if r := pe.run(nil, "token", "-p", "p", "--force"); r.code != 0 {
		t.Fatalf("after %d rounds: exit %d: %s", rounds, r.code, r.stderr)
	}
}

// SIGKILL at random moments, no fault: the state is never damaged. A
// kill that lands after the provider rotated the refresh token and before
// the new one reached the disk loses the session (see the package doc);
// that is reported as "session expired" (exit 4), and only then.
func TestProcessesKilledAtRandom(t *testing.T) {
	pe := newProcEnv(t)
	pe.login()
	rng := rand.New(rand.NewPCG(3, 4))
	rounds := 15
	if testing.Short() {
		rounds = 3
	}
	lost, victims := 0, 0
	for round := range rounds {
		pe.expireCache(pe.request(nil, nil))
		rt0 := pe.storedRT()
		procs := pe.startAll(6, func(int) []string { return []string{"token", "-p", "p"} })
		victim := rng.IntN(len(procs))
		time.Sleep(time.Duration(rng.IntN(250)) * time.Millisecond) // a random moment, not a synchronization
		_ = procs[victim].cmd.Process.Signal(syscall.SIGKILL)       // it may have ended already
		results := pe.waitAll(procs)
		sessionLost := false
		for i, r := range results {
			if i == victim && r.killed {
				victims++
				continue
			}
			switch r.code {
			case 0:
			case 4:
				if !strings.Contains(r.stderr, "session expired") {
					t.Errorf("round %d: process %d: exit 4 but %q", round, i, r.stderr)
				}
				sessionLost = true
			default:
				t.Errorf("round %d: process %d: exit %d: %s", round, i, r.code, r.stderr)
			}
		}
		// The state always reads back (never half-written).
		rt := pe.storedRT()
		if sessionLost {
			if introspect(t, pe.tb, pe.clientID(), rt0) {
				t.Fatalf("round %d: session reported lost while the refresh token it started with is still valid", round)
			}
			lost++
			pe.login()
			continue
		}
		if rt == "" || !introspect(t, pe.tb, pe.clientID(), rt) {
			t.Fatalf("round %d: the stored refresh token is not valid and nobody said so", round)
		}
	}
	t.Logf("%d processes killed before they ended; %d of %d rounds lost the session (a kill between the provider's rotation and the write)", victims, lost, rounds)
}

// No terminal: login and a locked token fail at once, with the command to
// run, and never reach the provider.
func TestNoTerminalFailsAtOnce(t *testing.T) {
	pe := newProcEnv(t)
	if _, err := pe.backend(nil).Register(context.Background(), native.Registration{NoLogin: true}, pe.request(nil, nil)); err != nil {
		t.Fatal(err)
	}
	pe.tb.ResetCounters()
	r := pe.run(nil, "login", "-p", "p")
	if r.code != 4 || !strings.Contains(r.stderr, "no terminal") || !strings.Contains(r.stderr, "tokenhelper login -p p --headless") {
		t.Errorf("login: exit %d: %s", r.code, r.stderr)
	}
	r2 := pe.run(nil, "register", "-p", "new", "--issuer", pe.tb.IssuerURL)
	if r2.code != 4 || !strings.Contains(r2.stderr, "no terminal") {
		t.Errorf("register: exit %d: %s", r2.code, r2.stderr)
	}
	c := pe.tb.Counters()
	if c.Endpoint(testbed.EndpointDeviceAuthorization) != 0 || c.Endpoint(testbed.EndpointRegistration) != 0 {
		t.Errorf("a login without a person reached the provider: %+v", c.Requests)
	}
	if r.took > 10*time.Second || r2.took > 10*time.Second {
		t.Errorf("took %v and %v: not at once", r.took, r2.took)
	}

	// Logged in, but the passphrase source is gone: locked, exit 4 at once.
	pe.login()
	pe.expireCache(pe.request(nil, nil))
	pe.tb.ResetCounters()
	r = pe.run([]string{"TEST_PASS="}, "token", "-p", "p")
	if r.code != 4 || !strings.Contains(r.stderr, "profile p is locked") || r.stdout != "" {
		t.Errorf("token: exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
	if n := pe.tb.Counters().Endpoint(testbed.EndpointToken); n != 0 {
		t.Errorf("%d token requests while locked", n)
	}
}

func TestWrongPassphraseProcess(t *testing.T) {
	pe := newProcEnv(t)
	pe.login()
	pe.expireCache(pe.request(nil, nil))
	dir := filepath.Join(pe.dirs.StateDir, "profiles", "p")
	acct, _ := os.ReadFile(filepath.Join(dir, "account.json"))
	key, _ := os.ReadFile(filepath.Join(dir, "key.json"))
	pe.tb.ResetCounters()
	r := pe.run([]string{"TEST_PASS=wrong"}, "token", "-p", "p")
	if r.code != 9 || !strings.Contains(r.stderr, "wrong passphrase for profile p (from passphrase_env TEST_PASS)") ||
		!strings.Contains(r.stderr, "tokenhelper logout --forget -p p") || strings.Contains(r.stderr, "wrong\n") {
		t.Errorf("exit %d: %s", r.code, r.stderr)
	}
	acct2, _ := os.ReadFile(filepath.Join(dir, "account.json"))
	key2, _ := os.ReadFile(filepath.Join(dir, "key.json"))
	if !bytes.Equal(acct, acct2) || !bytes.Equal(key, key2) {
		t.Error("a wrong passphrase rewrote the state")
	}
	if n := pe.tb.Counters().Endpoint(testbed.EndpointToken); n != 0 {
		t.Errorf("%d token requests with a wrong passphrase", n)
	}
}

// The provider down: a cached token still valid is served; one that is not
// gives exit 5 and says which host could not be reached.
func TestProviderDownServesCachedToken(t *testing.T) {
	pe := newProcEnv(t)
	pe.login()
	first := pe.run(nil, "token", "-p", "p")
	if first.code != 0 {
		t.Fatalf("exit %d: %s", first.code, first.stderr)
	}
	pe.tb.Close()
	again := pe.run(nil, "token", "-p", "p")
	if again.code != 0 || again.stdout != first.stdout {
		t.Errorf("with the provider down: exit %d, same token %v: %s", again.code, again.stdout == first.stdout, again.stderr)
	}
	forced := pe.run(nil, "token", "-p", "p", "--force")
	host := strings.TrimPrefix(pe.tb.IssuerURL, "http://")
	if forced.code != 5 || !strings.Contains(forced.stderr, "cannot reach the provider at "+host) || forced.stdout != "" {
		t.Errorf("--force with the provider down: exit %d: %s", forced.code, forced.stderr)
	}
	if pe.storedRT() == "" {
		t.Error("an unreachable provider cost the session")
	}
}
