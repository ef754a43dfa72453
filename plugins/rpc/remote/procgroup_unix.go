//go:build unix

package remote

import (
	"os/exec"
	"syscall"
)

// ownProcessGroup starts the companion in a new process group, so that
// the plugin it starts can be killed with it, and so that a Ctrl-C at the
// terminal reaches tokenhelper alone, which then stops the call in order.
func ownProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// terminate asks the companion to stop the call (it kills the plugin and
// answers).
func terminate(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Signal(syscall.SIGTERM)
	}
}

// killGroup kills the companion and everything in its process group.
func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil && cmd.Process.Pid > 0 {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
