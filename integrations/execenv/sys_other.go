//go:build !linux

package execenv

import (
	"os"
	"syscall"

	"golang.org/x/term"
)

func sysProcAttr() *syscall.SysProcAttr { return nil }

// ForegroundTerminal reports whether f is a terminal (without the process
// group check of the Linux version): a SIGINT typed there reached the
// command too.
func ForegroundTerminal(f *os.File) bool {
	return f != nil && term.IsTerminal(int(f.Fd()))
}
