package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/integrations/testbed"
)

// waitWriter collects output and closes ready when marker appears.
type waitWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker string
	ready  chan struct{}
	once   sync.Once
}

func newWaitWriter(marker string) *waitWriter {
	return &waitWriter{marker: marker, ready: make(chan struct{})}
}

func (w *waitWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.marker) {
		w.once.Do(func() { close(w.ready) })
	}
	return len(p), nil
}

func (w *waitWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func testEnv(home string) env {
	return func(k string) string {
		if k == "HOME" {
			return home
		}
		return ""
	}
}

// startServe runs `serve` in-process until the test ends and returns its
// directory and output.
func startServe(t *testing.T, args ...string) (string, *waitWriter) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "testbed")
	out := newWaitWriter("Running until interrupted")
	var errOut bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "--dir", dir}, args...), out, &syncWriter{w: &errOut}, testEnv(t.TempDir()))
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d", code)
		}
		if _, err := os.Stat(filepath.Join(dir, testbed.InfoFileName)); err == nil {
			t.Error("testbed.json left behind")
		}
		// serve sets the slog default for op's logs; restore quiet.
		slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	})
	select {
	case <-out.ready:
	case code := <-done:
		t.Fatalf("serve exited %d:\n%s", code, out.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not start:\n%s", out.String())
	}
	return dir, out
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// cli runs a command in-process and returns its exit code and output.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr, testEnv(t.TempDir()))
	return code, stdout.String(), stderr.String()
}

func startDevice(t *testing.T, issuer string) (deviceCode, userCode string) {
	t.Helper()
	resp, err := http.PostForm(issuer+"/devicecode", url.Values{"client_id": {testbed.DemoClientID}, "scope": {"openid"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	deviceCode, _ = d["device_code"].(string)
	userCode, _ = d["user_code"].(string)
	if userCode == "" {
		t.Fatalf("device authorization: %s %v", resp.Status, d)
	}
	return deviceCode, userCode
}

func TestServeAndScripts(t *testing.T) {
	dir, out := startServe(t, "--lifetime", "access=5m,interval=1s")
	info, err := testbed.ReadInfo(dir)
	if err != nil {
		t.Fatal(err)
	}
	summary := out.String()
	for _, want := range []string{info.Issuer, info.StorageURL, "alice / ", "bob / ", "[profiles.testbed]", "access 5m0s", "/admin/device/approve"} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}
	if strings.Contains(summary, "alice-password") {
		t.Error("serve uses the fixed test passwords")
	}

	_, userCode := startDevice(t, info.Issuer)
	code, stdout, stderr := cli(t, "approve", userCode, "--user", "alice", "--dir", dir)
	if code != 0 || !strings.Contains(stdout, "approved "+userCode) {
		t.Errorf("approve: %d %q %q", code, stdout, stderr)
	}
	if code, _, stderr := cli(t, "approve", "--dir", dir, userCode, "--user", "alice"); code != 2 || !strings.Contains(stderr, "no longer pending") {
		t.Errorf("second approve: %d %q", code, stderr)
	}
	_, userCode = startDevice(t, info.Issuer)
	if code, stdout, _ := cli(t, "deny", userCode, "--dir", dir); code != 0 || !strings.Contains(stdout, "denied") {
		t.Errorf("deny: %d %q", code, stdout)
	}

	result := make(chan string, 1)
	go func() {
		_, stdout, stderr := cli(t, "approve", "--next", "--user", "bob", "--wait", "20s", "--dir", dir)
		result <- stdout + stderr
	}()
	_, userCode = startDevice(t, info.Issuer)
	if got := <-result; !strings.Contains(got, "approved "+userCode) {
		t.Errorf("approve --next: %q, want %s", got, userCode)
	}
	if code, stdout, stderr := cli(t, "advance", "90m", "--dir", dir); code != 0 || !strings.Contains(stdout, "clock now") {
		t.Errorf("advance: %d %q %q", code, stdout, stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	missing := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{nil, 2, "Usage"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"serve", "--lifetime", "access=soon"}, 2, "NAME=DURATION"},
		{[]string{"serve", "--lifetime", "color=5m"}, 2, "unknown lifetime"},
		{[]string{"serve", "extra"}, 2, "no arguments"},
		{[]string{"approve", "ABCD-EFGH", "--dir", missing}, 2, "--user"},
		{[]string{"approve", "--user", "alice", "--dir", missing}, 2, "one user code"},
		{[]string{"approve", "ABCD-EFGH", "--user", "alice", "--dir", missing}, 3, "no running test bed"},
		{[]string{"advance", "soon", "--dir", missing}, 2, "not a duration"},
		{[]string{"deny", "--next", "X"}, 2, "flag provided but not defined"},
	} {
		code, _, stderr := cli(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, stderr, tc.code, tc.msg)
		}
	}
	if code, stdout, _ := cli(t, "help"); code != 0 || !strings.Contains(stdout, "tokenhelper-testbed serve") {
		t.Errorf("help: %d", code)
	}
}

// TestREADMEWalkthrough runs the curl walk-through of
// integrations/testbed/README.md against a running `serve`, as a newcomer
// would.
func TestREADMEWalkthrough(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not found (Debian package %s)", tool, tool)
			}
			t.Skipf("%s not found", tool)
		}
	}
	readme, err := os.ReadFile("../../integrations/testbed/README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := regexp.MustCompile(`(?s)<!-- walkthrough.*?-->(.*)<!-- /walkthrough -->`).FindSubmatch(readme)
	if section == nil {
		t.Fatal("README has no walkthrough section")
	}
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllSubmatch(section[1], -1) {
		script.Write(m[1])
		script.WriteString("echo\n")
	}
	dir, _ := startServe(t)
	work := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir = work
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + work, "DIR=" + dir, "LANG=C"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("walkthrough failed: %v\n%s", err, out)
	}
	for _, want := range []string{`"registration_endpoint"`, "authorization_pending", `"status":"approved"`,
		"201", "hello from the test bed", "403", "storage.read:/home"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("walkthrough output lacks %q:\n%s", want, out)
		}
	}
	if fi, err := os.Stat(filepath.Join(work, "token.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("token.json: %v (umask 077 in the README keeps it private)", err)
	}
}
