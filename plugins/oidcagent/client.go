package oidcagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
)

// DefaultTimeout bounds one call to the agent (dial, write, read)
// when neither the profile nor the context sets a shorter one. The agent
// may refresh at the provider before answering, so this is not tiny.
const DefaultTimeout = 30 * time.Second

// MaxReply is the largest reply accepted from the agent. Real replies are
// a few kilobytes (one access token).
const MaxReply = 1 << 20

// ApplicationHint is sent with every token request; oidc-agent shows it in
// its confirmation and password prompts.
const ApplicationHint = "tokenhelper"

// Client talks to one oidc-agent. The zero value is not usable: build it
// with NewClient or fill in Endpoint.
type Client struct {
	// Endpoint is the agent asked first.
	Endpoint Endpoint
	// Remote, when set, is asked for token requests by account name when
	// Endpoint has no account of that name (OIDC_SOCK and
	// OIDC_REMOTE_SOCK both set), as oidc-agent's own libraries do.
	Remote *Endpoint
	// Timeout bounds each call (Token, fallback to Remote included;
	// LoadedAccounts) from dial to the reply's last byte; 0 means
	// DefaultTimeout. A context deadline that comes earlier wins. Within
	// it, connection failures that left the agent untouched (its queue
	// full, see retry.go) are retried.
	Timeout time.Duration

	// onRetry, when set (tests), is told of each retried failure.
	onRetry func(op string, err error)
}

// NewClient locates the agent (see Locate) and returns a client for it.
func NewClient(env Env) (*Client, error) {
	ep, err := Locate(env)
	if err != nil {
		return nil, err
	}
	c := &Client{Endpoint: ep}
	if ep.Source == SourceSock {
		if r := env.get(EnvRemoteSock); r != "" {
			re := remoteEndpoint(r)
			c.Remote = &re
		}
	}
	return c, nil
}

// TokenRequest is one access_token request. Exactly one of Account and
// Issuer must be set; Account wins when both are.
type TokenRequest struct {
	// Account is the agent's account short name.
	Account string
	// Issuer asks for a token of any loaded account of this issuer.
	Issuer string
	// Scopes and Audiences narrow the token; empty means the account's
	// defaults.
	Scopes    []string
	Audiences []string
	// MinValid is how long the token must still be valid; rounded up to
	// whole seconds.
	MinValid time.Duration
	// Force asks the agent for a new token (min_valid_period -1).
	Force bool
}

type tokenWire struct {
	Request         string `json:"request"`
	Account         string `json:"account,omitempty"`
	Issuer          string `json:"issuer,omitempty"`
	MinValidPeriod  int64  `json:"min_valid_period"`
	Scope           string `json:"scope,omitempty"`
	Audience        string `json:"audience,omitempty"`
	ApplicationHint string `json:"application_hint"`
}

type loadedWire struct {
	Request string `json:"request"`
}

// reply is the agent's answer, success or failure.
type reply struct {
	Status      string          `json:"status"`
	Error       string          `json:"error"`
	Info        json.RawMessage `json:"info"`
	AccessToken string          `json:"access_token"`
	Issuer      string          `json:"issuer"`
	ExpiresAt   json.Number     `json:"expires_at"`
}

// minValidSeconds is the wire value of min_valid_period.
func minValidSeconds(d time.Duration, force bool) int64 {
	if force {
		return -1
	}
	if d <= 0 {
		return 0
	}
	s := int64(d / time.Second)
	if d%time.Second != 0 {
		s++
	}
	return s
}

