//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package secret

import (
	"errors"
	"os"
)

func noEcho(tty *os.File) (restore func(), err error) {
	return nil, errors.New("passphrase prompts without echo are not supported on this system")
}
