package gitcred_test

// End-to-end tests with the real git (Debian bookworm: git 2.39) against
// loopback git servers (git http-backend behind a Go handler that demands a
// token valid at the test bed), with tokenhelper built from this module
// and configured the documented way.

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/helper/jwtinfo"
	"github.com/tokenhelper/tokenhelper/integrations/testbed"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// tokenhelperBin builds cmd/tokenhelper once per test binary into a
// temporary directory, next to the git-credential-tokenhelper link that
// `make build` also creates, and returns that directory.
func tokenhelperBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("the go command is needed to build tokenhelper: %v", err)
			return
		}
		buildDir, buildErr = os.MkdirTemp("", "tokenhelper-gitcred-e2e-")
		if buildErr != nil {
			return
		}
		out, err := exec.Command(goBin, "build", "-o", filepath.Join(buildDir, "tokenhelper"), "github.com/tokenhelper/tokenhelper/cmd/tokenhelper").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		buildErr = os.Symlink("tokenhelper", filepath.Join(buildDir, "git-credential-tokenhelper"))
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildDir
}

// requireTool fails the test when tool is missing and CI=true, and skips
// it otherwise.
func requireTool(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required with CI=true (Debian package git): %v", tool, err)
	}
	t.Skipf("%s not installed (Debian package git): %v", tool, err)
	return ""
}

