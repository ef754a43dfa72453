//go:build linux

package secret

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tokenhelper/tokenhelper/helper"
)

// openPTY returns the master and slave of a new pseudo-terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	rc, _ := m.SyscallConn()
	var n uint32
	var ioErr error
	ctlErr := rc.Control(func(fd uintptr) {
		if ioErr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ioErr == nil {
			n, ioErr = unix.IoctlGetUint32(int(fd), unix.TIOCGPTN)
		}
	})
	if ctlErr != nil {
		t.Fatal(ctlErr)
	}
	if ioErr != nil {
		t.Fatalf("unlockpt/ptsname: %v", ioErr)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open slave: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// readUntil reads from the master until want has appeared, and returns
// everything read.
func readUntil(t *testing.T, m *os.File, want string) string {
	t.Helper()
	if err := m.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.SetReadDeadline(time.Time{}) }()
	var got []byte
	buf := make([]byte, 256)
	for !strings.Contains(string(got), want) {
		n, err := m.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("reading terminal output %q (want %q): %v", got, want, err)
		}
	}
	return string(got)
}

func echoOn(t *testing.T, f *os.File) bool {
	t.Helper()
	rc, _ := f.SyscallConn()
	var tio *unix.Termios
	var err error
	if cerr := rc.Control(func(fd uintptr) { tio, err = unix.IoctlGetTermios(int(fd), unix.TCGETS) }); cerr != nil {
		t.Fatal(cerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	return tio.Lflag&unix.ECHO != 0
}

func TestTTYPrompter(t *testing.T) {
	m, s := openPTY(t)
	p := &TTYPrompter{TTY: s}
	if !p.Terminal() {
		t.Fatal("pty slave is not a terminal")
	}
	if !echoOn(t, s) {
		t.Fatal("echo off before the prompt")
	}
	type res struct {
		pass string
		err  error
	}
	done := make(chan res, 1)
	go func() {
		pass, err := p.Secret("Passphrase for profile cms: ")
		done <- res{pass, err}
	}()
	// The prompt appears once echo is off; only then type.
	readUntil(t, m, "Passphrase for profile cms: ")
	if _, err := m.Write([]byte("hunter2 secret\n")); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.pass != "hunter2 secret" {
		t.Fatalf("Secret = %q, %v", r.pass, r.err)
	}
	out := readUntil(t, m, "\n")
	if strings.Contains(out, "hunter2") {
		t.Errorf("passphrase echoed: %q", out)
	}
	if !echoOn(t, s) {
		t.Error("echo not restored")
	}
}

func TestTTYPrompterInterrupt(t *testing.T) {
	m, s := openPTY(t)
	stop := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		_, err := readSecret(s, s, "Passphrase: ", stop)
		errc <- err
	}()
	readUntil(t, m, "Passphrase: ")
	if echoOn(t, s) {
		t.Fatal("echo on while prompting")
	}
	close(stop) // what Ctrl-C does
	err := <-errc
	if !errors.Is(err, ErrInterrupted) || !helper.IsKind(err, helper.KindUsage) {
		t.Fatalf("err = %v", err)
	}
	if !echoOn(t, s) {
		t.Error("echo not restored after interrupt")
	}
}

func TestTTYPrompterEOFAndNoTerminal(t *testing.T) {
	m, s := openPTY(t)
	done := make(chan error, 1)
	go func() {
		_, err := (&TTYPrompter{TTY: s}).Secret("Passphrase: ")
		done <- err
	}()
	readUntil(t, m, "Passphrase: ")
	if _, err := m.Write([]byte{4}); err != nil {
		t.Fatal(err)
	} // Ctrl-D on an empty line
	if err := <-done; !helper.IsKind(err, helper.KindUsage) {
		t.Errorf("Ctrl-D: %v", err)
	}

	f, err := os.CreateTemp(t.TempDir(), "notatty")
	if err != nil {
		t.Fatal(err)
	}
	p := &TTYPrompter{TTY: f}
	if p.Terminal() {
		t.Error("a regular file is a terminal")
	}
	if _, err := p.Secret("x"); !helper.IsKind(err, helper.KindLoginNeeded) {
		t.Errorf("Secret without terminal: %v", err)
	}
	var nilP *TTYPrompter
	if nilP.Terminal() {
		t.Error("nil prompter is a terminal")
	}
}

// The whole interactive unlock through a real terminal.
func TestUnlockerOnTTY(t *testing.T) {
	m, s := openPTY(t)
	k := testKey(t)
	mustCreate(t, k, "pw")
	u := &Unlocker{Prompter: &TTYPrompter{TTY: s}, Options: testOpts()}
	errc := make(chan error, 1)
	go func() {
		_, err := u.Open(context.Background(), k)
		errc <- err
	}()
	readUntil(t, m, "Passphrase for profile cms: ")
	if _, err := m.Write([]byte("bad\n")); err != nil {
		t.Fatal(err)
	}
	readUntil(t, m, "Wrong passphrase, try again (2 of 3)")
	if _, err := m.Write([]byte("pw\n")); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
