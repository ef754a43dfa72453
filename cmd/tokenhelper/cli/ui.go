package cli

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/term"

	"github.com/tokenhelper/tokenhelper/helper"
)

// termUI is how backends talk to the person at the terminal: messages on
// stderr, secrets read from the terminal without echo.
type termUI struct{ sys *System }

func (a *app) ui() helper.UI { return termUI{a.sys} }

func (u termUI) Out() io.Writer { return u.sys.Stderr }
func (u termUI) Terminal() bool { return u.sys.Interactive() }
func (u termUI) Now() time.Time { return u.sys.Now() }
func (u termUI) Secret(prompt string) (string, error) {
	if !u.sys.Interactive() {
		return "", &helper.Error{Kind: helper.KindLoginNeeded, Msg: "a passphrase is needed but there is no terminal to ask on"}
	}
	if u.sys.ReadSecret != nil {
		return u.sys.ReadSecret(prompt)
	}
	f, ok := u.sys.Stdin.(*os.File)
	if !ok {
		return "", &helper.Error{Kind: helper.KindLoginNeeded, Msg: "a passphrase is needed but stdin is not a terminal"}
	}
	fmt.Fprint(u.sys.Stderr, prompt)
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(u.sys.Stderr)
	if err != nil {
		return "", helper.Wrap(helper.KindLoginNeeded, err, "cannot read the passphrase from the terminal")
	}
	return string(b), nil
}
