package native

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/cache"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/helper/httpclient"
	"github.com/tokenhelper/tokenhelper/helper/jwtinfo"
	"github.com/tokenhelper/tokenhelper/helper/secret"
)

// Name is the backend's name in profiles (backend = "native").
const Name = config.BackendNative

// Source is the helper.Token Source of tokens from this backend.
const Source = "native"

// Options are what the backend takes from the process; everything is
// injected so tests run without touching the machine. Zero fields take
// the real thing.
type Options struct {
	// Dirs locate the state (Dirs.StateDir); required.
	Dirs config.Dirs
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Sleep waits d or until ctx ends (default: a timer). Tests inject one
	// that advances their clock, so device-flow polling runs instantly.
	Sleep func(ctx context.Context, d time.Duration) error
	// LookupEnv reads the environment (passphrase_env). Default os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Log receives diagnostics (never secrets). Default: discarded.
	Log *slog.Logger
	// UI is the person, if any (prompts, device-flow instructions).
	UI helper.UI
	// HTTPClient talks to the provider. Default: helper/httpclient with the
	// profile's ca_file and timeout.
	HTTPClient *http.Client
	// UnlockCache remembers a prompted unlock. Default: the kernel keyring.
	UnlockCache secret.Cache
	// KeyOptions tune the key (tests lower the scrypt work factor).
	KeyOptions secret.KeyOptions
	// Passphrase, when set, replaces the profile's passphrase sources for
	// this run (the --pw-env, --pw-file, --pw-cmd flags).
	Passphrase *secret.Sources
	// Headless lets the device flow run without a terminal: the URL and code
	// are printed and the backend waits while a person approves elsewhere.
	Headless bool
	// Username for the password flow (else asked at the terminal).
	Username string
}

// Backend is the native OAuth backend for one profile. It implements
// helper.Backend, helper.Loginer, helper.Logouter and helper.Statuser.
type Backend struct {
	p  *config.Profile
	o  Options
	st store

	mu sync.Mutex
	hc *http.Client
}

var (
	_ helper.Backend  = (*Backend)(nil)
	_ helper.Loginer  = (*Backend)(nil)
	_ helper.Logouter = (*Backend)(nil)
	_ helper.Statuser = (*Backend)(nil)
)

