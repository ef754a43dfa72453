//go:build unix && !linux

package command

import "syscall"

func setParentDeathSignal(a *syscall.SysProcAttr) {}