// Token asks the agent for an access token. The returned token has
// AccessToken, Issuer, Expiry (from the JWT's exp when it is a JWT, else
// the agent's expires_at; zero when neither is known) and Source set.
func (c *Client) Token(ctx context.Context, r TokenRequest) (*helper.Token, error) {
	if r.Account == "" && r.Issuer == "" {
		return nil, &helper.Error{Kind: helper.KindConfig,
			Msg: "no oidc-agent account or issuer given",
			Fix: `set account = "NAME" in the profile (oidc-add -l lists your accounts)`}
	}
	w := tokenWire{
		Request:         "access_token",
		Account:         r.Account,
		MinValidPeriod:  minValidSeconds(r.MinValid, r.Force),
		Scope:           strings.Join(fields(r.Scopes), " "),
		Audience:        strings.Join(fields(r.Audiences), " "),
		ApplicationHint: ApplicationHint,
	}
	if r.Account == "" {
		w.Issuer = r.Issuer
	}
	msg, err := json.Marshal(w)
	if err != nil {
		return nil, helper.Wrap(helper.KindInternal, err, "cannot encode the oidc-agent request")
	}
	// One deadline for the whole request, fallback to Remote included.
	ctx, cancel, budget := c.withDeadline(ctx)
	defer cancel()
	rep, ep, err := c.ask(ctx, budget, c.Endpoint, msg, &r)
	if err != nil && r.Account != "" && c.Remote != nil && errors.Is(err, ErrUnknownAccount) {
		rrep, rep2ep, rerr := c.ask(ctx, budget, *c.Remote, msg, &r)
		if rerr == nil || !errors.Is(rerr, ErrNoAgent) {
			rep, ep, err = rrep, rep2ep, rerr
		}
	}
	if err != nil {
		return nil, err
	}
	return tokenFromReply(ep, rep)
}

// tokenFromReply builds the token of a success reply.
func tokenFromReply(ep Endpoint, rep *reply) (*helper.Token, error) {
	if rep.AccessToken == "" || !helper.IsB64Token(rep.AccessToken) {
		return nil, badReply(ep, "a success reply without a usable access token")
	}
	tok := &helper.Token{
		AccessToken: rep.AccessToken,
		Issuer:      cleanIssuer(rep.Issuer),
		Expiry:      unixTime(rep.ExpiresAt),
		Source:      BackendName,
	}
	if exp, iss, ok := jwtClaims(rep.AccessToken); ok {
		if !exp.IsZero() {
			tok.Expiry = exp
		}
		// The agent reports its configured issuer URL, normalised with a
		// trailing slash; the token's own iss is the exact form verifiers
		// compare against.
		if iss != "" && strings.TrimSuffix(iss, "/") == strings.TrimSuffix(tok.Issuer, "/") {
			tok.Issuer = iss
		}
		if tok.Issuer == "" {
			tok.Issuer = iss
		}
	}
	return tok, nil
}

// LoadedAccounts lists the short names of the accounts loaded in the
// agent, sorted.
func (c *Client) LoadedAccounts(ctx context.Context) ([]string, error) {
	msg, _ := json.Marshal(loadedWire{Request: "loaded_accounts"})
	ctx, cancel, budget := c.withDeadline(ctx)
	defer cancel()
	rep, ep, err := c.ask(ctx, budget, c.Endpoint, msg, nil)
	if err != nil {
		return nil, err
	}
	accounts, ok := parseAccounts(rep.Info)
	if !ok {
		return nil, badReply(ep, "a loaded_accounts reply without an account list")
	}
	return accounts, nil
}

