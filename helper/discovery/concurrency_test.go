package discovery

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// checkFinalState: one token file, mode 0600, holding a complete token,
// and no temporary file left next to it.
func checkFinalState(t *testing.T, s *sandbox) {
	t.Helper()
	if names := entries(t, s.xdg); len(names) != 1 || names[0] != FileName(s.uid) {
		t.Errorf("%s holds %v, want only %s (temporary files left?)", s.xdg, names, FileName(s.uid))
	}
	if m := mode(t, s.xdgFile()); m != 0o600 {
		t.Errorf("final mode %v, want 0600", m)
	}
	res, err := Find(s.env())
	if err != nil || !validToken(res.Token) || len(res.Warnings) != 0 {
		t.Errorf("final Find = %+v, %v", res, err)
	}
}

// readUntil runs Find in a loop until stop is closed and returns how many
// reads it made; any read that is not a complete token fails the test.
func readUntil(t *testing.T, env Env, stop <-chan struct{}) int {
	n := 0
	for {
		select {
		case <-stop:
			return n
		default:
		}
		res, err := Find(env)
		n++
		if err != nil {
			t.Errorf("read %d: %v", n, err)
			return n
		}
		if !validToken(res.Token) {
			t.Errorf("read %d: torn or partial token (%d bytes)", n, len(res.Token))
			return n
		}
	}
}

func TestConcurrentGoroutines(t *testing.T) {
	s := newSandbox(t)
	s.vars[VarXDGRuntimeDir] = s.xdg
	s.vars[VarBearerTokenFile] = "" // set but empty: skipped
	env := s.env()
	rng := rand.New(rand.NewPCG(1, 2))
	if _, err := Write(env, makeToken(rng, 0, 0), WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	const writers, readers, iter = 6, 4, 30
	stop := make(chan struct{})
	var reads atomic.Int64
	var rwg, wwg sync.WaitGroup
	for r := range readers {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			if n := readUntil(t, env, stop); n < 1 {
				t.Errorf("reader %d read nothing", r)
			} else {
				reads.Add(int64(n))
			}
		}()
	}
	for w := 1; w <= writers; w++ {
		wwg.Add(1)
		go func() {
			defer wwg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 3))
			for i := range iter {
				// Half write to the default location, half to the same
				// file named explicitly.
				opts := WriteOptions{}
				if w%2 == 0 {
					opts.Path = s.xdgFile()
				}
				if _, err := Write(env, makeToken(rng, w, i), opts); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		}()
	}
	wwg.Wait()
	close(stop)
	rwg.Wait()
	t.Logf("%d writes, %d reads", writers*iter, reads.Load())
	checkFinalState(t, s)
}

// TestConcurrentProcesses: 24 processes (the test binary re-executed)
// each write their own tokens to the same discovery location and read it
// back, while this process reads too. Every read must be one complete
// token.
func TestConcurrentProcesses(t *testing.T) {
	const procs, iter = 24, 40
	s := newSandbox(t)
	s.vars[VarXDGRuntimeDir] = s.xdg
	s.tmp = s.root + "/no-tmp" // a fallback to /tmp would show as an error
	env := s.env()
	if _, err := Write(env, makeToken(rand.New(rand.NewPCG(0, 0)), 0, 0), WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	type child struct {
		cmd    *exec.Cmd
		stdin  io.WriteCloser
		stdout bytes.Buffer
		stderr bytes.Buffer
	}
	children := make([]*child, procs)
	for i := range children {
		c := &child{cmd: exec.Command(exe, "-test.run=^$")}
		c.cmd.Env = append(os.Environ(), helperVar+"=hammer", "DISCOVERY_TEST_DIR="+s.xdg,
			"DISCOVERY_TEST_ID="+strconv.Itoa(i+1), "DISCOVERY_TEST_ITER="+strconv.Itoa(iter))
		c.cmd.Stdout, c.cmd.Stderr = &c.stdout, &c.stderr
		if c.stdin, err = c.cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		if err := c.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		children[i] = c
	}
	// Start barrier: every child waits for EOF on stdin.
	for _, c := range children {
		c.stdin.Close()
	}
	stop := make(chan struct{})
	done := make(chan int)
	go func() { done <- readUntil(t, env, stop) }()
	for i, c := range children {
		if err := c.cmd.Wait(); err != nil {
			t.Errorf("process %d: %v\n%s", i+1, err, c.stderr.Bytes())
			continue
		}
		if want := fmt.Sprintf("ok %d\n", iter); c.stdout.String() != want {
			t.Errorf("process %d printed %q, want %q", i+1, c.stdout.String(), want)
		}
	}
	close(stop)
	t.Logf("%d processes × %d write+read, %d reads here", procs, iter, <-done)
	checkFinalState(t, s)
}
