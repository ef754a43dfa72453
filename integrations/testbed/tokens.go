package testbed

import (
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/tokenhelper/tokenhelper/helper"
)

// signingKey is the provider's RS256 key. It implements op.SigningKey; its
// public half (publicKey) implements op.Key for the JWKS.
type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

type publicKey struct{ k *signingKey }

func (p publicKey) ID() string                         { return p.k.id }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (p publicKey) Use() string                        { return "sig" }
func (p publicKey) Key() any                           { return &p.k.key.PublicKey }

// keyID derives the kid from the public key (RFC 7638 thumbprint), so a
// reused key keeps its kid across restarts.
func keyID(k *rsa.PrivateKey) (string, error) {
	jwk := jose.JSONWebKey{Key: &k.PublicKey}
	tp, err := jwk.Thumbprint(cryptoSHA256)
	if err != nil {
		return "", err
	}
	return b64url(tp)[:16], nil
}

// TokenSpec describes a token for Testbed.Mint. Zero fields take the
// provider's defaults; the overrides exist to build tokens a storage must
// refuse.
type TokenSpec struct {
	// User is a configured user name; the token carries its subject and,
	// when a wlcg.groups scope is in Scopes, its groups.
	User string
	// Subject overrides the sub claim (required when User is empty).
	Subject string
	// ClientID for client_id/azp; default DemoClientID.
	ClientID string
	// Scopes go into the scope claim as given (no policy filtering).
	Scopes []string
	// Audiences; empty means the default audience. A single audience is
	// written as a string, several as an array.
	Audiences []string
	// Lifetime from IssuedAt to exp; default the access lifetime. A
	// negative lifetime gives a token that expired already.
	Lifetime time.Duration
	// IssuedAt; default the clock's now. NotBefore defaults to IssuedAt.
	IssuedAt  time.Time
	NotBefore time.Time
	// Groups overrides wlcg.groups.
	Groups []string
	// Claims are added last and override everything above (e.g.
	// "wlcg.ver": "2.0", or "iss": "https://elsewhere"). A nil value
	// removes the claim.
	Claims map[string]any
	// UnknownKey signs with a fresh key that carries the provider's kid: a
	// token whose signature does not verify.
	UnknownKey bool
}

// accessToken is a minted token with what the provider remembers of it.
type accessToken struct {
	raw     string
	jti     string
	exp     time.Time
	scopes  []string
	aud     []string
	subject string
}

// audClaim writes one audience as a string (as IAM does), several as an
// array.
func audClaim(aud []string) any {
	if len(aud) == 1 {
		return aud[0]
	}
	return aud
}

// mint signs a WLCG access token.
func (tb *Testbed) mint(spec TokenSpec) (accessToken, error) {
	now := tb.Clock.Now()
	iat := spec.IssuedAt
	if iat.IsZero() {
		iat = now
	}
	nbf := spec.NotBefore
	if nbf.IsZero() {
		nbf = iat
	}
	life := spec.Lifetime
	if life == 0 {
		life = tb.store.getLifetimes().Access
	}
	exp := iat.Add(life)
	sub := spec.Subject
	var groups []string
	if spec.User != "" {
		u, ok := tb.store.user(spec.User)
		if !ok {
			return accessToken{}, &helper.Error{Kind: helper.KindUsage, Msg: fmt.Sprintf("no test bed user %q", spec.User), Err: ErrUnknownUser}
		}
		if sub == "" {
			sub = u.Subject
		}
		groups = groupsFor(spec.Scopes, u.Groups)
	}
	if spec.Groups != nil {
		groups = spec.Groups
	}
	if sub == "" {
		return accessToken{}, helper.Errorf(helper.KindUsage, "a token needs a user or a subject")
	}
	clientID := spec.ClientID
	if clientID == "" {
		clientID = DemoClientID
	}
	aud := spec.Audiences
	if len(aud) == 0 {
		aud = []string{tb.defaultAudience}
	}
	jti := newJTI()
	claims := map[string]any{
		"wlcg.ver":  "1.0",
		"iss":       tb.IssuerURL,
		"sub":       sub,
		"aud":       audClaim(aud),
		"iat":       iat.Unix(),
		"nbf":       nbf.Unix(),
		"exp":       exp.Unix(),
		"jti":       jti,
		"client_id": clientID,
		"azp":       clientID,
		"scope":     strings.Join(spec.Scopes, " "),
	}
	if len(groups) > 0 {
		claims["wlcg.groups"] = groups
	}
	for k, v := range spec.Claims {
		if v == nil {
			delete(claims, k)
			continue
		}
		claims[k] = v
	}
	signer := tb.signer
	if spec.UnknownKey {
		var err error
		signer, err = foreignSigner(tb.key.id)
		if err != nil {
			return accessToken{}, err
		}
	}
	raw, err := sign(signer, claims)
	if err != nil {
		return accessToken{}, err
	}
	tb.secrets.record(SecretAccessToken, raw)
	return accessToken{raw: raw, jti: jti, exp: exp, scopes: slices.Clone(spec.Scopes), aud: aud, subject: sub}, nil
}

