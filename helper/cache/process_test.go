package cache

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
)

// The cross-process tests re-execute this test binary with
// CACHE_TEST_ROLE set; TestMain then plays that role instead of running
// the tests.
const roleEnv = "CACHE_TEST_ROLE"

func TestMain(m *testing.M) {
	if role := os.Getenv(roleEnv); role != "" {
		if err := playRole(role); err != nil {
			fmt.Fprintln(os.Stderr, "role", role+":", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

var procReq = helper.Request{Profile: "p", Scopes: []string{"storage.read:/"}, Audiences: []string{"https://se.example.org"}, MinValid: time.Minute}

func playRole(role string) error {
	c := &Cache{Dir: os.Getenv("CACHE_DIR"), LockTimeout: time.Minute}
	ctx := context.Background()
	switch role {
	case "get":
		// Announce readiness, then wait for the go signal (EOF on stdin),
		// so that all processes ask at once.
		fmt.Println("ready")
		_, _ = io.Copy(io.Discard, os.Stdin)
		counter := os.Getenv("CACHE_COUNTER")
		t, err := c.Get(ctx, procReq, func(ctx context.Context) (*helper.Token, error) {
			// Count acquisitions by appending one line with O_APPEND: this
			// count does not depend on the lock under test.
			f, err := os.OpenFile(counter, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
			if err != nil {
				return nil, err
			}
			fmt.Fprintln(f, os.Getpid())
			f.Close()
			time.Sleep(50 * time.Millisecond) // widen the critical section
			return &helper.Token{AccessToken: "tok-" + strconv.Itoa(os.Getpid()), Expiry: time.Now().Add(time.Hour)}, nil
		})
		if err != nil {
			return err
		}
		fmt.Println(t.AccessToken)
		return nil
	case "hang":
		// Acquire under the lock, say so, and hang until killed.
		_, err := c.Get(ctx, helper.Request{Profile: procReq.Profile, Scopes: procReq.Scopes, Audiences: procReq.Audiences, Force: true},
			func(ctx context.Context) (*helper.Token, error) {
				fmt.Println("acquiring")
				_, _ = io.Copy(io.Discard, os.Stdin)
				return nil, errors.New("stdin closed")
			})
		return err
	case "writer":
		// Store big tokens in a loop, reporting each write, until killed.
		for i := 0; ; i++ {
			if err := c.Put(ctx, procReq, &helper.Token{AccessToken: bigToken(i), Expiry: time.Now().Add(time.Hour)}); err != nil {
				return err
			}
			fmt.Println("wrote", i)
		}
	}
	return fmt.Errorf("unknown role")
}

// bigToken is a ~30 KiB token whose content tells which write it came from.
func bigToken(i int) string {
	return fmt.Sprintf("w%08d.", i) + strings.Repeat(strconv.Itoa(i%10), 30<<10)
}

func roleCmd(t *testing.T, role, dir string, extraEnv ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), roleEnv+"="+role, "CACHE_DIR="+dir)
	cmd.Env = append(cmd.Env, extraEnv...)
	cmd.Stderr = os.Stderr
	return cmd
}

// TestProcessesOneAcquisition: many processes asking at once on an
// expired entry cause exactly one acquisition, and all get its token.
func TestProcessesOneAcquisition(t *testing.T) {
	const n = 60
	dir := filepath.Join(t.TempDir(), "tokens")
	counter := filepath.Join(t.TempDir(), "acquisitions")
	c := &Cache{Dir: dir, Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }}
	if err := c.Put(context.Background(), procReq, &helper.Token{AccessToken: "expired", Expiry: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}

	type proc struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		out   *bufio.Reader
	}
	procs := make([]proc, n)
	for i := range procs {
		cmd := roleCmd(t, "get", dir, "CACHE_COUNTER="+counter)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs[i] = proc{cmd, stdin, bufio.NewReader(stdout)}
	}
	t.Cleanup(func() {
		for _, p := range procs {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	})
	for i, p := range procs {
		if line, err := p.out.ReadString('\n'); line != "ready\n" {
			t.Fatalf("process %d: %q, %v", i, line, err)
		}
	}
	for _, p := range procs {
		p.stdin.Close() // go
	}
	tokens := map[string]int{}
	for i, p := range procs {
		line, err := p.out.ReadString('\n')
		if err != nil {
			t.Errorf("process %d: no token (%v)", i, err)
		}
		tokens[strings.TrimSpace(line)]++
		if err := p.cmd.Wait(); err != nil {
			t.Errorf("process %d: %v", i, err)
		}
	}
	b, err := os.ReadFile(counter)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(string(b), "\n"); lines != 1 {
		t.Errorf("%d acquisitions by processes %q, want exactly 1", lines, strings.Fields(string(b)))
	}
	want := "tok-" + strings.TrimSpace(string(b))
	if len(tokens) != 1 || tokens[want] != n {
		t.Errorf("tokens handed out: %v, want all %d to be %s", tokens, n, want)
	}
	checkPrivate(t, dir)
}

// TestKilledMidAcquire: a process killed (SIGKILL) while it holds the lock
// in the middle of an acquisition leaves the old entry intact, and the
// next caller proceeds at once.
func TestKilledMidAcquire(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tokens")
	c := &Cache{Dir: dir, LockTimeout: 10 * time.Second}
	ctx := context.Background()
	old := &helper.Token{AccessToken: "old", Expiry: time.Now().Add(time.Hour)}
	if err := c.Put(ctx, procReq, old); err != nil {
		t.Fatal(err)
	}
	for round := range 5 {
		cmd := roleCmd(t, "hang", dir)
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer stdin.Close()
		if line, err := bufio.NewReader(stdout).ReadString('\n'); line != "acquiring\n" {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("round %d: %q, %v", round, line, err)
		}
		// It holds the entry lock now.
		lockPath := filepath.Join(dir, keyOf(procReq).base()+".lock")
		if u, err := lockFile(ctx, lockPath, 20*time.Millisecond, nil); err == nil {
			u()
			t.Fatal("the lock is free while a process is acquiring")
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait() // killed

		if got := stored(t, c, procReq); got != "old" {
			t.Fatalf("round %d: entry after the kill holds %q, want the old token", round, got)
		}
		// The kernel released the dead process's lock: it is free at once.
		u, err := lockFile(ctx, lockPath, time.Second, func() { t.Errorf("round %d: lock still busy after the holder died", round) })
		if err != nil {
			t.Fatal(err)
		}
		u()
		tk, err := c.Get(ctx, helper.Request{Profile: procReq.Profile, Scopes: procReq.Scopes, Audiences: procReq.Audiences, Force: true},
			func(context.Context) (*helper.Token, error) {
				return &helper.Token{AccessToken: "new" + strconv.Itoa(round), Expiry: time.Now().Add(time.Hour)}, nil
			})
		if err != nil {
			t.Fatal(err)
		}
		if tk.AccessToken != "new"+strconv.Itoa(round) {
			t.Errorf("round %d: got %q", round, tk.AccessToken)
		}
		if err := c.Put(ctx, procReq, old); err != nil {
			t.Fatal(err)
		}
	}
}

// TestKilledMidWrite: readers never see a torn entry while a writer
// writes, and writers killed at random points (sometimes in the middle of
// writing an entry) never leave one; the next writer cleans up their
// temporary files.
func TestKilledMidWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tokens")
	c := &Cache{Dir: dir, LockTimeout: 10 * time.Second}
	ctx := context.Background()
	entry := filepath.Join(dir, keyOf(procReq).base()+".json")
	rounds := 25
	if testing.Short() {
		rounds = 5
	}
	for round := range rounds {
		cmd := roleCmd(t, "writer", dir)
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		out := bufio.NewReader(stdout)
		writes := 1 + rand.IntN(15)
		last := -1
		for range writes {
			line, err := out.ReadString('\n')
			if err != nil {
				t.Fatalf("round %d: writer stopped: %v", round, err)
			}
			if _, err := fmt.Sscanf(line, "wrote %d", &last); err != nil {
				t.Fatalf("round %d: writer said %q: %v", round, line, err)
			}
			// Read as the warm path does, while the writer writes.
			data, err := readPrivate(entry)
			if err == nil {
				_, err = decodeEntry(data)
			}
			if err != nil {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("round %d: reading during writes: %v", round, err)
			}
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait() // killed

		data, err := os.ReadFile(entry)
		if err != nil {
			t.Fatal(err)
		}
		e, err := decodeEntry(data)
		if err != nil {
			t.Fatalf("round %d: torn entry after the kill: %v", round, err)
		}
		// The entry is one whole write, no older than the last reported
		// (the writer may have gone on before our reading caught up).
		var j int
		if _, err := fmt.Sscanf(e.token.AccessToken, "w%08d.", &j); err != nil || e.token.AccessToken != bigToken(j) || j < last {
			t.Fatalf("round %d: entry is %.9s..., want a whole write from %d on", round, e.token.AccessToken, last)
		}
		if _, err := c.Get(ctx, procReq, nil); err != nil {
			t.Fatalf("round %d: Get after the kill: %v", round, err)
		}
	}
	if err := c.Put(ctx, procReq, &helper.Token{AccessToken: "final", Expiry: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	checkPrivate(t, dir) // no temporary files left by the killed writers
}
