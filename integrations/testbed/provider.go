package testbed

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Paths of the provider, named after INDIGO IAM's.
const (
	pathDiscovery           = "/.well-known/openid-configuration"
	pathOAuthDiscovery      = "/.well-known/oauth-authorization-server"
	pathJWKS                = "/jwk"
	pathToken               = "/token"
	pathDeviceAuthorization = "/devicecode"
	pathRegistration        = "/iam/api/client-registration"
	pathRevocation          = "/revoke"
	pathIntrospection       = "/introspect"
	pathUserinfo            = "/userinfo"
	pathAuthorization       = "/authorize"
	pathDevicePage          = "/device"
	pathAdmin               = "/admin/"
)

// opServer is the op.Server of the test bed. It embeds op's LegacyServer
// (discovery, JWKS, client verification, health) and overrides the
// methods that issue or inspect tokens, so that every time in a token and
// every expiry decision comes from the test bed's clock (op reads
// time.Now in those paths) and tokens carry the WLCG claims.
type opServer struct {
	*op.LegacyServer
	tb *Testbed
}

func (tb *Testbed) newOPHandler() (http.Handler, error) {
	var cryptoKey [32]byte
	rand.Read(cryptoKey[:])
	l := tb.store.getLifetimes()
	config := &op.Config{
		CryptoKey:             cryptoKey,
		AuthMethodPost:        true,
		GrantTypeRefreshToken: true,
		SupportedScopes:       supportedScopes,
		SupportedClaims: append(slices.Clone(op.DefaultSupportedClaims),
			"wlcg.ver", "wlcg.groups", "scope", "jti", "nbf", "groups"),
		DeviceAuthorization: op.DeviceAuthorizationConfig{
			Lifetime:     l.DeviceCode,
			PollInterval: l.PollInterval,
			UserFormPath: pathDevicePage,
			UserCode:     op.UserCodeBase20,
		},
	}
	var opts []op.Option
	if !tb.https {
		opts = append(opts, op.WithAllowInsecure())
	}
	provider, err := op.NewProvider(config, &opStorage{tb: tb}, op.StaticIssuer(tb.IssuerURL), opts...)
	if err != nil {
		return nil, err
	}
	endpoints := op.Endpoints{
		Authorization:       op.NewEndpoint(pathAuthorization),
		Token:               op.NewEndpoint(pathToken),
		Introspection:       op.NewEndpoint(pathIntrospection),
		Userinfo:            op.NewEndpoint(pathUserinfo),
		Revocation:          op.NewEndpoint(pathRevocation),
		JwksURI:             op.NewEndpoint(pathJWKS),
		DeviceAuthorization: op.NewEndpoint(pathDeviceAuthorization),
	}
	srv := &opServer{LegacyServer: op.NewLegacyServer(provider, endpoints), tb: tb}
	noCodeFlow := func(w http.ResponseWriter, r *http.Request) {
		op.WriteError(w, r, errNoCodeFlow(), nil)
	}
	return op.RegisterLegacyServer(srv, noCodeFlow), nil
}

func errNoCodeFlow() error {
	return oidc.ErrInvalidRequest().WithDescription("the test bed has no authorization code flow: use the device flow (device_authorization_endpoint)")
}

// tokenResponse is the token endpoint's answer (RFC 6749 5.1, RFC 8693
// 2.2.1).
type tokenResponse struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type,omitempty"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	RefreshToken    string `json:"refresh_token,omitempty"`
	IDToken         string `json:"id_token,omitempty"`
	Scope           string `json:"scope,omitempty"`
}

func noStore(data any) *op.Response {
	resp := op.NewResponse(data)
	resp.Header.Set("Cache-Control", "no-store")
	resp.Header.Set("Pragma", "no-cache")
	return resp
}

