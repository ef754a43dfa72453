package oidcagent

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
)

// BackendName is the profile backend value (backend = "oidc-agent"),
// helper.Status.Backend and helper.Token.Source.
const BackendName = "oidc-agent"

// Backend hands out tokens of one oidc-agent account (or of any loaded
// account of one issuer). It implements helper.Backend and
// helper.Statuser.
type Backend struct {
	profile config.Profile
	client  *Client
	locErr  error // why the agent could not be located; returned by every call
	now     func() time.Time
}

var (
	_ helper.Backend  = (*Backend)(nil)
	_ helper.Statuser = (*Backend)(nil)
)

// New builds the backend of profile p: Account (or Issuer when Account is
// empty), default Scopes, Audiences and MinValid, and Timeout for each
// exchange with the agent. It fails only on a profile that cannot work; an
// agent that cannot be found is reported by Token and Status, so that
// `tokenhelper status` can say so.
func New(p *config.Profile, env Env) (*Backend, error) {
	if p == nil {
		return nil, &helper.Error{Kind: helper.KindConfig, Msg: "no profile for the oidc-agent backend",
			Fix: `add a profile with backend = "oidc-agent" and account = "NAME"`}
	}
	if p.Account == "" && p.Issuer == "" {
		return nil, &helper.Error{Kind: helper.KindConfig,
			Msg: fmt.Sprintf("profile %q uses oidc-agent but names neither an account nor an issuer", p.Name),
			Fix: fmt.Sprintf(`set account = "NAME" in [profiles.%s] (oidc-add -l lists your accounts)`, p.Name)}
	}
	b := &Backend{profile: *p, now: env.Now}
	if b.now == nil {
		b.now = time.Now
	}
	b.client, b.locErr = NewClient(env)
	if b.client != nil && p.Timeout.D() > 0 {
		b.client.Timeout = p.Timeout.D()
	}
	return b, nil
}

// Token asks the agent for a token. Scopes and audiences come from req,
// else from the profile, else the agent's defaults; MinValid likewise;
// req.Force makes the agent refresh. The token has Source "oidc-agent",
// the issuer the agent reports, the requested scopes and audiences, and
// its real expiry (see the package doc). A token that the agent could not
// make last req.MinValid (the provider issues shorter ones) is refused
// with KindConfig rather than handed out short.
func (b *Backend) Token(ctx context.Context, req helper.Request) (*helper.Token, error) {
	if b.locErr != nil {
		return nil, b.locErr
	}
	scopes := fields(req.Scopes)
	if len(scopes) == 0 {
		scopes = fields(b.profile.Scopes)
	}
	auds := fields(req.Audiences)
	if len(auds) == 0 {
		auds = fields(b.profile.Audiences)
	}
	minValid := req.MinValid
	if minValid <= 0 {
		minValid = b.profile.MinValid.D()
	}
	tr := TokenRequest{
		Account:   b.profile.Account,
		Issuer:    b.profile.Issuer,
		Scopes:    scopes,
		Audiences: auds,
		MinValid:  minValid,
		Force:     req.Force,
	}
	tok, err := b.client.Token(ctx, tr)
	if err != nil {
		return nil, err
	}
	tok.Scopes, tok.Audiences = scopes, auds
	tok.Profile = req.Profile
	if tok.Profile == "" {
		tok.Profile = b.profile.Name
	}
	if minValid > 0 && !tok.Expiry.IsZero() {
		if left := tok.Expiry.Sub(b.now()); left < minValid {
			where := "--min-valid"
			if b.profile.Name != "" {
				where += " or min_valid in [profiles." + b.profile.Name + "]"
			}
			return nil, &helper.Error{Kind: helper.KindConfig,
				Msg: fmt.Sprintf("oidc-agent's freshest token for %s is valid for %s, less than the %s asked for",
					b.subject(), left.Round(time.Second), minValid),
				Fix: "ask for less (" + where + "): the provider issues tokens of about this lifetime"}
		}
	}
	return tok, nil
}

