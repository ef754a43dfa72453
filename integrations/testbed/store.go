package testbed

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/tokenhelper/tokenhelper/helper"
)

// Errors of the Go API (wrapped in *helper.Error).
var (
	ErrUnknownUserCode = errors.New("no device request has this user code")
	ErrNotPending      = errors.New("the device request is no longer pending")
	ErrUnknownUser     = errors.New("no such user")
	ErrUnknownClient   = errors.New("no such client")
)

// store is the provider's state. One mutex guards everything: the test bed
// handles a handful of requests at a time.
type store struct {
	mu        sync.Mutex
	clock     *Clock
	secrets   *secretRecorder // nil: nothing recorded
	lifetimes Lifetimes

	users     map[string]*User // by name
	bySubject map[string]*User
	clients   map[string]*client
	devices   map[string]*deviceGrant // by device code
	userCodes map[string]*deviceGrant // by normalized user code
	refresh   map[string]*refreshGrant
	revoked   map[string]time.Time // jti → exp of revoked access tokens
	sessions  map[string]*webSession
	changed   chan struct{} // closed and replaced when device requests change
}

func newStore(clock *Clock, l Lifetimes) *store {
	return &store{
		clock:     clock,
		lifetimes: l.withDefaults(),
		users:     map[string]*User{},
		bySubject: map[string]*User{},
		clients:   map[string]*client{},
		devices:   map[string]*deviceGrant{},
		userCodes: map[string]*deviceGrant{},
		refresh:   map[string]*refreshGrant{},
		revoked:   map[string]time.Time{},
		sessions:  map[string]*webSession{},
		changed:   make(chan struct{}),
	}
}

func (s *store) now() time.Time { return s.clock.Now() }

func (s *store) getLifetimes() Lifetimes {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lifetimes
}

func (s *store) setLifetimes(l Lifetimes) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lifetimes = l.withDefaults()
}

