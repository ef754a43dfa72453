//go:build linux

package execenv

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// sysProcAttr makes the kernel send SIGTERM to the command if tokenhelper
// dies without forwarding anything (SIGKILL, a crash): otherwise it would
// go on with a token file that is no longer renewed.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}

// ForegroundTerminal reports whether f is a terminal whose foreground
// process group is ours: then a SIGINT or SIGQUIT typed there reached the
// command (same process group) as well as tokenhelper.
func ForegroundTerminal(f *os.File) bool {
	if f == nil {
		return false
	}
	pgrp, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCGPGRP)
	return err == nil && pgrp == unix.Getpgrp()
}