// mintID signs an OpenID Connect ID token for a user.
func (tb *Testbed) mintID(u *User, clientID string, authTime time.Time) (string, error) {
	now := tb.Clock.Now()
	claims := map[string]any{
		"iss":                tb.IssuerURL,
		"sub":                u.Subject,
		"aud":                clientID,
		"azp":                clientID,
		"iat":                now.Unix(),
		"exp":                now.Add(tb.store.getLifetimes().Access).Unix(),
		"auth_time":          authTime.Unix(),
		"jti":                newJTI(),
		"preferred_username": u.Name,
		"name":               u.Name,
	}
	if u.Email != "" {
		claims["email"] = u.Email
		claims["email_verified"] = true
	}
	raw, err := sign(tb.signer, claims)
	if err == nil {
		tb.secrets.record(SecretIDToken, raw)
	}
	return raw, err
}

func sign(signer jose.Signer, claims map[string]any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

func newSigner(k *signingKey) (jose.Signer, error) { return op.SignerFromKey(k) }

// verifiedToken is what the provider learns from one of its own access
// tokens.
type verifiedToken struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  audience `json:"aud"`
	IssuedAt  int64    `json:"iat"`
	NotBefore int64    `json:"nbf"`
	Expires   int64    `json:"exp"`
	JTI       string   `json:"jti"`
	ClientID  string   `json:"client_id"`
	Scope     string   `json:"scope"`
	Groups    []string `json:"wlcg.groups"`
}

// audience decodes aud as a string or an array.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*a = []string{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return errors.New("aud is neither a string nor an array of strings")
	}
	*a = l
	return nil
}

// verify checks an access token issued by this provider: signature, issuer,
// times (with the test bed's clock) and revocation.
func (tb *Testbed) verify(raw string) (verifiedToken, error) {
	var vt verifiedToken
	if len(raw) > 16<<10 {
		return vt, errors.New("token too long")
	}
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return vt, errors.New("not a signed JWT")
	}
	payload, err := jws.Verify(&tb.key.key.PublicKey)
	if err != nil {
		return vt, errors.New("signature does not verify")
	}
	if err := json.Unmarshal(payload, &vt); err != nil {
		return vt, errors.New("claims are not valid JSON")
	}
	now := tb.Clock.Now().Unix()
	switch {
	case vt.Issuer != tb.IssuerURL:
		return vt, errors.New("issued by another provider")
	case vt.Expires <= now:
		return vt, errors.New("token expired")
	case vt.NotBefore > now:
		return vt, errors.New("token not valid yet")
	case vt.JTI != "" && tb.store.isRevoked(vt.JTI):
		return vt, errors.New("token revoked")
	}
	return vt, nil
}

func (vt verifiedToken) scopes() []string { return splitList(vt.Scope) }
