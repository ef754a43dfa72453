//go:build linux

package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tokenhelper/tokenhelper/helper/safefile"
)

// runPrefix starts the name of every run directory in the temporary
// directory.
const runPrefix = "tokenhelper-e2e-run-"

// recordFile is the name of a run's record in its directory.
const recordFile = "run.json"

// Run is one end-to-end run: a directory of its own in the temporary
// directory and a record of everything it started or changed outside that
// directory, kept in Dir/run.json so that RecoverStale can undo the work of
// a run that was killed before it could clean up.
//
// Dir has mode 0711: other users (the xrootd user) may pass through it to a
// subdirectory made for them, but cannot list it; every subdirectory made
// by Mkdir is 0700.
type Run struct {
	// Dir is the run's directory.
	Dir string
	// Trust is where TrustCA installs certificates.
	Trust TrustStore

	mu      sync.Mutex
	rec     record
	procs   []*Process
	closers []func() error
	closed  bool
}

// record is the content of run.json.
type record struct {
	OwnerPID   int          `json:"owner_pid"`
	OwnerStart uint64       `json:"owner_start"`
	Processes  []recordProc `json:"processes"`
	CAFiles    []string     `json:"ca_files"`
	PIDFiles   []PIDFile    `json:"pid_files"`
}

// PIDFile names a process started by something the run ran (a shell
// script's background job) through the file its pid is written to.
type PIDFile struct {
	// Path of the file holding the pid (it may not exist yet).
	Path string `json:"path"`
	// Command is the process's name (/proc/PID/comm): a pid in the file
	// is only signalled when it names a process called this, so a stale
	// file never hits an unrelated process.
	Command string `json:"command"`
}

// pid returns the live process the file names, or 0.
func (f PIDFile) pid() int {
	b, err := os.ReadFile(f.Path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 || !alive(pid, 0) {
		return 0
	}
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil || strings.TrimSpace(string(comm)) != f.Command {
		return 0
	}
	return pid
}

// stop stops the process the file names, if it still runs: SIGTERM, then
// SIGKILL after grace. It reports whether there was one.
func (f PIDFile) stop(grace time.Duration) bool {
	pid := f.pid()
	if pid == 0 {
		return false
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for delay := 10 * time.Millisecond; f.pid() == pid; delay = min(2*delay, 200*time.Millisecond) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			deadline = time.Now().Add(grace)
		}
		time.Sleep(delay) // the process is not our child: poll for it to go
	}
	return true
}

type recordProc struct {
	Name  string `json:"name"`
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
}

// NewRun creates a run directory in tmp ("" means os.TempDir()).
func NewRun(tmp string, trust TrustStore) (*Run, error) {
	if tmp == "" {
		tmp = os.TempDir()
	}
	dir, err := os.MkdirTemp(tmp, runPrefix)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	start, err := processStart(os.Getpid())
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	r := &Run{Dir: dir, Trust: trust, rec: record{OwnerPID: os.Getpid(), OwnerStart: start}}
	if err := r.save(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return r, nil
}

// save writes run.json atomically. Callers hold r.mu (or own r alone).
func (r *Run) save() error {
	b, err := json.MarshalIndent(r.rec, "", "  ")
	if err != nil {
		return err
	}
	return safefile.WriteFile(filepath.Join(r.Dir, recordFile), append(b, '\n'), 0o600)
}

// Path joins elements to the run directory.
func (r *Run) Path(elem ...string) string {
	return filepath.Join(append([]string{r.Dir}, elem...)...)
}

// errClosed is returned by everything that would create state after Close.
var errClosed = errors.New("the run is closed (its servers were stopped)")

// Mkdir creates a private (0700) directory in the run directory.
func (r *Run) Mkdir(elem ...string) (string, error) {
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return "", errClosed
	}
	p := r.Path(elem...)
	if err := safefile.MkdirPrivate(p); err != nil {
		return "", err
	}
	return p, nil
}

// Start starts cmd as a recorded child process whose output goes to
// Dir/logs/NAME.log. Close stops it.
func (r *Run) Start(name string, cmd *exec.Cmd) (*Process, error) {
	logs, err := r.Mkdir("logs")
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errClosed
	}
	p, err := startProcess(name, cmd, filepath.Join(logs, name+".log"))
	if err != nil {
		return nil, err
	}
	r.procs = append(r.procs, p)
	r.rec.Processes = append(r.rec.Processes, recordProc{Name: name, PID: p.PID(), Start: p.start})
	if err := r.save(); err != nil {
		return p, fmt.Errorf("cannot record %s: %w", name, err)
	}
	return p, nil
}

