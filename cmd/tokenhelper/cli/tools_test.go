package cli_test

// End-to-end tests of the tool integrations (curl, rclone, exec, renew)
// with the real tokenhelper binary (this test binary, installed on PATH by
// testscript.Main in script_test.go), the real tools from Debian (curl,
// rclone) and the loopback test bed (integrations/testbed): a WLCG IAM-like
// provider and a WebDAV storage that checks the tokens. Tokens come from a
// native profile (registered and logged in with the device flow, approved
// by the test bed) or from a file profile whose file the test writes.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/helper/discovery"
	"github.com/tokenhelper/tokenhelper/helper/jwtinfo"
	"github.com/tokenhelper/tokenhelper/integrations/testbed"
	"github.com/tokenhelper/tokenhelper/integrations/testbed/storage"
)

// requireTool returns the path of an external tool. Without it the test
// fails under CI=true and is skipped otherwise.
func requireTool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found (CI=true): install the Debian package %s", name, debianPackage)
		}
		t.Skipf("%s not found: install the Debian package %s to run this test", name, debianPackage)
	}
	return p
}

// world is one user's machine: a home, a runtime directory, a
// configuration, the test bed, and the environment tokenhelper and the
// tools run with.
type world struct {
	t    *testing.T
	tb   *testbed.Testbed
	dir  string
	home string
	run  string
	env  []string
	th   string // the tokenhelper executable
}

func newWorld(t *testing.T, opts testbed.Options) *world {
	t.Helper()
	th, err := exec.LookPath("tokenhelper")
	if err != nil {
		t.Fatalf("tokenhelper is not on PATH (testscript.Main installs it): %v", err)
	}
	dir := t.TempDir()
	w := &world{t: t, dir: dir, home: filepath.Join(dir, "home"), run: filepath.Join(dir, "run"), th: th}
	for _, d := range []string{w.home, w.run, filepath.Join(w.home, ".config", "tokenhelper")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	w.env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + w.home,
		"XDG_RUNTIME_DIR=" + w.run,
		"TMPDIR=" + dir,
		"TZ=UTC",
		"LC_ALL=C",
		"NO_PROXY=*",
	}
	w.tb = testbed.Start(t, opts)
	return w
}

func (w *world) configPath() string {
	return filepath.Join(w.home, ".config", "tokenhelper", "config.toml")
}

// appendConfig adds text to the configuration file.
func (w *world) appendConfig(text string) {
	w.t.Helper()
	f, err := os.OpenFile(w.configPath(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		w.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("\n" + text + "\n"); err != nil {
		w.t.Fatal(err)
	}
}

// command prepares name (tokenhelper when name is "tokenhelper") with the
// world's environment.
func (w *world) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	if name == "tokenhelper" {
		name = w.th
	}
	c := exec.CommandContext(ctx, name, args...)
	c.Env = w.env
	c.Dir = w.dir
	c.WaitDelay = 5 * time.Second
	return c
}

// exec runs a command to its end (60 s at most) and returns its output and
// exit status.
func (w *world) exec(stdin, name string, args ...string) (stdout, stderr string, code int) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := w.command(ctx, name, args...)
	c.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	c.Stdout, c.Stderr = &o, &e
	err := c.Run()
	if ctx.Err() != nil {
		w.t.Fatalf("%s %q did not finish within 60 s\n%s", name, args, e.String())
	}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		w.t.Fatalf("%s: %v", name, err)
	}
	return o.String(), e.String(), code
}

// must runs a command that must succeed.
func (w *world) must(stdin, name string, args ...string) string {
	w.t.Helper()
	out, errOut, code := w.exec(stdin, name, args...)
	if code != 0 {
		w.t.Fatalf("%s %q: exit status %d\n%s", name, args, code, errOut)
	}
	return out
}

