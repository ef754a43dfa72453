package storage

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenhelper/tokenhelper/helper"
)

// maxTokenBytes bounds the size of a bearer token we try to parse. Real
// WLCG tokens are 1–2 KiB; xrootd refuses token files above 4 KiB.
const maxTokenBytes = 32 << 10

// authError is why a request was not authenticated or authorized. status is
// the HTTP status; code is the RFC 6750 error code ("" when the request
// carried no token at all); desc is a fixed, human-readable description
// that never contains token material.
type authError struct {
	status int
	code   string
	desc   string
	scope  string // for insufficient_scope: the scope that would have been needed
}

func invalidToken(desc string) *authError {
	return &authError{status: http.StatusUnauthorized, code: "invalid_token", desc: desc}
}

var errNoToken = &authError{status: http.StatusUnauthorized, desc: "no bearer token in the request"}

// extractToken finds the bearer token of a request, the way dCache and
// XRootD do: from an "Authorization: Bearer <token>" header (RFC 6750 §2.1)
// or from the "authz" query parameter holding "Bearer <token>" (what davix
// and XrdClHttp send as ?authz=Bearer%20<token>; the "Bearer " prefix is
// optional there, as in XRootD). A request carrying two different tokens is
// refused with 400 invalid_request (RFC 6750 §2). An Authorization header
// with another scheme (Basic, ...) counts as no token.
func extractToken(h http.Header, rawQuery string) (string, *authError) {
	var fromHeader, fromQuery string
	var haveHeader, haveQuery bool

	auth := h.Values("Authorization")
	if len(auth) > 1 {
		return "", &authError{status: http.StatusBadRequest, code: "invalid_request", desc: "more than one Authorization header"}
	}
	if len(auth) == 1 {
		if tok, ok := cutBearer(auth[0]); ok {
			fromHeader, haveHeader = tok, true
		}
	}

	if rawQuery != "" {
		var vals []string
		for _, kv := range strings.Split(rawQuery, "&") {
			k, v, _ := strings.Cut(kv, "=")
			if k, err := url.QueryUnescape(k); err != nil || k != "authz" {
				continue
			}
			v, err := url.QueryUnescape(v)
			if err != nil {
				return "", invalidToken("the authz query parameter is not valid URL encoding")
			}
			vals = append(vals, v)
		}
		if len(vals) > 1 {
			return "", &authError{status: http.StatusBadRequest, code: "invalid_request", desc: "more than one authz query parameter"}
		}
		if len(vals) == 1 {
			if tok, ok := cutBearer(vals[0]); ok {
				fromQuery = tok
			} else {
				fromQuery = strings.TrimSpace(vals[0])
			}
			haveQuery = true
		}
	}

	tok := fromHeader
	switch {
	case haveHeader && haveQuery && fromHeader != fromQuery:
		return "", &authError{status: http.StatusBadRequest, code: "invalid_request", desc: "different tokens in the Authorization header and the authz query parameter"}
	case !haveHeader && !haveQuery:
		return "", errNoToken
	case !haveHeader:
		tok = fromQuery
	}
	if tok == "" {
		return "", invalidToken("empty bearer token")
	}
	if len(tok) > maxTokenBytes {
		return "", invalidToken("bearer token too large")
	}
	if !helper.IsB64Token(tok) {
		return "", invalidToken("malformed bearer token (not RFC 6750 b64token syntax)")
	}
	return tok, nil
}

// cutBearer splits "Bearer <token>" (scheme case-insensitive, one or more
// spaces, surrounding white space ignored) and reports whether the scheme
// was Bearer.
func cutBearer(v string) (string, bool) {
	v = strings.TrimLeft(v, " \t")
	const scheme = "bearer"
	if len(v) < len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return "", false
	}
	rest := v[len(scheme):]
	if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
		return "", false // "Bearerxyz" is another scheme
	}
	return strings.Trim(rest, " \t"), true
}

// stripAuthzQuery removes every authz parameter from a raw query, keeping
// the others byte for byte, so the token does not travel further.
func stripAuthzQuery(rawQuery string) string {
	if rawQuery == "" {
		return rawQuery
	}
	parts := strings.Split(rawQuery, "&")
	kept := parts[:0]
	for _, kv := range parts {
		k, _, _ := strings.Cut(kv, "=")
		if uk, err := url.QueryUnescape(k); err == nil && uk == "authz" {
			continue
		}
		kept = append(kept, kv)
	}
	return strings.Join(kept, "&")
}