// New returns the backend for profile p. It reads nothing yet.
func New(p *config.Profile, o Options) (*Backend, error) {
	if p == nil {
		return nil, helper.Errorf(helper.KindInternal, "native.New without a profile")
	}
	if p.Name == "" || p.Name == "." || p.Name == ".." || strings.ContainsAny(p.Name, `/\`) || strings.HasPrefix(p.Name, ".") {
		return nil, helper.Errorf(helper.KindConfig, "profile name %q cannot be used by the native backend (it names a directory)", p.Name).
			WithFix("use a profile name of letters, digits, \"-\", \"_\" and \".\" that does not start with a dot")
	}
	if o.Dirs.StateDir == "" {
		return nil, helper.Errorf(helper.KindConfig, "no state directory for the native backend").
			WithFix("set HOME or XDG_STATE_HOME")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.KeyOptions.Now == nil {
		o.KeyOptions.Now = o.Now
	}
	b := &Backend{p: p, o: o, st: store{
		profile: p.Name,
		dir:     filepath.Join(o.Dirs.StateDir, "profiles", p.Name),
		lockDir: filepath.Join(o.Dirs.StateDir, "locks"),
	}}
	if b.o.KeyOptions.Warn == nil {
		b.o.KeyOptions.Warn = func(msg string) { fmt.Fprintln(b.out(), msg) }
	}
	return b, nil
}

// StateDir is the profile's state directory.
func (b *Backend) StateDir() string { return b.st.dir }

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// out is where messages for the person go (io.Discard without a UI).
func (b *Backend) out() io.Writer {
	if b.o.UI != nil && b.o.UI.Out() != nil {
		return b.o.UI.Out()
	}
	return io.Discard
}

func (b *Backend) say(format string, args ...any) {
	fmt.Fprintf(b.out(), format+"\n", args...)
}

func (b *Backend) terminal() bool { return b.o.UI != nil && b.o.UI.Terminal() }

func (b *Backend) flag() string { return b.st.flag() }

func (b *Backend) httpClient() (*http.Client, error) {
	if b.o.HTTPClient != nil {
		return b.o.HTTPClient, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.hc == nil {
		hc, err := httpclient.New(httpclient.Options{CAFile: b.p.CAFile, Timeout: b.p.Timeout.D()})
		if err != nil {
			return nil, err
		}
		b.hc = hc
	}
	return b.hc, nil
}

func (b *Backend) provider(issuer string) (*provider, error) {
	hc, err := b.httpClient()
	if err != nil {
		return nil, err
	}
	return &provider{hc: hc, issuer: issuer, now: b.o.Now}, nil
}

// sources are the passphrase sources for this run.
func (b *Backend) sources() secret.Sources {
	s := secret.SourcesFromProfile(b.p)
	if b.o.Passphrase != nil {
		s = *b.o.Passphrase
	}
	// The environment comes from the injected LookupEnv; passphrase_cmd
	// runs with the process environment (minus the passphrase variable).
	env := os.Environ()
	if s.Env != "" {
		if v, ok := b.o.LookupEnv(s.Env); ok {
			env = append(env, s.Env+"="+v)
		} else {
			env = append(env, s.Env+"=")
		}
	}
	s.Environ = env
	return s
}

// unlocker builds the unlocker; it prompts only when interactive and a
// person is at a terminal.
func (b *Backend) unlocker(interactive bool) *secret.Unlocker {
	u := &secret.Unlocker{
		Sources:   b.sources(),
		Cache:     b.o.UnlockCache,
		UnlockFor: b.p.UnlockFor.D(),
		Options:   b.o.KeyOptions,
		Debugf:    func(format string, args ...any) { b.o.Log.Debug(fmt.Sprintf(format, args...)) },
	}
	if u.Cache == nil {
		u.Cache = secret.NewKeyringCache(helper.SystemClock{})
	}
	if interactive && b.terminal() {
		u.Prompter = b.o.UI
	}
	return u
}

// identity unlocks the profile's key.
func (b *Backend) identity(ctx context.Context, interactive bool) (*secret.Identity, error) {
	return b.unlocker(interactive).Open(ctx, b.st.key())
}

// clientAuth returns the client's credentials, opening the client secret.
func (b *Backend) clientAuth(a *account, id *secret.Identity) (clientAuth, error) {
	auth := clientAuth{ID: a.ClientID, Method: a.ClientAuth}
	if a.ClientAuth == authNone {
		return auth, nil
	}
	s, err := open(id, a.Secrets.ClientSecret)
	if err != nil {
		return auth, err
	}
	if s == "" {
		return auth, &helper.Error{Kind: helper.KindInternal, Msg: "profile " + b.p.Name + " has no stored client secret", Fix: b.st.forgetFix()}
	}
	auth.Secret = s
	return auth, nil
}

// Token returns an access token for req: a refresh (down-scoped with scope
// and audience parameters, or by RFC 8693 exchange when the profile sets
// exchange), or a client-credentials grant for robot profiles. The cache
// in front of the backend calls it on a miss only.
func (b *Backend) Token(ctx context.Context, req helper.Request) (*helper.Token, error) {
	req = req.Normalized()
	tok, err := b.token(ctx, req)
	if err != nil {
		return nil, err
	}
	if now := b.o.Now(); !tok.ValidBeyond(now, req.MinValid) {
		return nil, helper.Errorf(helper.KindNoToken, "the provider issued a token of profile %q valid for only %s, less than the minimum validity %s",
			b.p.Name, jwtinfo.FormatTTL(tok.ValidFor(now)), req.MinValid).
			WithFix("ask for less with --min-valid (or min_valid in the profile), or have the provider issue longer-lived access tokens")
	}
	return tok, nil
}

func (b *Backend) token(ctx context.Context, req helper.Request) (*helper.Token, error) {
	a, err := b.st.load()
	if err != nil {
		return nil, err
	}
	if a.Flow == config.FlowClientCredentials {
		id, err := b.identity(ctx, req.Interactive)
		if err != nil {
			return nil, err
		}
		auth, err := b.clientAuth(a, id)
		if err != nil {
			return nil, err
		}
		return b.clientCredentials(ctx, a, auth, req)
	}
	if len(a.Secrets.RefreshToken) == 0 {
		return nil, b.noSession(a)
	}
	// Unlock first: a prompt must not hold the profile lock.
	id, err := b.identity(ctx, req.Interactive)
	if err != nil {
		return nil, err
	}
	unlock, err := cache.LockProfile(ctx, b.st.lockDir, b.p.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Re-read under the lock: another process may have rotated the
	// refresh token while we waited.
	if a, err = b.st.load(); err != nil {
		return nil, err
	}
	if len(a.Secrets.RefreshToken) == 0 {
		return nil, b.noSession(a)
	}
	return b.refreshLocked(ctx, a, id, req)
}

// noSession is the error for a profile without a refresh token.
func (b *Backend) noSession(a *account) *helper.Error {
	if !a.SessionEnded.IsZero() {
		e := helper.LoginNeeded(b.p.Name, "session expired")
		e.Msg = fmt.Sprintf("session expired: the provider refused the refresh token of profile %q on %s", b.p.Name, a.SessionEnded.UTC().Format(time.RFC3339))
		if a.SessionEndCause != "" {
			e.Msg += " (" + a.SessionEndCause + ")"
		}
		return e
	}
	return helper.LoginNeeded(b.p.Name, fmt.Sprintf("profile %q is registered but not logged in", b.p.Name))
}

// isDefault reports whether list equals the profile's default (both
// normalized): such requests need no down-scoping.
func isDefault(list, def []string) bool {
	n := helper.Request{Scopes: def}.Normalized().Scopes
	return slices.Equal(list, n)
}

// refreshLocked refreshes with the profile lock held and persists a
// rotated refresh token before returning.
func (b *Backend) refreshLocked(ctx context.Context, a *account, id *secret.Identity, req helper.Request) (*helper.Token, error) {
	rt, err := open(id, a.Secrets.RefreshToken)
	if err != nil {
		return nil, err
	}
	auth, err := b.clientAuth(a, id)
	if err != nil {
		return nil, err
	}
	sl, err := b.st.sealer()
	if err != nil {
		return nil, err
	}
	p, err := b.provider(a.Issuer)
	if err != nil {
		return nil, err
	}
	var scopes []string
	if !isDefault(req.Scopes, b.p.Scopes) {
		scopes = req.Scopes
	}
	auds := req.Audiences
	if b.p.Exchange && (scopes != nil || !isDefault(req.Audiences, b.p.Audiences)) {
		base, _, err := b.refresh(ctx, p, a, id, sl, auth, rt, nil, nil)
		if err != nil {
			return nil, err
		}
		return b.exchange(ctx, p, a, auth, base.AccessToken, req)
	}
	tr, start, err := b.refresh(ctx, p, a, id, sl, auth, rt, scopes, auds)
	if err != nil {
		return nil, err
	}
	return b.tokenFrom(a, tr, start, req.Scopes, req.Audiences), nil
}

// refresh redeems rt (RFC 6749 6) and stores a rotated refresh token at
// once. On invalid_grant it first tries the refresh token an interrupted
// write may have left (recoverInterrupted); when there is none, the dead
// refresh token is removed from the state.
func (b *Backend) refresh(ctx context.Context, p *provider, a *account, id *secret.Identity, sl *sealer, auth clientAuth, rt string, scopes, auds []string) (*tokenResponse, time.Time, error) {
	form := url.Values{"grant_type": {grantRefreshToken}, "refresh_token": {rt}}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	if len(auds) > 0 {
		form.Set("audience", strings.Join(auds, " "))
	}
	plain := len(scopes) == 0 && len(auds) == 0
	start := b.o.Now()
	tr, err := p.token(ctx, a.Endpoints.Token, form, &auth)
	recovered := false
	var leftovers []string
	if isInvalidGrant(err) {
		var rtr *tokenResponse
		var rrt string
		var rerr error
		rtr, rrt, leftovers, rerr = b.recoverInterrupted(ctx, p, a, id, auth, rt, form)
		switch {
		case rerr != nil:
			return nil, start, b.refreshError(a, rerr, scopes, plain)
		case rtr != nil:
			tr, rt, err, recovered = rtr, rrt, nil, true
		default:
			removeFiles(leftovers) // none holds a live session
		}
	}
	if err != nil {
		return nil, start, b.refreshError(a, err, scopes, plain)
	}
	next := tr.RefreshToken
	if next == "" && recovered {
		next = rt // not rotated: the recovered one stays the session's
	}
	if next != "" && (next != rt || recovered) {
		sealed, err := sl.seal(next)
		if err != nil {
			return nil, start, err
		}
		a.Secrets.RefreshToken = sealed
		a.RefreshedAt = start
		a.RefreshExpiry = refreshExpiry(tr, start)
		if err := b.st.save(a); err != nil {
			return nil, start, &helper.Error{Kind: helper.KindOf(err), Err: err,
				Msg: "the provider rotated the refresh token but it could not be stored, so the session is lost: " + oneLine(err),
				Fix: "fix the problem, then run: tokenhelper login" + b.flag()}
		}
		b.o.Log.Info("refresh token rotated and stored", "profile", b.p.Name, "fingerprint", helper.Fingerprint(next))
		if recovered {
			removeFiles(leftovers)
		}
	}
	if !recovered {
		// Leftovers of writes interrupted long ago (a provider that does
		// not rotate leaves a copy of the live token in them).
		b.st.removeStaleWrites(time.Minute)
	}
	return tr, start, nil
}

func isInvalidGrant(err error) bool {
	var oe *oauthError
	return errors.As(err, &oe) && oe.Code == "invalid_grant"
}

// recoverInterrupted handles the one crash that used to lose a session: a
// process killed after the provider rotated the refresh token, while it
// stored the new one, after the temporary file was written but before
// the rename over account.json. The stored token is then dead
// (invalid_grant) and the live one sits in that temporary file. It runs
// with the profile lock held, so no other process is writing: every such
// file is a leftover. It returns the provider's answer to the first
// leftover refresh token (of this client, other than the dead one) that
// works, with that token; nil when none does; an error other than
// invalid_grant from the provider (the session is then kept, to try
// again). paths are all the leftover files.
func (b *Backend) recoverInterrupted(ctx context.Context, p *provider, a *account, id *secret.Identity, auth clientAuth, dead string, form url.Values) (*tokenResponse, string, []string, error) {
	states, paths := b.st.interruptedWrites()
	for _, c := range states {
		if c.Issuer != a.Issuer || c.ClientID != a.ClientID {
			continue
		}
		rt, err := open(id, c.Secrets.RefreshToken)
		if err != nil || rt == "" || rt == dead {
			continue
		}
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		f.Set("refresh_token", rt)
		tr, err := p.token(ctx, a.Endpoints.Token, f, &auth)
		if err == nil {
			b.o.Log.Info("recovered the refresh token an interrupted write left", "profile", b.p.Name, "fingerprint", helper.Fingerprint(rt))
			return tr, rt, paths, nil
		}
		if !isInvalidGrant(err) {
			return nil, "", paths, err
		}
	}
	return nil, "", paths, nil
}

// refreshError maps a failed refresh to what the user must do.
// A plain refresh (no scope, no audience) that gets invalid_grant proves
// the refresh token dead: it is removed so later calls fail at once. After
// a down-scoped one it is kept, in case a provider answered invalid_grant
// to the parameters.
func (b *Backend) refreshError(a *account, err error, scopes []string, plain bool) error {
	var oe *oauthError
	if !errors.As(err, &oe) {
		return err
	}
	switch oe.Code {
	case "invalid_grant":
		if plain {
			a.Secrets.RefreshToken = nil
			a.SessionEnded = b.o.Now().UTC()
			a.SessionEndCause = oe.Description
			if serr := b.st.save(a); serr != nil {
				b.o.Log.Warn("could not record the end of the session", "profile", b.p.Name, "error", serr.Error())
			}
		}
		e := helper.LoginNeeded(b.p.Name, "session expired")
		if oe.Description != "" {
			e.Msg += " (the provider says: " + oe.Description + ")"
		}
		e.Err = oe
		return e
	case "invalid_scope":
		return &helper.Error{Kind: helper.KindDenied, Err: oe,
			Msg: fmt.Sprintf("the provider refused scopes %q for profile %q: %s", strings.Join(scopes, " "), b.p.Name, oe.Description),
			Fix: fmt.Sprintf("ask only for scopes the session was granted (%s), or widen the profile's scopes and log in again: tokenhelper login%s --flow device", strings.Join(a.Scopes, " "), b.flag())}
	}
	return b.grantError(a, oe)
}

// grantError maps OAuth errors common to every grant.
func (b *Backend) grantError(a *account, oe *oauthError) error {
	switch oe.Code {
	case "invalid_client":
		return &helper.Error{Kind: helper.KindConfig, Err: oe,
			Msg: fmt.Sprintf("the provider no longer accepts client %s of profile %q (deleted or disabled at %s?)", a.ClientID, b.p.Name, a.Issuer),
			Fix: "register again: tokenhelper register" + b.flag() + " --force"}
	case "unauthorized_client", "unsupported_grant_type":
		return &helper.Error{Kind: helper.KindConfig, Err: oe,
			Msg: fmt.Sprintf("client %s of profile %q may not use this grant at %s: %s", a.ClientID, b.p.Name, a.Issuer, orCode(oe)),
			Fix: "register again: tokenhelper register" + b.flag() + " --force; or ask the provider's administrators to enable the grant"}
	case "temporarily_unavailable", "server_error":
		return &helper.Error{Kind: helper.KindUnavailable, Err: oe,
			Msg: fmt.Sprintf("the provider %s is having trouble: %s", a.Issuer, orCode(oe)),
			Fix: "retry later"}
	case "access_denied":
		return &helper.Error{Kind: helper.KindDenied, Err: oe,
			Msg: fmt.Sprintf("the provider denied the request of profile %q: %s", b.p.Name, orCode(oe))}
	}
	return &helper.Error{Kind: helper.KindDenied, Err: oe,
		Msg: fmt.Sprintf("the provider refused the request of profile %q: %s", b.p.Name, orCode(oe))}
}

func orCode(oe *oauthError) string {
	if oe.Description != "" {
		return oe.Code + ": " + oe.Description
	}
	return oe.Code
}

// refreshExpiry is when the new refresh token expires, if the answer says
// (refresh_expires_in) or the token is a JWT with exp (INDIGO IAM's are).
func refreshExpiry(tr *tokenResponse, start time.Time) time.Time {
	if tr.RefreshExpiresIn > 0 {
		return start.Add(time.Duration(tr.RefreshExpiresIn) * time.Second).UTC()
	}
	if strings.Count(tr.RefreshToken, ".") == 2 {
		if info, err := jwtinfo.Parse(tr.RefreshToken); err == nil && info.IsJWT && !info.Expiry.IsZero() {
			return info.Expiry.UTC()
		}
	}
	return time.Time{}
}

// tokenFrom builds the helper.Token of a token response.
func (b *Backend) tokenFrom(a *account, tr *tokenResponse, start time.Time, scopes, auds []string) *helper.Token {
	t := &helper.Token{
		AccessToken: tr.AccessToken,
		Issuer:      a.Issuer,
		Profile:     b.p.Name,
		Source:      Source,
		Audiences:   auds,
	}
	// The earlier of expires_in (counted from when the request was sent)
	// and the token's own exp: storage goes by exp, and expires_in may be
	// rounded up.
	if tr.ExpiresIn > 0 {
		t.Expiry = start.Add(time.Duration(tr.ExpiresIn) * time.Second)
	}
	if info, err := jwtinfo.Parse(tr.AccessToken); err == nil && info.IsJWT && !info.Expiry.IsZero() {
		if t.Expiry.IsZero() || info.Expiry.Before(t.Expiry) {
			t.Expiry = info.Expiry
		}
	}
	if granted := strings.Fields(tr.Scope); len(granted) > 0 {
		t.Scopes = helper.Request{Scopes: granted}.Normalized().Scopes
	} else {
		t.Scopes = scopes
	}
	return t
}

// exchange trades an access token for a down-scoped one (RFC 8693).
func (b *Backend) exchange(ctx context.Context, p *provider, a *account, auth clientAuth, subject string, req helper.Request) (*helper.Token, error) {
	form := url.Values{
		"grant_type":           {grantTokenExchange},
		"subject_token":        {subject},
		"subject_token_type":   {tokenTypeAccessToken},
		"requested_token_type": {tokenTypeAccessToken},
	}
	if len(req.Scopes) > 0 {
		form.Set("scope", strings.Join(req.Scopes, " "))
	}
	if len(req.Audiences) > 0 {
		form.Set("audience", strings.Join(req.Audiences, " "))
	}
	start := b.o.Now()
	tr, err := p.token(ctx, a.Endpoints.Token, form, &auth)
	if err != nil {
		var oe *oauthError
		if errors.As(err, &oe) {
			switch oe.Code {
			case "unauthorized_client", "unsupported_grant_type":
				return nil, &helper.Error{Kind: helper.KindConfig, Err: oe,
					Msg: fmt.Sprintf("client %s of profile %q may not use token exchange at %s", a.ClientID, b.p.Name, a.Issuer),
					Fix: fmt.Sprintf("set exchange = false in [profiles.%s] (down-scoping then refreshes with scope and audience)", b.p.Name)}
			case "invalid_scope", "invalid_target", "invalid_request", "invalid_grant":
				return nil, &helper.Error{Kind: helper.KindDenied, Err: oe,
					Msg: fmt.Sprintf("the provider refused to exchange a token of profile %q for scopes %q, audiences %q: %s",
						b.p.Name, strings.Join(req.Scopes, " "), strings.Join(req.Audiences, " "), orCode(oe)),
					Fix: "ask only for scopes the session was granted (" + strings.Join(a.Scopes, " ") + ")"}
			}
			return nil, b.grantError(a, oe)
		}
		return nil, err
	}
	return b.tokenFrom(a, tr, start, req.Scopes, req.Audiences), nil
}

// clientCredentials gets a token for the client itself (RFC 6749 4.4).
func (b *Backend) clientCredentials(ctx context.Context, a *account, auth clientAuth, req helper.Request) (*helper.Token, error) {
	if auth.Method == authNone {
		return nil, helper.Errorf(helper.KindConfig, "profile %q uses the client-credentials flow but its client is public (no secret)", b.p.Name).
			WithFix("register it with the client's secret: tokenhelper register%s --force --client-id %s --client-secret-file FILE", b.flag(), a.ClientID)
	}
	p, err := b.provider(a.Issuer)
	if err != nil {
		return nil, err
	}
	form := url.Values{"grant_type": {grantClientCredentials}}
	if len(req.Scopes) > 0 {
		form.Set("scope", strings.Join(req.Scopes, " "))
	}
	if len(req.Audiences) > 0 {
		form.Set("audience", strings.Join(req.Audiences, " "))
	}
	start := b.o.Now()
	tr, err := p.token(ctx, a.Endpoints.Token, form, &auth)
	if err != nil {
		var oe *oauthError
		if errors.As(err, &oe) {
			if oe.Code == "invalid_scope" {
				return nil, &helper.Error{Kind: helper.KindDenied, Err: oe,
					Msg: fmt.Sprintf("the provider refused scopes %q for client %s: %s", strings.Join(req.Scopes, " "), a.ClientID, oe.Description),
					Fix: "ask for scopes the client is allowed, or ask the provider's administrators"}
			}
			return nil, b.grantError(a, oe)
		}
		return nil, err
	}
	return b.tokenFrom(a, tr, start, req.Scopes, req.Audiences), nil
}