// grantRequest is what a grant decided to issue.
type grantRequest struct {
	client *client
	user   *User // nil: the client acts on its own behalf
	// subject when user is nil.
	subject string
	// scopes of the access token.
	scopes []string
	// grantScopes the new refresh token carries (the whole grant); a
	// refresh token is issued when they include offline_access, or when
	// forceRefresh is set, and the client has the refresh grant.
	grantScopes  []string
	forceRefresh bool
	audiences    []string
	groups       []string // nil: from the user and scopes
	authTime     time.Time
}

func (tb *Testbed) issue(g grantRequest) (*tokenResponse, error) {
	spec := TokenSpec{
		Subject:   g.subject,
		ClientID:  g.client.spec.ID,
		Scopes:    g.scopes,
		Audiences: g.audiences,
		Groups:    g.groups,
	}
	if g.user != nil {
		spec.User = g.user.Name
		spec.Subject = g.user.Subject
	}
	at, err := tb.mint(spec)
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err).WithDescription("cannot sign the token")
	}
	resp := &tokenResponse{
		AccessToken: at.raw,
		TokenType:   oidc.BearerToken,
		ExpiresIn:   int64(at.exp.Sub(tb.Clock.Now()).Round(time.Second) / time.Second),
		Scope:       strings.Join(g.scopes, " "),
	}
	wantRefresh := g.forceRefresh || slices.Contains(g.grantScopes, oidc.ScopeOfflineAccess)
	if wantRefresh && g.client.hasGrant(GrantRefreshToken) {
		grant := refreshGrant{
			clientID: g.client.spec.ID,
			subject:  spec.Subject,
			scopes:   g.grantScopes,
			authTime: g.authTime,
		}
		if g.user != nil {
			grant.user = g.user.Name
		}
		resp.RefreshToken = tb.store.newRefresh(grant)
	}
	if g.user != nil && slices.Contains(g.scopes, oidc.ScopeOpenID) {
		resp.IDToken, err = tb.mintID(g.user, g.client.spec.ID, g.authTime)
		if err != nil {
			return nil, oidc.ErrServerError().WithParent(err).WithDescription("cannot sign the ID token")
		}
	}
	return resp, nil
}

// defaultScopes are used when a request names none: the client's scopes,
// else openid.
func defaultScopes(c *client) []string {
	if len(c.spec.Scopes) > 0 {
		return slices.Clone(c.spec.Scopes)
	}
	return []string{oidc.ScopeOpenID}
}

func asClient(c op.Client) (*client, error) {
	cl, ok := c.(*client)
	if !ok {
		return nil, oidc.ErrServerError().WithDescription("unexpected client type")
	}
	return cl, nil
}

func (s *opServer) Discovery(ctx context.Context, r *op.Request[struct{}]) (*op.Response, error) {
	resp, err := s.LegacyServer.Discovery(ctx, r)
	if err != nil {
		return nil, err
	}
	cfg, ok := resp.Data.(*oidc.DiscoveryConfiguration)
	if !ok {
		return nil, oidc.ErrServerError().WithDescription("unexpected discovery document type")
	}
	cfg.RegistrationEndpoint = s.tb.IssuerURL + pathRegistration
	cfg.GrantTypesSupported = []oidc.GrantType{
		oidc.GrantTypeDeviceCode, oidc.GrantTypeRefreshToken, oidc.GrantTypeTokenExchange,
		oidc.GrantTypeClientCredentials, GrantPassword,
	}
	cfg.ResponseTypesSupported = []string{string(oidc.ResponseTypeCode)}
	methods := []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost, oidc.AuthMethodNone}
	cfg.TokenEndpointAuthMethodsSupported = methods
	cfg.RevocationEndpointAuthMethodsSupported = methods
	cfg.IntrospectionEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost}
	cfg.TokenEndpointAuthSigningAlgValuesSupported = nil
	cfg.RevocationEndpointAuthSigningAlgValuesSupported = nil
	cfg.IntrospectionEndpointAuthSigningAlgValuesSupported = nil
	cfg.CodeChallengeMethodsSupported = nil
	cfg.RequestObjectSigningAlgValuesSupported = nil
	cfg.IDTokenSigningAlgValuesSupported = []string{string(jose.RS256)}
	return resp, nil
}

