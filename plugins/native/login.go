package native

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/cache"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/helper/jwtinfo"
	"github.com/tokenhelper/tokenhelper/helper/secret"
)

// LineReader is implemented by UIs that can read a line with echo (a user
// name for the password flow).
type LineReader interface {
	Line(prompt string) (string, error)
}

// Login establishes a session and returns a fresh access token for
// req.Request.
//
// With no flow named (req.Flow == ""), a stored refresh token is tried
// first; only when the provider refuses it does the profile's flow run.
// A named flow runs at once. The device flow needs a person at a terminal
// (or Options.Headless); the password flow needs a terminal; the
// client-credentials flow needs nobody. Without a terminal, Login fails at
// once with the command to run — it never waits for input that cannot
// come.
func (b *Backend) Login(ctx context.Context, req helper.LoginRequest) (*helper.Token, error) {
	if req.UI != nil {
		b.o.UI = req.UI
	}
	r := req.Normalized()
	a, err := b.st.load()
	if err != nil {
		return nil, err
	}
	flow, explicit, err := b.flowFor(a, req.Flow)
	if err != nil {
		return nil, err
	}
	if err := b.checkPerson(flow, explicit || len(a.Secrets.RefreshToken) == 0); err != nil {
		return nil, err
	}
	id, err := b.identity(ctx, true)
	if err != nil {
		return nil, err
	}
	return b.loginWith(ctx, a, id, flow, explicit, r)
}

// flowFor picks the login flow: the one named, else the profile's, else
// the one the session came from, else the device flow.
func (b *Backend) flowFor(a *account, named string) (flow string, explicit bool, err error) {
	flow, explicit = named, named != ""
	if flow == "" {
		flow = b.p.Flow
	}
	if flow == "" && a != nil {
		flow = a.Flow
	}
	if flow == "" {
		flow = config.FlowDevice
	}
	switch flow {
	case config.FlowDevice, config.FlowPassword, config.FlowClientCredentials:
		return flow, explicit, nil
	}
	return "", false, helper.Errorf(helper.KindUsage, "unknown login flow %q", flow).
		WithFix("use --flow %s, %s or %s", config.FlowDevice, config.FlowPassword, config.FlowClientCredentials)
}

// checkPerson fails at once when the flow will need a person and there is
// none. mustRun says the interactive flow will surely run (no refresh to
// try first).
func (b *Backend) checkPerson(flow string, mustRun bool) error {
	if !mustRun || flow == config.FlowClientCredentials || b.terminal() {
		return nil
	}
	if flow == config.FlowDevice && b.o.Headless {
		return nil
	}
	return b.noPerson(flow)
}

func (b *Backend) noPerson(flow string) *helper.Error {
	if flow == config.FlowPassword {
		return &helper.Error{Kind: helper.KindLoginNeeded,
			Msg: "the password flow asks for a password and there is no terminal (stdin or stderr is not a TTY)",
			Fix: "run it in a terminal: tokenhelper login" + b.flag() + " --flow password"}
	}
	return &helper.Error{Kind: helper.KindLoginNeeded,
		Msg: "logging in needs a person and there is no terminal (stdin or stderr is not a TTY)",
		Fix: "run it in a terminal: tokenhelper login" + b.flag() +
			"; or, to approve from another device while it waits: tokenhelper login" + b.flag() + " --headless"}
}

// loginWith runs the login once the key is unlocked.
func (b *Backend) loginWith(ctx context.Context, a *account, id *secret.Identity, flow string, explicit bool, r helper.Request) (*helper.Token, error) {
	if flow == config.FlowClientCredentials {
		auth, err := b.clientAuth(a, id)
		if err != nil {
			return nil, err
		}
		tok, err := b.clientCredentials(ctx, a, auth, r)
		if err != nil {
			return nil, err
		}
		if a.Flow != flow {
			if err := b.updateAccount(ctx, func(a *account) { a.Flow = flow; a.LoggedInAt = b.o.Now().UTC() }); err != nil {
				return nil, err
			}
		}
		b.say("Obtained a token for client %s with the client-credentials grant.", a.ClientID)
		return tok, nil
	}
	if !explicit && len(a.Secrets.RefreshToken) > 0 {
		tok, err := b.refreshSession(ctx, id, r)
		if err == nil {
			b.say("Refreshed the session of profile %q at %s.", b.p.Name, a.Issuer)
			return tok, nil
		}
		if !helper.IsKind(err, helper.KindLoginNeeded) {
			return nil, err
		}
		b.say("The session of profile %q has ended (%s); logging in again.", b.p.Name, oneLine(err))
		if err := b.checkPerson(flow, true); err != nil {
			return nil, err
		}
		if a, err = b.st.load(); err != nil {
			return nil, err
		}
	}
	return b.interactive(ctx, a, id, flow, r)
}

