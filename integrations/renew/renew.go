// Package renew keeps bearer-token files fresh: it writes an access token
// where a WLCG Bearer Token Discovery consumer (WLCG-AuthZ-WG
// bearer-token-discovery, zenodo 3937438) finds it — the discovery
// location $XDG_RUNTIME_DIR/bt_u$ID or /tmp/bt_u$ID, or a file named by
// BEARER_TOKEN_FILE — and replaces it before it expires, as
// osg-token-renewer does for per-service token files. It serves
// `tokenhelper renew --once` (cron), `tokenhelper renew --daemon`, and the
// private token file `tokenhelper exec` keeps for its child.
//
// # Schedule
//
// A token of lifetime L (exp − iat from the JWT, else the validity left
// when it was obtained) is renewed when less than
// max(Output.MinValid, Fraction×L) of it is left, earlier by a random
// jitter of up to Jitter×L so that many renewers started together do not
// reach the provider together. With the defaults (1/3, 0.1) a 20-minute
// token is renewed 11½ to 13⅓ minutes after it was issued. A renewal asks
// the source for a token valid beyond that threshold, so a token cache in
// front of the provider hands out a newer token when it has one and asks
// the provider otherwise.
//
// # Failures
//
// A failed renewal is retried with exponential backoff (MinRetry doubling
// up to MaxRetry, never waiting longer than half of what is left of the
// current token, and MaxRetry at once for errors a retry does not cure,
// such as "login needed"). The file keeps the current token meanwhile: a
// still-valid file is never removed or emptied. The first failure of a
// streak is logged (each one with EveryFailure), then the expiry of the
// current token, then the recovery. Log lines name files, profiles,
// fingerprints and times, never token material.
//
// Files are written by helper/discovery.Write: mode 0600, atomically, never
// through a symbolic link or over a file of another user.
package renew

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/discovery"
	"github.com/tokenhelper/tokenhelper/helper/jwtinfo"
)

// Defaults for the zero values of Renewer's fields.
const (
	DefaultFraction              = 1.0 / 3
	DefaultJitter                = 0.1
	DefaultMinRetry              = 5 * time.Second
	DefaultMaxRetry              = 5 * time.Minute
	DefaultMaxSleep              = time.Minute
	DefaultUnknownExpiryInterval = 5 * time.Minute
)

// Source gets an access token that stays valid for more than minValid (0:
// the source's own default). Renewals call it without a person at hand: it
// must not prompt, and it must honour ctx's deadline.
type Source func(ctx context.Context, minValid time.Duration) (*helper.Token, error)

// Output is one token file to keep fresh.
type Output struct {
	// Name says where the token comes from, for log lines
	// (`profile "wlcg"`).
	Name string
	// Path is the file; "" means the discovery location
	// (discovery.DefaultPath of the Renewer's Env).
	Path string
	// Source gets the tokens.
	Source Source
	// MinValid: the file's token is renewed at the latest when it has less
	// than this left. 0: only the lifetime fraction counts.
	MinValid time.Duration
	// Current is a token already written to Path (exec writes the first
	// one itself before it starts the child). Nil: Path is read.
	Current *helper.Token
}