// parseAccounts reads the info field of a loaded_accounts reply: a JSON
// array of names (4.x), or a string holding one.
func parseAccounts(raw json.RawMessage) ([]string, bool) {
	var list []string
	if len(raw) == 0 || string(raw) == "null" {
		return []string{}, true
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		var s string
		if json.Unmarshal(raw, &s) != nil || json.Unmarshal([]byte(s), &list) != nil {
			return nil, false
		}
	}
	out := make([]string, 0, len(list))
	for _, a := range list {
		a = safeText(a, 128)
		if a != "" {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), true
}

// fields splits space-separated entries and drops empty and repeated ones,
// keeping the order.
func fields(in []string) []string {
	var out []string
	for _, s := range in {
		for _, f := range strings.Fields(s) {
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	return out
}

func unixTime(n json.Number) time.Time {
	if n == "" {
		return time.Time{}
	}
	f, err := n.Float64()
	// Below one second after the epoch truncates to the epoch itself (found
	// by FuzzJWTClaims: "exp": 0.904): garbage like anything not positive.
	if err != nil || !(f >= 1) || f > maxUnix {
		return time.Time{}
	}
	return time.Unix(int64(f), 0)
}

// maxUnix is 9999-12-31: later "times" are garbage.
const maxUnix = 253402300799

// ask runs one exchange with ep and classifies the outcome. Success
// replies come back; failure replies become *helper.Error values.
func (c *Client) ask(ctx context.Context, budget time.Duration, ep Endpoint, msg []byte, r *TokenRequest) (*reply, Endpoint, error) {
	raw, err := exchange(ctx, budget, ep, msg, c.onRetry)
	if err != nil {
		return nil, ep, err
	}
	rep, err := interpret(ep, raw, r)
	return rep, ep, err
}

// interpret decodes a reply: success replies come back, failure replies
// become errors naming the fix, anything else is a bad reply.
func interpret(ep Endpoint, raw []byte, r *TokenRequest) (*reply, error) {
	rep, err := parseReply(ep, raw)
	if err != nil {
		return nil, err
	}
	switch rep.Status {
	case "success":
		return rep, nil
	case "failure":
		return nil, failure(ep, r, rep.Error)
	}
	return nil, badReply(ep, "a reply with an unknown status")
}

// withDeadline bounds ctx by the client's timeout. budget is the time
// allowed, for messages.
func (c *Client) withDeadline(ctx context.Context) (context.Context, context.CancelFunc, time.Duration) {
	budget := c.timeout()
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < budget {
		budget = max(time.Until(dl), 0)
	}
	ctx, cancel := context.WithTimeout(ctx, budget)
	return ctx, cancel, budget
}

// exchange sends msg and returns the reply, asking again after failures
// that left the agent untouched (see retry.go) until ctx's deadline (set
// by withDeadline; budget is its length). onRetry, when set, is told of
// each such failure before the pause.
func exchange(ctx context.Context, budget time.Duration, ep Endpoint, msg []byte, onRetry func(op string, err error)) ([]byte, error) {
	var last *untouched
	for tries := 1; ; tries++ {
		raw, connected, err := exchangeOnce(ctx, budget, ep, msg)
		var u *untouched
		if !errors.As(err, &u) {
			if last != nil && !connected && errors.Is(err, ErrTimeout) {
				// The deadline came while connecting after the queue was
				// found full: still busy.
				return nil, busyError(ep, budget, tries-1, last)
			}
			return raw, err
		}
		last = u
		if onRetry != nil {
			onRetry(u.op, u.err)
		}
		wait := retryDelay(tries)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= wait {
			// The next try would start after the deadline.
			return nil, busyError(ep, budget, tries, u)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			if errors.Is(ctx.Err(), context.Canceled) {
				return nil, deadlineError(ctx, ep, budget)
			}
			return nil, busyError(ep, budget, tries, u)
		}
	}
}

// exchangeOnce writes msg in one write on a new connection and reads the
// reply to EOF, all before ctx's deadline. A failure that left the agent
// untouched comes back as *untouched, anything else as *helper.Error;
// connected says whether the connection was made.
func exchangeOnce(ctx context.Context, budget time.Duration, ep Endpoint, msg []byte) (reply []byte, connected bool, _ error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, ep.Network, ep.Address)
	if err != nil {
		// The dialer can see the deadline pass before ctx reports it.
		if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
			return nil, false, deadlineError(ctx, ep, budget)
		}
		if u := dialUntouched(err); u != nil {
			return nil, false, u
		}
		return nil, false, dialError(ep, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// Cancellation of ctx interrupts a blocked write or read at once.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if n, err := conn.Write(msg); err != nil {
		if isTimeout(err) || ctx.Err() != nil {
			return nil, true, deadlineError(ctx, ep, budget)
		}
		if u := writeUntouched(n, err); u != nil {
			return nil, true, u
		}
		return nil, true, closedError(ep, false)
	}
	buf, err := io.ReadAll(io.LimitReader(conn, MaxReply+1))
	if len(buf) > MaxReply {
		return nil, true, &helper.Error{Kind: helper.KindUnavailable,
			Msg: fmt.Sprintf("oidc-agent at %s sent a reply larger than %d KiB", ep, MaxReply>>10),
			Fix: "check that " + socketVar(ep) + " points to oidc-agent and not another program",
			Err: ErrBadReply}
	}
	if err != nil {
		if isTimeout(err) || ctx.Err() != nil {
			return nil, true, deadlineError(ctx, ep, budget)
		}
		if u := readUntouched(ep, len(buf), err); u != nil {
			return nil, true, u
		}
		return nil, true, closedError(ep, len(buf) > 0)
	}
	if len(buf) == 0 {
		return nil, true, closedError(ep, false)
	}
	return buf, true, nil
}

func (c *Client) timeout() time.Duration {
	if c.Timeout <= 0 {
		return DefaultTimeout
	}
	return c.Timeout
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

func socketVar(ep Endpoint) string {
	if ep.Source == SourceRemoteSock {
		return EnvRemoteSock
	}
	return EnvSock
}

// deadlineError reports a timeout or a cancellation of the caller.
func deadlineError(ctx context.Context, ep Endpoint, timeout time.Duration) *helper.Error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return &helper.Error{Kind: helper.KindUnavailable,
			Msg: "request to oidc-agent at " + ep.String() + " cancelled",
			Err: context.Canceled}
	}
	return &helper.Error{Kind: helper.KindUnavailable,
		Msg: fmt.Sprintf("oidc-agent at %s did not answer within %s (it may be waiting for you in a popup: password, confirmation or re-authentication; or for a slow provider)",
			ep, roundDuration(timeout)),
		Fix: "answer the oidc-agent prompt, or load the account first with: oidc-add NAME; raise timeout in the profile if the provider is slow",
		Err: fmt.Errorf("%w: %w", ErrTimeout, context.DeadlineExceeded)}
}

func roundDuration(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}

// closedError reports an agent that hung up without a (complete) reply.
func closedError(ep Endpoint, partial bool) *helper.Error {
	what := "closed the connection without answering"
	if partial {
		what = "closed the connection in the middle of its reply"
	}
	return &helper.Error{Kind: helper.KindUnavailable,
		Msg: "oidc-agent at " + ep.String() + " " + what,
		Fix: "the agent may have crashed or been stopped: check with oidc-add -a, and if it is gone " + startFix,
		Err: ErrBadReply}
}

func badReply(ep Endpoint, what string) *helper.Error {
	return &helper.Error{Kind: helper.KindUnavailable,
		Msg: "oidc-agent at " + ep.String() + " sent " + what,
		Fix: "check that " + socketVar(ep) + " points to oidc-agent and not another program, or restart the agent: " + startFix,
		Err: ErrBadReply}
}

// dialError explains why nothing answered at ep.
func dialError(ep Endpoint, err error) *helper.Error {
	e := &helper.Error{Kind: helper.KindUnavailable, Fix: startFix, Err: fmt.Errorf("%w: %w", ErrNoAgent, err)}
	if ep.Network == "tcp" {
		var dnsErr *net.DNSError
		switch {
		case errors.As(err, &dnsErr):
			e.Msg = "cannot find oidc-agent-server host " + ep.String() + ": unknown host"
		case errors.Is(err, syscall.ECONNREFUSED):
			e.Msg = "no oidc-agent-server is listening at " + ep.String()
		default:
			e.Msg = "cannot connect to oidc-agent-server at " + ep.String()
		}
		e.Fix = "check " + EnvRemoteSock + " (host[:port]), or unset it and " + startFix
		return e
	}
	path := ep.Address
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		e.Msg = "oidc-agent is not running (no socket at " + path + ")"
	case errors.Is(err, fs.ErrPermission):
		e.Msg = "cannot connect to oidc-agent at " + path + ": permission denied"
		e.Fix = socketVar(ep) + " must point to your own agent's socket; " + startFix
	case errors.Is(err, syscall.ECONNREFUSED):
		if fi, serr := os.Stat(path); serr == nil && fi.Mode().Type() != fs.ModeSocket {
			e.Msg = "oidc-agent is not running (" + path + " is not a socket)"
		} else {
			e.Msg = "oidc-agent is not running (stale socket at " + path + ": nothing listens on it)"
		}
	default:
		e.Msg = "cannot connect to oidc-agent at " + path
	}
	return e
}
