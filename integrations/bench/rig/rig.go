package rig

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/cache"
	"github.com/tokenhelper/tokenhelper/integrations/testbed"
)

// Profile is the name of the rig's native profile.
const Profile = "tb"

// EnvPassphrase is the environment variable that holds the passphrase of
// an encrypted rig profile (passphrase_env).
const EnvPassphrase = "TOKENHELPER_RIG_PASSPHRASE"

// DefaultScopes are what the rig's profile asks for (alice may have all).
var DefaultScopes = []string{"openid", "offline_access", "wlcg.groups", "storage.read:/", "storage.create:/", "storage.modify:/home/alice"}

// Options shape a rig. The zero value is an https test bed with storage, a
// plaintext native profile and tokenhelper's default timeouts.
type Options struct {
	// Testbed options; Dir defaults to a temporary directory, and HTTPS
	// and Storage are forced on (tools are tested as they are used).
	Testbed testbed.Options
	// Encrypted stores the profile's secrets encrypted with a random
	// passphrase given through $TOKENHELPER_RIG_PASSPHRASE (unlock cache
	// off, so every process that needs the refresh token runs scrypt).
	// False: plaintext = true.
	Encrypted bool
	// Scopes of the profile; nil means DefaultScopes.
	Scopes []string
	// ProfileTOML is added to [profiles.tb] (e.g. `timeout = "3s"`).
	ProfileTOML string
	// TOML is added at the end of the configuration.
	TOML string
}

// Rig is a private user environment with a native profile at a test bed.
type Rig struct {
	t  testing.TB
	TB *testbed.Testbed

	// Bin holds tokenhelper and its links; Tokenhelper is its path.
	Bin, Tokenhelper string
	// Dir is the rig's root; Home the user's HOME in it.
	Dir, Home string
	// ConfigFile, StateDir, CacheDir and RuntimeDir are tokenhelper's
	// (XDG defaults under Home; RuntimeDir is $XDG_RUNTIME_DIR).
	ConfigFile, StateDir, CacheDir, RuntimeDir string
	// Passphrase of an encrypted profile ("" for plaintext).
	Passphrase string
	// Scopes of the profile, normalized.
	Scopes []string

	env       []string
	secrets   secretLog
	introOnce sync.Once
	intro     testbed.ClientSpec
}