// Clock is the time source of a Renewer.
type Clock interface {
	Now() time.Time
	// After sends on the returned channel once d has passed.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Renewer renews Outputs. The zero value works with the defaults, the real
// clock and an empty discovery environment for uid 0; set Env.
type Renewer struct {
	// Env is the discovery environment: UID, XDG_RUNTIME_DIR, /tmp.
	Env discovery.Env
	// Clock; nil means the real clock.
	Clock Clock
	// Info receives one line per renewal; Warn one line per failure (see
	// EveryFailure), expiry and recovery. Nil drops the lines.
	Info func(line string)
	Warn func(line string)
	// EveryFailure logs every failed attempt instead of the first of each
	// streak (daemon mode: the journal shows each retry).
	EveryFailure bool

	// Fraction of the lifetime left at which a token is renewed.
	Fraction float64
	// Jitter is the largest random advance of a renewal, as a fraction of
	// the lifetime; negative means none.
	Jitter float64
	// MinRetry and MaxRetry bound the backoff after a failure. For
	// short-lived tokens they shrink to a twentieth and a quarter of the
	// lifetime.
	MinRetry, MaxRetry time.Duration
	// MaxSleep is the longest Run waits before it looks at its files
	// again (a suspended laptop does not advance monotonic timers, and a
	// tmp cleaner may remove a file); at most a quarter of the shortest
	// token lifetime.
	MaxSleep time.Duration
	// UnknownExpiryInterval is how often a token whose expiry is unknown
	// (not a JWT) is replaced.
	UnknownExpiryInterval time.Duration
	// Rand returns a number in [0, 1); nil means math/rand/v2.
	Rand func() float64
	// OnRenew, when set, is called after each successful write.
	OnRenew func(out *Output, tok *helper.Token)
}

func (r *Renewer) now() time.Time { return r.clock().Now() }

func (r *Renewer) clock() Clock {
	if r.Clock == nil {
		return realClock{}
	}
	return r.Clock
}

func (r *Renewer) fraction() float64 {
	if r.Fraction <= 0 || r.Fraction >= 1 {
		return DefaultFraction
	}
	return r.Fraction
}

func (r *Renewer) jitter() float64 {
	switch {
	case r.Jitter < 0:
		return 0
	case r.Jitter == 0 || r.Jitter >= 1:
		return DefaultJitter
	}
	return r.Jitter
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func (r *Renewer) rand() float64 {
	if r.Rand != nil {
		return r.Rand()
	}
	return rand.Float64()
}

func (r *Renewer) info(format string, args ...any) {
	if r.Info != nil {
		r.Info(fmt.Sprintf(format, args...))
	}
}

func (r *Renewer) warn(format string, args ...any) {
	if r.Warn != nil {
		r.Warn(fmt.Sprintf(format, args...))
	}
}

// state is what the Renewer knows about one output.
type state struct {
	out  *Output
	path string // resolved, for reading and messages

	tok      *helper.Token // the token the file holds (nil: none usable)
	iat      time.Time     // its iat, zero when unknown
	obtained time.Time     // when it was written or first seen
	next     time.Time

	failures      int
	expiredLogged bool
	checkErr      string // last error of check, logged once
}

func (r *Renewer) newState(out *Output) *state {
	s := &state{out: out, path: out.Path}
	if s.path == "" {
		s.path = discovery.DefaultPath(r.Env)
	}
	return s
}

// label names an output in log lines.
func (s *state) label() string {
	if s.out.Name == "" {
		return s.path
	}
	return s.path + " (" + s.out.Name + ")"
}

// adopt records (a copy of) tok as the file's token. The JWT's exp wins
// when it is earlier than the expiry the source reported: that is what a
// storage checks, and an expiry computed from expires_in can be up to a
// second later (exp is in whole seconds), or belong to another token
// (oidc-agent with scope or audience reports the default token's).
func (r *Renewer) adopt(s *state, tok *helper.Token, now time.Time) {
	t := *tok
	s.tok = &t
	s.obtained = now
	s.iat = time.Time{}
	if info, err := jwtinfo.Parse(t.AccessToken); err == nil && info.IsJWT {
		s.iat = info.IssuedAt
		if !info.Expiry.IsZero() && (t.Expiry.IsZero() || info.Expiry.Before(t.Expiry)) {
			t.Expiry = info.Expiry
		}
	}
}

// read loads the file's token into s (s.tok nil when the file is missing,
// empty or unusable). A token already known is kept with its obtained time.
func (r *Renewer) read(s *state, now time.Time) {
	res, err := discovery.ReadFile(r.Env, s.path)
	if err != nil {
		s.tok = nil
		return
	}
	if s.tok != nil && s.tok.AccessToken == res.Token {
		return
	}
	tok := &helper.Token{AccessToken: res.Token, Source: s.path}
	r.adopt(s, tok, now)
}

// lifetime is the token's full lifetime: exp − iat when the JWT says so
// and it is plausible, else the validity left when it was obtained.
func (r *Renewer) lifetime(s *state) time.Duration {
	exp := s.tok.Expiry
	if !s.iat.IsZero() && s.iat.Before(exp) && !s.iat.After(s.obtained.Add(time.Minute)) {
		return exp.Sub(s.iat)
	}
	return max(exp.Sub(s.obtained), 0)
}

// threshold is how much validity left triggers a renewal.
func (r *Renewer) threshold(s *state) time.Duration {
	l := r.lifetime(s)
	return max(s.out.MinValid, time.Duration(float64(l)*r.fraction()))
}

// renewAt is when s's token is due, advanced by jitter (a fraction of the
// Jitter×L window, 0..1).
func (r *Renewer) renewAt(s *state, jitter float64) time.Time {
	if s.tok == nil {
		return time.Time{}
	}
	if s.tok.Expiry.IsZero() {
		return s.obtained.Add(orDefault(r.UnknownExpiryInterval, DefaultUnknownExpiryInterval))
	}
	l := r.lifetime(s)
	adv := time.Duration(jitter * r.jitter() * float64(l))
	return s.tok.Expiry.Add(-r.threshold(s) - adv)
}

// want is the validity a renewed token must have so that it is not due at
// once: beyond the current token's threshold and jitter window.
func (r *Renewer) want(s *state) time.Duration {
	if s.tok == nil || s.tok.Expiry.IsZero() {
		return s.out.MinValid
	}
	l := r.lifetime(s)
	return r.threshold(s) + time.Duration(r.jitter()*float64(l))
}

// valid reports whether s's token is still usable at now.
func valid(s *state, now time.Time) bool {
	return s.tok != nil && (s.tok.Expiry.IsZero() || s.tok.Expiry.After(now))
}

// renew gets a new token from the source and writes it. It returns the
// error of the attempt; s is updated either way (next attempt scheduled).
func (r *Renewer) renew(ctx context.Context, s *state, once bool) error {
	tok, err := s.out.Source(ctx, r.want(s))
	if err == nil && (tok == nil || tok.AccessToken == "") {
		err = helper.Errorf(helper.KindInternal, "the token source returned no token")
	}
	if err == nil {
		_, err = discovery.Write(r.Env, tok.AccessToken, discovery.WriteOptions{Path: s.out.Path})
	}
	now := r.now()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.failed(s, err, now, once)
		return err
	}
	if s.failures > 0 {
		r.warn("renewed %s after %d failed attempts", s.label(), s.failures)
	}
	s.failures = 0
	s.expiredLogged = false
	r.adopt(s, tok, now)
	s.next = r.renewAt(s, r.rand())
	if minR, _ := r.retryBounds(s); s.next.Before(now.Add(minR)) {
		s.next = now.Add(minR)
	}
	r.info("renewed %s: %s, %s", s.label(), helper.Fingerprint(tok.AccessToken), describeValidity(s.tok, now))
	if r.OnRenew != nil {
		r.OnRenew(s.out, tok)
	}
	return nil
}

// retryBounds are MinRetry and MaxRetry for s, scaled down for
// short-lived tokens (at most L/20 and L/4, not below 100 ms).
func (r *Renewer) retryBounds(s *state) (time.Duration, time.Duration) {
	minR := orDefault(r.MinRetry, DefaultMinRetry)
	maxR := max(orDefault(r.MaxRetry, DefaultMaxRetry), minR)
	if s.tok != nil && !s.tok.Expiry.IsZero() {
		if l := r.lifetime(s); l > 0 {
			minR = min(minR, max(l/20, 100*time.Millisecond))
			maxR = min(maxR, max(l/4, minR))
		}
	}
	return minR, maxR
}

// permanent reports errors that waiting a few seconds does not cure: the
// person must log in, fix the configuration or a file's permissions.
func permanent(err error) bool {
	switch helper.KindOf(err) {
	case helper.KindLoginNeeded, helper.KindConfig, helper.KindUnsafe, helper.KindDenied,
		helper.KindNoProfile, helper.KindUsage:
		return true
	}
	return false
}

// failed schedules the next attempt after a failure and logs it.
func (r *Renewer) failed(s *state, err error, now time.Time, once bool) {
	s.failures++
	minR, maxR := r.retryBounds(s)
	delay := maxR
	if !permanent(err) && s.failures < 32 {
		delay = min(minR<<(s.failures-1), maxR)
	}
	if valid(s, now) && !s.tok.Expiry.IsZero() {
		delay = min(delay, max(minR, s.tok.Expiry.Sub(now)/2))
	}
	// Up to 10% earlier, so retries of many renewers spread out.
	delay -= time.Duration(r.rand() * 0.1 * float64(delay))
	s.next = now.Add(delay)

	what := "there is no valid token in it"
	if valid(s, now) {
		what = "it keeps the current token, " + describeValidity(s.tok, now)
	}
	if once {
		r.warn("cannot renew %s: %s; %s", s.label(), oneLine(err), what)
		return
	}
	if s.failures == 1 || r.EveryFailure {
		r.warn("cannot renew %s: %s; %s; retrying in %s", s.label(), oneLine(err), what, delay.Round(time.Millisecond))
	}
	if s.tok != nil && !valid(s, now) && !s.expiredLogged {
		s.expiredLogged = true
		r.warn("the token in %s expired at %s; still retrying (every %s at most)", s.path, s.tok.Expiry.UTC().Format(time.RFC3339), maxR)
	}
}

func describeValidity(tok *helper.Token, now time.Time) string {
	if tok.Expiry.IsZero() {
		return "expiry unknown"
	}
	left := tok.Expiry.Sub(now)
	if left <= 0 {
		return "expired at " + tok.Expiry.UTC().Format(time.RFC3339)
	}
	return "valid until " + tok.Expiry.UTC().Format(time.RFC3339) + " (" + jwtinfo.FormatTTL(left) + ")"
}

func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// OnceOptions tune Once.
type OnceOptions struct {
	// Force renews every output, however long its token is still valid.
	Force bool
	// Within also renews tokens that become due within this time: the
	// interval of the cron job or timer that runs Once, so that a token
	// does not run out before the next run.
	Within time.Duration
}

// Result is what Once did for one output.
type Result struct {
	Output *Output
	// Path is the file (resolved).
	Path string
	// Renewed is true when a new token was written.
	Renewed bool
	// Token is what the file holds afterwards (nil when nothing usable).
	Token *helper.Token
	// Err is the failure of the renewal, if any.
	Err error
}

// Once renews the outputs whose tokens are missing, unusable or due
// (within o.Within), once each, without retrying, in order.
func (r *Renewer) Once(ctx context.Context, outs []Output, o OnceOptions) []Result {
	res := make([]Result, 0, len(outs))
	for i := range outs {
		out := &outs[i]
		s := r.newState(out)
		now := r.now()
		if out.Current != nil {
			r.adopt(s, out.Current, now)
		} else {
			r.read(s, now)
		}
		due := o.Force || s.tok == nil || !r.renewAt(s, 0).After(now.Add(o.Within))
		if ctx.Err() != nil {
			res = append(res, Result{Output: out, Path: s.path, Token: s.tok, Err: ctx.Err()})
			continue
		}
		if !due {
			res = append(res, Result{Output: out, Path: s.path, Token: s.tok})
			continue
		}
		err := r.renew(ctx, s, true)
		res = append(res, Result{Output: out, Path: s.path, Renewed: err == nil, Token: s.tok, Err: err})
	}
	return res
}

// Run keeps the outputs fresh until ctx ends, then returns nil. It never
// gives up on an output: failures are retried with backoff. Between
// renewals it looks at the files at least every MaxSleep and writes the
// current token back if a file disappeared or was replaced by an older
// one; a newer token someone else wrote is adopted.
func (r *Renewer) Run(ctx context.Context, outs []Output) error {
	states := make([]*state, len(outs))
	now := r.now()
	for i := range outs {
		s := r.newState(&outs[i])
		if outs[i].Current != nil {
			r.adopt(s, outs[i].Current, now)
		} else {
			r.read(s, now)
		}
		s.next = r.renewAt(s, r.rand()) // zero (due now) without a token
		states[i] = s
	}
	for {
		if ctx.Err() != nil {
			return nil //nolint:nilerr // ctx ending is Run's normal end
		}
		now = r.now()
		for _, s := range states {
			if ctx.Err() != nil {
				return nil //nolint:nilerr // ctx ending is Run's normal end
			}
			if now.Before(s.next) {
				r.check(s, now)
			}
			if !now.Before(s.next) {
				_ = r.renew(ctx, s, false)
			}
		}
		next := now.Add(r.maxSleep(states))
		for _, s := range states {
			if s.next.Before(next) {
				next = s.next
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.clock().After(max(next.Sub(r.now()), 0)):
		}
	}
}

// maxSleep is MaxSleep, at most a quarter of the shortest known token
// lifetime (not below 100 ms).
func (r *Renewer) maxSleep(states []*state) time.Duration {
	d := orDefault(r.MaxSleep, DefaultMaxSleep)
	for _, s := range states {
		if s.tok != nil && !s.tok.Expiry.IsZero() {
			if l := r.lifetime(s); l > 0 {
				d = min(d, max(l/4, 100*time.Millisecond))
			}
		}
	}
	return d
}

// check looks at the file between renewals: a missing or stale file gets
// the current token back; a newer valid token in it is adopted.
func (r *Renewer) check(s *state, now time.Time) {
	if !valid(s, now) {
		return
	}
	res, err := discovery.ReadFile(r.Env, s.path)
	if err == nil && res.Token == s.tok.AccessToken {
		return
	}
	if err == nil {
		if info, perr := jwtinfo.Parse(res.Token); perr == nil && info.IsJWT && info.Expiry.After(s.tok.Expiry) {
			r.adopt(s, &helper.Token{AccessToken: res.Token, Expiry: info.Expiry, Source: s.path}, now)
			s.next = r.renewAt(s, r.rand())
			r.info("%s holds a newer token written by someone else (%s, %s); using it", s.label(), helper.Fingerprint(res.Token), describeValidity(s.tok, now))
			return
		}
	}
	if _, werr := discovery.Write(r.Env, s.tok.AccessToken, discovery.WriteOptions{Path: s.out.Path}); werr != nil {
		if msg := oneLine(werr); msg != s.checkErr {
			s.checkErr = msg
			r.warn("cannot restore %s: %s", s.label(), msg)
		}
		return
	}
	s.checkErr = ""
	r.info("restored %s (it was missing or held another token): %s, %s", s.label(), helper.Fingerprint(s.tok.AccessToken), describeValidity(s.tok, now))
}
