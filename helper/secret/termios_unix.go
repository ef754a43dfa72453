//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package secret

import (
	"os"

	"golang.org/x/sys/unix"
)

// noEcho clears ECHO (keeping ICANON and ISIG, so the line discipline
// still edits the line and Ctrl-C still signals) and returns the undo.
func noEcho(tty *os.File) (restore func(), err error) {
	rc, err := tty.SyscallConn()
	if err != nil {
		return nil, err
	}
	var old unix.Termios
	var ioErr error
	if err := rc.Control(func(fd uintptr) {
		t, err := unix.IoctlGetTermios(int(fd), ioctlGetTermios)
		if err != nil {
			ioErr = err
			return
		}
		old = *t
		t.Lflag &^= unix.ECHO
		t.Lflag |= unix.ICANON | unix.ISIG
		t.Iflag |= unix.ICRNL
		ioErr = unix.IoctlSetTermios(int(fd), ioctlSetTermios, t)
	}); err != nil {
		return nil, err
	}
	if ioErr != nil {
		return nil, ioErr
	}
	return func() {
		_ = rc.Control(func(fd uintptr) { _ = unix.IoctlSetTermios(int(fd), ioctlSetTermios, &old) })
	}, nil
}
