//go:build linux

package testbed_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tokenhelper/tokenhelper/integrations/testbed"
)

// agent is a private oidc-agent 4.2.6 run as a child of the test.
type agent struct {
	t    *testing.T
	env  []string
	dir  string
	logs *syncBuffer
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

// startAgent starts `oidc-agent -d` with a private HOME, OIDC_CONFIG_DIR
// and socket, and stops it when the test ends.
func startAgent(t *testing.T) *agent {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"home", "oidc", "tmp"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(dir, "agent.sock")
	a := &agent{t: t, dir: dir, logs: &syncBuffer{}, env: []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + filepath.Join(dir, "home"),
		"OIDC_CONFIG_DIR=" + filepath.Join(dir, "oidc"),
		"TMPDIR=" + filepath.Join(dir, "tmp"),
		"OIDC_SOCK=" + sock,
		"OIDC_ENCRYPTION_PW=test bed passphrase",
		"LANG=C",
	}}
	// Watch for the socket before starting the agent, so its creation
	// cannot be missed.
	created, stopWatch, err := watchCreate(dir, "agent.sock")
	if err != nil {
		t.Fatal(err)
	}
	defer stopWatch()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "oidc-agent", "-d", "--socket-path="+sock)
	cmd.Env = a.env
	cmd.Stdout, cmd.Stderr = a.logs, a.logs
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cancel()
		<-exited
		if t.Failed() {
			t.Logf("oidc-agent output:\n%s", a.logs.String())
		}
	})
	select {
	case <-created:
	case <-exited:
		t.Fatalf("oidc-agent exited: %v\n%s", cmd.ProcessState, a.logs.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("oidc-agent did not create its socket:\n%s", a.logs.String())
	}
	return a
}

// run runs an oidc-agent tool with the agent's environment plus extra.
func (a *agent) run(extra []string, name string, args ...string) (string, error) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(append([]string{}, a.env...), extra...)
	cmd.Stdin = nil
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		a.t.Logf("%s %v: %v\nstdout: %s\nstderr: %s", name, args, err, stdout.String(), stderr.String())
	}
	return strings.TrimSpace(stdout.String()), err
}

// writeClientFile writes the client configuration oidc-gen -f reads, so
// the client secret never appears in argv.
func (a *agent) writeClientFile(tb *testbed.Testbed, c testbed.ClientSpec) string {
	a.t.Helper()
	b, _ := json.Marshal(map[string]any{
		"client_id": c.ID, "client_secret": c.Secret, "issuer_url": tb.IssuerURL,
		"scope": "openid offline_access storage.read:/ storage.modify:/home/alice",
	})
	path := filepath.Join(a.dir, "client-"+c.ID+".json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		a.t.Fatal(err)
	}
	return path
}

// TestOIDCAgent drives the real Debian oidc-agent 4.2.6 against the test
// bed: an account from a refresh token (oidc-gen --rt-env), tokens with
// scope and audience (oidc-token), and an account made with the device
// flow and dynamic client registration, approved headlessly.
func TestOIDCAgent(t *testing.T) {
	t.Parallel()
	requireTools(t, "oidc-agent-cli", "oidc-agent", "oidc-gen", "oidc-token")
	for _, https := range []bool{false, true} {
		name := map[bool]string{false: "http", true: "https"}[https]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tb := testbed.Start(t, fast(testbed.Options{HTTPS: https}))
			a := startAgent(t)
			var cp []string
			if tb.CAFile != "" {
				cp = []string{"--cp=" + tb.CAFile}
			}

			// An account from a refresh token of a pre-registered client.
			client := confidential(t, tb, testbed.ClientSpec{Name: "oidc-agent test"})
			rt, err := tb.RefreshTokenFor("alice", client.ID, []string{"openid", "offline_access", "storage.read:/", "storage.modify:/home/alice"})
			if err != nil {
				t.Fatal(err)
			}
			args := append([]string{"rt", "--issuer=" + tb.IssuerURL, "-f", a.writeClientFile(tb, client), "--rt-env",
				"--scope=openid offline_access storage.read:/ storage.modify:/home/alice", "--pw-env", "--prompt=none"}, cp...)
			if _, err := a.run([]string{"OIDC_REFRESH_TOKEN=" + rt}, "oidc-gen", args...); err != nil {
				t.Fatalf("oidc-gen --rt-env: %v", err)
			}

			tb.ResetCounters()
			tok, err := a.run(nil, "oidc-token", "-s", "storage.read:/home", "--aud", "https://se.example:1094", "rt")
			if err != nil {
				t.Fatalf("oidc-token with scope and audience: %v", err)
			}
			_, c := claims(t, tb, tok)
			if c["scope"] != "storage.read:/home" || c["aud"] != "https://se.example:1094" || c["client_id"] != client.ID || c["iss"] != tb.IssuerURL {
				t.Errorf("token from oidc-agent: %v", c)
			}
			if n := tb.Counters().Grant("refresh"); n != 1 {
				t.Errorf("%d refreshes reached the provider, want 1", n)
			}
			tok, err = a.run(nil, "oidc-token", "rt")
			if err != nil {
				t.Fatalf("oidc-token: %v", err)
			}
			if _, c := claims(t, tb, tok); c["aud"] != testbed.AnyAudience || !strings.Contains(str(c["scope"]), "storage.modify:/home/alice") {
				t.Errorf("default token: %v", c)
			}

			// An account made with the device flow: oidc-gen registers a
			// client dynamically, then polls while the test approves.
			approved := make(chan error, 1)
			go func() {
				_, err := tb.ApproveNext(ctxT(t, 30*time.Second), "alice")
				approved <- err
			}()
			args = append([]string{"dev", "--issuer=" + tb.IssuerURL, "--flow=device",
				"--scope=openid offline_access storage.read:/", "--pw-env", "--prompt=none"}, cp...)
			if _, err := a.run(nil, "oidc-gen", args...); err != nil {
				t.Fatalf("oidc-gen --flow=device: %v", err)
			}
			if err := <-approved; err != nil {
				t.Fatal(err)
			}
			if tb.Counters().Endpoint(testbed.EndpointRegistration) != 1 {
				t.Errorf("oidc-gen did not register a client: %+v", tb.Counters())
			}
			tok, err = a.run(nil, "oidc-token", "-s", "storage.read:/public", "--aud", "https://se.example", "dev")
			if err != nil {
				t.Fatalf("oidc-token for the device account: %v", err)
			}
			if _, c := claims(t, tb, tok); c["scope"] != "storage.read:/public" || c["aud"] != "https://se.example" {
				t.Errorf("device account token: %v", c)
			}
		})
	}
}

// watchCreate reports, through the returned channel, when name appears in
// dir (inotify), or at once when it exists already.
func watchCreate(dir, name string) (<-chan struct{}, func(), error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, nil, err
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE|unix.IN_MOVED_TO); err != nil {
		unix.Close(fd)
		return nil, nil, err
	}
	stop := make(chan struct{})
	created := make(chan struct{})
	go func() {
		defer unix.Close(fd)
		buf := make([]byte, 4096)
		for {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				close(created)
				return
			}
			// Wait for an event, waking up every 100 ms to notice stop.
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			_, _ = unix.Poll(fds, 100)
			select {
			case <-stop:
				return
			default:
			}
			_, _ = unix.Read(fd, buf) // drain; the Stat above decides
		}
	}()
	return created, func() { close(stop) }, nil
}