// VerifyClient authenticates the client through op, and answers a failed
// authentication with 401 as RFC 6749 5.2 asks (and IAM does); op says 400.
func (s *opServer) VerifyClient(ctx context.Context, r *op.Request[op.ClientCredentials]) (op.Client, error) {
	c, err := s.LegacyServer.VerifyClient(ctx, r)
	var oe *oidc.Error
	if err != nil && errors.As(err, &oe) && oe.ErrorType == oidc.InvalidClient {
		return nil, op.NewStatusError(oe, http.StatusUnauthorized)
	}
	return c, err
}

func (s *opServer) VerifyAuthRequest(context.Context, *op.Request[oidc.AuthRequest]) (*op.ClientRequest[oidc.AuthRequest], error) {
	return nil, errNoCodeFlow()
}

func (s *opServer) CodeExchange(context.Context, *op.ClientRequest[oidc.AccessTokenRequest]) (*op.Response, error) {
	return nil, oidc.ErrUnsupportedGrantType().WithDescription("authorization_code is not supported by the test bed; use the device flow")
}

func (s *opServer) JWTProfile(context.Context, *op.Request[oidc.JWTProfileGrantRequest]) (*op.Response, error) {
	return nil, oidc.ErrUnsupportedGrantType().WithDescription("the JWT bearer grant is not supported by the test bed")
}

// DeviceAuthorization starts a device flow (RFC 8628 3.1-3.2). The
// request may carry audience, as IAM accepts it.
func (s *opServer) DeviceAuthorization(ctx context.Context, r *op.ClientRequest[oidc.DeviceAuthorizationRequest]) (*op.Response, error) {
	c, err := asClient(r.Client)
	if err != nil {
		return nil, err
	}
	if !c.hasGrant(GrantDeviceCode) {
		return nil, oidc.ErrUnauthorizedClient().WithDescription("the client is not allowed the device code grant")
	}
	scopes := splitList(r.Form["scope"]...)
	auds := splitList(r.Form["audience"]...)
	g, err := s.tb.store.newDevice(c.spec.ID, scopes, auds)
	if err != nil {
		return nil, op.NewStatusError(oidc.ErrServerError().WithParent(err), http.StatusInternalServerError)
	}
	l := s.tb.store.getLifetimes()
	verification := s.tb.IssuerURL + pathDevicePage
	return noStore(&oidc.DeviceAuthorizationResponse{
		DeviceCode:              g.deviceCode,
		UserCode:                g.userCode,
		VerificationURI:         verification,
		VerificationURIComplete: verification + "?user_code=" + g.userCode,
		ExpiresIn:               int(l.DeviceCode / time.Second),
		Interval:                int((l.PollInterval + time.Second - 1) / time.Second),
	}), nil
}

// DeviceToken answers a device-code poll (RFC 8628 3.4-3.5).
func (s *opServer) DeviceToken(ctx context.Context, r *op.ClientRequest[oidc.DeviceAccessTokenRequest]) (*op.Response, error) {
	c, err := asClient(r.Client)
	if err != nil {
		return nil, err
	}
	g, err := s.tb.store.pollDevice(c.spec.ID, r.Data.DeviceCode)
	if err != nil {
		return nil, err
	}
	u, ok := s.tb.store.user(g.user)
	if !ok {
		return nil, oidc.ErrAccessDenied().WithDescription("the approving user no longer exists")
	}
	requested := g.scopes
	if len(requested) == 0 {
		requested = defaultScopes(c)
	}
	granted := filterScopes(requested, u, c.spec.Scopes)
	resp, err := s.tb.issue(grantRequest{
		client: c, user: u, scopes: granted, grantScopes: granted,
		audiences: g.audiences, authTime: g.approvedAt,
	})
	if err != nil {
		return nil, err
	}
	return noStore(resp), nil
}

