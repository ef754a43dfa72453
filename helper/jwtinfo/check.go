package jwtinfo

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Warning is one finding of Check. Code is stable (scripts may match it);
// Msg is a one-line explanation for people.
type Warning struct {
	Code string `json:"code"`
	Msg  string `json:"message"`
}

// Warning codes, stable across releases.
const (
	CodeOpaque           = "opaque"             // not a JWT: nothing can be checked locally
	CodeEncrypted        = "encrypted"          // a JWE: claims cannot be read
	CodeExpired          = "expired"            // exp is in the past
	CodeNotYetValid      = "not-yet-valid"      // nbf is in the future
	CodeIssuedInFuture   = "issued-in-future"   // iat is in the future (clock skew)
	CodeMissingClaim     = "missing-claim"      // a claim the WLCG profile requires is absent
	CodeClaimType        = "claim-type"         // a claim has the wrong type or an impossible value
	CodeIssuerNotHTTPS   = "iss-not-https"      // iss is not an https URL
	CodeWLCGVersion      = "wlcg-ver"           // wlcg.ver is not "1.0"
	CodeScopeSyntax      = "scope-syntax"       // storage.* without path, compute.* with path, relative path
	CodeScopeUnknown     = "scope-unknown"      // storage.* or compute.* with an unknown authorization
	CodeNoScope          = "no-scope"           // no scope claim (scitokens-cpp requires one)
	CodeGroupSyntax      = "group-syntax"       // a wlcg.groups entry not starting with "/"
	CodeLifetime         = "lifetime"           // exp - iat longer than 6 h
	CodeTimeOrder        = "time-order"         // exp not after iat/nbf
	CodeAudTrailingSlash = "aud-trailing-slash" // an aud ending in "/"
	CodeMissingNBF       = "missing-nbf"        // no nbf, and typ is not at+jwt
	CodeAlg              = "alg"                // alg not RS256/ES256, or none
	CodeMissingKID       = "missing-kid"        // no kid in the header
)

// MaxLifetime is the longest access-token lifetime the WLCG Common JWT
// Profile v1.0 allows.
const MaxLifetime = 6 * time.Hour

// clockSkew is how far in the future iat may be before Check reports it.
const clockSkew = time.Minute

// requiredClaims are the claims the WLCG Common JWT Profile v1.0 requires
// in an access token, in the profile's order.
var requiredClaims = []string{"sub", "exp", "iss", "wlcg.ver", "aud", "iat", "jti"}