// New sets up a rig: test bed, HOME, configuration with the native
// profile "tb" (not yet registered: call Login) and a route for the
// storage. The test bed closes and the directory goes when t ends.
func New(t testing.TB, o Options) *Rig {
	t.Helper()
	bin := Binaries(t)
	dir := ShortTempDir(t)
	r := &Rig{t: t, Bin: bin, Tokenhelper: filepath.Join(bin, "tokenhelper"), Dir: dir, Home: filepath.Join(dir, "home")}
	r.ConfigFile = filepath.Join(r.Home, ".config", "tokenhelper", "config.toml")
	r.StateDir = filepath.Join(r.Home, ".local", "state", "tokenhelper")
	r.CacheDir = filepath.Join(r.Home, ".cache", "tokenhelper")
	r.RuntimeDir = filepath.Join(dir, "run")
	for _, d := range []string{r.Home, r.RuntimeDir, filepath.Dir(r.ConfigFile)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	tbo := o.Testbed
	tbo.HTTPS, tbo.Storage = true, true
	if tbo.RecordSecret == nil {
		tbo.RecordSecret = r.secrets.add
	}
	if tbo.Dir == "" {
		tbo.Dir = filepath.Join(dir, "testbed")
	}
	if tbo.Lifetimes.PollInterval == 0 {
		tbo.Lifetimes.PollInterval = time.Second
	}
	r.TB = testbed.Start(t, tbo)

	r.Scopes = o.Scopes
	if r.Scopes == nil {
		r.Scopes = DefaultScopes
	}
	r.Scopes = helper.Request{Scopes: r.Scopes}.Normalized().Scopes
	secrets := "plaintext = true"
	if o.Encrypted {
		r.Passphrase = RandomHex(t, 16)
		secrets = fmt.Sprintf("passphrase_env = %q\nunlock_for = \"-1s\"   # no kernel keyring: tests stay off the machine's", EnvPassphrase)
	}
	cfg := fmt.Sprintf(`[profiles.%s]
backend = "native"
issuer = %q
ca_file = %q
scopes = %s
%s
%s

[[routes]]
url = %q
profile = %q
%s
`, Profile, r.TB.IssuerURL, r.TB.CAFile, tomlList(r.Scopes), secrets, o.ProfileTOML, r.TB.StorageOrigin(), Profile, o.TOML)
	if err := os.WriteFile(r.ConfigFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	gitconfig := fmt.Sprintf("[credential %q]\n\thelper =\n\thelper = %s\n[http]\n\tsslCAInfo = %s\n",
		r.TB.StorageOrigin(), filepath.Join(bin, "git-credential-tokenhelper"), r.TB.CAFile)
	if err := os.WriteFile(filepath.Join(r.Home, ".gitconfig"), []byte(gitconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	r.env = []string{
		"HOME=" + r.Home,
		"PATH=" + bin + ":/usr/local/bin:/usr/bin:/bin",
		"XDG_RUNTIME_DIR=" + r.RuntimeDir,
		"TMPDIR=" + dir,
		"TZ=UTC",
		"LANG=C",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_ASKPASS=",
		"SSH_ASKPASS=",
		"CURL_HOME=" + r.Home,
	}
	if r.Passphrase != "" {
		r.env = append(r.env, EnvPassphrase+"="+r.Passphrase)
	}
	return r
}

func tomlList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// ShortTempDir is a temporary directory with a path short enough for unix
// sockets (oidc-agent's), removed when t ends.
func ShortTempDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "thr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// RandomHex returns n random bytes in hex.
func RandomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// Env is the children's environment plus extra ("K=V"; later wins).
func (r *Rig) Env(extra ...string) []string {
	return append(append([]string(nil), r.env...), extra...)
}

// Command prepares tokenhelper with args in the rig's environment, stdin
// /dev/null, in its own process group (so a kill reaches its children).
func (r *Rig) Command(ctx context.Context, args ...string) *exec.Cmd {
	return r.Program(ctx, r.Tokenhelper, args...)
}

// Program prepares any program (git, curl, oidc-token, ...) in the rig's
// environment.
func (r *Rig) Program(ctx context.Context, name string, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, name, args...)
	c.Env = r.Env()
	c.Dir = r.Home
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	c.WaitDelay = 5 * time.Second
	return c
}

// Result is how a command ended.
type Result struct {
	Code           int  // exit status; -1 when killed by a signal
	Signaled       bool // killed by a signal
	Stdout, Stderr string
	Wall           time.Duration // from start to exit
	// MaxRSSKiB is the peak resident set size, set by RunPeak only. (The
	// ru_maxrss that wait4 reports for a child of a Go program counts the
	// parent's memory: Go starts children with vfork, and the kernel
	// keeps the high-water mark of the address space the child had before
	// exec.)
	MaxRSSKiB int64
}

// Run runs c with stdin, capturing its output, and fails the test only
// when c cannot be started.
func (r *Rig) Run(c *exec.Cmd, stdin string) Result {
	r.t.Helper()
	var out, errb bytes.Buffer
	if stdin != "" {
		c.Stdin = strings.NewReader(stdin)
	}
	if c.Stdout == nil {
		c.Stdout = &out
	}
	if c.Stderr == nil {
		c.Stderr = &errb
	}
	start := time.Now()
	err := c.Run()
	res := Result{Wall: time.Since(start), Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		r.t.Fatalf("cannot run %s: %v", c.Path, err)
	}
	Finish(&res, c.ProcessState)
	return res
}

// Finish fills Code and Signaled from a process state.
func Finish(res *Result, ps *os.ProcessState) {
	if ps == nil {
		res.Code = -1
		return
	}
	res.Code = ps.ExitCode()
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		res.Signaled = true
	}
}

// RunPeak runs c under GNU time (Debian package time) and reports its
// peak resident set size in MaxRSSKiB: for a command that starts
// children, the largest of the tree. GNU time forks a small process, so
// about 1 MiB is the floor.
func (r *Rig) RunPeak(c *exec.Cmd, stdin string) Result {
	r.t.Helper()
	gnuTime := "/usr/bin/time"
	if _, err := os.Stat(gnuTime); err != nil {
		NeedTool(r.t, "gnu-time-missing", "time")
	}
	f := filepath.Join(r.Dir, "peak-"+RandomHex(r.t, 4))
	defer os.Remove(f)
	c.Args = append([]string{gnuTime, "-f", "%M", "-o", f, c.Path}, c.Args[1:]...)
	c.Path = gnuTime
	res := r.Run(c, stdin)
	b, err := os.ReadFile(f)
	if err != nil {
		r.t.Fatalf("GNU time wrote nothing: %v", err)
	}
	lines := strings.Fields(string(b))
	if len(lines) > 0 {
		res.MaxRSSKiB, _ = strconv.ParseInt(lines[len(lines)-1], 10, 64)
	}
	return res
}

// Run1 runs tokenhelper with args and stdin (one minute at most).
func (r *Rig) Run1(stdin string, args ...string) Result {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return r.Run(r.Command(ctx, args...), stdin)
}

// Login registers the profile's client at the test bed and logs alice in
// with the device flow, approved as she would in her browser. It leaves a
// fresh access token in the cache.
func (r *Rig) Login() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	go func() { _, _ = r.TB.ApproveNext(ctx, "alice") }() // the login's outcome says whether it happened
	res := r.Run(r.Command(ctx, "register", "-p", Profile, "--headless"), "")
	if res.Code != 0 {
		r.t.Fatalf("tokenhelper register: exit %d\n%s", res.Code, res.Stderr)
	}
}

// Relogin logs alice in again with the device flow (the client stays
// registered), as after "session expired".
func (r *Rig) Relogin() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	go func() { _, _ = r.TB.ApproveNext(ctx, "alice") }() // the login's outcome says whether it happened
	res := r.Run(r.Command(ctx, "login", "-p", Profile, "--flow", "device", "--headless"), "")
	if res.Code != 0 {
		r.t.Fatalf("tokenhelper login: exit %d\n%s", res.Code, res.Stderr)
	}
}

