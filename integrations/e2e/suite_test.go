//go:build e2e && linux

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/integrations/testbed"
)

// The tools the end-to-end tests drive, with their Debian packages.
var tools = []struct{ bin, pkg string }{
	{"xrootd", "xrootd-server"},
	{"xrdcp", "xrootd-client"},
	{"xrdfs", "xrootd-client"},
	{"gfal-copy", "gfal2-util-scripts"},
	{"gfal-ls", "gfal2-util-scripts"},
	{"davix-put", "davix"},
	{"davix-get", "davix"},
	{"curl", "curl"},
	{"rclone", "rclone"},
	{"oidc-agent", "oidc-agent-cli"},
	{"oidc-gen", "oidc-agent-cli"},
	{"update-ca-certificates", "ca-certificates"},
}

// Packages whose plugins the tools load to speak tokens (no command to
// look for), as deps.sh installs them.
var pluginPackages = []string{
	"xrootd-scitokens-plugins", "xrootd-server-plugins", "xrootd-plugins",
	"gfal2-plugin-http", "gfal2-plugin-xrootd", "python3-gfal2-util",
}

// installed reports whether a Debian package is installed.
func installed(pkg string) bool {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", pkg).Output()
	return err == nil && strings.Contains(string(out), "install ok installed")
}

// Names of the profiles the suite configures.
const (
	// profileNative: tokenhelper's own OAuth client, registered and
	// logged in with the device flow (alice approves); the default.
	profileNative = "alice"
	// profileAgent: oidc-agent logged in as alice (account agentAccount).
	profileAgent = "alice-agent"
	// profileFile: a token file written by the test from the provider.
	profileFile = "alice-file"
	// agentAccount is the oidc-agent account's short name.
	agentAccount = "alice"
	// passphraseVar holds the passphrase of the native profile's secrets.
	passphraseVar = "E2E_PASSPHRASE"
)

// aliceScopes are what the profiles ask for by default: read everywhere,
// write in alice's home (paths relative to the XRootD base path).
var aliceScopes = []string{"storage.read:/", "storage.modify:/home/alice"}

// suite is everything one run sets up once: the test bed over https
// trusted system-wide, XRootD, oidc-agent, the tokenhelper binary and a
// private home for the tools.
type suite struct {
	run   *Run
	tb    *testbed.Testbed
	xrd   *XRootD
	agent *Process

	bin     string // the tokenhelper binary
	home    string
	runtime string // XDG_RUNTIME_DIR
	tokens  string // where tests write token files (0700)
	work    string // scratch files
	env     []string
	caPEM   []byte

	fileToken string // the file profile's token file
	agentSock string
}

var (
	suiteMu     sync.Mutex
	current     *suite
	shutdownErr error
	shutdowns   []func() error
)

// onShutdown registers f to run at shutdown (last first).
func onShutdown(f func() error) {
	suiteMu.Lock()
	defer suiteMu.Unlock()
	shutdowns = append(shutdowns, f)
}

// shutdown stops everything the suite started and restores the trust
// store. It is idempotent and safe from any goroutine: TestE2E's cleanup
// (which the testing package also runs when a subtest panics), the signal
// handler and the timeout watchdog all call it.
func shutdown() error {
	suiteMu.Lock()
	defer suiteMu.Unlock()
	var errs []error
	for i := len(shutdowns) - 1; i >= 0; i-- {
		if err := shutdowns[i](); err != nil {
			errs = append(errs, err)
		}
	}
	shutdowns = nil
	if err := errors.Join(errs...); err != nil {
		shutdownErr = errors.Join(shutdownErr, err)
	}
	return shutdownErr
}

func TestMain(m *testing.M) {
	flag.Parse()
	// The in-process test bed's OpenID library logs every route it
	// registers; keep the output to what the tests say.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	// Ctrl-C or a kill: clean up, then die.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "e2e: %v: stopping the servers and restoring the trust store\n", s)
		if err := shutdown(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: cleanup: %v\n", err)
		}
		os.Exit(1)
	}()
	// go test's -timeout panics without running cleanups: clean up first.
	if f := flag.Lookup("test.timeout"); f != nil {
		if d, err := time.ParseDuration(f.Value.String()); err == nil && d > 30*time.Second {
			time.AfterFunc(d-20*time.Second, func() {
				fmt.Fprintf(os.Stderr, "e2e: the -timeout of %v is near: stopping the servers and restoring the trust store\n", d)
				if err := shutdown(); err != nil {
					fmt.Fprintf(os.Stderr, "e2e: cleanup: %v\n", err)
				}
			})
		}
	}
	code := m.Run()
	if err := shutdown(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: cleanup: %v\n", err)
		code = 1
	}
	if current != nil {
		if leftovers := checkRestored(current); leftovers != "" {
			fmt.Fprintf(os.Stderr, "e2e: not restored: %s\n", leftovers)
			code = 1
		}
	}
	os.Exit(code)
}

