//go:build unix

package secret

import (
	"os/exec"
	"syscall"
)

// ownProcessGroup puts the command and everything it starts into a new
// process group, and makes cancellation kill that whole group, so a hung
// passphrase_cmd leaves nothing running behind. (A command that reads the
// controlling terminal directly is stopped by SIGTTIN and then killed at
// the deadline: passphrase_cmd must not be interactive.)
func ownProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killProcessGroup(cmd) }
}

func killProcessGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil || cmd.Process.Pid <= 0 {
		return nil
	}
	return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