// Request is the request `tokenhelper token -p tb` makes (the cache key).
func (r *Rig) Request() helper.Request {
	return helper.Request{Profile: Profile, Scopes: r.Scopes}.Normalized()
}

// Cache is the rig's token cache.
func (r *Rig) Cache() *cache.Cache {
	return &cache.Cache{Dir: filepath.Join(r.CacheDir, "tokens")}
}

// ExpireCache replaces every cached access token with one that expired a
// minute ago, as the cache looks once the tokens' lifetime has passed.
func (r *Rig) ExpireCache() {
	r.t.Helper()
	c := r.Cache()
	entries, err := c.List()
	if err != nil {
		r.t.Fatal(err)
	}
	if len(entries) == 0 {
		entries = []cache.Entry{{Request: r.Request()}}
	}
	for _, e := range entries {
		raw, err := r.TB.Mint(testbed.TokenSpec{User: "alice", Scopes: e.Request.Scopes, Audiences: e.Request.Audiences, Lifetime: -time.Minute})
		if err != nil {
			r.t.Fatal(err)
		}
		tok := &helper.Token{AccessToken: raw, Expiry: time.Now().Add(-time.Minute), Profile: e.Request.Profile, Issuer: r.TB.IssuerURL}
		if err := c.Put(context.Background(), e.Request, tok); err != nil {
			r.t.Fatal(err)
		}
	}
}

// ClearCache removes every cached access token.
func (r *Rig) ClearCache() {
	r.t.Helper()
	if _, err := r.Cache().DeleteProfile(context.Background(), Profile); err != nil {
		r.t.Fatal(err)
	}
}

// WriteFile writes a private file in the rig's directory and returns its
// path.
func (r *Rig) WriteFile(name, content string) string {
	r.t.Helper()
	p := filepath.Join(r.Dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		r.t.Fatal(err)
	}
	return p
}