// claims are the token claims the storage looks at.
type claims struct {
	jwt.RegisteredClaims
	Scope   any `json:"scope"`
	WLCGVer any `json:"wlcg.ver"`
}

// Errors returned from the key function; classified in verify.
var (
	errNoKid       = errors.New("token has no kid")
	errWrongIssuer = errors.New("untrusted issuer")
	errKeyAlg      = errors.New("key algorithm mismatch")
)

// verify checks a token the way XRootD's scitokens-cpp 0.7.3 does, with the
// differences documented on Server: signature (RS256 or ES256, by kid from
// the issuer's JWKS), iss, aud, exp, nbf (required unless typ is at+jwt),
// iat when present, sub, a string scope claim, and wlcg.ver "1.0" when
// present.
func (s *Server) verify(ctx context.Context, raw string) (*claims, *authError) {
	var cl claims
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{"RS256", "ES256"}),
		jwt.WithIssuer(s.issuer),
		jwt.WithTimeFunc(s.now),
		jwt.WithLeeway(s.leeway),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	)
	tok, err := p.ParseWithClaims(raw, &cl, func(t *jwt.Token) (any, error) {
		// Check the issuer before touching the network: a token from
		// elsewhere must never make us fetch keys.
		if iss, _ := t.Claims.GetIssuer(); iss != s.issuer {
			return nil, errWrongIssuer
		}
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errNoKid
		}
		k, err := s.keys.lookup(ctx, kid)
		if err != nil {
			return nil, err
		}
		if k.alg != "" && k.alg != t.Method.Alg() {
			return nil, errKeyAlg
		}
		return k.key, nil
	})
	if err != nil {
		return nil, classify(err)
	}

	aud := cl.Audience
	if len(aud) == 0 {
		return nil, invalidToken("token has no aud claim")
	}
	if !slices.ContainsFunc(aud, func(a string) bool { return a == AnyAudience || slices.Contains(s.audiences, a) }) {
		return nil, invalidToken("token audience does not name this storage")
	}
	if cl.NotBefore == nil {
		typ, _ := tok.Header["typ"].(string)
		if !strings.EqualFold(typ, "at+jwt") && !strings.EqualFold(typ, "application/at+jwt") {
			return nil, invalidToken("token has no nbf claim")
		}
	}
	if cl.Subject == "" {
		return nil, invalidToken("token has no sub claim")
	}
	if cl.WLCGVer != nil && cl.WLCGVer != "1.0" {
		return nil, invalidToken("token wlcg.ver is not 1.0")
	}
	switch cl.Scope.(type) {
	case nil:
		return nil, invalidToken("token has no scope claim")
	case string:
	default:
		return nil, invalidToken("token scope claim is not a string")
	}
	return &cl, nil
}

// classify maps a parse/verify error to a fixed description.
func classify(err error) *authError {
	var ka *keysUnavailableError
	switch {
	case errors.As(err, &ka):
		return &authError{status: http.StatusServiceUnavailable, desc: ka.Error()}
	case errors.Is(err, errWrongIssuer), errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return invalidToken("token issuer is not trusted by this storage")
	case errors.Is(err, errNoKid):
		return invalidToken("token header has no kid")
	case errors.Is(err, errUnknownKid):
		return invalidToken("token signed with a key the issuer does not publish")
	case errors.Is(err, errKeyAlg):
		return invalidToken("token alg does not match the issuer's key")
	case errors.Is(err, jwt.ErrTokenMalformed):
		return invalidToken("malformed token")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return invalidToken("token signature is invalid or its alg is not RS256/ES256")
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return invalidToken("token cannot be verified (unsupported alg)")
	case errors.Is(err, jwt.ErrTokenExpired):
		return invalidToken("token expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return invalidToken("token not valid yet (nbf in the future)")
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return invalidToken("token issued in the future (iat)")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return invalidToken("token has no exp claim")
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		return invalidToken("token has an invalid claim")
	}
	return invalidToken("token rejected")
}