// checkRestored says what a finished run left behind: its CA in the
// trust store, its processes, its directory.
func checkRestored(s *suite) string {
	var out []string
	if s.caPEM != nil {
		if in, err := s.run.Trust.Contains(s.caPEM); err != nil || in {
			out = append(out, fmt.Sprintf("the test bed CA is still in %s (%v)", s.run.Trust.Bundle, err))
		}
	}
	if cas, _ := s.run.Trust.Installed(); len(cas) > 0 {
		for _, ca := range cas {
			if ca.PID == os.Getpid() {
				out = append(out, ca.Path+" still exists")
			}
		}
	}
	var procs []*Process
	if s.xrd != nil {
		procs = append(procs, s.xrd.Process)
	}
	if s.agent != nil {
		procs = append(procs, s.agent)
	}
	for _, p := range procs {
		if p != nil && alive(p.PID(), p.start) {
			out = append(out, describe(p)+" still runs")
		}
	}
	if _, err := os.Stat(s.run.Dir); err == nil {
		out = append(out, s.run.Dir+" still exists")
	}
	return strings.Join(out, "; ")
}

// requireEnv skips the suite where it cannot run, or fails it when
// CI=true: there the machine must be able to run it.
func requireEnv(t *testing.T) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (to add a CA to the system trust store and run xrootd -R xrootd)")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool.bin); err != nil {
			missing = append(missing, fmt.Sprintf("%s (Debian package %s)", tool.bin, tool.pkg))
		}
	}
	for _, pkg := range pluginPackages {
		if !installed(pkg) {
			missing = append(missing, "the Debian package "+pkg)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "the end-to-end suite needs " + strings.Join(missing, ", ") + ": run `make e2e` as root (it installs the packages)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// setup starts everything, registering its teardown with shutdown.
func setup(t *testing.T) *suite {
	t.Helper()
	requireEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	step := stepper(t)

	trust := SystemTrustStore()
	cleaned, err := RecoverStale("", trust)
	for _, c := range cleaned {
		t.Logf("recovered from an earlier run: %s", c)
	}
	if err != nil {
		t.Fatalf("cleaning up after an earlier run: %v", err)
	}
	step("recovery of stale runs")

	run, err := NewRun("", trust)
	if err != nil {
		t.Fatal(err)
	}
	s := &suite{run: run}
	onShutdown(run.Close)
	current = s

	for _, d := range []string{"home", "runtime", "tokens", "work", "bin", "testbed", "agent", "tmp"} {
		if _, err := run.Mkdir(d); err != nil {
			t.Fatal(err)
		}
	}
	s.home, s.runtime, s.tokens, s.work = run.Path("home"), run.Path("runtime"), run.Path("tokens"), run.Path("work")

	// The binaries the tools and the documentation run.
	s.bin = run.Path("bin", "tokenhelper")
	build := exec.CommandContext(ctx, "go", "build", "-o", run.Path("bin")+"/",
		"github.com/tokenhelper/tokenhelper/cmd/tokenhelper", "github.com/tokenhelper/tokenhelper/cmd/tokenhelper-testbed")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	step("go build tokenhelper tokenhelper-testbed")

	// The identity provider, over https, its CA trusted system-wide.
	tb, err := testbed.New(testbed.Options{
		HTTPS: true,
		Dir:   run.Path("testbed"),
		// The device flow polls every second, not every five.
		Lifetimes: testbed.Lifetimes{PollInterval: time.Second},
		Clients: []testbed.ClientSpec{{
			ID: "e2e-agent", Name: "oidc-agent of the e2e suite",
			Grants: []string{testbed.GrantDeviceCode, testbed.GrantRefreshToken},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.tb = tb
	onShutdown(tb.Close)
	if s.caPEM, err = os.ReadFile(tb.CAFile); err != nil {
		t.Fatal(err)
	}
	if _, err := run.TrustCA("testbed", s.caPEM); err != nil {
		t.Fatalf("adding the test bed CA to the system trust store: %v", err)
	}
	step("test bed at " + tb.IssuerURL + ", CA in the system trust store")

	// XRootD with the SciTokens plugin trusting the test bed.
	s.xrd, err = StartXRootD(ctx, run, XRootDConfig{
		Issuer:   tb.IssuerURL,
		CertFile: filepath.Join(tb.Dir, "server.pem"),
		KeyFile:  filepath.Join(tb.Dir, "server-key.pem"),
		RootCAs:  tb.RootCAs(),
		BasePath: "/data",
		Dirs:     []string{"home/alice", "home/bob", "public"},
		Files:    map[string]string{"public/readme.txt": "public data\n"},
	})
	if err != nil {
		t.Fatalf("starting xrootd: %v", err)
	}
	step(fmt.Sprintf("xrootd (pid %d) on root port %d and https port %d, audience %s", s.xrd.Process.PID(), s.xrd.RootPort, s.xrd.HTTPPort, s.xrd.Audience))

	s.startAgent(t, ctx)
	step("oidc-agent (pid " + strconv.Itoa(s.agent.PID()) + ") with account " + agentAccount)

	s.env = []string{
		"PATH=" + filepath.Dir(s.bin) + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + s.home,
		"XDG_CONFIG_HOME=" + filepath.Join(s.home, ".config"),
		"XDG_CACHE_HOME=" + filepath.Join(s.home, ".cache"),
		"XDG_STATE_HOME=" + filepath.Join(s.home, ".local", "state"),
		"XDG_DATA_HOME=" + filepath.Join(s.home, ".local", "share"),
		"XDG_RUNTIME_DIR=" + s.runtime,
		"TMPDIR=" + run.Path("tmp"),
		"OIDC_SOCK=" + s.agentSock,
		// roots:// and davs:// verify the server against the hashed CA
		// directory; the test bed CA is in it now.
		"X509_CERT_DIR=/etc/ssl/certs",
		// Debian's gfal-* scripts look for "python", which bookworm lacks.
		"GFAL_PYTHONBIN=/usr/bin/python3",
		passphraseVar + "=" + randomHex(16),
		"LANG=C",
	}

	// The file profile's token: issued by the provider, kept in a file.
	tok, err := tb.IssueToken("alice", aliceScopes, []string{s.xrd.Audience}, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.fileToken = filepath.Join(s.tokens, "alice-file.jwt")
	if err := os.WriteFile(s.fileToken, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.writeConfig(t)
	s.registerNative(t, ctx)
	step("tokenhelper register: native profile " + profileNative + ", device flow approved by alice")
	return s
}

// registerNative registers tokenhelper's own client at the test bed and
// logs alice in with the device flow, as a user would (`tokenhelper
// register --headless`), approving the code at the test bed as soon as
// it is shown; then makes the native profile the default and routes the
// XRootD server's https URLs to it.
func (s *suite) registerNative(t *testing.T, ctx context.Context) {
	t.Helper()
	approved := make(chan error, 1)
	go func() {
		_, err := s.tb.ApproveNext(ctx, "alice")
		approved <- err
	}()
	s.ok(t, cmd{args: s.tokenhelper("register", "-p", profileNative, "--issuer", s.tb.IssuerURL,
		"--scope", "openid offline_access "+strings.Join(aliceScopes, " "), "--aud", s.xrd.Audience,
		"--pw-env", passphraseVar, "--headless")})
	if err := <-approved; err != nil {
		t.Fatalf("approving the device code: %v", err)
	}
	path := filepath.Join(s.home, ".config", "tokenhelper", "config.toml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "[profiles."+profileNative+"]") {
		t.Fatalf("register did not add [profiles.%s] to %s:\n%s", profileNative, path, b)
	}
	cfg := fmt.Sprintf("default_profile = %q\n\n%s\n[[routes]]\nurl = %q\nprofile = %q\n", profileNative, b, s.xrd.HTTPSOrigin(), profileNative)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s.ok(t, cmd{args: s.tokenhelper("config", "check")})
}

// startAgent runs oidc-agent with an account for alice made from a
// refresh token (oidc-gen rt), so that tokenhelper's oidc-agent backend
// gets fresh tokens without a person.
func (s *suite) startAgent(t *testing.T, ctx context.Context) {
	t.Helper()
	dir := s.run.Path("agent")
	for _, d := range []string{"home", "oidc", "tmp"} {
		if _, err := s.run.Mkdir("agent", d); err != nil {
			t.Fatal(err)
		}
	}
	s.agentSock = filepath.Join(dir, "agent.sock")
	env := []string{
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + filepath.Join(dir, "home"),
		"OIDC_CONFIG_DIR=" + filepath.Join(dir, "oidc"),
		"TMPDIR=" + filepath.Join(dir, "tmp"),
		"OIDC_SOCK=" + s.agentSock,
		"OIDC_ENCRYPTION_PW=e2e agent passphrase",
		"LANG=C",
	}
	cmd := exec.Command("oidc-agent", "-d", "--socket-path="+s.agentSock)
	cmd.Env = env
	// The agent runs as root, so the kernel can stop it if we die.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p, err := s.run.Start("oidc-agent", cmd)
	if err != nil {
		t.Fatal(err)
	}
	s.agent = p
	if err := waitFor(ctx, p, 20*time.Second, func() bool {
		fi, err := os.Stat(s.agentSock)
		return err == nil && fi.Mode()&os.ModeSocket != 0
	}); err != nil {
		t.Fatalf("oidc-agent: %v", err)
	}

	client, ok := s.tb.Client("e2e-agent")
	if !ok {
		t.Fatal("the e2e-agent client is not registered")
	}
	scopes := append([]string{"openid", "offline_access"}, aliceScopes...)
	rt, err := s.tb.RefreshTokenFor("alice", client.ID, scopes)
	if err != nil {
		t.Fatal(err)
	}
	// The client secret goes in a file and the refresh token in the
	// environment: never in argv.
	clientFile := filepath.Join(dir, "client.json")
	b, _ := json.Marshal(map[string]any{
		"client_id": client.ID, "client_secret": client.Secret, "issuer_url": s.tb.IssuerURL,
		"scope": strings.Join(scopes, " "),
	})
	if err := os.WriteFile(clientFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	gen := exec.CommandContext(ctx, "oidc-gen", agentAccount, "--issuer="+s.tb.IssuerURL, "-f", clientFile,
		"--rt-env", "--scope="+strings.Join(scopes, " "), "--pw-env", "--prompt=none")
	gen.Env = append(env, "OIDC_REFRESH_TOKEN="+rt)
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("oidc-gen: %v\n%s", err, redact(string(out)))
	}
}

// writeConfig writes tokenhelper's configuration where it looks by
// default ($XDG_CONFIG_HOME/tokenhelper/config.toml).
func (s *suite) writeConfig(t *testing.T) {
	t.Helper()
	q := strconv.Quote
	list := func(v []string) string {
		out := make([]string, len(v))
		for i, x := range v {
			out[i] = q(x)
		}
		return "[" + strings.Join(out, ", ") + "]"
	}
	cfg := fmt.Sprintf(`# Written by the e2e suite; tokenhelper register adds [profiles.%[1]s].

# alice's session in oidc-agent: tokens for the XRootD server.
[profiles.%[2]s]
backend = "oidc-agent"
account = %[3]s
scopes = %[5]s
audiences = [%[6]s]

# A token file kept fresh by someone else (cron, HTCondor).
[profiles.%[4]s]
backend = "file"
token_file = %[7]s
`, profileNative, q(profileAgent), q(agentAccount), q(profileFile), list(aliceScopes), q(s.xrd.Audience), q(s.fileToken))
	dir := filepath.Join(s.home, ".config", "tokenhelper")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// envValue returns the KEY=value entry of the suite's environment.
func (s *suite) envValue(key string) string {
	for _, kv := range s.env {
		if strings.HasPrefix(kv, key+"=") {
			return kv
		}
	}
	return ""
}

// waitFor polls cond (backing off to 100 ms) until it holds, p exits or
// timeout passes.
func waitFor(ctx context.Context, p *Process, timeout time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	delay := 5 * time.Millisecond
	for !cond() {
		t := time.NewTimer(delay)
		select {
		case <-p.Exited():
			t.Stop()
			return fmt.Errorf("%s; its output:\n%s", describe(p), lastLines(p.Output(), 20))
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s not ready after %v; its output:\n%s", p.Name, timeout, lastLines(p.Output(), 20))
		case <-t.C:
		}
		if delay < 100*time.Millisecond {
			delay *= 2
		}
	}
	return nil
}

// stepper logs how long each setup step took.
func stepper(t *testing.T) func(string) {
	last := time.Now()
	return func(what string) {
		t.Helper()
		now := time.Now()
		t.Logf("%-60s %6.2fs", what, now.Sub(last).Seconds())
		last = now
	}
}

// result is what a command did.
type result struct {
	stdout, stderr string
	code           int
	dur            time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("exit %d after %.2fs\nstdout: %s\nstderr: %s", r.code, r.dur.Seconds(), redact(r.stdout), redact(r.stderr))
}

// cmd is one command to run in the suite's environment.
type cmd struct {
	env   []string // added to (and overriding) the suite's environment
	unset []string // removed from it
	stdin string
	args  []string
}

// exec runs c with a deadline, stdin from c.stdin (never a terminal),
// and logs the command and its timing. Output is logged with tokens
// redacted; tokenhelper's stderr must never contain one.
func (s *suite) exec(t *testing.T, c cmd) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	x := exec.CommandContext(ctx, c.args[0], c.args[1:]...)
	x.Dir = s.work
	env := make([]string, 0, len(s.env)+len(c.env))
	for _, kv := range s.env {
		k, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, u := range c.unset {
			drop = drop || u == k
		}
		if !drop {
			env = append(env, kv)
		}
	}
	x.Env = append(env, c.env...)
	x.Stdin = strings.NewReader(c.stdin)
	var stdout, stderr bytes.Buffer
	x.Stdout, x.Stderr = &stdout, &stderr
	x.WaitDelay = 5 * time.Second
	start := time.Now()
	err := x.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), dur: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("%s: %v", strings.Join(c.args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("%s timed out after %v\n%s", strings.Join(c.args, " "), r.dur, r)
	}
	t.Logf("$ %s   (exit %d, %.2fs)", shellLine(c), r.code, r.dur.Seconds())
	if filepath.Base(c.args[0]) == "tokenhelper" && jwtRE.MatchString(r.stderr) {
		t.Errorf("tokenhelper wrote a token on stderr: %s", redact(r.stderr))
	}
	return r
}

// ok runs c and fails the test unless it exits 0.
func (s *suite) ok(t *testing.T, c cmd) result {
	t.Helper()
	r := s.exec(t, c)
	if r.code != 0 {
		t.Fatalf("%s failed: %s", shellLine(c), r)
	}
	return r
}

// shellLine renders a command for the log (its environment additions
// first). Tokens never reach argv, so nothing needs hiding.
func shellLine(c cmd) string {
	var parts []string
	for _, u := range c.unset {
		parts = append(parts, "-u "+u)
	}
	parts = append(parts, c.env...)
	for _, a := range c.args {
		if strings.ContainsAny(a, " \"'$") {
			a = strconv.Quote(a)
		}
		parts = append(parts, a)
	}
	return redact(strings.Join(parts, " "))
}

var jwtRE = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+`)

// redact hides anything that looks like a JWT.
func redact(s string) string { return jwtRE.ReplaceAllString(s, "<JWT>") }

// claims decodes a JWT's payload (no verification: the storage verifies).
func claims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(strings.TrimSpace(tok), ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT (%d parts)", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	return c
}

// expiry returns a token's exp.
func expiry(t *testing.T, tok string) time.Time {
	t.Helper()
	exp, ok := claims(t, tok)["exp"].(float64)
	if !ok {
		t.Fatal("token without exp")
	}
	return time.Unix(int64(exp), 0)
}

// readToken reads a token file written by tokenhelper and checks that it
// is private.
func readToken(t *testing.T, path string) string {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("%s has mode %v: xrootd refuses token files others can read", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// writeFile writes a local file in the work directory and returns its
// path.
func (s *suite) writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(s.work, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// stored returns the content of a file on the XRootD server's disk.
func (s *suite) stored(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(s.xrd.LocalPath(p))
	if err != nil {
		t.Fatalf("on the server's disk: %v", err)
	}
	return string(b)
}

// notStored fails when p exists on the XRootD server's disk.
func (s *suite) notStored(t *testing.T, p string) {
	t.Helper()
	if _, err := os.Stat(s.xrd.LocalPath(p)); err == nil {
		t.Errorf("%s exists on the server: the write was not denied", p)
	}
}