// refreshSession is Token's refresh path, for Login.
func (b *Backend) refreshSession(ctx context.Context, id *secret.Identity, r helper.Request) (*helper.Token, error) {
	unlock, err := cache.LockProfile(ctx, b.st.lockDir, b.p.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	a, err := b.st.load()
	if err != nil {
		return nil, err
	}
	if len(a.Secrets.RefreshToken) == 0 {
		return nil, b.noSession(a)
	}
	return b.refreshLocked(ctx, a, id, r)
}

// grantScopes are the scopes a login asks for: the profile's (else the
// preset's, else DefaultScopes), with offline_access so that a refresh
// token comes along.
func (b *Backend) grantScopes() []string {
	scopes := slices.Clone(b.p.Scopes)
	if len(scopes) == 0 {
		if pr, ok := PresetForIssuer(b.p.Issuer); ok {
			scopes = pr.Scopes
		} else {
			scopes = slices.Clone(DefaultScopes)
		}
	}
	if !slices.Contains(scopes, "offline_access") {
		scopes = append(scopes, "offline_access")
	}
	return scopes
}

// interactive runs the device or password flow and stores the session.
func (b *Backend) interactive(ctx context.Context, a *account, id *secret.Identity, flow string, r helper.Request) (*helper.Token, error) {
	auth, err := b.clientAuth(a, id)
	if err != nil {
		return nil, err
	}
	p, err := b.provider(a.Issuer)
	if err != nil {
		return nil, err
	}
	b.refreshMetadata(ctx, p, a)
	// The key's public half, before the grant: storing the answer then
	// needs no file read.
	sl, err := b.st.sealer()
	if err != nil {
		return nil, err
	}
	scopes := b.grantScopes()
	var tr *tokenResponse
	var start time.Time
	switch flow {
	case config.FlowDevice:
		tr, start, err = b.deviceFlow(ctx, p, a, auth, scopes, r.Audiences)
	case config.FlowPassword:
		tr, start, err = b.passwordFlow(ctx, p, a, auth, scopes, r.Audiences)
	default:
		return nil, helper.Errorf(helper.KindInternal, "flow %q has no interactive login", flow)
	}
	if err != nil {
		return nil, err
	}
	if err := b.storeSession(ctx, sl, tr, start, flow); err != nil {
		return nil, err
	}
	if tr.RefreshToken == "" {
		b.say("Warning: %s issued no refresh token (was offline_access granted?): you will have to log in again when this token expires.", a.Issuer)
	}
	return b.tokenFrom(a, tr, start, r.Scopes, r.Audiences), nil
}

// refreshMetadata re-reads the provider's metadata before an interactive
// login, so endpoints that moved are followed; failures keep the stored
// ones (the login itself will say what is wrong).
func (b *Backend) refreshMetadata(ctx context.Context, p *provider, a *account) {
	md, err := p.discover(ctx)
	if err != nil {
		b.o.Log.Info("provider metadata not refreshed", "issuer", a.Issuer, "error", oneLine(err))
		return
	}
	if md.Endpoints == a.Endpoints {
		return
	}
	a.Endpoints = md.Endpoints
	if err := b.updateAccount(ctx, func(x *account) { x.Endpoints = md.Endpoints }); err != nil {
		b.o.Log.Warn("could not store the provider's new endpoints", "error", oneLine(err))
	}
}

// updateAccount applies change to account.json under the profile lock.
func (b *Backend) updateAccount(ctx context.Context, change func(*account)) error {
	unlock, err := cache.LockProfile(ctx, b.st.lockDir, b.p.Name)
	if err != nil {
		return err
	}
	defer unlock()
	a, err := b.st.load()
	if err != nil {
		return err
	}
	change(a)
	return b.st.save(a)
}

// storeSession stores the refresh token (sealed) and what is known about
// the session after a login, under the profile lock.
func (b *Backend) storeSession(ctx context.Context, sl *sealer, tr *tokenResponse, start time.Time, flow string) error {
	var sealed []byte
	if tr.RefreshToken != "" {
		var err error
		if sealed, err = sl.seal(tr.RefreshToken); err != nil {
			return err
		}
	}
	sub, user := subjectOf(tr)
	granted := strings.Fields(tr.Scope)
	if len(granted) == 0 { // the provider did not say: what was asked for
		granted = b.grantScopes()
	}
	return b.updateAccount(ctx, func(a *account) {
		a.Secrets.RefreshToken = sealed
		a.RefreshExpiry = refreshExpiry(tr, start)
		a.Flow = flow
		a.Scopes = granted
		a.Subject, a.Username = sub, user
		a.LoggedInAt = start.UTC()
		a.RefreshedAt = time.Time{}
		a.SessionEnded, a.SessionEndCause = time.Time{}, ""
	})
}

// subjectOf reads who logged in from the ID token, else the access token
// (unverified: for display only).
func subjectOf(tr *tokenResponse) (sub, user string) {
	for _, raw := range []string{tr.IDToken, tr.AccessToken} {
		if raw == "" {
			continue
		}
		if info, err := jwtinfo.Parse(raw); err == nil && info.IsJWT && info.Subject != "" {
			return clean(info.Subject, 200), clean(info.Username, 200)
		}
	}
	return "", ""
}

// passwordFlow runs the resource owner password credentials grant (RFC
// 6749 4.3). INDIGO IAM enables it per client on request to its
// administrators (seed 003). The password is never stored.
func (b *Backend) passwordFlow(ctx context.Context, p *provider, a *account, auth clientAuth, scopes, auds []string) (*tokenResponse, time.Time, error) {
	if !b.terminal() {
		return nil, time.Time{}, b.noPerson(config.FlowPassword)
	}
	user := strings.TrimSpace(b.o.Username)
	if user == "" {
		lr, ok := b.o.UI.(LineReader)
		if !ok {
			return nil, time.Time{}, helper.Errorf(helper.KindUsage, "the password flow needs a user name").
				WithFix("pass --username NAME")
		}
		var err error
		if user, err = lr.Line(fmt.Sprintf("User name at %s: ", a.Issuer)); err != nil {
			return nil, time.Time{}, err
		}
		if user = strings.TrimSpace(user); user == "" {
			return nil, time.Time{}, helper.Errorf(helper.KindUsage, "no user name given").WithFix("pass --username NAME")
		}
	}
	pass, err := b.o.UI.Secret(fmt.Sprintf("Password of %s at %s: ", user, a.Issuer))
	if err != nil {
		return nil, time.Time{}, err
	}
	if pass == "" {
		return nil, time.Time{}, helper.Errorf(helper.KindUsage, "no password given").WithFix("run the command again")
	}
	form := url.Values{"grant_type": {grantPassword}, "username": {user}, "password": {pass}}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	if len(auds) > 0 {
		form.Set("audience", strings.Join(auds, " "))
	}
	start := b.o.Now()
	tr, err := p.token(ctx, a.Endpoints.Token, form, &auth)
	if err != nil {
		var oe *oauthError
		if errors.As(err, &oe) {
			switch oe.Code {
			case "invalid_grant":
				return nil, start, &helper.Error{Kind: helper.KindDenied, Err: oe,
					Msg: fmt.Sprintf("%s refused the user name or password of %s", a.Issuer, user),
					Fix: "try again: tokenhelper login" + b.flag() + " --flow password"}
			case "unauthorized_client", "unsupported_grant_type":
				return nil, start, &helper.Error{Kind: helper.KindDenied, Err: oe,
					Msg: fmt.Sprintf("the password flow is not enabled for client %s at %s", a.ClientID, a.Issuer),
					Fix: fmt.Sprintf("ask the IAM administrators to enable the password grant for client %s, or use the device flow: tokenhelper login%s --flow device", a.ClientID, b.flag())}
			}
			return nil, start, b.grantError(a, oe)
		}
		return nil, start, err
	}
	b.say("Logged in as %s.", user)
	return tr, start, nil
}

func oneLine(err error) string {
	var he *helper.Error
	s := err.Error()
	if errors.As(err, &he) {
		s = he.Msg
	}
	return strings.Join(strings.Fields(s), " ")
}
