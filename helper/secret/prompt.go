package secret

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/tokenhelper/tokenhelper/helper"
)

// Prompter asks a person for a passphrase. helper.UI satisfies it.
type Prompter interface {
	// Terminal reports whether a person can answer prompts.
	Terminal() bool
	// Secret shows prompt and reads one line without echo.
	Secret(prompt string) (string, error)
}

// ErrInterrupted is returned by [TTYPrompter.Secret] on Ctrl-C.
var ErrInterrupted = errors.New("interrupted")

// TTYPrompter prompts on a terminal device, normally /dev/tty (so stdin
// and stdout stay free for protocol traffic, e.g. git's credential
// helper). Echo is off while reading and is restored on every exit path,
// including Ctrl-C, which aborts the prompt with ErrInterrupted.
type TTYPrompter struct {
	// TTY is read from and, when Out is nil, written to.
	TTY *os.File
	// Out receives the prompt; nil means TTY.
	Out io.Writer
}

// OpenTTY opens /dev/tty for prompting. It fails (ENXIO) when the process
// has no controlling terminal; callers then have no Prompter. Close it
// with p.TTY.Close().
func OpenTTY() (*TTYPrompter, error) {
	f, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	return &TTYPrompter{TTY: f}, nil
}

// Terminal implements Prompter.
func (p *TTYPrompter) Terminal() bool {
	if p == nil || p.TTY == nil {
		return false
	}
	return isTerminal(p.TTY)
}

// Secret implements Prompter.
func (p *TTYPrompter) Secret(prompt string) (string, error) {
	if !p.Terminal() {
		return "", helper.Errorf(helper.KindLoginNeeded, "no terminal to ask for a passphrase")
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	defer signal.Stop(sig)
	stop := make(chan struct{})
	go func() {
		select {
		case <-sig:
			close(stop)
		case <-stop:
		}
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
	}()
	return readSecret(p.TTY, p.out(), prompt, stop)
}

func (p *TTYPrompter) out() io.Writer {
	if p.Out != nil {
		return p.Out
	}
	return p.TTY
}

func isTerminal(f *os.File) bool {
	ok := false
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	_ = rc.Control(func(fd uintptr) { ok = term.IsTerminal(int(fd)) })
	return ok
}

// readSecret turns echo off on tty, reads a line, and restores the
// terminal. A close of stop aborts the read with ErrInterrupted.
func readSecret(tty *os.File, out io.Writer, prompt string, stop <-chan struct{}) (string, error) {
	restore, err := noEcho(tty)
	if err != nil {
		return "", helper.Wrap(helper.KindInternal, err, "cannot turn off terminal echo")
	}
	restored := false
	undo := func() {
		if !restored {
			restored = true
			restore()
			fmt.Fprintln(out)
		}
	}
	defer undo()
	fmt.Fprint(out, prompt)

	type result struct {
		line string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		line, err := bufio.NewReaderSize(tty, 1024).ReadString('\n')
		done <- result{line, err}
	}()
	select {
	case r := <-done:
		// A last line without a newline (EOF after text) is a passphrase.
		if r.err != nil && (!errors.Is(r.err, io.EOF) || r.line == "") {
			if errors.Is(r.err, io.EOF) {
				return "", helper.Errorf(helper.KindUsage, "no passphrase entered")
			}
			return "", helper.Wrap(helper.KindInternal, r.err, "cannot read from the terminal")
		}
		return strings.TrimRight(r.line, "\r\n"), nil
	case <-stop:
		undo()
		// Unblock the reader where the file supports deadlines (a tty
		// opened with os.OpenFile does); otherwise it ends with the
		// process.
		_ = tty.SetReadDeadline(time.Now())
		return "", helper.Wrap(helper.KindUsage, ErrInterrupted, "passphrase prompt interrupted")
	}
}