// gitVersion returns git's major and minor version.
func gitVersion(t *testing.T, git string) (int, int) {
	out, err := exec.Command(git, "--version").Output()
	if err != nil {
		t.Fatalf("git --version: %v", err)
	}
	m := regexp.MustCompile(`(\d+)\.(\d+)`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("cannot read git's version from %q", out)
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	return major, minor
}

// gitServer is git http-backend behind a handler that records every
// Authorization header and lets a request through only with a token that
// verify accepts, sent as Bearer or as the password of Basic (which is how
// git < 2.46 sends it).
type gitServer struct {
	*httptest.Server
	verify func(ctx context.Context, token string) error

	mu     sync.Mutex
	seen   []string        // Authorization headers, "" for none
	refuse map[string]bool // valid tokens the server refuses nonetheless (revoked)
}

// refuseToken makes the server answer 401 to tok from now on.
func (g *gitServer) refuseToken(tok string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.refuse == nil {
		g.refuse = map[string]bool{}
	}
	g.refuse[tok] = true
}

func newGitServer(t *testing.T, backend, projectRoot string, verify func(*gitServer, context.Context, string) error) *gitServer {
	g := &gitServer{}
	g.verify = func(ctx context.Context, tok string) error { return verify(g, ctx, tok) }
	h := &cgi.Handler{
		Path: backend,
		Env: []string{
			"GIT_PROJECT_ROOT=" + projectRoot,
			"GIT_HTTP_EXPORT_ALL=1",
			"GIT_CONFIG_NOSYSTEM=1",
			"HOME=" + projectRoot,
		},
		InheritEnv: []string{"PATH"},
	}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		tok := tokenFrom(auth)
		g.mu.Lock()
		g.seen = append(g.seen, auth)
		refused := g.refuse[tok]
		g.mu.Unlock()
		if tok == "" || refused || g.verify(r.Context(), tok) != nil {
			w.Header().Add("WWW-Authenticate", `Basic realm="git"`)
			w.Header().Add("WWW-Authenticate", `Bearer realm="git"`)
			http.Error(w, "a valid token is required", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(g.Close)
	return g
}

func tokenFrom(auth string) string {
	scheme, rest, _ := strings.Cut(auth, " ")
	switch strings.ToLower(scheme) {
	case "bearer":
		return strings.TrimSpace(rest)
	case "basic":
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
		if err != nil {
			return ""
		}
		_, pass, _ := strings.Cut(string(b), ":")
		return pass
	}
	return ""
}

// headers returns the Authorization headers seen so far and forgets them.
func (g *gitServer) headers() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.seen
	g.seen = nil
	return s
}

// gitEnv is a private HOME, git config and tokenhelper config.
type gitEnv struct {
	git     string
	dir     string
	env     []string
	cfgFile string
	tokFile string
}

func newGitEnv(t *testing.T, git, bin string) *gitEnv {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	for _, d := range []string{home, filepath.Join(dir, "cfg"), filepath.Join(dir, "cache"), filepath.Join(dir, "state"), filepath.Join(dir, "data")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	e := &gitEnv{git: git, dir: dir,
		cfgFile: filepath.Join(dir, "cfg", "config.toml"),
		tokFile: filepath.Join(dir, "token"),
	}
	e.env = []string{
		"PATH=" + bin + string(os.PathListSeparator) + filepath.Dir(git) + string(os.PathListSeparator) + "/usr/bin:/bin",
		"HOME=" + home,
		"GIT_CONFIG_GLOBAL=" + filepath.Join(home, ".gitconfig"),
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=Alice", "GIT_AUTHOR_EMAIL=alice@example.org",
		"GIT_COMMITTER_NAME=Alice", "GIT_COMMITTER_EMAIL=alice@example.org",
		"TOKENHELPER_CONFIG=" + e.cfgFile,
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "cfg"),
		"XDG_CACHE_HOME=" + filepath.Join(dir, "cache"),
		"XDG_STATE_HOME=" + filepath.Join(dir, "state"),
		"XDG_DATA_HOME=" + filepath.Join(dir, "data"),
		"LANG=C", "LC_ALL=C",
	}
	return e
}

// run runs git in dir and returns its combined output.
func (e *gitEnv) run(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.git, args...)
	cmd.Dir = dir
	cmd.Env = e.env
	cmd.Stdin = nil
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (e *gitEnv) must(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := e.run(t, dir, args...)
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// gitConfig replaces the global git config with the given lines of
// `git config --global` arguments.
func (e *gitEnv) gitConfig(t *testing.T, settings ...[]string) {
	t.Helper()
	os.Remove(filepath.Join(e.dir, "home", ".gitconfig"))
	for _, s := range settings {
		e.must(t, e.dir, append([]string{"config", "--global"}, s...)...)
	}
}

func (e *gitEnv) writeConfig(t *testing.T, toml string) {
	t.Helper()
	if err := os.WriteFile(e.cfgFile, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (e *gitEnv) writeToken(t *testing.T, tok string) {
	t.Helper()
	if err := os.WriteFile(e.tokFile, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// newBareRepo creates root/name with one commit whose file says content.
func (e *gitEnv) newBareRepo(t *testing.T, root, name, content string) {
	t.Helper()
	bare := filepath.Join(root, name)
	e.must(t, e.dir, "init", "-q", "--bare", "-b", "main", bare)
	e.must(t, bare, "config", "http.receivepack", "true")
	seed := filepath.Join(t.TempDir(), "seed")
	e.must(t, e.dir, "init", "-q", "-b", "main", seed)
	if err := os.WriteFile(filepath.Join(seed, "README"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	e.must(t, seed, "add", "README")
	e.must(t, seed, "commit", "-q", "-m", "seed")
	e.must(t, seed, "push", "-q", bare, "main")
}

// clone clones url into a fresh directory.
func (e *gitEnv) clone(t *testing.T, url string) (string, string, error) {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "clone")
	out, err := e.run(t, e.dir, "clone", "-q", url, dst)
	return dst, out, err
}

func TestGitEndToEnd(t *testing.T) {
	git := requireTool(t, "git")
	execPath, err := exec.Command(git, "--exec-path").Output()
	if err != nil {
		t.Fatalf("git --exec-path: %v", err)
	}
	backend := filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		requireTool(t, "git-http-backend")
	}
	major, minor := gitVersion(t, git)
	bearerGit := major > 2 || major == 2 && minor >= 46
	bin := tokenhelperBin(t)

	tb := testbed.Start(t, testbed.Options{})
	client := tb.HTTPClient()
	verifyFor := func(g *gitServer, ctx context.Context, tok string) error {
		v, err := jwtinfo.Verify(ctx, tok, jwtinfo.VerifyOptions{
			HTTPClient:     client,
			Audiences:      []string{g.URL},
			TrustedIssuers: []string{tb.IssuerURL},
		})
		if err != nil {
			return err
		}
		return v.Err()
	}

	e := newGitEnv(t, git, bin)
	root := filepath.Join(e.dir, "srv")
	e.newBareRepo(t, root, "repo.git", "hello from repo\n")
	e.newBareRepo(t, root, "atlas/analysis.git", "hello from atlas\n")
	routed := newGitServer(t, backend, root, verifyFor)
	other := newGitServer(t, backend, root, verifyFor)

	issue := func(t *testing.T, aud string, lifetime time.Duration) string {
		t.Helper()
		tok, err := tb.IssueToken("alice", []string{"openid"}, []string{aud}, lifetime)
		if err != nil {
			t.Fatalf("IssueToken: %v", err)
		}
		return tok
	}
	token := issue(t, routed.URL, time.Hour)
	e.writeToken(t, token)
	wholeHost := fmt.Sprintf(`
[profiles.git]
token_file = %q

[[routes]]
url = %q
profile = "git"
`, e.tokFile, routed.URL)
	e.writeConfig(t, wholeHost)

	// noToken fails the test if any output or header carries tok.
	noToken := func(t *testing.T, where string, tok string, texts ...string) {
		t.Helper()
		for _, s := range texts {
			if strings.Contains(s, tok) {
				t.Fatalf("%s: the token appears in %q", where, strings.ReplaceAll(s, tok, "<token>"))
			}
		}
	}
	// sentToken reports whether some header carried tok, and checks the
	// scheme the asking git can use.
	sentToken := func(t *testing.T, headers []string, tok string) bool {
		t.Helper()
		found := false
		for _, h := range headers {
			if tokenFrom(h) != tok {
				continue
			}
			found = true
			want := "Basic "
			if bearerGit {
				want = "Bearer "
			}
			if !strings.HasPrefix(h, want) {
				t.Errorf("git %d.%d sent the token as %q…, want %s", major, minor, h[:min(len(h), 7)], want)
			}
		}
		return found
	}

	t.Run("documented one-line setup: clone and push", func(t *testing.T) {
		e.gitConfig(t, []string{"credential." + routed.URL + ".helper", "tokenhelper"})
		routed.headers()
		dst, out, err := e.clone(t, routed.URL+"/repo.git")
		if err != nil {
			t.Fatalf("clone: %v\n%s", err, out)
		}
		noToken(t, "clone output", token, out)
		b, err := os.ReadFile(filepath.Join(dst, "README"))
		if err != nil || string(b) != "hello from repo\n" {
			t.Fatalf("cloned README: %q, %v", b, err)
		}
		if err := os.WriteFile(filepath.Join(dst, "NEW"), []byte("pushed\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		e.must(t, dst, "add", "NEW")
		e.must(t, dst, "commit", "-q", "-m", "pushed through tokenhelper")
		out, err = e.run(t, dst, "push", "-q", "origin", "main")
		if err != nil {
			t.Fatalf("push: %v\n%s", err, out)
		}
		noToken(t, "push output", token, out)
		if log := e.must(t, filepath.Join(root, "repo.git"), "log", "-1", "--format=%s", "main"); strings.TrimSpace(log) != "pushed through tokenhelper" {
			t.Fatalf("server's main is at %q", log)
		}
		if !sentToken(t, routed.headers(), token) {
			t.Fatal("the routed server never received the token")
		}
	})

	t.Run("a host no route serves never receives the token", func(t *testing.T) {
		// tokenhelper is the helper for every host: routing alone must
		// keep the token away from the second server.
		e.gitConfig(t, []string{"credential.helper", "tokenhelper"})
		other.headers()
		_, out, err := e.clone(t, other.URL+"/repo.git")
		if err == nil {
			t.Fatalf("clone from the unrouted host succeeded:\n%s", out)
		}
		if !strings.Contains(out, "terminal prompts disabled") && !strings.Contains(out, "Authentication failed") {
			t.Errorf("git did not fail on authentication:\n%s", out)
		}
		if strings.Contains(out, "tokenhelper") {
			t.Errorf("the helper did not decline silently:\n%s", out)
		}
		hs := other.headers()
		if len(hs) == 0 {
			t.Fatal("the unrouted server saw no request")
		}
		for _, h := range hs {
			if h != "" {
				t.Errorf("the unrouted server received Authorization %q…", h[:min(len(h), 12)])
			}
			if tokenFrom(h) == token {
				t.Fatal("the unrouted server received the token")
			}
		}
		// The routed host still works with the same global helper.
		routed.headers()
		if _, out, err := e.clone(t, routed.URL+"/repo.git"); err != nil {
			t.Fatalf("clone from the routed host: %v\n%s", err, out)
		}
		if !sentToken(t, routed.headers(), token) {
			t.Fatal("the routed server never received the token")
		}
	})

	t.Run("shell snippet after an empty helper line", func(t *testing.T) {
		key := "credential." + routed.URL + ".helper"
		e.gitConfig(t, []string{"credential.helper", "store"}, []string{"--add", key, ""}, []string{"--add", key, "!tokenhelper git-credential"})
		routed.headers()
		if _, out, err := e.clone(t, routed.URL+"/repo.git"); err != nil {
			t.Fatalf("clone: %v\n%s", err, out)
		}
		if !sentToken(t, routed.headers(), token) {
			t.Fatal("the routed server never received the token")
		}
		// The empty helper line kept credential-store out: no token on disk.
		if b, err := os.ReadFile(filepath.Join(e.dir, "home", ".git-credentials")); err == nil {
			noToken(t, "~/.git-credentials", token, string(b))
		}
	})

	t.Run("path routes and credential.useHttpPath", func(t *testing.T) {
		e.writeConfig(t, fmt.Sprintf(`
[profiles.git]
token_file = %q

[[routes]]
url = %q
profile = "git"
`, e.tokFile, routed.URL+"/atlas"))
		defer e.writeConfig(t, wholeHost)
		e.gitConfig(t, []string{"credential.helper", "tokenhelper"})
		routed.headers()
		_, out, err := e.clone(t, routed.URL+"/atlas/analysis.git")
		if err == nil {
			t.Fatalf("clone without useHttpPath succeeded:\n%s", out)
		}
		if !strings.Contains(out, "git config --global credential.useHttpPath true") {
			t.Errorf("no hint about credential.useHttpPath:\n%s", out)
		}
		if sentToken(t, routed.headers(), token) {
			t.Fatal("the token was sent without a route for the path")
		}

		e.gitConfig(t, []string{"credential.helper", "tokenhelper"}, []string{"credential.useHttpPath", "true"})
		dst, out, err := e.clone(t, routed.URL+"/atlas/analysis.git")
		if err != nil {
			t.Fatalf("clone with useHttpPath: %v\n%s", err, out)
		}
		if b, _ := os.ReadFile(filepath.Join(dst, "README")); string(b) != "hello from atlas\n" {
			t.Fatalf("cloned README: %q", b)
		}
		if !sentToken(t, routed.headers(), token) {
			t.Fatal("the routed server never received the token")
		}
		// Another path on the same host is not served.
		if _, out, err := e.clone(t, routed.URL+"/repo.git"); err == nil {
			t.Fatalf("clone outside the routed path succeeded:\n%s", out)
		}
		for _, h := range routed.headers() {
			if h != "" {
				t.Errorf("a path no route serves received Authorization %q…", h[:min(len(h), 12)])
			}
		}
	})

	t.Run("expired token: one line saying what to do, then a fresh token works", func(t *testing.T) {
		e.gitConfig(t, []string{"credential." + routed.URL + ".helper", "tokenhelper"})
		expired := issue(t, routed.URL, -time.Minute)
		e.writeToken(t, expired)
		defer e.writeToken(t, token)
		routed.headers()
		_, out, err := e.clone(t, routed.URL+"/repo.git")
		if err == nil {
			t.Fatalf("clone with an expired token succeeded:\n%s", out)
		}
		var lines []string
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "tokenhelper:") {
				lines = append(lines, l)
			}
		}
		if len(lines) != 1 || !strings.Contains(lines[0], "expired") {
			t.Errorf("want one tokenhelper line about the expired token, got %q in:\n%s", lines, out)
		}
		noToken(t, "clone output", expired, out)
		if sentToken(t, routed.headers(), expired) {
			t.Fatal("an expired token was handed to git")
		}
		fresh := issue(t, routed.URL, time.Hour)
		e.writeToken(t, fresh)
		if _, out, err := e.clone(t, routed.URL+"/repo.git"); err != nil {
			t.Fatalf("clone after renewing the token file: %v\n%s", err, out)
		}
		if !sentToken(t, routed.headers(), fresh) {
			t.Fatal("the renewed token was not used")
		}
	})

	t.Run("a token the server refuses: git fails cleanly", func(t *testing.T) {
		e.gitConfig(t, []string{"credential." + routed.URL + ".helper", "tokenhelper"})
		wrongAud := issue(t, "https://elsewhere.example.org", time.Hour)
		e.writeToken(t, wrongAud)
		defer e.writeToken(t, token)
		routed.headers()
		_, out, err := e.clone(t, routed.URL+"/repo.git")
		if err == nil {
			t.Fatalf("clone with a refused token succeeded:\n%s", out)
		}
		if !strings.Contains(out, "Authentication failed") {
			t.Errorf("git did not report the authentication failure:\n%s", out)
		}
		noToken(t, "clone output", wrongAud, out)
		if !sentToken(t, routed.headers(), wrongAud) {
			t.Fatal("the token was not sent")
		}
	})

	t.Run("native robot profile: erase drops a refused token, the next command gets a new one", func(t *testing.T) {
		spec, err := tb.RegisterClient(testbed.ClientSpec{ID: "git-robot", Name: "git robot", Grants: []string{testbed.GrantClientCredentials}})
		if err != nil {
			t.Fatalf("RegisterClient: %v", err)
		}
		e.writeConfig(t, fmt.Sprintf(`
[profiles.robot]
backend   = "native"
issuer    = %q
client_id = %q
flow      = "client-credentials"
plaintext = true
audiences = [%q]

[[routes]]
url = %q
profile = "robot"
`, tb.IssuerURL, spec.ID, routed.URL, routed.URL))
		defer e.writeConfig(t, wholeHost)
		reg := exec.Command(filepath.Join(bin, "tokenhelper"), "register", "-p", "robot", "--issuer", tb.IssuerURL,
			"--client-id", spec.ID, "--client-secret-env", "ROBOT_SECRET")
		reg.Env = append(append([]string{}, e.env...), "ROBOT_SECRET="+spec.Secret)
		if out, err := reg.CombinedOutput(); err != nil {
			t.Fatalf("tokenhelper register: %v\n%s", err, out)
		}
		e.gitConfig(t, []string{"credential." + routed.URL + ".helper", "tokenhelper"})

		routed.headers()
		if _, out, err := e.clone(t, routed.URL+"/repo.git"); err != nil {
			t.Fatalf("clone: %v\n%s", err, out)
		}
		first := ""
		for _, h := range routed.headers() {
			if tok := tokenFrom(h); tok != "" {
				first = tok
			}
		}
		if first == "" {
			t.Fatal("no token reached the server")
		}
		// A second clone is served from the token cache: the same token.
		if _, out, err := e.clone(t, routed.URL+"/repo.git"); err != nil {
			t.Fatalf("second clone: %v\n%s", err, out)
		}
		if !sentToken(t, routed.headers(), first) {
			t.Fatal("the cached token was not reused")
		}

		// The server now refuses that token: git fails and erases it.
		routed.refuseToken(first)
		_, out, err := e.clone(t, routed.URL+"/repo.git")
		if err == nil {
			t.Fatalf("clone with a refused token succeeded:\n%s", out)
		}
		if !strings.Contains(out, "refused the token; dropped it from the token cache") {
			t.Errorf("no notice that the token was dropped:\n%s", out)
		}
		noToken(t, "clone output", first, out)

		// The next command gets a new token.
		routed.headers()
		if _, out, err := e.clone(t, routed.URL+"/repo.git"); err != nil {
			t.Fatalf("clone after the erase: %v\n%s", err, out)
		}
		var fresh string
		for _, h := range routed.headers() {
			if tok := tokenFrom(h); tok != "" && tok != first {
				fresh = tok
			}
		}
		if fresh == "" {
			t.Fatal("the refused token was sent again instead of a new one")
		}
	})

	t.Run("git credential fill through the helper", func(t *testing.T) {
		e.gitConfig(t, []string{"credential." + routed.URL + ".helper", "tokenhelper"})
		cmd := exec.Command(git, "credential", "fill")
		cmd.Env = e.env
		cmd.Dir = e.dir
		cmd.Stdin = strings.NewReader("url=" + routed.URL + "/repo.git\n\n")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("git credential fill: %v\n%s", err, stderr.String())
		}
		if !strings.Contains(stdout.String(), "password="+token+"\n") || !strings.Contains(stdout.String(), "username=oauth2\n") {
			t.Fatalf("git credential fill printed:\n%s", strings.ReplaceAll(stdout.String(), token, "<token>"))
		}
	})
}
