package command

import "syscall"

// setParentDeathSignal kills the command if the plugin process dies
// before it (the host killed a plugin that overran its deadline).
func setParentDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