// TrustCA installs a CA certificate in the system trust store until Close.
func (r *Run) TrustCA(name string, certPEM []byte) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return "", errClosed
	}
	path, err := r.Trust.Install(name, certPEM)
	if err != nil {
		return "", err
	}
	r.rec.CAFiles = append(r.rec.CAFiles, path)
	if err := r.save(); err != nil {
		return path, fmt.Errorf("cannot record %s: %w", path, err)
	}
	return path, nil
}

// WatchPIDFile records a pid file: Close (or RecoverStale after a killed
// run) stops the process it names, if it runs.
func (r *Run) WatchPIDFile(f PIDFile) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errClosed
	}
	r.rec.PIDFiles = append(r.rec.PIDFiles, f)
	return r.save()
}

// RecordCA records a CA file that something the run executes will put in
// the trust store, so that Close (or RecoverStale) takes it out again.
func (r *Run) RecordCA(path string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errClosed
	}
	r.rec.CAFiles = append(r.rec.CAFiles, path)
	return r.save()
}

// OnClose registers f to run at Close, after the processes have stopped
// (last registered, first run). After Close, f runs at once.
func (r *Run) OnClose(f func() error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		_ = f()
		return
	}
	defer r.mu.Unlock()
	r.closers = append(r.closers, f)
}

// Close stops every process (last started first: SIGTERM, then SIGKILL
// after a grace period), runs the OnClose functions, takes the CAs out of
// the trust store and removes the run directory. It returns every error it
// met and is safe to call more than once.
func (r *Run) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	procs, closers, cas, pidFiles := r.procs, r.closers, r.rec.CAFiles, r.rec.PIDFiles
	r.mu.Unlock()

	var errs []error
	for i := len(pidFiles) - 1; i >= 0; i-- {
		pidFiles[i].stop(5 * time.Second)
	}
	for i := len(procs) - 1; i >= 0; i-- {
		if err := procs[i].Stop(5 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	for i := len(closers) - 1; i >= 0; i-- {
		if err := closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	for _, ca := range cas {
		if err := r.Trust.Remove(ca); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(r.Dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// RecoverStale undoes what killed runs left behind in tmp ("" means
// os.TempDir()) and in the trust store: for each run directory whose owner
// process is gone, it kills the recorded processes that still run (by pid,
// checking their start time so a reused pid is never hit), removes the
// recorded CAs from the trust store and deletes the directory; then it
// removes any other CA of this harness whose installing process is gone.
// It returns a line per thing it cleaned up.
func RecoverStale(tmp string, trust TrustStore) ([]string, error) {
	if tmp == "" {
		tmp = os.TempDir()
	}
	var done []string
	var errs []error
	dirs, _ := filepath.Glob(filepath.Join(tmp, runPrefix+"*"))
	for _, dir := range dirs {
		var rec record
		b, err := os.ReadFile(filepath.Join(dir, recordFile))
		if err == nil {
			err = json.Unmarshal(b, &rec)
		}
		if err == nil && alive(rec.OwnerPID, rec.OwnerStart) {
			continue // a run in progress
		}
		if err != nil {
			// No readable record: only a directory old enough cannot
			// belong to a run that is just starting.
			fi, serr := os.Stat(dir)
			if serr != nil || time.Since(fi.ModTime()) < time.Hour {
				continue
			}
		}
		for _, p := range rec.Processes {
			if alive(p.PID, p.Start) {
				_ = syscall.Kill(-p.PID, syscall.SIGKILL)
				_ = syscall.Kill(p.PID, syscall.SIGKILL)
				done = append(done, fmt.Sprintf("killed %s (pid %d) left by run %s", p.Name, p.PID, dir))
			}
		}
		for _, f := range rec.PIDFiles {
			if f.stop(5 * time.Second) {
				done = append(done, fmt.Sprintf("stopped %s (from %s) left by run %s", f.Command, f.Path, dir))
			}
		}
		for _, ca := range rec.CAFiles {
			if err := trust.Remove(ca); err != nil {
				errs = append(errs, err)
				continue
			}
			done = append(done, "removed "+ca+" from the trust store")
		}
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		} else {
			done = append(done, "removed "+dir)
		}
	}
	cas, err := trust.Installed()
	if err != nil {
		errs = append(errs, err)
	}
	for _, ca := range cas {
		if !ca.Stale() {
			continue
		}
		if err := trust.Remove(ca.Path); err != nil {
			errs = append(errs, err)
			continue
		}
		done = append(done, "removed "+ca.Path+" from the trust store")
	}
	return done, errors.Join(errs...)
}

// describe is a one-line summary of a process state for messages.
func describe(p *Process) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (pid %d)", p.Name, p.PID())
	if err := p.ExitErr(); err != nil {
		fmt.Fprintf(&b, " exited: %v", err)
	}
	return b.String()
}
