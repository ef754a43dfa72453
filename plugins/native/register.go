package native

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/helper/secret"
)

// Registration is what Register is asked to set up.
type Registration struct {
	// ClientID of a client an administrator registered; empty: register
	// one dynamically (RFC 7591).
	ClientID string
	// ClientSecret of that client; ignored with Public.
	ClientSecret string
	// Public marks a pre-registered client without a secret.
	Public bool
	// Flow to log in with: "" (the profile's, else device), "device",
	// "password", "client-credentials".
	Flow string
	// Plaintext stores the secrets unencrypted (robot accounts; warned).
	Plaintext bool
	// Force replaces an existing registration (logging it out first).
	Force bool
	// NoLogin stops after the registration.
	NoLogin bool
	// ClientName for dynamic registration; default
	// "tokenhelper:PROFILE@HOSTNAME".
	ClientName string
	// Saved, if set, runs once the client is registered and stored, before
	// the login (the CLI adds the profile to the config file there). An
	// error undoes the registration.
	Saved func() error
}

// AccountInfo describes a stored registration (no secrets).
type AccountInfo struct {
	Issuer        string
	ClientID      string
	Dynamic       bool
	RegisteredAt  time.Time
	Flow          string
	LoggedIn      bool // a refresh token is stored (or client credentials)
	LoggedInAt    time.Time
	RefreshExpiry time.Time
	Subject       string
	Username      string
	Scopes        []string
	StateDir      string
}

// Account returns the stored registration, or nil when the profile has
// none.
func (b *Backend) Account() (*AccountInfo, error) {
	a, err := b.st.load()
	if errors.Is(err, errNotRegistered) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &AccountInfo{
		Issuer: a.Issuer, ClientID: a.ClientID, Dynamic: a.Dynamic, RegisteredAt: a.RegisteredAt,
		Flow: a.Flow, LoggedIn: len(a.Secrets.RefreshToken) > 0 || a.Flow == config.FlowClientCredentials,
		LoggedInAt: a.LoggedInAt, RefreshExpiry: a.RefreshExpiry, Subject: a.Subject, Username: a.Username,
		Scopes: slices.Clone(a.Scopes), StateDir: b.st.dir,
	}, nil
}

// registrationRequest is the client metadata sent (RFC 7591 2). The
// combination (device code + refresh grants, response type "token", no
// redirect URIs) is what INDIGO IAM accepts from oidc-agent.
type registrationRequest struct {
	ClientName              string   `json:"client_name"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	Scope                   string   `json:"scope"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	SoftwareID              string   `json:"software_id,omitempty"`
}