// register sets up a native profile: dynamic client registration at the
// test bed and a device-flow login that alice approves; the secrets are
// stored unencrypted (--plaintext) so that no passphrase is needed.
func (w *world) register(profile string, scopes string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := w.command(ctx, "tokenhelper", "register", "-p", profile, "--issuer", w.tb.IssuerURL, "--scope", scopes, "--plaintext", "--headless")
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	if err := c.Start(); err != nil {
		w.t.Fatal(err)
	}
	approved := make(chan error, 1)
	go func() {
		_, err := w.tb.ApproveNext(ctx, "alice")
		approved <- err
	}()
	err := c.Wait()
	if aerr := <-approved; aerr != nil || err != nil {
		w.t.Fatalf("register: %v / approve: %v\n%s", err, aerr, out.String())
	}
}

// writeToken writes a test bed token for alice to path (0600, atomically,
// as a cron job or HTCondor would) and returns it.
func (w *world) writeToken(path string, scopes []string, life time.Duration) string {
	w.t.Helper()
	tok, err := w.tb.IssueToken("alice", scopes, nil, life)
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := discovery.Write(discovery.Env{UID: os.Geteuid()}, tok, discovery.WriteOptions{Path: path}); err != nil {
		w.t.Fatal(err)
	}
	return tok
}

