// Package execenv runs a command with a bearer token where WLCG Bearer
// Token Discovery consumers (WLCG-AuthZ-WG bearer-token-discovery, zenodo
// 3937438: xrootd, gfal2, davix, scitokens-cpp, htgettoken's users) look
// for it: BEARER_TOKEN_FILE names a private file (0600 in a 0700 directory
// of its own) that is renewed before it expires for as long as the command
// runs (see integrations/renew), and optionally BEARER_TOKEN holds the
// token itself (gfal2 2.21's HTTP plugin reads only that variable; it
// cannot be renewed inside a running process). It is `tokenhelper exec`
// and `tokenhelper shell`, in the manner of htgettoken's httokensh and
// oidc-agent's oidc-tokensh.
//
// The command gets the signals tokenhelper receives (INT, TERM, HUP, QUIT,
// USR1, USR2), and its exit status is passed through: N for exit(N),
// 128+S when killed by signal S, 127 when it cannot be found and 126 when
// it cannot be executed (as env(1) and POSIX shells do). The token file and
// its directory are removed when the command ends; directories left by a
// tokenhelper that was killed (SIGKILL) are removed by the next run.
package execenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/discovery"
	"github.com/tokenhelper/tokenhelper/helper/safefile"
	"github.com/tokenhelper/tokenhelper/integrations/renew"
)

// Signals are forwarded to the command.
var Signals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

// TokenFileName is the name of the token file in its directory.
const TokenFileName = "bt"

// Child is the command to run.
type Child struct {
	// Path is the executable (see LookPath); Args is its argv, Args[0]
	// included.
	Path string
	Args []string
	// Env is the environment ("K=V"); see ChildEnv.
	Env []string
	// Dir is the working directory ("" = ours).
	Dir    string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// ExtraFiles become file descriptors 3, 4, ... of the command.
	ExtraFiles []*os.File
}

// RunOptions tune Run.
type RunOptions struct {
	// KeyboardSignals, when set, is asked when SIGINT or SIGQUIT arrives:
	// true means the signal came from the terminal, which sent it to the
	// command as well (it is in the foreground process group with us), so
	// it is not sent a second time. See ForegroundTerminal.
	KeyboardSignals func() bool
	// Started is called with the command's pid once it runs.
	Started func(pid int)
}

// StartError is a command that could not be started. Code is the exit
// status to report: 127 (not found) or 126 (not executable).
type StartError struct {
	Code int
	Msg  string
	Err  error
}

func (e *StartError) Error() string { return e.Msg }
func (e *StartError) Unwrap() error { return e.Err }

// Run starts the command, forwards Signals to it until it ends and returns
// its exit status: N for exit(N), 128+S when signal S killed it. The error
// is a *StartError when it could not be started.
func Run(c Child, o RunOptions) (int, error) {
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, Signals...)
	defer signal.Stop(sigs)

	cmd := &exec.Cmd{
		Path: c.Path, Args: c.Args, Env: c.Env, Dir: c.Dir,
		Stdin: c.Stdin, Stdout: c.Stdout, Stderr: c.Stderr,
		ExtraFiles:  c.ExtraFiles,
		SysProcAttr: sysProcAttr(),
	}
	if err := cmd.Start(); err != nil {
		return 0, startError(c.Path, err)
	}
	if o.Started != nil {
		o.Started(cmd.Process.Pid)
	}
	done := make(chan struct{})
	var werr error
	go func() { werr = cmd.Wait(); close(done) }()
	for {
		select {
		case s := <-sigs:
			if (s == syscall.SIGINT || s == syscall.SIGQUIT) && o.KeyboardSignals != nil && o.KeyboardSignals() {
				continue
			}
			_ = cmd.Process.Signal(s)
		case <-done:
			if cmd.ProcessState == nil {
				return 1, werr
			}
			return ExitStatus(cmd.ProcessState), nil
		}
	}
}

// ExitStatus maps a finished process to a shell-style exit status.
func ExitStatus(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

func startError(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, exec.ErrNotFound):
		return &StartError{Code: 127, Msg: path + ": command not found", Err: err}
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.ENOEXEC), errors.Is(err, syscall.EISDIR):
		return &StartError{Code: 126, Msg: path + ": cannot execute: " + errText(err), Err: err}
	}
	return &StartError{Code: 126, Msg: path + ": cannot start: " + errText(err), Err: err}
}

func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return err.Error()
}

// LookPath finds an executable the way a shell does, in the directories of
// pathList (the child's PATH) rather than in ours. A name with a slash is
// used as it is. The error is a *StartError (127 or 126).
func LookPath(name, pathList string) (string, error) {
	if name == "" {
		return "", &StartError{Code: 127, Msg: "no command given"}
	}
	if strings.Contains(name, "/") {
		if err := executable(name); err != nil {
			return "", startError(name, err)
		}
		return name, nil
	}
	var denied error
	for _, dir := range filepath.SplitList(pathList) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		err := executable(p)
		if err == nil {
			if !filepath.IsAbs(p) {
				if abs, aerr := filepath.Abs(p); aerr == nil {
					p = abs
				}
			}
			return p, nil
		}
		if denied == nil && errors.Is(err, fs.ErrPermission) {
			denied = err
		}
	}
	if denied != nil {
		return "", &StartError{Code: 126, Msg: name + ": permission denied", Err: denied}
	}
	return "", &StartError{Code: 127, Msg: name + ": command not found (PATH=" + pathList + ")", Err: exec.ErrNotFound}
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return &fs.PathError{Op: "exec", Path: p, Err: syscall.EISDIR}
	}
	if fi.Mode()&0o111 == 0 {
		return &fs.PathError{Op: "exec", Path: p, Err: fs.ErrPermission}
	}
	return nil
}

