package native

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/cache"
	"github.com/tokenhelper/tokenhelper/helper/secret"
)

// Logout ends the profile's session everywhere it can:
//
//  1. revokes the refresh token at the provider (RFC 7009);
//  2. deletes the client if tokenhelper registered it (RFC 7592), with the
//     registration access token;
//  3. deletes the local state (account.json, the key file, the key's
//     unlock in the kernel keyring).
//
// Steps 1 and 2 need the passphrase. When the provider cannot be reached,
// nothing local is deleted (so logout can be retried) and the error says
// so, naming logout --forget. Access tokens cached for the profile are the
// caller's to delete (cache.DeleteProfile).
//
// With req.Forget, only step 3 runs: no passphrase, no network — the way
// out of a forgotten passphrase (seed 002). It says what remains at the
// provider and how to get rid of it.
func (b *Backend) Logout(ctx context.Context, req helper.LogoutRequest) error {
	if req.UI != nil {
		b.o.UI = req.UI
	}
	if req.Forget {
		return b.forget(ctx)
	}
	a, err := b.st.load()
	if errors.Is(err, errNotRegistered) {
		return b.forgetLeftovers(ctx)
	}
	if err != nil {
		return withForgetFix(err, b)
	}
	id, err := b.identity(ctx, true)
	if err != nil {
		return withForgetFix(err, b)
	}
	rt, err := open(id, a.Secrets.RefreshToken)
	if err != nil {
		return withForgetFix(err, b)
	}
	rat, err := open(id, a.Secrets.RegistrationAccessToken)
	if err != nil {
		return withForgetFix(err, b)
	}
	auth, err := b.clientAuth(a, id)
	if err != nil {
		return withForgetFix(err, b)
	}
	p, err := b.provider(a.Issuer)
	if err != nil {
		return err
	}

	if rt != "" {
		switch a.Endpoints.Revocation {
		case "":
			b.say("%s offers no token revocation: the refresh token stays valid %s.", a.Issuer, when(a.RefreshExpiry))
		default:
			err := p.revoke(ctx, a.Endpoints.Revocation, rt, "refresh_token", auth)
			var oe *oauthError
			switch {
			case err == nil:
				b.say("Revoked the refresh token at %s.", a.Issuer)
			case errors.As(err, &oe):
				b.say("%s did not revoke the refresh token (%s); it stays valid %s.", a.Issuer, orCode(oe), when(a.RefreshExpiry))
			default:
				return unreachable(err, b, "revoke the refresh token")
			}
		}
		// Stored nowhere any more, even if deleting the client fails.
		if err := b.updateAccount(ctx, func(x *account) { x.Secrets.RefreshToken = nil }); err != nil {
			return err
		}
	}
	switch {
	case a.Dynamic && a.RegistrationClientURI != "" && rat != "":
		err := p.deleteRegistration(ctx, a.RegistrationClientURI, rat)
		switch {
		case err == nil:
			b.say("Deleted client %s at %s.", a.ClientID, a.Issuer)
		case errors.Is(err, errClientGone):
			b.say("Client %s was already deleted at %s.", a.ClientID, a.Issuer)
		default:
			return unreachable(err, b, "delete client "+a.ClientID)
		}
	case a.Dynamic:
		b.say("Client %s stays at %s: the provider gave no way to delete it (no registration URI or access token).", a.ClientID, a.Issuer)
	default:
		b.say("Client %s was registered by an administrator: it stays at %s.", a.ClientID, a.Issuer)
	}
	if err := b.removeLocal(ctx); err != nil {
		return err
	}
	b.say("Deleted the local state of profile %q (%s).", b.p.Name, b.st.dir)
	return nil
}

func withForgetFix(err error, b *Backend) error {
	var he *helper.Error
	if !errors.As(err, &he) {
		return err
	}
	e := *he
	e.Err = err
	extra := "to delete the local state without the passphrase or the provider: tokenhelper logout --forget" + b.flag()
	if e.Fix == "" {
		e.Fix = extra
	} else {
		e.Fix += "; " + extra
	}
	return &e
}

func unreachable(err error, b *Backend, what string) error {
	var he *helper.Error
	if !errors.As(err, &he) {
		return err
	}
	return &helper.Error{Kind: he.Kind, Err: err,
		Msg: "could not " + what + ": " + oneLine(err) + "; nothing was deleted on this machine",
		Fix: "retry later; or delete the local state only: tokenhelper logout --forget" + b.flag()}
}

// when says until when a token is valid.
func when(t time.Time) string {
	if t.IsZero() {
		return "until it expires (the provider did not say when)"
	}
	return "until " + t.UTC().Format("2006-01-02 15:04 UTC")
}

// removeLocal deletes the key (and its keyring unlock) and account.json
// under the profile lock.
func (b *Backend) removeLocal(ctx context.Context) error {
	unlock, err := cache.LockProfile(ctx, b.st.lockDir, b.p.Name)
	if err != nil {
		return err
	}
	defer unlock()
	if err := b.st.key().Forget(b.unlocker(false).Cache); err != nil {
		return err
	}
	return b.st.removeAccount()
}

// forgetLeftovers handles logout of a profile without account.json: a key
// left by an interrupted register is removed.
func (b *Backend) forgetLeftovers(ctx context.Context) error {
	if ok, _ := b.st.key().Exists(); ok {
		if err := b.removeLocal(ctx); err != nil {
			return err
		}
		b.say("Removed the key left by an unfinished registration of profile %q.", b.p.Name)
		return nil
	}
	b.say("Profile %q has no local state: nothing to log out.", b.p.Name)
	return nil
}

