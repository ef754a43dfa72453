package native

import (
	"context"
	"errors"
	"io/fs"

	"github.com/tokenhelper/tokenhelper/helper"
)

// ChangePassphrase re-encrypts the profile's key under a new passphrase,
// asked twice at the terminal. The current key is unlocked by a
// passphrase source, the unlock cache (so a forgotten passphrase can still
// be replaced while the profile is unlocked) or a prompt. The refresh
// token, client secret and registration token stay as they are.
func (b *Backend) ChangePassphrase(ctx context.Context) error {
	if err := b.requireKey(); err != nil {
		return err
	}
	if !b.terminal() {
		return helper.Errorf(helper.KindUsage, "changing the passphrase needs a terminal to type the new one twice").
			WithFix("run tokenhelper passwd%s in a terminal", b.flag())
	}
	return b.unlocker(true).ChangePassphrase(ctx, b.st.key())
}

// Lock forgets the profile's unlock (kernel keyring), so the next refresh
// needs the passphrase again.
func (b *Backend) Lock() error {
	if err := b.requireKey(); err != nil {
		return err
	}
	return b.unlocker(false).Lock(b.st.key())
}

// UnlockedUntil reports until when the profile stays unlocked.
func (b *Backend) UnlockedUntil() (until string, ok bool) {
	t, ok := b.unlocker(false).UnlockedUntil(b.st.key())
	if !ok {
		return "", false
	}
	return t.Format("2006-01-02 15:04:05 MST"), true
}

func (b *Backend) requireKey() error {
	ok, err := b.st.key().Exists()
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if !ok {
		return helper.Errorf(helper.KindLoginNeeded, "profile %q has no stored credentials", b.p.Name).
			WithFix("run: tokenhelper register%s", b.flag())
	}
	return nil
}