// registrationResponse is the client information response (RFC 7591
// 3.2.1).
type registrationResponse struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            string   `json:"client_secret"`
	RegistrationAccessToken string   `json:"registration_access_token"`
	RegistrationClientURI   string   `json:"registration_client_uri"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ClientName              string   `json:"client_name"`
}

// Register creates the profile's key (asking for a new passphrase unless
// a source or plaintext says otherwise), registers a client (or takes the
// pre-registered one), stores both, calls r.Saved, then logs in with the
// flow and returns the access token for req. When the login fails the
// registration stays, and the error says to run login.
func (b *Backend) Register(ctx context.Context, r Registration, req helper.Request) (*helper.Token, error) {
	req = req.Normalized()
	if b.p.Issuer == "" {
		return nil, helper.Errorf(helper.KindUsage, "profile %q has no issuer", b.p.Name).WithFix("pass --issuer URL (or a preset name)")
	}
	exists, err := b.st.exists()
	if err != nil {
		return nil, err
	}
	if exists {
		if !r.Force {
			return nil, helper.Errorf(helper.KindUsage, "profile %q is already registered", b.p.Name).
				WithFix("to get a token: tokenhelper login%s; to register again: tokenhelper register%s --force", b.flag(), b.flag())
		}
		b.say("Removing the current registration of profile %q first.", b.p.Name)
		if err := b.Logout(ctx, helper.LogoutRequest{Profile: b.p.Name}); err != nil {
			return nil, &helper.Error{Kind: helper.KindOf(err), Err: err,
				Msg: "cannot remove the current registration: " + oneLine(err),
				Fix: "tokenhelper logout --forget" + b.flag() + " (deletes it on this machine only), then register again"}
		}
	}
	flow, _, err := b.flowFor(nil, r.Flow)
	if err != nil {
		return nil, err
	}
	if r.ClientID == "" && flow == config.FlowClientCredentials {
		return nil, helper.Errorf(helper.KindUsage, "the client-credentials flow needs a client registered by an administrator").
			WithFix("pass --client-id ID and --client-secret-file FILE (or --client-secret-env VAR)")
	}
	if r.ClientID != "" && !r.Public && r.ClientSecret == "" {
		return nil, helper.Errorf(helper.KindUsage, "client %s needs its secret", r.ClientID).
			WithFix("pass --client-secret-file FILE or --client-secret-env VAR, or --public for a client without secret")
	}
	if !r.NoLogin {
		if err := b.checkPerson(flow, true); err != nil {
			return nil, err
		}
	}
	// A key without account.json is what an interrupted register leaves.
	key := b.st.key()
	if ok, err := key.Exists(); err != nil {
		return nil, err
	} else if ok {
		if err := key.Forget(b.unlocker(false).Cache); err != nil {
			return nil, err
		}
	}

	p, err := b.provider(b.p.Issuer)
	if err != nil {
		return nil, err
	}
	md, err := p.discover(ctx)
	if err != nil {
		return nil, err
	}
	if flow == config.FlowDevice && md.Endpoints.DeviceAuthorization == "" {
		return nil, helper.Errorf(helper.KindConfig, "%s offers no device flow", md.Issuer).
			WithFix("use --flow password with a client an administrator enabled for it")
	}
	if r.ClientID == "" && md.Endpoints.Registration == "" {
		return nil, helper.Errorf(helper.KindConfig, "%s does not allow clients to register themselves (no registration_endpoint)", md.Issuer).
			WithFix("ask its administrators for a client, then: tokenhelper register%s --client-id ID --client-secret-file FILE", b.flag())
	}

	// The key, asking for a new passphrase if no source gives one.
	u := b.unlocker(true)
	if !r.Plaintext && !u.Sources.Configured() && b.terminal() {
		b.say("The client secret and refresh token of profile %q are kept encrypted with a passphrase.", b.p.Name)
		b.say("Choose one you will remember: it is asked when a new token is needed (then remembered on this machine for %s).", unlockFor(b.p.UnlockFor.D()))
	}
	id, err := u.Create(ctx, key, r.Plaintext)
	if err != nil {
		return nil, err
	}
	undo := func() {
		_ = key.Forget(u.Cache)
		_ = b.st.removeAccount()
	}
	sl, err := b.st.sealer()
	if err != nil {
		undo()
		return nil, err
	}

	now := b.o.Now().UTC()
	a := &account{Issuer: md.Issuer, Endpoints: md.Endpoints, Flow: flow, Created: now}
	var rat string
	if r.ClientID != "" {
		a.ClientID, a.ClientAuth = r.ClientID, authNone
		if !r.Public {
			a.ClientAuth = authMethodFor(md.AuthMethods)
			if a.Secrets.ClientSecret, err = sl.seal(r.ClientSecret); err != nil {
				undo()
				return nil, err
			}
		}
		b.say("Using client %s at %s.", r.ClientID, md.Issuer)
	} else {
		b.say("Registering a client at %s ...", md.Issuer)
		resp, err := b.registerClient(ctx, p, md, r, flow)
		if err != nil {
			undo()
			return nil, err
		}
		rat = resp.RegistrationAccessToken
		a.ClientID, a.ClientName, a.Dynamic, a.RegisteredAt = resp.ClientID, clean(resp.ClientName, 200), true, now
		a.GrantTypes = resp.GrantTypes
		a.ClientAuth = resp.TokenEndpointAuthMethod
		if uri, ok := userURL(resp.RegistrationClientURI); ok {
			a.RegistrationClientURI = uri
		}
		if a.ClientAuth != authNone {
			if a.Secrets.ClientSecret, err = sl.seal(resp.ClientSecret); err != nil {
				b.deleteClient(ctx, p, a.RegistrationClientURI, rat)
				undo()
				return nil, err
			}
		}
		if rat != "" {
			if a.Secrets.RegistrationAccessToken, err = sl.seal(rat); err != nil {
				b.deleteClient(ctx, p, a.RegistrationClientURI, rat)
				undo()
				return nil, err
			}
		}
		b.say("Registered client %s (grants: %s).", a.ClientID, describeGrants(a.GrantTypes))
	}
	if err := b.st.save(a); err != nil {
		b.deleteClient(ctx, p, a.RegistrationClientURI, rat)
		undo()
		return nil, err
	}
	if r.Saved != nil {
		if err := r.Saved(); err != nil {
			b.deleteClient(ctx, p, a.RegistrationClientURI, rat)
			undo()
			return nil, err
		}
	}
	if r.NoLogin {
		return nil, nil
	}
	tok, err := b.loginWith(ctx, a, id, flow, true, req)
	if err != nil {
		var he *helper.Error
		if errors.As(err, &he) && ctx.Err() == nil {
			return nil, &helper.Error{Kind: he.Kind, Err: err,
				Msg: "profile " + quote(b.p.Name) + " is registered, but the login failed: " + oneLine(err),
				Fix: firstNonEmpty(he.Fix, "run: tokenhelper login"+b.flag())}
		}
		return nil, err
	}
	return tok, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func unlockFor(d time.Duration) string {
	switch {
	case d < 0:
		return "no time (unlock_for is negative)"
	case d == 0:
		return secret.DefaultUnlockFor.String()
	}
	return d.String()
}

// registerClient registers a client (RFC 7591) for flow, with the token
// exchange grant too when the provider offers it.
// A provider that refuses the exchange grant gets a second request
// without it.
func (b *Backend) registerClient(ctx context.Context, p *provider, md *Metadata, r Registration, flow string) (*registrationResponse, error) {
	grants := []string{grantRefreshToken}
	switch flow {
	case config.FlowDevice:
		grants = append([]string{grantDeviceCode}, grants...)
	case config.FlowPassword:
		// Only an administrator can enable the password grant; register
		// for the device flow and let the administrator add it.
		grants = append([]string{grantDeviceCode}, grants...)
	}
	// Token exchange where the provider offers it (so exchange = true works
	// later without registering again), or where the profile uses it.
	withExchange := slices.Contains(md.GrantTypes, grantTokenExchange) || (b.p.Exchange && md.SupportsGrant(grantTokenExchange))
	if withExchange {
		grants = append(grants, grantTokenExchange)
	}
	name := r.ClientName
	if name == "" {
		host, _ := os.Hostname()
		name = "tokenhelper:" + b.p.Name
		if host != "" {
			name += "@" + host
		}
	}
	meta := registrationRequest{
		ClientName:              name,
		GrantTypes:              grants,
		ResponseTypes:           []string{"token"},
		Scope:                   strings.Join(b.grantScopes(), " "),
		TokenEndpointAuthMethod: authMethodFor(md.AuthMethods),
		SoftwareID:              "tokenhelper",
	}
	resp, err := b.postRegistration(ctx, p, md.Endpoints.Registration, meta)
	var oe *oauthError
	if withExchange && errors.As(err, &oe) && oe.Code == "invalid_client_metadata" {
		b.say("%s refused the token exchange grant (%s); registering without it.", md.Issuer, oe.Description)
		meta.GrantTypes = slices.DeleteFunc(meta.GrantTypes, func(g string) bool { return g == grantTokenExchange })
		resp, err = b.postRegistration(ctx, p, md.Endpoints.Registration, meta)
	}
	if err != nil {
		if errors.As(err, &oe) {
			return nil, &helper.Error{Kind: helper.KindDenied, Err: oe,
				Msg: fmt.Sprintf("%s refused to register a client: %s", md.Issuer, orCode(oe)),
				Fix: "check the scopes asked for (scopes in the profile, --scope), or ask the provider's administrators for a client and pass --client-id"}
		}
		return nil, err
	}
	switch {
	case !printableASCII(resp.ClientID) || len(resp.ClientID) > 1024:
		return nil, helper.Errorf(helper.KindUnavailable, "%s answered the registration without a usable client_id", md.Issuer).WithFix("retry later")
	case resp.TokenEndpointAuthMethod == "":
		resp.TokenEndpointAuthMethod = meta.TokenEndpointAuthMethod
	}
	switch resp.TokenEndpointAuthMethod {
	case authBasic, authPost:
		if !printableASCII(resp.ClientSecret) {
			b.deleteClient(ctx, p, resp.RegistrationClientURI, resp.RegistrationAccessToken)
			return nil, helper.Errorf(helper.KindUnavailable, "%s registered a confidential client but sent no usable secret", md.Issuer).WithFix("retry later")
		}
	case authNone:
	default:
		b.deleteClient(ctx, p, resp.RegistrationClientURI, resp.RegistrationAccessToken)
		return nil, helper.Errorf(helper.KindUnavailable, "%s registered the client with authentication %q, which tokenhelper does not speak", md.Issuer, clean(resp.TokenEndpointAuthMethod, 64)).
			WithFix("ask the provider's administrators for a client using client_secret_basic")
	}
	if resp.RegistrationAccessToken != "" && !printableASCII(resp.RegistrationAccessToken) {
		resp.RegistrationAccessToken = ""
	}
	if len(resp.GrantTypes) == 0 {
		resp.GrantTypes = meta.GrantTypes
	}
	if flow == config.FlowDevice && !slices.Contains(resp.GrantTypes, grantDeviceCode) {
		b.deleteClient(ctx, p, resp.RegistrationClientURI, resp.RegistrationAccessToken)
		return nil, helper.Errorf(helper.KindDenied, "%s registered the client without the device code grant", md.Issuer).
			WithFix("ask the provider's administrators for a client with the device code grant, then pass --client-id")
	}
	return resp, nil
}

func (b *Backend) postRegistration(ctx context.Context, p *provider, endpoint string, meta registrationRequest) (*registrationResponse, error) {
	body, err := json.Marshal(meta)
	if err != nil {
		return nil, helper.Wrap(helper.KindInternal, err, "cannot encode the client metadata")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, helper.Errorf(helper.KindConfig, "the provider's registration endpoint is not a usable URL")
	}
	req.Header.Set("Content-Type", "application/json")
	status, _, respBody, err := p.do(ctx, req, "client registration")
	if err != nil {
		return nil, err
	}
	if oe := parseOAuthError(status, respBody, "registration"); oe != nil {
		return nil, oe
	}
	if status != http.StatusCreated && status != http.StatusOK {
		return nil, httpStatusError(status, respBody, "the registration endpoint")
	}
	var resp registrationResponse
	if err := json.Unmarshal(respBody, &resp); err != nil {
		return nil, helper.Errorf(helper.KindUnavailable, "the provider's registration answer is not valid JSON").WithFix("retry later")
	}
	return &resp, nil
}

// deleteClient deletes a dynamically registered client (RFC 7592 2.3),
// best effort (used to undo a failed registration).
func (b *Backend) deleteClient(ctx context.Context, p *provider, uri, rat string) {
	if uri == "" || rat == "" || checkEndpoint(uri) != nil {
		return
	}
	if err := p.deleteRegistration(ctx, uri, rat); err != nil {
		b.o.Log.Warn("could not delete the client just registered", "uri", uri, "error", oneLine(err))
	}
}

// errClientGone marks a registration the provider no longer has.
var errClientGone = errors.New("client already deleted")

// deleteRegistration sends DELETE to registration_client_uri with the
// registration access token. 401/403/404 mean the client is gone (or the
// token no longer valid for it): errClientGone.
func (p *provider) deleteRegistration(ctx context.Context, uri, rat string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, uri, nil)
	if err != nil {
		return helper.Errorf(helper.KindInternal, "the registration URI is not usable")
	}
	req.Header.Set("Authorization", "Bearer "+rat)
	status, _, body, err := p.do(ctx, req, "deleting the client")
	if err != nil {
		return err
	}
	switch status {
	case http.StatusNoContent, http.StatusOK:
		return nil
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		return errClientGone
	}
	return httpStatusError(status, body, "the registration endpoint")
}

// revoke revokes a token (RFC 7009 2.1).
func (p *provider) revoke(ctx context.Context, endpoint, token, hint string, auth clientAuth) error {
	form := map[string][]string{"token": {token}, "token_type_hint": {hint}}
	status, body, err := p.postForm(ctx, endpoint, form, &auth, "revoking the refresh token")
	if err != nil {
		return err
	}
	if status == http.StatusOK {
		return nil
	}
	if oe := parseOAuthError(status, body, "revocation"); oe != nil {
		return oe
	}
	return httpStatusError(status, body, "the revocation endpoint")
}