// Check runs the WLCG Common JWT Profile v1.0 checks, the extra demands of
// scitokens-cpp (used by XRootD) and the validity checks at now, returning
// the findings in a stable order: validity first, then structure. A nil
// or opaque token yields one warning saying nothing can be checked.
func Check(info *Info, now time.Time) []Warning {
	if info == nil {
		return []Warning{{Code: CodeOpaque, Msg: "no token to check"}}
	}
	switch info.Format {
	case FormatJWE:
		return []Warning{{Code: CodeEncrypted, Msg: "encrypted token (JWE): its claims and validity cannot be read or checked here, only by its audience"}}
	case FormatOpaque, "":
		return []Warning{{Code: CodeOpaque, Msg: "opaque token (not a JWT): its claims and validity cannot be checked locally, only by its issuer"}}
	}
	var ws []Warning
	add := func(code, format string, args ...any) {
		ws = append(ws, Warning{Code: code, Msg: fmt.Sprintf(format, args...)})
	}

	// Validity at now.
	if !info.Expiry.IsZero() && !now.Before(info.Expiry) {
		add(CodeExpired, "expired %s ago", FormatTTL(now.Sub(info.Expiry)))
	}
	if !info.NotBefore.IsZero() && now.Before(info.NotBefore) {
		add(CodeNotYetValid, "not valid for another %s (nbf is in the future: is this machine's clock right?)", FormatTTL(info.NotBefore.Sub(now)))
	}
	if !info.IssuedAt.IsZero() && info.IssuedAt.Sub(now) > clockSkew {
		add(CodeIssuedInFuture, "issued %s in the future (iat): the clock here or at the issuer is wrong", FormatTTL(info.IssuedAt.Sub(now)))
	}

	// Claims that could not be read.
	ws = append(ws, info.problems...)

	// Required claims.
	var missing []string
	for _, c := range requiredClaims {
		v, ok := info.Claims[c]
		if !ok || v == nil {
			missing = append(missing, c)
		} else if c == "aud" && len(info.Audiences) == 0 {
			missing = append(missing, "aud (empty)")
		}
	}
	if len(missing) > 0 {
		hint := ""
		if !info.Has("wlcg.ver") {
			hint = "; without wlcg.ver this is not a WLCG profile token, and WLCG storage may refuse it"
		}
		add(CodeMissingClaim, "missing claim(s) the WLCG profile requires: %s%s", strings.Join(missing, ", "), hint)
	}

	// iss.
	if info.Issuer != "" {
		u, err := url.Parse(info.Issuer)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			add(CodeIssuerNotHTTPS, "iss %s is not an https URL: its keys cannot be fetched safely", quote(info.Issuer))
		}
	}

	// wlcg.ver.
	if info.WLCGVersion != "" && info.WLCGVersion != "1.0" {
		if _, isStr := info.Claims["wlcg.ver"].(string); isStr {
			add(CodeWLCGVersion, `wlcg.ver is %s; only "1.0" exists, and XRootD (scitokens-cpp) rejects other versions`, quote(info.WLCGVersion))
		}
	}

	// aud.
	for _, a := range info.Audiences {
		if len(a) > 1 && strings.HasSuffix(a, "/") {
			add(CodeAudTrailingSlash, "aud %s ends with \"/\": the profile form is https://host[:port], and XRootD (scitokens-cpp) rejects it", quote(a))
		}
	}

	// Scopes.
	if !info.Has("scope") && !info.Has("scp") {
		add(CodeNoScope, "no scope claim: XRootD (scitokens-cpp) rejects tokens without one")
	}
	for _, s := range info.Scopes {
		checkScope(s, add)
	}

	// Groups.
	for _, g := range info.Groups {
		if !strings.HasPrefix(g, "/") {
			add(CodeGroupSyntax, "group %s does not start with \"/\" (the profile form is /vo/group)", quote(g))
		}
	}

	// Times relative to each other.
	if !info.Expiry.IsZero() {
		start := info.IssuedAt
		if start.IsZero() {
			start = info.NotBefore
		}
		if !start.IsZero() {
			switch life := info.Expiry.Sub(start); {
			case life <= 0:
				add(CodeTimeOrder, "exp is not after iat/nbf: the token was never valid")
			case life > MaxLifetime:
				add(CodeLifetime, "lifetime %s is longer than the 6 hours the WLCG profile allows for access tokens", FormatTTL(life))
			}
		}
	}
	if !info.Has("nbf") && !isATJWT(info.Header.Type) {
		add(CodeMissingNBF, "no nbf claim: XRootD (scitokens-cpp) rejects tokens without nbf unless typ is at+jwt")
	}

	// Header.
	switch alg := info.Header.Alg; alg {
	case "RS256", "ES256":
	case "":
		add(CodeAlg, "no alg in the header: the token cannot be verified")
	case "none":
		add(CodeAlg, "alg is none: the token is unsigned and no service should accept it")
	default:
		add(CodeAlg, "alg %s: the WLCG profile requires RS256 or ES256", quote(alg))
	}
	if info.Header.KeyID == "" {
		add(CodeMissingKID, "no kid in the header: the profile requires one so services can pick the issuer's key")
	}
	return ws
}

func isATJWT(typ string) bool {
	t := strings.ToLower(typ)
	return t == "at+jwt" || t == "application/at+jwt"
}

var (
	storageAuthz = map[string]bool{"read": true, "create": true, "modify": true, "stage": true}
	computeAuthz = map[string]bool{"read": true, "modify": true, "create": true, "cancel": true}
)

// checkScope checks one scope against the WLCG $AUTHZ[:$PATH] rules.
func checkScope(s string, add func(code, format string, args ...any)) {
	switch {
	case strings.HasPrefix(s, "storage."):
		authz, path, hasPath := strings.Cut(strings.TrimPrefix(s, "storage."), ":")
		switch {
		case !storageAuthz[authz]:
			add(CodeScopeUnknown, "unknown storage scope %s (known: storage.read, storage.create, storage.modify, storage.stage)", quote(s))
		case !hasPath:
			add(CodeScopeSyntax, "scope %s needs a path, e.g. %s:/ for everything", quote(s), s)
		case !strings.HasPrefix(path, "/"):
			add(CodeScopeSyntax, "scope %s: the path must start with \"/\"", quote(s))
		}
	case strings.HasPrefix(s, "compute."):
		authz, _, hasPath := strings.Cut(strings.TrimPrefix(s, "compute."), ":")
		switch {
		case !computeAuthz[authz]:
			add(CodeScopeUnknown, "unknown compute scope %s (known: compute.read, compute.modify, compute.create, compute.cancel)", quote(s))
		case hasPath:
			add(CodeScopeSyntax, "scope %s: compute scopes take no path", quote(s))
		}
	}
}
