//go:build linux

package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a child process the harness started: in its own process
// group, its output appended to a log file and kept in memory (the tail),
// stopped by its pid.
type Process struct {
	// Name is what the process is called in messages ("xrootd").
	Name string

	cmd   *exec.Cmd
	start uint64 // start time in clock ticks since boot (/proc/PID/stat)
	out   *tail
	logf  *os.File
	done  chan struct{}
	err   error
	stop  sync.Once
}

// startProcess starts cmd in a new process group with its stdout and
// stderr appended to logPath. The caller records it in a Run.
func startProcess(name string, cmd *exec.Cmd, logPath string) (*Process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	p := &Process{Name: name, cmd: cmd, out: &tail{max: 64 << 10}, logf: logf, done: make(chan struct{})}
	w := io.MultiWriter(logf, p.out)
	cmd.Stdout, cmd.Stderr = w, w
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("cannot start %s: %w", name, err)
	}
	p.start, _ = processStart(cmd.Process.Pid)
	go func() {
		p.err = cmd.Wait()
		_ = logf.Close()
		close(p.done)
	}()
	return p, nil
}

// PID is the process id (also its process group id).
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.done }

// ExitErr is the process's exit status once Exited is closed.
func (p *Process) ExitErr() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// Output returns the last 64 KiB the process wrote.
func (p *Process) Output() string { return p.out.String() }

// Stop sends SIGTERM to the process group, waits up to grace for the
// process to exit, then sends SIGKILL to what is left of the group and
// waits until no process of the group runs. It is safe to call more than
// once and after the process exited.
func (p *Process) Stop(grace time.Duration) error {
	var err error
	p.stop.Do(func() {
		pid := p.PID()
		select {
		case <-p.done:
			if !groupAlive(pid) {
				return // exited, and nothing of its group is left
			}
		default:
		}
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-p.done:
		case <-t.C:
		}
		if groupAlive(pid) {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			err = fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.Name, pid)
			return
		}
		// Other members of the group are not our children: poll.
		deadline := time.Now().Add(10 * time.Second)
		for delay := time.Millisecond; groupAlive(pid); delay = min(2*delay, 100*time.Millisecond) {
			if time.Now().After(deadline) {
				err = fmt.Errorf("processes of %s's group (%d) survived SIGKILL", p.Name, pid)
				return
			}
			time.Sleep(delay)
		}
	})
	return err
}

// groupAlive reports whether a process of process group pgid runs (zombies
// do not count).
func groupAlive(pgid int) bool {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		// f[0] state (field 3), f[2] pgrp (field 5).
		if len(f) > 2 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" && pid > 0 {
			return true
		}
	}
	return false
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// processStart returns the start time of pid in clock ticks since boot
// (field 22 of /proc/PID/stat): with the pid it names one process, even
// after the pid is reused.
func processStart(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may contain spaces
	// and parentheses: the fields after it start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); field 22 is f[19].
	if len(f) < 20 {
		return 0, errors.New("malformed /proc stat")
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// alive reports whether the process pid that started at start still runs
// (start 0: any process with that pid). A zombie counts as gone.
func alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	got, err := processStart(pid)
	if err != nil {
		return false
	}
	if start != 0 && got != start {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'Z' {
		return false
	}
	return true
}