// storageGet asks the storage for a path with a token and returns the
// status.
func (w *world) storageGet(tok, path string) int {
	w.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, w.tb.StorageURL+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := w.tb.HTTPClient().Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (w *world) storageFile(path string) (string, bool) {
	b, err := os.ReadFile(filepath.Join(w.tb.Dir, "storage", filepath.FromSlash(path)))
	return string(b), err == nil
}

func expiry(t *testing.T, tok string) time.Time {
	t.Helper()
	info, err := jwtinfo.Parse(strings.TrimSpace(tok))
	if err != nil || info.Expiry.IsZero() {
		t.Fatalf("not a JWT with exp: %v", err)
	}
	return info.Expiry
}

// pollFile waits (polling, with a deadline) until the file holds a token
// valid now and returns it.
func pollValid(t *testing.T, path string, within time.Duration) string {
	t.Helper()
	end := time.Now().Add(within)
	for {
		if b, err := os.ReadFile(path); err == nil {
			tok := strings.TrimSpace(string(b))
			if info, err := jwtinfo.Parse(tok); err == nil && info.Expiry.After(time.Now()) {
				return tok
			}
		}
		if time.Now().After(end) {
			t.Fatalf("no valid token in %s within %s", path, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// blockingStorage is the test bed storage behind a gate: a request for a
// path ending in /held.txt waits until the test releases it (a send on
// release), so the test can look at the client process while it runs.
type blockingStorage struct {
	arrived chan struct{}
	release chan struct{}
}

func newBlockingStorage() *blockingStorage {
	return &blockingStorage{arrived: make(chan struct{}, 1), release: make(chan struct{})}
}

func (b *blockingStorage) handler(env testbed.StorageEnv) (http.Handler, error) {
	h, err := storage.New(storage.Options{Issuer: env.Issuer, HTTPClient: env.HTTPClient, Audiences: env.Audiences,
		Root: env.Root, Prefix: env.Prefix, Now: env.Now})
	if err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/held.txt") {
			b.arrived <- struct{}{}
			select {
			case <-b.release:
			case <-r.Context().Done():
				return
			}
		}
		h.ServeHTTP(w, r)
	}), nil
}

// TestCurlTestbed: tokenhelper curl uploads and downloads at the test bed
// storage with the route's profile; the token is neither in the argv nor in
// the environment of the running curl process (read from /proc while the
// storage holds its request).
func TestCurlTestbed(t *testing.T) {
	realCurl := requireTool(t, "curl", "curl")
	bs := newBlockingStorage()
	w := newWorld(t, testbed.Options{StorageHandler: bs.handler})
	tokFile := filepath.Join(w.dir, "token")
	scopes := []string{"storage.read:/data", "storage.create:/data"}
	tok := w.writeToken(tokFile, scopes, time.Hour)
	w.appendConfig(fmt.Sprintf(`[profiles.site]
backend = "file"
token_file = %q

[[routes]]
url = %q
profile = "site"
scopes = ["storage.read:/data", "storage.create:/data"]
audiences = [%q]`, tokFile, w.tb.StorageURL+"data", w.tb.StorageOrigin()))

	src := filepath.Join(w.dir, "src.txt")
	if err := os.WriteFile(src, []byte("hello from tokenhelper curl\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w.must("", "tokenhelper", "curl", "-sSf", "-T", src, w.tb.StorageURL+"data/up.txt")
	if got, _ := w.storageFile("data/up.txt"); got != "hello from tokenhelper curl\n" {
		t.Fatalf("stored %q", got)
	}
	if out := w.must("", "tokenhelper", "curl", "-sSf", w.tb.StorageURL+"data/up.txt"); out != "hello from tokenhelper curl\n" {
		t.Fatalf("downloaded %q", out)
	}
	// Upload from stdin: the config goes through fd 3.
	w.must("piped data\n", "tokenhelper", "curl", "-sSf", "-T", "-", w.tb.StorageURL+"data/piped.txt")
	if got, _ := w.storageFile("data/piped.txt"); got != "piped data\n" {
		t.Fatalf("stored from stdin %q", got)
	}
	// curl's own exit status: 22 for -f and a 403 (create may not
	// overwrite).
	if _, errOut, code := w.exec("", "tokenhelper", "curl", "-sSf", "-T", src, w.tb.StorageURL+"data/up.txt"); code != 22 || !strings.Contains(errOut, "403") {
		t.Fatalf("overwrite with a create scope: exit %d, %q; want curl's 22 (HTTP 403)", code, errOut)
	}
	// No route: exit 10, the host never hears of the token.
	if _, errOut, code := w.exec("", "tokenhelper", "curl", "-sS", w.tb.IssuerURL+"/anything"); code != 10 || !strings.Contains(errOut, "no route") {
		t.Fatalf("unrouted URL: exit %d, %q", code, errOut)
	}

	// /proc of the running curl: a stand-in "curl" first on PATH records
	// its pid and execs the real one (same pid); the storage holds the
	// request until the test has looked.
	bin := filepath.Join(w.dir, "bin")
	pidFile := filepath.Join(w.dir, "curl.pid")
	if err := os.MkdirAll(bin, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "curl"), []byte("#!/bin/sh\necho $$ > "+pidFile+"\nexec "+realCurl+" \"$@\"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, stdinCase := range []bool{false, true} {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		args := []string{"curl", "-sSf", "-T", src, w.tb.StorageURL + "data/a/held.txt"}
		if stdinCase {
			args = []string{"curl", "-sSf", "-T", "-", w.tb.StorageURL + "data/b/held.txt"}
		}
		c := w.command(ctx, "tokenhelper", args...)
		c.Env = append(c.Env, "PATH="+bin+":"+os.Getenv("PATH"))
		c.Stdin = strings.NewReader("held upload\n")
		var out bytes.Buffer
		c.Stdout, c.Stderr = &out, &out
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-bs.arrived:
		case <-ctx.Done():
			t.Fatalf("the request did not arrive: %s", out.String())
		}
		pidText, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatal(err)
		}
		pid := strings.TrimSpace(string(pidText))
		cmdline, err1 := os.ReadFile("/proc/" + pid + "/cmdline")
		environ, err2 := os.ReadFile("/proc/" + pid + "/environ")
		exe, err3 := os.Readlink("/proc/" + pid + "/exe")
		bs.release <- struct{}{}
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatalf("reading /proc/%s: %v", pid, err)
		}
		if real, _ := filepath.EvalSymlinks(realCurl); exe != real {
			t.Fatalf("pid %s is %s, not curl", pid, exe)
		}
		argv := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if bytes.Contains(cmdline, []byte(tok)) || bytes.Contains(environ, []byte(tok)) {
			t.Fatal("the token is in curl's argv or environment")
		}
		wantK := "-"
		if stdinCase {
			wantK = "/dev/fd/3"
		}
		if len(argv) < 3 || argv[1] != "-K" || argv[2] != wantK {
			t.Fatalf("curl's argv %q: want -K %s first", argv, wantK)
		}
		if err := c.Wait(); err != nil {
			t.Fatalf("tokenhelper curl: %v\n%s", err, out.String())
		}
		cancel()
		if _, ok := w.storageFile(args[len(args)-1][len(w.tb.StorageURL):]); !ok {
			t.Fatalf("%s was not stored", args[len(args)-1])
		}
	}
}

// rcloneRun runs rclone with a config file, bounded retries and timeouts.
func (w *world) rclone(rclone, conf string, args ...string) (string, string, int) {
	w.t.Helper()
	base := []string{"--config", conf, "--retries", "1", "--contimeout", "10s", "--timeout", "30s"}
	start := time.Now()
	defer func() { w.t.Logf("rclone %s: %s", args[0], time.Since(start).Round(time.Millisecond)) }()
	return w.exec("", rclone, append(base, args...)...)
}

// TestRcloneTestbed: a remote printed by rclone-config works with the real
// rclone 1.60 (copy, ls, delete) through bearer_token_command, and when
// the access token expires during a copy the storage's 401 makes rclone
// run the command again and the copy succeeds.
func TestRcloneTestbed(t *testing.T) {
	rclone := requireTool(t, "rclone", "rclone")
	var mu sync.Mutex
	var statuses []int
	tokens := map[string]bool{}
	slow := false
	w := newWorld(t, testbed.Options{
		Lifetimes: testbed.Lifetimes{Access: 6 * time.Second, PollInterval: time.Second},
		StorageHandler: func(env testbed.StorageEnv) (http.Handler, error) {
			h, err := storage.New(storage.Options{Issuer: env.Issuer, HTTPClient: env.HTTPClient, Audiences: env.Audiences,
				Root: env.Root, Prefix: env.Prefix, Now: env.Now})
			if err != nil {
				return nil, err
			}
			return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				mu.Lock()
				s := slow
				tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")] = true
				mu.Unlock()
				if s && r.Method == http.MethodPut {
					time.Sleep(300 * time.Millisecond) // a slow link: the copy outlives the token
				}
				rec := &statusWriter{ResponseWriter: rw, code: http.StatusOK}
				h.ServeHTTP(rec, r)
				mu.Lock()
				statuses = append(statuses, rec.code)
				mu.Unlock()
			}), nil
		},
	})
	w.register("tb", "openid offline_access storage.read:/ storage.modify:/home/alice")
	w.appendConfig(fmt.Sprintf("min_valid = \"1s\"\n\n[[routes]]\nurl = %q\nprofile = \"tb\"\nscopes = [\"storage.read:/\", \"storage.modify:/home/alice\"]\naudiences = [%q]",
		w.tb.StorageURL+"home/alice", w.tb.StorageOrigin()))

	section := w.must("", "tokenhelper", "rclone-config", "tb", w.tb.StorageURL+"home/alice")
	wantCmd := "bearer_token_command = " + w.th + " token -p tb -s storage.modify:/home/alice -s storage.read:/ --aud " + w.tb.StorageOrigin() + "\n"
	if real, err := filepath.EvalSymlinks(w.th); err == nil {
		wantCmd = strings.Replace(wantCmd, w.th, real, 1)
	}
	if !strings.Contains(section, "type = webdav\n") || !strings.Contains(section, "vendor = other\n") || !strings.Contains(section, wantCmd) {
		t.Fatalf("rclone-config printed:\n%s\nwant the line %q", section, wantCmd)
	}
	if err := os.MkdirAll(filepath.Join(w.tb.Dir, "storage", "home", "alice"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(w.dir, "rclone.conf")
	if err := os.WriteFile(conf, []byte(section), 0o600); err != nil {
		t.Fatal(err)
	}

	src := filepath.Join(w.dir, "src")
	if err := os.MkdirAll(filepath.Join(src, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"a.txt": "aaaaa", "sub/b.txt": "bb"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, errOut, code := w.rclone(rclone, conf, "copy", src, "tb:rc"); code != 0 {
		t.Fatalf("rclone copy: exit %d\n%s", code, errOut)
	}
	if got, _ := w.storageFile("home/alice/rc/sub/b.txt"); got != "bb" {
		t.Fatalf("sub/b.txt = %q", got)
	}
	out, errOut, code := w.rclone(rclone, conf, "ls", "tb:rc")
	if code != 0 || !strings.Contains(out, "5 a.txt") || !strings.Contains(out, "2 sub/b.txt") {
		t.Fatalf("rclone ls: exit %d\n%s%s", code, out, errOut)
	}
	if _, errOut, code := w.rclone(rclone, conf, "delete", "tb:rc/a.txt"); code != 0 {
		t.Fatalf("rclone delete: exit %d\n%s", code, errOut)
	}
	if _, ok := w.storageFile("home/alice/rc/a.txt"); ok {
		t.Fatal("a.txt is still there")
	}

	// Written by hand, the short way: "tokenhelper token -p NAME", found
	// on rclone's PATH, split by rclone on single spaces.
	byHand := filepath.Join(w.dir, "byhand.conf")
	if err := os.WriteFile(byHand, []byte(fmt.Sprintf("[hand]\ntype = webdav\nurl = %s\nvendor = other\nbearer_token_command = tokenhelper token -p tb\n",
		w.tb.StorageURL+"home/alice")), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := w.rclone(rclone, byHand, "ls", "hand:rc"); code != 0 || !strings.Contains(out, "2 sub/b.txt") {
		t.Fatalf("rclone ls with bearer_token_command = tokenhelper token -p tb: exit %d\n%s%s", code, out, errOut)
	}

	// A copy that takes longer than a token lives (6 s): 25 files, each
	// PUT held 300 ms, one at a time.
	many := filepath.Join(w.dir, "many")
	if err := os.MkdirAll(many, 0o700); err != nil {
		t.Fatal(err)
	}
	const nFiles = 25
	for i := range nFiles {
		if err := os.WriteFile(filepath.Join(many, fmt.Sprintf("f%02d.txt", i)), []byte(strconv.Itoa(i)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	slow, statuses, tokens = true, nil, map[string]bool{}
	mu.Unlock()
	start := time.Now()
	if _, errOut, code := w.rclone(rclone, conf, "copy", "--transfers", "1", "--checkers", "1", many, "tb:many"); code != 0 {
		t.Fatalf("slow rclone copy: exit %d\n%s", code, errOut)
	}
	for i := range nFiles {
		if got, ok := w.storageFile(fmt.Sprintf("home/alice/many/f%02d.txt", i)); !ok || got != strconv.Itoa(i) {
			t.Fatalf("f%02d.txt = %q, %v", i, got, ok)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	n401 := 0
	for _, s := range statuses {
		if s == http.StatusUnauthorized {
			n401++
		}
	}
	t.Logf("slow copy: %d requests, %d 401s, %d distinct tokens", len(statuses), n401, len(tokens))
	if n401 == 0 || len(tokens) < 2 {
		t.Fatalf("the copy took %s with %d 401s and %d distinct tokens: the token did not expire during the run", time.Since(start).Round(time.Millisecond), n401, len(tokens))
	}
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// execChild is a tokenhelper exec process whose command is a shell that
// answers requests on stdin: "check" asks the storage with the token from
// $BEARER_TOKEN_FILE (curl with the header on stdin) and prints the HTTP
// status, "file" prints the file's path, "exit N" exits.
type execChild struct {
	t    *testing.T
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	errs *bytes.Buffer
	done chan struct{} // closed when cmd.Wait has returned; werr is its result
	werr error
}

const execScript = `trap 'exit 42' TERM
trap 'exit 43' USR1
echo ready
while read req arg; do
  case $req in
    check) printf 'header = "Authorization: Bearer %s"\n' "$(cat "$BEARER_TOKEN_FILE")" | curl -s -o /dev/null -w '%{http_code}\n' -K - "$arg" ;;
    file) echo "$BEARER_TOKEN_FILE" ;;
    env) echo "BT=${BEARER_TOKEN-unset}" ;;
    kill) kill -"$arg" $$ ;;
    exit) exit "$arg" ;;
  esac
done`

// signalScript waits in the wait builtin, which POSIX requires to return
// at once when a trapped signal arrives (a read builtin may be restarted
// and only run the trap when input comes: a hang under load).
const signalScript = `trap 'kill $p 2>/dev/null; exit 42' TERM
trap 'kill $p 2>/dev/null; exit 43' USR1
sleep 1000 </dev/null >/dev/null 2>&1 & p=$!
echo ready
wait $p`

func (w *world) startExec(args ...string) *execChild {
	return w.startExecScript(execScript, args...)
}

func (w *world) startExecScript(script string, args ...string) *execChild {
	w.t.Helper()
	c := w.command(context.Background(), "tokenhelper", append(args, "sh", "-c", script)...)
	c.Env = append(c.Env, "BEARER_TOKEN=an-old-token-from-the-parent")
	in, err := c.StdinPipe()
	if err != nil {
		w.t.Fatal(err)
	}
	outR, err := c.StdoutPipe()
	if err != nil {
		w.t.Fatal(err)
	}
	ec := &execChild{t: w.t, cmd: c, in: in, out: bufio.NewReader(outR), errs: &bytes.Buffer{}, done: make(chan struct{})}
	c.Stderr = ec.errs
	// A group of its own, so that cleanup also ends what the script left
	// (the signal script's background sleep outlived failed runs).
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.Start(); err != nil {
		w.t.Fatal(err)
	}
	go func() { ec.werr = c.Wait(); close(ec.done) }()
	w.t.Cleanup(func() {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL) // the group: tokenhelper, sh and its sleep
		select {
		case <-ec.done:
		case <-time.After(10 * time.Second):
		}
	})
	if line := ec.line("ready"); line != "ready" {
		w.t.Fatalf("exec child said %q\n%s", line, ec.errs.String())
	}
	return ec
}

func (ec *execChild) line(what string) string {
	ec.t.Helper()
	ch := make(chan string, 1)
	go func() {
		s, _ := ec.out.ReadString('\n')
		ch <- strings.TrimSuffix(s, "\n")
	}()
	select {
	case s := <-ch:
		return s
	case <-time.After(30 * time.Second):
		ec.t.Fatalf("no %s from the exec child within 30 s", what)
		return ""
	}
}

func (ec *execChild) ask(req string) string {
	ec.t.Helper()
	if _, err := io.WriteString(ec.in, req+"\n"); err != nil {
		ec.t.Fatalf("writing to the exec child: %v\n%s", err, ec.errs.String())
	}
	return ec.line("answer to " + req)
}

// wait returns the exit status of tokenhelper exec.
func (ec *execChild) wait() int {
	ec.t.Helper()
	select {
	case <-ec.done:
		var ee *exec.ExitError
		if errors.As(ec.werr, &ee) {
			return ee.ExitCode()
		}
		if ec.werr != nil {
			ec.t.Fatal(ec.werr)
		}
		return 0
	case <-time.After(30 * time.Second):
		ec.t.Fatalf("tokenhelper exec did not end within 30 s\n%s", ec.errs.String())
		return -1
	}
}

// TestExecTestbed: a command under tokenhelper exec that runs for five
// token lifetimes (3 s) always finds a token the storage accepts in
// $BEARER_TOKEN_FILE (native profile: refreshes at the test bed); the
// inherited BEARER_TOKEN is gone; signals and the exit status pass through;
// the token file is removed at the end.
func TestExecTestbed(t *testing.T) {
	requireTool(t, "curl", "curl")
	life := 3 * time.Second
	w := newWorld(t, testbed.Options{Storage: true, Lifetimes: testbed.Lifetimes{Access: life, PollInterval: time.Second}})
	w.register("tb", "openid offline_access storage.read:/")
	w.appendConfig(`min_valid = "1s"`)
	probe := w.tb.StorageURL + "data/none"

	ec := w.startExec("exec", "-p", "tb", "-s", "storage.read:/", "--aud", w.tb.StorageOrigin(), "--")
	if got := ec.ask("env"); got != "BT=unset" {
		t.Fatalf("the command inherited BEARER_TOKEN: %q", got)
	}
	file := ec.ask("file")
	if !strings.HasPrefix(file, filepath.Join(w.run, "tokenhelper")+"/exec-") {
		t.Fatalf("BEARER_TOKEN_FILE=%s, want it under $XDG_RUNTIME_DIR/tokenhelper", file)
	}
	seen := map[string]bool{}
	for end := time.Now().Add(5 * life); time.Now().Before(end); time.Sleep(300 * time.Millisecond) {
		if code := ec.ask("check " + probe); code != "404" {
			t.Fatalf("the command's token got HTTP %s (want 404: authorized, no such file)\n%s", code, ec.errs.String())
		}
		if b, err := os.ReadFile(file); err == nil {
			seen[string(b)] = true
		}
	}
	if len(seen) < 4 {
		t.Fatalf("%d tokens over 5 lifetimes: not renewed", len(seen))
	}
	if _, err := io.WriteString(ec.in, "exit 7\n"); err != nil {
		t.Fatal(err)
	}
	if code := ec.wait(); code != 7 {
		t.Fatalf("exit status %d, want 7\n%s", code, ec.errs.String())
	}
	if _, err := os.Stat(filepath.Dir(file)); !os.IsNotExist(err) {
		t.Fatal("the token directory is still there after the command ended")
	}
	for tok := range seen {
		if strings.Contains(ec.errs.String(), strings.TrimSpace(tok)) {
			t.Fatal("token material on stderr")
		}
	}

	// Signals reach the command; its exit status is tokenhelper's.
	for sig, want := range map[syscall.Signal]int{syscall.SIGTERM: 42, syscall.SIGUSR1: 43} {
		ec := w.startExecScript(signalScript, "exec", "-p", "tb", "--")
		if err := ec.cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		if code := ec.wait(); code != want {
			t.Fatalf("after %s: exit status %d, want %d (the command's trap)\n%s", sig, code, want, ec.errs.String())
		}
	}
	// A command killed by a signal: 128+9.
	ec = w.startExec("exec", "-p", "tb", "--")
	if _, err := io.WriteString(ec.in, "kill KILL\n"); err != nil {
		t.Fatal(err)
	}
	if code := ec.wait(); code != 137 {
		t.Fatalf("command killed by SIGKILL: exit status %d, want 137", code)
	}
}

// TestRenewDaemonTestbed: tokenhelper renew --daemon keeps a file valid
// across several lifetimes (native profile, 3 s tokens), survives the
// provider failing for two lifetimes without removing the file, recovers,
// logs one line per renewal and failure without token material, and stops
// cleanly on SIGTERM.
func TestRenewDaemonTestbed(t *testing.T) {
	life := 3 * time.Second
	w := newWorld(t, testbed.Options{Storage: true, Lifetimes: testbed.Lifetimes{Access: life, PollInterval: time.Second}})
	w.register("tb", "openid offline_access storage.read:/")
	w.appendConfig(`min_valid = "1s"`)
	out := filepath.Join(w.dir, "tokens", "tb.tok")

	c := w.command(context.Background(), "tokenhelper", "renew", "--daemon", "-p", "tb", "--file", out, "-s", "storage.read:/")
	var logs syncBuffer
	c.Stdout, c.Stderr = &logs, &logs
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Process.Kill(); _ = c.Wait() })

	seen := map[string]bool{}
	for end := time.Now().Add(4 * life); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		tok := pollValid(t, out, 2*time.Second)
		if !seen[tok] {
			seen[tok] = true
			if code := w.storageGet(tok, "data/none"); code != http.StatusNotFound {
				t.Fatalf("storage answered %d to the renewed token", code)
			}
		}
	}
	if len(seen) < 3 {
		t.Fatalf("%d tokens over 4 lifetimes\n%s", len(seen), logs.String())
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v", out, err)
	}

	// The provider fails for two lifetimes.
	if err := w.tb.Inject(testbed.EndpointToken, testbed.Status(http.StatusServiceUnavailable)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*life)
	defer cancel()
	if err := w.tb.WaitCounters(ctx, func(c testbed.Counters) bool { return c.Faults[testbed.EndpointToken] >= 3 }); err != nil {
		t.Fatalf("no retries while the provider was down: %v\n%s", err, logs.String())
	}
	held, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("the file went away while the provider was down")
	}
	time.Sleep(time.Until(expiry(t, string(held))) + 200*time.Millisecond) // the old token runs out
	n := w.tb.Counters().Faults[testbed.EndpointToken]
	if err := w.tb.WaitCounters(ctx, func(c testbed.Counters) bool { return c.Faults[testbed.EndpointToken] > n }); err != nil {
		t.Fatalf("no retry after the token expired: %v", err)
	}
	if now, err := os.ReadFile(out); err != nil || !bytes.Equal(now, held) {
		t.Fatalf("the file changed or vanished during the outage: %v", err)
	}
	w.tb.ClearFaults(testbed.EndpointToken)
	tok := pollValid(t, out, 10*time.Second)
	seen[tok] = true
	if code := w.storageGet(tok, "data/none"); code != http.StatusNotFound {
		t.Fatalf("after recovery the storage answered %d", code)
	}

	if err := c.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(); err != nil {
		t.Fatalf("renew --daemon after SIGTERM: %v\n%s", err, logs.String())
	}
	text := logs.String()
	for tok := range seen {
		if strings.Contains(text, strings.TrimSpace(tok)) {
			t.Fatal("token material in the daemon's log")
		}
	}
	for _, want := range []string{"renew daemon keeping " + out, "renewed " + out, "cannot renew " + out, "expired at", "failed attempts", "renew daemon stopped"} {
		if !strings.Contains(text, want) {
			t.Errorf("the log lacks %q:\n%s", want, text)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSystemdUnitCommands: the commands in integrations/systemd's units are
// valid tokenhelper command lines: with a [[renew]] entry the oneshot's
// command writes the discovery file; without one both refuse with exit 3.
func TestSystemdUnitCommands(t *testing.T) {
	w := newWorld(t, testbed.Options{})
	for _, unit := range []string{"tokenhelper-renew.service", "tokenhelper-renew-once.service"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "..", "integrations", "systemd", unit))
		if err != nil {
			t.Fatal(err)
		}
		var args []string
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "ExecStart=/usr/bin/env tokenhelper "); ok {
				args = strings.Fields(v)
			}
		}
		if len(args) == 0 {
			t.Fatalf("%s: no ExecStart=/usr/bin/env tokenhelper ...", unit)
		}
		if _, errOut, code := w.exec("", "tokenhelper", args...); code != 3 || !strings.Contains(errOut, "nothing to renew") {
			t.Fatalf("%s: tokenhelper %q without [[renew]]: exit %d, %q", unit, args, code, errOut)
		}
		if unit == "tokenhelper-renew-once.service" {
			src := filepath.Join(w.dir, "src.jwt")
			tok := w.writeToken(src, []string{"storage.read:/"}, time.Hour)
			w.appendConfig(fmt.Sprintf("[profiles.site]\nbackend = \"file\"\ntoken_file = %q\n\n[[renew]]\nprofile = \"site\"", src))
			w.must("", "tokenhelper", args...)
			got, err := os.ReadFile(filepath.Join(w.run, "bt_u"+strconv.Itoa(os.Geteuid())))
			if err != nil || strings.TrimSpace(string(got)) != tok {
				t.Fatalf("the discovery file after %q: %v", args, err)
			}
		}
	}
}

// TestExecParentKilled: when tokenhelper exec is killed with SIGKILL (it
// cannot forward anything), the command gets SIGTERM from the kernel
// (Linux parent-death signal) instead of running on with a token file
// nobody renews.
func TestExecParentKilled(t *testing.T) {
	w := newWorld(t, testbed.Options{})
	src := filepath.Join(w.dir, "src.jwt")
	w.writeToken(src, []string{"storage.read:/"}, time.Hour)
	w.appendConfig(fmt.Sprintf("[profiles.site]\nbackend = \"file\"\ntoken_file = %q", src))
	marker := filepath.Join(w.dir, "terminated")
	c := w.command(context.Background(), "tokenhelper", "exec", "-p", "site", "--", "sh", "-c",
		`trap 'echo term > `+marker+`; exit 0' TERM; echo ready; while :; do sleep 0.05; done`)
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Process.Kill(); _ = c.Wait() })
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		t.Fatalf("child said %q", line)
	}
	if err := c.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = c.Wait() // "signal: killed"
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(marker); err == nil && string(b) == "term\n" {
			return
		}
		if time.Now().After(end) {
			t.Fatal("the command did not get SIGTERM within 10 s of tokenhelper's death")
		}
	}
}
