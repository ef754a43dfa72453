package execenv

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func shChild(t *testing.T, script string) Child {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	return Child{Path: sh, Args: []string{"sh", "-c", script}, Env: os.Environ()}
}

func TestRunExitStatus(t *testing.T) {
	for _, tc := range []struct {
		script string
		want   int
	}{
		{"exit 0", 0},
		{"exit 7", 7},
		{"exit 255", 255},
		{"kill -TERM $$", 128 + int(syscall.SIGTERM)},
		{"kill -KILL $$", 128 + int(syscall.SIGKILL)},
		{"kill -USR1 $$", 128 + int(syscall.SIGUSR1)},
	} {
		t.Run(tc.script, func(t *testing.T) {
			got, err := Run(shChild(t, tc.script), RunOptions{})
			if err != nil || got != tc.want {
				t.Fatalf("Run = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

// startTrapper runs a shell that exits with 100+N when it gets signal N
// (for each forwarded signal) and says "ready" once its traps are set.
// It returns a channel with Run's result.
func startTrapper(t *testing.T, o RunOptions) (<-chan int, func()) {
	t.Helper()
	var traps []string
	for _, s := range Signals {
		n := int(s.(syscall.Signal))
		traps = append(traps, "trap 'exit "+strconv.Itoa(100+n)+"' "+strconv.Itoa(n))
	}
	script := strings.Join(traps, "; ") + "; echo ready; while :; do sleep 0.05; done"
	c := shChild(t, script)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c.Stdout = pw
	res := make(chan int, 1)
	go func() {
		code, err := Run(c, o)
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		pw.Close()
		res <- code
	}()
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(pr).ReadString('\n')
		if err == nil && line != "ready\n" {
			err = errors.New("unexpected output " + line)
		}
		ready <- err
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the child did not start within 10 s")
	}
	return res, func() { pr.Close() }
}

func waitCode(t *testing.T, res <-chan int) int {
	t.Helper()
	select {
	case c := <-res:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("the child did not end within 10 s")
		return -1
	}
}

// TestRunForwardsSignals sends each signal to this process while Run runs
// a child: the child gets it (its trap decides the exit status).
func TestRunForwardsSignals(t *testing.T) {
	for _, s := range Signals {
		sig := s.(syscall.Signal)
		t.Run(sig.String(), func(t *testing.T) {
			res, done := startTrapper(t, RunOptions{})
			defer done()
			if err := syscall.Kill(os.Getpid(), sig); err != nil {
				t.Fatal(err)
			}
			if got := waitCode(t, res); got != 100+int(sig) {
				t.Fatalf("exit status %d, want %d (the trap of %s)", got, 100+int(sig), sig)
			}
		})
	}
}

// TestRunKeyboardSignals: when the terminal already delivered SIGINT to the
// child, it is not sent again; other signals still are.
//
// SIGUSR2 is sent only once Run has seen the SIGINT: sent at once, it can
// reach Run first (each thread handles the signal it was given, in no set
// order; under strace even later), end the child, and the SIGINT arrives
// after Run stopped listening: Go's default action kills the test binary.
func TestRunKeyboardSignals(t *testing.T) {
	sawINT := make(chan struct{}, 1)
	res, done := startTrapper(t, RunOptions{KeyboardSignals: func() bool {
		select {
		case sawINT <- struct{}{}:
		default:
		}
		return true
	}})
	defer done()
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sawINT:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not see the SIGINT within 10 s")
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	if got := waitCode(t, res); got != 100+int(syscall.SIGUSR2) {
		t.Fatalf("exit status %d, want the USR2 trap's %d (SIGINT must not be forwarded)", got, 100+int(syscall.SIGUSR2))
	}
}

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "tool")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path string
		want       string
		code       int
	}{
		{"tool", "/nonexistent:" + dir, exe, 0},
		{exe, "", exe, 0},
		{"missing", dir, "", 127},
		{"plain", dir, "", 126},
		{plain, dir, "", 126},
		{"sub", dir, "", 127},
		{filepath.Join(dir, "sub"), "", "", 126},
		{"", dir, "", 127},
	} {
		got, err := LookPath(tc.name, tc.path)
		var se *StartError
		switch {
		case tc.code == 0 && (err != nil || got != tc.want):
			t.Errorf("LookPath(%q) = %q, %v; want %q", tc.name, got, err, tc.want)
		case tc.code != 0 && (!errors.As(err, &se) || se.Code != tc.code):
			t.Errorf("LookPath(%q) = %q, %v; want exit code %d", tc.name, got, err, tc.code)
		}
	}
}

func TestRunStartErrors(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("not a program"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := Run(Child{Path: plain, Args: []string{"plain"}}, RunOptions{})
	var se *StartError
	if !errors.As(err, &se) || se.Code != 126 {
		t.Fatalf("Run of a non-executable file: %v, want code 126", err)
	}
	_, err = Run(Child{Path: filepath.Join(dir, "gone"), Args: []string{"gone"}}, RunOptions{})
	if !errors.As(err, &se) || se.Code != 127 {
		t.Fatalf("Run of a missing file: %v, want code 127", err)
	}
}

func TestChildEnv(t *testing.T) {
	in := []string{"PATH=/bin", "BEARER_TOKEN=old", "BEARER_TOKEN_FILE=/old", "BEARER_TOKENX=keep", "HOME=/h"}
	got := ChildEnv(in, "/run/x/bt", " tok\n", false)
	want := []string{"PATH=/bin", "BEARER_TOKENX=keep", "HOME=/h", "BEARER_TOKEN_FILE=/run/x/bt"}
	if !slices.Equal(got, want) {
		t.Fatalf("ChildEnv = %q, want %q", got, want)
	}
	got = ChildEnv(in, "/run/x/bt", " tok\n", true)
	if !slices.Equal(got, append(want, "BEARER_TOKEN=tok")) {
		t.Fatalf("ChildEnv with env token = %q", got)
	}
}

func TestTokenDir(t *testing.T) {
	base := filepath.Join(t.TempDir(), "run")
	// A directory of a tokenhelper that is gone, one of a live process.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(base, 0o700); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(base, "exec-"+strconv.Itoa(dead.Process.Pid)+"-abc")
	live := filepath.Join(base, "exec-"+strconv.Itoa(os.Getpid())+"-def")
	other := filepath.Join(base, "unrelated")
	for _, d := range []string{stale, live, other} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(stale, TokenFileName), []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	td, err := NewTokenDir(base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Error("the stale directory of a dead process was kept")
	}
	for _, d := range []string{live, other} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s was removed", d)
		}
	}
	fi, err := os.Stat(td.Dir)
	if err != nil || fi.Mode().Perm() != 0o700 || filepath.Dir(td.File) != td.Dir {
		t.Fatalf("token dir %v: %v", fi, err)
	}
	if err := os.WriteFile(td.File, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := td.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(td.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("Remove left the directory")
	}
	if err := td.Remove(); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
}

func TestNewTokenDirRefusesForeignBase(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a directory owned by another user")
	}
	base := filepath.Join(t.TempDir(), "run")
	if err := os.Mkdir(base, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(base, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	if _, err := NewTokenDir(base); err == nil {
		t.Fatal("a token directory was made in another user's directory")
	}
}