// ChildEnv returns environ for the command: BEARER_TOKEN_FILE=file, and
// BEARER_TOKEN=token when envToken. Without envToken an inherited
// BEARER_TOKEN is removed, because discovery reads it before the file and
// an old one would shadow the renewed file.
func ChildEnv(environ []string, file, token string, envToken bool) []string {
	out := make([]string, 0, len(environ)+2)
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if k == discovery.VarBearerToken || k == discovery.VarBearerTokenFile {
			continue
		}
		out = append(out, kv)
	}
	out = append(out, discovery.VarBearerTokenFile+"="+file)
	if envToken {
		out = append(out, discovery.VarBearerToken+"="+discovery.Trim(token))
	}
	return out
}

// TokenDir is the private directory of one run's token file.
type TokenDir struct {
	// Dir is base/exec-PID-RANDOM, mode 0700.
	Dir string
	// File is Dir/bt, the token file (mode 0600 once written).
	File string
}

// NewTokenDir creates a private directory for a token file under base
// (created with mode 0700 when missing; it must be ours). Directories of
// earlier runs whose tokenhelper process no longer exists are removed
// first.
func NewTokenDir(base string) (*TokenDir, error) {
	if err := safefile.MkdirPrivate(base); err != nil {
		return nil, helper.Wrap(helper.KindUnsafe, err, "cannot use "+base+" for the token file: "+err.Error()).
			WithFix("make it a directory of yours with mode 0700, or set XDG_RUNTIME_DIR to one")
	}
	sweep(base)
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, helper.Wrap(helper.KindInternal, err, "no randomness for a directory name")
	}
	dir := filepath.Join(base, fmt.Sprintf("exec-%d-%s", os.Getpid(), hex.EncodeToString(rnd[:])))
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, helper.Wrap(helper.KindInternal, err, "cannot create "+dir+": "+errText(err))
	}
	return &TokenDir{Dir: dir, File: filepath.Join(dir, TokenFileName)}, nil
}

// Remove deletes the token file and the directory.
func (d *TokenDir) Remove() error {
	if err := os.Remove(d.File); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Remove(d.Dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// sweep removes exec-PID-* directories of processes that are gone.
func sweep(base string) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), "exec-")
		if !ok || !e.IsDir() {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid <= 0 || processAlive(pid) {
			continue
		}
		p := filepath.Join(base, e.Name())
		fi, err := os.Lstat(p)
		if err != nil || !fi.IsDir() {
			continue
		}
		if uid, ok := safefile.Owner(fi); ok && uid != os.Geteuid() {
			continue
		}
		_ = os.RemoveAll(p)
	}
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Options configure Exec.
type Options struct {
	// Child is the command; Exec sets its environment from Child.Env
	// through ChildEnv.
	Child Child
	// Base is the directory under which the token directory is made
	// ($XDG_RUNTIME_DIR/tokenhelper, else the cache directory).
	Base string
	// Token is the first token, obtained by the caller (so that its
	// errors, and any login, come before the command starts).
	Token *helper.Token
	// Source gets renewed tokens, without a person at hand.
	Source renew.Source
	// Name says where tokens come from, for log lines.
	Name string
	// MinValid: the file's token is renewed at the latest when less than
	// this is left (besides the fraction of its lifetime).
	MinValid time.Duration
	// EnvToken also sets BEARER_TOKEN (not renewed).
	EnvToken bool
	// Renewer keeps the file fresh (its Env, logs and timing are used).
	Renewer *renew.Renewer
	// Run is passed to Run.
	Run RunOptions
	// Ready, when set, is called with the token file's path once it is
	// written, before the command starts.
	Ready func(file string)
}

// Exec writes the token to a new private file, runs the command with
// BEARER_TOKEN_FILE pointing at it while a renewer keeps it fresh, and
// removes the file when the command has ended. It returns the command's
// exit status (see Run); errors before the start are *helper.Error (the
// token file) or *StartError. A token directory that cannot be removed
// does not change the exit status: it is reported through Renewer.Warn.
func Exec(o Options) (int, error) {
	if o.Token == nil || o.Token.AccessToken == "" {
		return 0, helper.Errorf(helper.KindInternal, "exec: no token")
	}
	r := o.Renewer
	if r == nil {
		r = &renew.Renewer{}
	}
	td, err := NewTokenDir(o.Base)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err := td.Remove(); err != nil && r.Warn != nil {
			r.Warn(fmt.Sprintf("cannot remove the token directory %s (%s): remove it with rm -r %s", td.Dir, errText(err), td.Dir))
		}
	}()
	if _, err := discovery.Write(r.Env, o.Token.AccessToken, discovery.WriteOptions{Path: td.File}); err != nil {
		return 0, err
	}
	c := o.Child
	c.Env = ChildEnv(c.Env, td.File, o.Token.AccessToken, o.EnvToken)
	if o.Ready != nil {
		o.Ready(td.File)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = r.Run(ctx, []renew.Output{{
			Name: o.Name, Path: td.File, Source: o.Source, MinValid: o.MinValid, Current: o.Token,
		}})
	}()
	code, err := Run(c, o.Run)
	cancel()
	wg.Wait()
	return code, err
}