// RefreshToken redeems a refresh token (RFC 6749 6): rotation (the old
// token never works again), expiry by the test bed's clock, down-scoping
// with scope (a subset of the grant) and audience.
func (s *opServer) RefreshToken(ctx context.Context, r *op.ClientRequest[oidc.RefreshTokenRequest]) (*op.Response, error) {
	c, err := asClient(r.Client)
	if err != nil {
		return nil, err
	}
	requested := splitList(r.Form["scope"]...)
	auds := splitList(r.Form["audience"]...)
	g, err := s.tb.store.redeemRefresh(r.Data.RefreshToken, c.spec.ID, func(g *refreshGrant) error {
		if !subsetOf(requested, g.scopes) {
			return oidc.ErrInvalidScope().WithDescription("the requested scope exceeds the granted scope (up-scoping is not allowed)")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	scopes := g.scopes
	if len(requested) > 0 {
		scopes = requested
	}
	gr := grantRequest{
		client: c, subject: g.subject, scopes: scopes, grantScopes: g.scopes,
		forceRefresh: true, audiences: auds, authTime: g.authTime,
	}
	if g.user != "" {
		u, ok := s.tb.store.user(g.user)
		if !ok {
			return nil, oidc.ErrInvalidGrant().WithDescription("the user of this refresh token no longer exists")
		}
		gr.user = u
	}
	resp, err := s.tb.issue(gr)
	if err != nil {
		return nil, err
	}
	return noStore(resp), nil
}

// ClientCredentialsExchange issues a token to a confidential client for
// itself (RFC 6749 4.4): sub is the client id, no refresh token.
func (s *opServer) ClientCredentialsExchange(ctx context.Context, r *op.ClientRequest[oidc.ClientCredentialsRequest]) (*op.Response, error) {
	c, err := asClient(r.Client)
	if err != nil {
		return nil, err
	}
	requested := splitList(r.Form["scope"]...)
	if len(requested) == 0 {
		requested = defaultScopes(c)
	}
	granted := filterScopes(requested, nil, c.spec.Scopes)
	resp, err := s.tb.issue(grantRequest{
		client: c, subject: c.spec.ID, scopes: granted,
		audiences: splitList(r.Form["audience"]...), authTime: s.tb.Clock.Now(),
	})
	if err != nil {
		return nil, err
	}
	return noStore(resp), nil
}

// TokenExchange exchanges one of the provider's access tokens for another
// with a narrower scope and another audience (RFC 8693). A refresh token
// comes along when offline_access is requested (or requested_token_type
// is refresh_token) and the client has the refresh grant.
func (s *opServer) TokenExchange(ctx context.Context, r *op.ClientRequest[oidc.TokenExchangeRequest]) (*op.Response, error) {
	c, err := asClient(r.Client)
	if err != nil {
		return nil, err
	}
	switch r.Data.SubjectTokenType {
	case oidc.AccessTokenType, oidc.JWTTokenType:
	default:
		return nil, oidc.ErrInvalidRequest().WithDescription("subject_token_type must be an access token")
	}
	switch r.Data.RequestedTokenType {
	case "", oidc.AccessTokenType, oidc.JWTTokenType, oidc.RefreshTokenType:
	default:
		return nil, oidc.ErrInvalidRequest().WithDescription("requested_token_type %s is not supported", r.Data.RequestedTokenType)
	}
	if r.Data.ActorToken != "" {
		return nil, oidc.ErrInvalidRequest().WithDescription("delegation (actor_token) is not supported")
	}
	vt, err := s.tb.verify(r.Data.SubjectToken)
	if err != nil {
		return nil, oidc.ErrInvalidRequest().WithDescription("subject_token is not valid: %v", err)
	}
	have := vt.scopes()
	requested := splitList(r.Form["scope"]...)
	if len(requested) == 0 {
		requested = slices.DeleteFunc(slices.Clone(have), func(s string) bool { return s == oidc.ScopeOfflineAccess })
	}
	for _, sc := range requested {
		if sc == oidc.ScopeOfflineAccess {
			continue
		}
		if !subsetOf([]string{sc}, have) {
			return nil, oidc.ErrInvalidScope().WithDescription("scope %q exceeds the subject token's scope", sc)
		}
		if !clientMay(c.spec.Scopes, sc) {
			return nil, oidc.ErrInvalidScope().WithDescription("the client may not ask for scope %q", sc)
		}
	}
	var auds []string
	for _, a := range r.Data.Audience {
		auds = append(auds, splitList(a)...)
	}
	wantRefresh := r.Data.RequestedTokenType == oidc.RefreshTokenType || slices.Contains(requested, oidc.ScopeOfflineAccess)
	if wantRefresh && !c.hasGrant(GrantRefreshToken) {
		return nil, oidc.ErrInvalidRequest().WithDescription("a refresh token needs a client with the refresh_token grant")
	}
	gr := grantRequest{
		client: c, subject: vt.Subject, scopes: requested, grantScopes: requested,
		forceRefresh: wantRefresh, audiences: auds, authTime: s.tb.Clock.Now(),
	}
	if u, ok := s.tb.store.userBySubject(vt.Subject); ok {
		gr.user = u
	} else {
		gr.groups = groupsFor(requested, vt.Groups)
	}
	resp, err := s.tb.issue(gr)
	if err != nil {
		return nil, err
	}
	resp.IssuedTokenType = string(oidc.AccessTokenType)
	return noStore(resp), nil
}

// Introspect answers RFC 7662 for access and refresh tokens, with the
// test bed's clock.
func (s *opServer) Introspect(ctx context.Context, r *op.Request[op.IntrospectionRequest]) (*op.Response, error) {
	cc := r.Data.ClientCredentials
	if _, err := s.tb.store.authenticate(cc.ClientID, cc.ClientSecret); err != nil {
		return nil, op.NewStatusError(oidc.ErrInvalidClient().WithDescription("client authentication failed"), http.StatusUnauthorized)
	}
	token := r.Data.Token
	out := map[string]any{"active": false}
	if g, ok := s.tb.store.lookupRefresh(token); ok {
		if !g.used && !g.revoked && s.tb.Clock.Now().Before(g.expires) {
			out = map[string]any{
				"active": true, "token_type": "refresh_token", "client_id": g.clientID,
				"sub": g.subject, "scope": strings.Join(g.scopes, " "), "iss": s.tb.IssuerURL,
				"iat": g.issued.Unix(), "exp": g.expires.Unix(),
			}
			if g.user != "" {
				out["username"] = g.user
			}
		}
		return noStore(out), nil
	}
	if vt, err := s.tb.verify(token); err == nil {
		out = map[string]any{
			"active": true, "token_type": oidc.BearerToken, "client_id": vt.ClientID,
			"sub": vt.Subject, "scope": vt.Scope, "iss": vt.Issuer, "aud": audClaim(vt.Audience),
			"iat": vt.IssuedAt, "nbf": vt.NotBefore, "exp": vt.Expires, "jti": vt.JTI,
		}
		if len(vt.Groups) > 0 {
			out["wlcg.groups"] = vt.Groups
		}
		if u, ok := s.tb.store.userBySubject(vt.Subject); ok {
			out["username"] = u.Name
		}
	}
	return noStore(out), nil
}

// UserInfo answers the OpenID Connect userinfo endpoint.
func (s *opServer) UserInfo(ctx context.Context, r *op.Request[oidc.UserInfoRequest]) (*op.Response, error) {
	vt, err := s.tb.verify(r.Data.AccessToken)
	if err != nil {
		return nil, op.NewStatusError(oidc.ErrAccessDenied().WithDescription("invalid access token: %v", err), http.StatusUnauthorized)
	}
	out := map[string]any{"sub": vt.Subject}
	if u, ok := s.tb.store.userBySubject(vt.Subject); ok {
		out["preferred_username"] = u.Name
		out["name"] = u.Name
		if u.Email != "" {
			out["email"] = u.Email
			out["email_verified"] = true
		}
		out["groups"] = u.Groups
		if gs := groupsFor(vt.scopes(), u.Groups); len(gs) > 0 {
			out["wlcg.groups"] = gs
		}
	}
	return op.NewResponse(out), nil
}

// Revocation revokes a refresh token or an access token (RFC 7009).
// Unknown tokens are fine (200); tokens of another client are refused.
func (s *opServer) Revocation(ctx context.Context, r *op.ClientRequest[oidc.RevocationRequest]) (*op.Response, error) {
	c, err := asClient(r.Client)
	if err != nil {
		return nil, err
	}
	isRefresh, err := s.tb.store.revokeRefresh(r.Data.Token, c.spec.ID)
	if err != nil {
		return nil, op.RevocationError(err)
	}
	if !isRefresh {
		if vt, err := s.tb.verify(r.Data.Token); err == nil {
			if vt.ClientID != c.spec.ID {
				return nil, op.RevocationError(oidc.ErrInvalidClient().WithDescription("the token was not issued to this client"))
			}
			s.tb.store.revokeJTI(vt.JTI, time.Unix(vt.Expires, 0))
		}
	}
	return op.NewResponse(nil), nil
}

// passwordGrant implements the resource owner password credentials grant
// (RFC 6749 4.3), which op does not. As at IAM, only clients an
// administrator flagged (ClientSpec.AllowPassword) may use it; others get
// unauthorized_client.
func (tb *Testbed) passwordGrant(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		op.WriteError(w, r, oidc.ErrInvalidRequest().WithDescription("cannot parse the form"), nil)
		return
	}
	id, secret, basic := r.BasicAuth()
	if basic {
		if r.PostForm.Get("client_secret") != "" {
			op.WriteError(w, r, oidc.ErrInvalidRequest().WithDescription("client authentication must not use more than one method"), nil)
			return
		}
		id, secret = unescapeBasic(id), unescapeBasic(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	c, err := tb.store.authenticate(id, secret)
	if err != nil {
		op.WriteError(w, r, op.NewStatusError(oidc.ErrInvalidClient().WithDescription("client authentication failed"), http.StatusUnauthorized), nil)
		return
	}
	if !c.spec.AllowPassword {
		op.WriteError(w, r, oidc.ErrUnauthorizedClient().WithDescription("the password grant is not enabled for this client (ask an administrator)"), nil)
		return
	}
	u, ok := tb.store.checkPassword(r.PostForm.Get("username"), r.PostForm.Get("password"))
	if !ok {
		op.WriteError(w, r, oidc.ErrInvalidGrant().WithDescription("bad user credentials"), nil)
		return
	}
	requested := splitList(r.PostForm["scope"]...)
	if len(requested) == 0 {
		requested = defaultScopes(c)
	}
	granted := filterScopes(requested, u, c.spec.Scopes)
	resp, err := tb.issue(grantRequest{
		client: c, user: u, scopes: granted, grantScopes: granted,
		audiences: splitList(r.PostForm["audience"]...), authTime: tb.Clock.Now(),
	})
	if err != nil {
		op.WriteError(w, r, err, nil)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, resp)
}

// unescapeBasic undoes the form-encoding RFC 6749 2.3.1 asks clients to
// apply to Basic credentials; values that are not encoded stay as sent.
func unescapeBasic(s string) string {
	if v, err := url.QueryUnescape(s); err == nil {
		return v
	}
	return s
}