// notifyLocked wakes everyone waiting for device requests.
func (s *store) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// randomToken returns n random bytes, base64url without padding: no
// characters that need URL encoding, so clients that do not encode form
// bodies (oidc-agent) still send them intact.
func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// subjectFor derives a stable UUID-shaped subject from a user name.
func subjectFor(name string) string {
	h := sha256.Sum256([]byte("tokenhelper-testbed subject " + name))
	h[6] = h[6]&0x0f | 0x50 // version 5 style
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

func secretEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// ---- users

func (s *store) addUser(u User) error {
	if u.Name == "" {
		return helper.Errorf(helper.KindUsage, "a test bed user needs a name")
	}
	if strings.ContainsAny(u.Name, " \t\r\n:") {
		return helper.Errorf(helper.KindUsage, "test bed user name %q contains a space or colon", u.Name)
	}
	if u.Subject == "" {
		u.Subject = subjectFor(u.Name)
	}
	u.Groups = slices.Clone(u.Groups)
	u.Scopes = slices.Clone(u.Scopes)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.users[u.Name]; dup {
		return helper.Errorf(helper.KindUsage, "test bed user %q exists already", u.Name)
	}
	if _, dup := s.bySubject[u.Subject]; dup {
		return helper.Errorf(helper.KindUsage, "test bed subject %q is taken already", u.Subject)
	}
	s.users[u.Name] = &u
	s.bySubject[u.Subject] = &u
	s.secrets.record(SecretPassword, u.Password)
	return nil
}

// user returns the user named name; users are never modified after
// addUser, so the pointer can be read without the lock.
func (s *store) user(name string) (*User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[name]
	return u, ok
}

func (s *store) userBySubject(sub string) (*User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.bySubject[sub]
	return u, ok
}

func (s *store) checkPassword(name, password string) (*User, bool) {
	u, ok := s.user(name)
	if !ok {
		// Compare anyway, so timing does not reveal which names exist.
		secretEqual(password, "no such user")
		return nil, false
	}
	return u, u.Password != "" && secretEqual(password, u.Password)
}

// ---- clients

// client is a registered OAuth client. It implements op.Client.
type client struct {
	spec     ClientSpec // normalized: grants are URNs, AuthMethod set
	dynamic  bool
	regToken string // RFC 7592 registration access token (dynamic only)
	issuedAt time.Time
	meta     map[string]any // registration metadata as echoed (dynamic only)
}

var grantAliases = map[string]string{
	"device":               GrantDeviceCode,
	"device_code":          GrantDeviceCode,
	GrantDeviceCode:        GrantDeviceCode,
	"refresh":              GrantRefreshToken,
	GrantRefreshToken:      GrantRefreshToken,
	"exchange":             GrantTokenExchange,
	"token_exchange":       GrantTokenExchange,
	"token-exchange":       GrantTokenExchange,
	GrantTokenExchange:     GrantTokenExchange,
	GrantClientCredentials: GrantClientCredentials,
	"client-credentials":   GrantClientCredentials,
	GrantPassword:          GrantPassword,
	"authorization_code":   "authorization_code",
	"urn:ietf:params:oauth:grant-type:jwt-bearer": "urn:ietf:params:oauth:grant-type:jwt-bearer",
}

// normalizeGrant maps a grant name to its grant_type value.
func normalizeGrant(g string) (string, bool) {
	v, ok := grantAliases[g]
	return v, ok
}

// normalizeSpec checks and completes a client spec.
func normalizeSpec(c ClientSpec) (ClientSpec, error) {
	if c.ID == "" {
		c.ID = "client-" + randomToken(12)
	}
	if strings.ContainsAny(c.ID, " \t\r\n:%+&=") {
		return c, helper.Errorf(helper.KindUsage, "client id %q contains a character that needs URL encoding", c.ID)
	}
	grants := c.Grants
	if len(grants) == 0 {
		grants = []string{GrantDeviceCode, GrantRefreshToken}
	}
	var norm []string
	for _, g := range grants {
		v, ok := normalizeGrant(g)
		if !ok {
			return c, helper.Errorf(helper.KindUsage, "client %q: unknown grant type %q", c.ID, g)
		}
		if v == GrantPassword {
			c.AllowPassword = true
		}
		if !slices.Contains(norm, v) {
			norm = append(norm, v)
		}
	}
	if c.AllowPassword && !slices.Contains(norm, GrantPassword) {
		norm = append(norm, GrantPassword)
	}
	c.Grants = norm
	switch {
	case c.Public:
		c.Secret = ""
		c.AuthMethod = string(oidc.AuthMethodNone)
	case c.AuthMethod == "" || c.AuthMethod == string(oidc.AuthMethodBasic):
		c.AuthMethod = string(oidc.AuthMethodBasic)
	case c.AuthMethod == string(oidc.AuthMethodPost):
	default:
		return c, helper.Errorf(helper.KindUsage, "client %q: unsupported token_endpoint_auth_method %q", c.ID, c.AuthMethod)
	}
	if !c.Public && c.Secret == "" {
		c.Secret = randomToken(32)
	}
	if c.Name == "" {
		c.Name = c.ID
	}
	c.Scopes = slices.Clone(c.Scopes)
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	return c, nil
}

func (s *store) addClient(spec ClientSpec, dynamic bool, meta map[string]any) (*client, error) {
	spec, err := normalizeSpec(spec)
	if err != nil {
		return nil, err
	}
	c := &client{spec: spec, dynamic: dynamic, issuedAt: s.now(), meta: meta}
	if dynamic {
		c.regToken = randomToken(32)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.clients[spec.ID]; dup {
		return nil, helper.Errorf(helper.KindUsage, "client %q is registered already", spec.ID)
	}
	s.clients[spec.ID] = c
	s.secrets.record(SecretClientSecret, spec.Secret)
	s.secrets.record(SecretRegistrationToken, c.regToken)
	return c, nil
}

func (s *store) client(id string) (*client, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	return c, ok
}

// deleteClient removes a client and every refresh token issued to it.
func (s *store) deleteClient(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.clients, id)
	for tok, g := range s.refresh {
		if g.clientID == id {
			delete(s.refresh, tok)
		}
	}
}

// authenticate checks a client's credentials for a confidential client; a
// public client needs none.
func (s *store) authenticate(id, secret string) (*client, error) {
	c, ok := s.client(id)
	if !ok {
		return nil, fmt.Errorf("client %q: %w", id, ErrUnknownClient)
	}
	if c.spec.Public {
		return c, nil
	}
	if secret == "" || !secretEqual(secret, c.spec.Secret) {
		return nil, errors.New("client secret does not match")
	}
	return c, nil
}

func (c *client) hasGrant(g string) bool { return slices.Contains(c.spec.Grants, g) }

func (c *client) GetID() string                       { return c.spec.ID }
func (c *client) RedirectURIs() []string              { return c.spec.RedirectURIs }
func (c *client) PostLogoutRedirectURIs() []string    { return nil }
func (c *client) ApplicationType() op.ApplicationType { return op.ApplicationTypeNative }
func (c *client) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethod(c.spec.AuthMethod) }
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) GrantTypes() []oidc.GrantType {
	out := make([]oidc.GrantType, len(c.spec.Grants))
	for i, g := range c.spec.Grants {
		out[i] = oidc.GrantType(g)
	}
	return out
}
func (c *client) LoginURL(string) string              { return "" }
func (c *client) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }
func (c *client) IDTokenLifetime() time.Duration      { return time.Hour }
func (c *client) DevMode() bool                       { return true }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) IsScopeAllowed(scope string) bool     { return clientMay(c.spec.Scopes, scope) }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c *client) ClockSkew() time.Duration             { return 0 }