// forget deletes the local state without passphrase or network and says
// what remains at the provider.
func (b *Backend) forget(ctx context.Context) error {
	a, loadErr := b.st.load()
	if errors.Is(loadErr, errNotRegistered) {
		return b.forgetLeftovers(ctx)
	}
	if err := b.removeLocal(ctx); err != nil {
		return err
	}
	b.say("Deleted the local state of profile %q (%s): client registration, refresh token and key. Nothing was sent to the provider.", b.p.Name, b.st.dir)
	if a == nil {
		b.say("Its account.json was unreadable (%s), so what remains at the provider is unknown.", oneLine(loadErr))
		b.say("To start again: tokenhelper register%s", b.flag())
		return nil
	}
	b.say("What remains at %s:", a.Issuer)
	switch {
	case a.Dynamic:
		since := ""
		if !a.RegisteredAt.IsZero() {
			since = " on " + a.RegisteredAt.UTC().Format("2006-01-02")
		}
		b.say("  - client %s, registered by tokenhelper%s. Without the secrets just deleted nobody can use it, but it can no longer be deleted from here:", a.ClientID, since)
		b.say("    delete it in the provider's web interface (INDIGO IAM: %s, your clients), or ask its administrators, giving them the client id.", a.Issuer)
	default:
		b.say("  - client %s, registered by an administrator (still usable by whoever has its secret).", a.ClientID)
	}
	if len(a.Secrets.RefreshToken) > 0 {
		b.say("  - its refresh token, valid %s unless revoked (deleting the client revokes it).", when(a.RefreshExpiry))
	}
	b.say("To start again: tokenhelper register%s", b.flag())
	return nil
}

// Status describes the profile without a passphrase or the network.
func (b *Backend) Status(ctx context.Context) (helper.Status, error) {
	st := helper.Status{Backend: Name}
	a, err := b.st.load()
	if errors.Is(err, errNotRegistered) {
		st.Lines = []string{fmt.Sprintf("not registered: run tokenhelper register%s", b.flag())}
		return st, nil
	}
	if err != nil {
		return st, err
	}
	st.Lines = append(st.Lines, "issuer "+a.Issuer)
	switch {
	case a.Dynamic && !a.RegisteredAt.IsZero():
		st.Lines = append(st.Lines, fmt.Sprintf("client %s, registered by tokenhelper on %s", a.ClientID, a.RegisteredAt.UTC().Format("2006-01-02")))
	case a.Dynamic:
		st.Lines = append(st.Lines, "client "+a.ClientID+", registered by tokenhelper")
	default:
		st.Lines = append(st.Lines, "client "+a.ClientID+", registered by an administrator")
	}
	if a.Flow != "" {
		st.Lines = append(st.Lines, "login flow "+a.Flow)
	}
	session := false
	switch {
	case a.Flow == "client-credentials":
		session = true
		st.Lines = append(st.Lines, "no session needed: tokens come from the client's credentials")
	case len(a.Secrets.RefreshToken) > 0:
		session = true
		who := ""
		if a.Username != "" {
			who = " as " + a.Username
		} else if a.Subject != "" {
			who = " as " + a.Subject
		}
		line := "logged in" + who
		if !a.LoggedInAt.IsZero() {
			line += " on " + a.LoggedInAt.UTC().Format("2006-01-02 15:04 UTC")
		}
		st.Lines = append(st.Lines, line)
		if len(a.Scopes) > 0 {
			st.Lines = append(st.Lines, "granted scopes: "+joinWords(a.Scopes))
		}
		if a.RefreshExpiry.IsZero() {
			st.Lines = append(st.Lines, "refresh token stored (the provider did not say when it expires)")
		}
		st.SessionExpiry = a.RefreshExpiry
	case !a.SessionEnded.IsZero():
		st.Lines = append(st.Lines, fmt.Sprintf("session expired on %s: run tokenhelper login%s", a.SessionEnded.UTC().Format("2006-01-02 15:04 UTC"), b.flag()))
	default:
		st.Lines = append(st.Lines, "not logged in: run tokenhelper login"+b.flag())
	}
	unlocked := false
	kf, err := b.st.key().Load()
	switch {
	case err != nil:
		st.Lines = append(st.Lines, "key: "+oneLine(err))
	case kf.Protection == secret.Plaintext:
		unlocked = true
		st.Lines = append(st.Lines, "secrets stored UNENCRYPTED (plaintext = true)")
	default:
		u := b.unlocker(false)
		if until, ok := u.UnlockedUntil(b.st.key()); ok {
			unlocked = true
			line := "secrets encrypted; unlocked on this machine until " + until.Local().Format("15:04") + " (kernel keyring)"
			if u.Sources.Configured() {
				line += "; passphrase from " + sourceNames(u.Sources)
			}
			st.Lines = append(st.Lines, line)
		} else if u.Sources.Configured() {
			unlocked = true
			st.Lines = append(st.Lines, "secrets encrypted; passphrase from "+sourceNames(u.Sources))
		} else {
			st.Lines = append(st.Lines, "secrets encrypted; locked: the next refresh asks for the passphrase (a terminal is needed)")
		}
	}
	st.OK = session && unlocked
	return st, nil
}

func joinWords(s []string) string {
	out := ""
	for i, w := range s {
		if i > 0 {
			out += " "
		}
		out += clean(w, 200)
	}
	return out
}

// sourceNames names the configured passphrase sources.
func sourceNames(s secret.Sources) string {
	var out []string
	if s.Env != "" {
		out = append(out, "passphrase_env "+s.Env)
	}
	if s.File != "" {
		out = append(out, "passphrase_file "+s.File)
	}
	if s.Cmd != "" {
		out = append(out, "passphrase_cmd")
	}
	return strings.Join(out, ", ")
}