func (b *Backend) subject() string {
	if b.profile.Account != "" {
		return fmt.Sprintf("account %q", b.profile.Account)
	}
	return "issuer " + b.profile.Issuer
}

// Status reports whether the agent answers, where, which accounts are
// loaded and whether the profile's account is one of them. When the agent
// cannot be asked, the Status (OK false, with the reason as a line) comes
// back together with the *helper.Error naming the fix.
func (b *Backend) Status(ctx context.Context) (helper.Status, error) {
	st := helper.Status{Backend: BackendName}
	if b.locErr != nil {
		st.Lines = append(st.Lines, "agent: "+b.locErr.Error())
		return st, b.locErr
	}
	accounts, err := b.client.LoadedAccounts(ctx)
	if err != nil {
		st.Lines = append(st.Lines, "agent: "+err.Error())
		return st, err
	}
	st.Lines = append(st.Lines, "agent: reachable at "+b.client.Endpoint.String())
	if len(accounts) == 0 {
		st.Lines = append(st.Lines, "loaded accounts: none")
	} else {
		st.Lines = append(st.Lines, "loaded accounts: "+strings.Join(accounts, ", "))
	}
	if a := b.profile.Account; a != "" {
		for _, l := range accounts {
			if l == a {
				st.OK = true
			}
		}
		if st.OK {
			st.Lines = append(st.Lines, fmt.Sprintf("account %q: loaded", a))
		} else {
			st.Lines = append(st.Lines, fmt.Sprintf("account %q: not loaded (run: oidc-add %s)", a, a))
		}
	} else {
		st.OK = len(accounts) > 0
		st.Lines = append(st.Lines, "issuer "+b.profile.Issuer+": the agent uses a loaded account of this issuer")
	}
	return st, nil
}

// LoadedAccounts asks the agent found in env (see Locate) for its loaded
// accounts, sorted.
func LoadedAccounts(ctx context.Context, env Env) ([]string, error) {
	c, err := NewClient(env)
	if err != nil {
		return nil, err
	}
	return c.LoadedAccounts(ctx)
}

// SeveralAccountsError is the cause (errors.As) of ZeroConfig's error when
// more than one account is loaded, so that the CLI can list them.
type SeveralAccountsError struct {
	Endpoint Endpoint
	Accounts []string
}

func (e *SeveralAccountsError) Error() string {
	return fmt.Sprintf("%d accounts loaded in oidc-agent at %s: %s", len(e.Accounts), e.Endpoint, strings.Join(e.Accounts, ", "))
}

// ZeroConfig picks the account to use when there is no profile: the
// agent's only loaded account, as a profile named after it (backend
// "oidc-agent", Account set, nothing else). With no account loaded it
// fails with KindLoginNeeded ("oidc-add NAME"); with several, with
// KindNoProfile listing them (cause *SeveralAccountsError); with no agent,
// with the KindUnavailable error of Locate or of the exchange.
func ZeroConfig(ctx context.Context, env Env) (*config.Profile, error) {
	c, err := NewClient(env)
	if err != nil {
		return nil, err
	}
	accounts, err := c.LoadedAccounts(ctx)
	if err != nil {
		return nil, err
	}
	switch len(accounts) {
	case 0:
		return nil, &helper.Error{Kind: helper.KindLoginNeeded,
			Msg: "no account is loaded in oidc-agent at " + c.Endpoint.String(),
			Fix: "load one with: oidc-add NAME (oidc-add -l lists your accounts; oidc-gen NAME creates one)",
			Err: ErrNotLoaded}
	case 1:
		return &config.Profile{Name: accounts[0], Backend: BackendName, Account: accounts[0]}, nil
	}
	return nil, &helper.Error{Kind: helper.KindNoProfile,
		Msg: fmt.Sprintf("%d accounts are loaded in oidc-agent (%s) and no profile says which to use",
			len(accounts), strings.Join(accounts, ", ")),
		Fix: `pick one: add [profiles.NAME] with backend = "oidc-agent" and account = "NAME" to the config, then use -p NAME (or set default_profile)`,
		Err: &SeveralAccountsError{Endpoint: c.Endpoint, Accounts: accounts}}
}