// ---- device grants

type deviceState int

const (
	devicePending deviceState = iota
	deviceApproved
	deviceDenied
	deviceRedeemed
)

type deviceGrant struct {
	deviceCode string
	userCode   string
	clientID   string
	scopes     []string // as requested
	audiences  []string
	created    time.Time
	expires    time.Time
	state      deviceState
	user       string
	approvedAt time.Time
}

// DeviceRequest describes a device authorization request waiting for a
// person (or a test) to approve or deny it.
type DeviceRequest struct {
	UserCode  string
	ClientID  string
	Scopes    []string
	Audiences []string
	Created   time.Time
	Expires   time.Time
}

func (g *deviceGrant) request() DeviceRequest {
	return DeviceRequest{
		UserCode:  g.userCode,
		ClientID:  g.clientID,
		Scopes:    slices.Clone(g.scopes),
		Audiences: slices.Clone(g.audiences),
		Created:   g.created,
		Expires:   g.expires,
	}
}

// normalizeUserCode makes "bcdf ghjk", "BCDF-GHJK" and "bcdfghjk" equal.
func normalizeUserCode(c string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(c) {
		if r == '-' || r == ' ' || r == '\t' {
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (s *store) newDevice(clientID string, scopes, audiences []string) (*deviceGrant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.purgeLocked(now)
	for range 10 {
		userCode, err := op.NewUserCode([]rune(op.CharSetBase20), 8, 4)
		if err != nil {
			return nil, err
		}
		if _, dup := s.userCodes[normalizeUserCode(userCode)]; dup {
			continue
		}
		deviceCode, _ := op.NewDeviceCode(op.RecommendedDeviceCodeBytes)
		g := &deviceGrant{
			deviceCode: deviceCode,
			userCode:   userCode,
			clientID:   clientID,
			scopes:     slices.Clone(scopes),
			audiences:  slices.Clone(audiences),
			created:    now,
			expires:    now.Add(s.lifetimes.DeviceCode),
		}
		s.devices[deviceCode] = g
		s.secrets.record(SecretDeviceCode, deviceCode)
		s.userCodes[normalizeUserCode(userCode)] = g
		s.notifyLocked()
		return g, nil
	}
	return nil, errors.New("could not find a free user code")
}

// purgeLocked forgets device requests and refresh tokens that expired more
// than a day ago, so a long-running test bed stays small.
func (s *store) purgeLocked(now time.Time) {
	horizon := now.Add(-24 * time.Hour)
	for code, g := range s.devices {
		if g.expires.Before(horizon) {
			delete(s.devices, code)
			delete(s.userCodes, normalizeUserCode(g.userCode))
		}
	}
	for tok, g := range s.refresh {
		if g.expires.Before(horizon) {
			delete(s.refresh, tok)
		}
	}
	for jti, exp := range s.revoked {
		if exp.Before(horizon) {
			delete(s.revoked, jti)
		}
	}
	for id, ws := range s.sessions {
		if ws.expires.Before(now) {
			delete(s.sessions, id)
		}
	}
}

// pending returns the device requests still waiting, oldest first.
func (s *store) pendingLocked(now time.Time) []*deviceGrant {
	var out []*deviceGrant
	for _, g := range s.devices {
		if g.state == devicePending && now.Before(g.expires) {
			out = append(out, g)
		}
	}
	slices.SortFunc(out, func(a, b *deviceGrant) int {
		if c := a.created.Compare(b.created); c != 0 {
			return c
		}
		return strings.Compare(a.userCode, b.userCode)
	})
	return out
}

func (s *store) pending() []DeviceRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []DeviceRequest
	for _, g := range s.pendingLocked(s.now()) {
		out = append(out, g.request())
	}
	return out
}

// deviceByUserCode returns a pending request for a user code.
func (s *store) deviceByUserCode(userCode string) (DeviceRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.pendingByCodeLocked(userCode)
	if err != nil {
		return DeviceRequest{}, err
	}
	return g.request(), nil
}

func (s *store) pendingByCodeLocked(userCode string) (*deviceGrant, error) {
	g, ok := s.userCodes[normalizeUserCode(userCode)]
	if !ok {
		return nil, &helper.Error{Kind: helper.KindUsage, Msg: "no device request has user code " + safeCode(userCode), Err: ErrUnknownUserCode,
			Fix: "check the code the client printed; codes look like BCDF-GHJK"}
	}
	if g.state != devicePending || !s.now().Before(g.expires) {
		return nil, &helper.Error{Kind: helper.KindUsage, Msg: "the device request " + g.userCode + " is no longer pending (approved, denied or expired)",
			Err: ErrNotPending, Fix: "start the login again to get a new code"}
	}
	return g, nil
}

// safeCode quotes a user-supplied code for an error message, bounded.
func safeCode(c string) string {
	if len(c) > 32 {
		c = c[:32] + "…"
	}
	return fmt.Sprintf("%q", c)
}

func (s *store) approve(userCode, userName string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[userName]; !ok {
		return &helper.Error{Kind: helper.KindUsage, Msg: fmt.Sprintf("no test bed user %q", userName), Err: ErrUnknownUser,
			Fix: "use one of the configured users (alice, bob by default)"}
	}
	g, err := s.pendingByCodeLocked(userCode)
	if err != nil {
		return err
	}
	g.state = deviceApproved
	g.user = userName
	g.approvedAt = s.now()
	s.notifyLocked()
	return nil
}

func (s *store) deny(userCode string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.pendingByCodeLocked(userCode)
	if err != nil {
		return err
	}
	g.state = deviceDenied
	s.notifyLocked()
	return nil
}

// waitPending blocks until a device request is pending and returns the
// oldest one.
func (s *store) waitPending(done <-chan struct{}, closing <-chan struct{}) (DeviceRequest, error) {
	for {
		s.mu.Lock()
		if p := s.pendingLocked(s.now()); len(p) > 0 {
			r := p[0].request()
			s.mu.Unlock()
			return r, nil
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-done:
			return DeviceRequest{}, errors.New("gave up waiting for a device request")
		case <-closing:
			return DeviceRequest{}, errors.New("the test bed was closed")
		}
	}
}

// pollDevice answers one token-endpoint poll for a device code: the
// approved grant (redeemed once), or the OAuth error to send.
func (s *store) pollDevice(clientID, deviceCode string) (*deviceGrant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.devices[deviceCode]
	if !ok || g.clientID != clientID {
		return nil, oidc.ErrInvalidGrant().WithDescription("unknown device code")
	}
	switch g.state {
	case deviceDenied:
		return nil, oidc.ErrAccessDenied().WithDescription("the user denied the request")
	case deviceRedeemed:
		return nil, oidc.ErrInvalidGrant().WithDescription("the device code was used already")
	case deviceApproved:
		g.state = deviceRedeemed
		c := *g
		return &c, nil
	}
	if !s.now().Before(g.expires) {
		return nil, oidc.ErrExpiredDeviceCode().WithDescription("the device code expired")
	}
	return nil, oidc.ErrAuthorizationPending()
}

// ---- refresh tokens

type refreshGrant struct {
	clientID string
	user     string // "" when the grant is the client's own
	subject  string
	scopes   []string // the full grant; access tokens may narrow it
	issued   time.Time
	expires  time.Time
	authTime time.Time
	used     bool
	revoked  bool
}

// newRefresh stores a refresh token for a grant and returns it.
func (s *store) newRefresh(g refreshGrant) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	g.issued = now
	g.expires = now.Add(s.lifetimes.Refresh)
	g.scopes = slices.Clone(g.scopes)
	tok := randomToken(32)
	s.refresh[tok] = &g
	s.secrets.record(SecretRefreshToken, tok)
	return tok
}

// redeemRefresh validates a refresh token for a client, runs check on it
// and, when check passes, marks it used (rotation: it never works again).
func (s *store) redeemRefresh(token, clientID string, check func(*refreshGrant) error) (refreshGrant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.refresh[token]
	switch {
	case !ok:
		return refreshGrant{}, oidc.ErrInvalidGrant().WithDescription("unknown refresh token")
	case g.clientID != clientID:
		return refreshGrant{}, oidc.ErrInvalidGrant().WithDescription("the refresh token was issued to another client")
	case g.revoked:
		return refreshGrant{}, oidc.ErrInvalidGrant().WithDescription("the refresh token was revoked")
	case g.used:
		return refreshGrant{}, oidc.ErrInvalidGrant().WithDescription("the refresh token was used already (rotation)")
	case !s.now().Before(g.expires):
		return refreshGrant{}, oidc.ErrInvalidGrant().WithDescription("the refresh token expired")
	}
	if check != nil {
		if err := check(g); err != nil {
			return refreshGrant{}, err
		}
	}
	g.used = true
	return *g, nil
}

// lookupRefresh returns a refresh grant without using it (introspection).
func (s *store) lookupRefresh(token string) (refreshGrant, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.refresh[token]
	if !ok {
		return refreshGrant{}, false
	}
	return *g, true
}

// revokeRefresh revokes a refresh token. It reports whether the token was
// a refresh token, and fails when it belongs to another client.
func (s *store) revokeRefresh(token, clientID string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.refresh[token]
	if !ok {
		return false, nil
	}
	if g.clientID != clientID {
		return true, oidc.ErrInvalidClient().WithDescription("the token was not issued to this client")
	}
	g.revoked = true
	return true, nil
}

func (s *store) revokeJTI(jti string, exp time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked[jti] = exp
}

func (s *store) isRevoked(jti string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.revoked[jti]
	return ok
}

// ---- web sessions (the approval page)

type webSession struct {
	user     string
	userCode string
	expires  time.Time
}

func (s *store) newSession(user, userCode string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := randomToken(24)
	s.sessions[id] = &webSession{user: user, userCode: userCode, expires: s.now().Add(10 * time.Minute)}
	return id
}

// takeSession returns and forgets a session (one approval per login).
func (s *store) takeSession(id string) (webSession, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ws, ok := s.sessions[id]
	if !ok {
		return webSession{}, false
	}
	delete(s.sessions, id)
	if !s.now().Before(ws.expires) {
		return webSession{}, false
	}
	return *ws, true
}
