//go:build unix

package native

import (
	"errors"
	"syscall"
)

// syscallNoFollow makes opening a symbolic link fail (ELOOP).
const syscallNoFollow = syscall.O_NOFOLLOW

func isSymlinkErr(err error) bool { return errors.Is(err, syscall.ELOOP) }
