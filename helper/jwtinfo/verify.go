package jwtinfo

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenhelper/tokenhelper/helper"
)

// DefaultTimeout bounds Verify's network work when ctx has no deadline.
const DefaultTimeout = 10 * time.Second

// MaxBody is the largest discovery or JWKS document Verify reads.
const MaxBody = 1 << 20

// discoveryPath is appended to the issuer (OpenID Connect Discovery 1.0 §4).
const discoveryPath = "/.well-known/openid-configuration"

// acceptedAlgs are the signature algorithms Verify checks. HMAC algorithms
// are not among them: an issuer's public keys cannot verify them.
var acceptedAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// VerifyOptions controls Verify. The zero value works: a default HTTP
// client, no audience check, the real clock, no leeway, any https issuer.
type VerifyOptions struct {
	// HTTPClient fetches discovery and JWKS documents. Nil means a plain
	// client with the environment's proxy settings. Its redirect policy is
	// wrapped so that redirects also go to https (or loopback) only.
	HTTPClient *http.Client
	// Audiences the token must be for: it passes when any of its aud
	// values is one of these, or is AnyAudience. Empty: aud is not
	// checked (the verdict says so).
	Audiences []string
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Leeway is the clock skew allowed on exp and nbf (e.g. 30 s).
	Leeway time.Duration
	// TrustedIssuers, when not empty, are the only issuers whose keys are
	// fetched ("https://iam.example" and "https://iam.example/" are the
	// same issuer here).
	TrustedIssuers []string
}

// Check names in a Verdict, in order.
const (
	StepIssuer    = "issuer"
	StepDiscovery = "discovery"
	StepSignature = "signature"
	StepExpiry    = "expiry"
	StepNotBefore = "not-before"
	StepAudience  = "audience"
)

// CheckResult is one step of a verification. Skipped steps were not
// performed (no expected audience, or an earlier step refused the issuer)
// and do not make the verdict invalid by themselves.
type CheckResult struct {
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Skipped bool   `json:"skipped,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// Verdict is the outcome of Verify. Valid is true when no step failed.
type Verdict struct {
	Valid   bool          `json:"valid"`
	Issuer  string        `json:"issuer,omitempty"`
	JWKSURI string        `json:"jwks_uri,omitempty"`
	KeyID   string        `json:"key_id,omitempty"`
	Alg     string        `json:"alg,omitempty"`
	Checks  []CheckResult `json:"checks"`
}

// Failed lists the names of the failed steps.
func (v *Verdict) Failed() []string {
	var out []string
	for _, c := range v.Checks {
		if !c.OK && !c.Skipped {
			out = append(out, c.Name)
		}
	}
	return out
}

// Err is nil for a valid verdict, else a *helper.Error of KindInvalidToken
// naming the first failed step (for the exit code).
func (v *Verdict) Err() error {
	if v == nil || v.Valid {
		return nil
	}
	for _, c := range v.Checks {
		if !c.OK && !c.Skipped {
			return &helper.Error{
				Kind: helper.KindInvalidToken,
				Msg:  "token verification failed: " + c.Name + ": " + c.Detail,
				Fix:  "get a fresh token for the right audience (tokenhelper token), or check the issuer",
			}
		}
	}
	return &helper.Error{Kind: helper.KindInvalidToken, Msg: "token verification failed"}
}

func (v *Verdict) add(name string, ok bool, format string, args ...any) {
	v.Checks = append(v.Checks, CheckResult{Name: name, OK: ok, Detail: fmt.Sprintf(format, args...)})
}

func (v *Verdict) skip(name, format string, args ...any) {
	v.Checks = append(v.Checks, CheckResult{Name: name, Skipped: true, Detail: fmt.Sprintf(format, args...)})
}

// Verify checks a JWT the way a WLCG service would: it finds the issuer's
// keys through OpenID Connect Discovery (`iss` +
// /.well-known/openid-configuration → jwks_uri), verifies the signature
// with the key named by `kid` (the only key when there is no kid), then
// checks exp and nbf (with opts.Leeway) and aud (against opts.Audiences).
//
// Only https issuers and jwks_uris are fetched, except on loopback hosts
// (127.0.0.1, localhost, ::1) for test beds. Every fetch is bounded by
// ctx, or by DefaultTimeout when ctx has no deadline, and reads at most
// MaxBody bytes.
//
// A non-nil error means the verification could not be carried out: the
// input is not a JWT (KindInvalidToken, KindNoToken), or the issuer's
// documents could not be fetched or read (KindUnavailable, naming the
// URL); the Verdict is then nil. Otherwise the Verdict says what passed
// and what failed; Verdict.Err turns a failure into an error.
func Verify(ctx context.Context, raw string, opts VerifyOptions) (*Verdict, error) {
	info, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	if !info.IsJWT {
		return nil, &helper.Error{
			Kind: helper.KindInvalidToken,
			Msg:  fmt.Sprintf("cannot verify an %s token locally", describeFormat(info.Format)),
			Fix:  "only its issuer can tell whether it is valid; inspect it without --verify",
		}
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	at := now()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	v := &Verdict{Issuer: info.Issuer, KeyID: info.Header.KeyID, Alg: info.Header.Alg}

	if v.checkIssuer(info, opts.TrustedIssuers) {
		f := &fetcher{client: safeClient(opts.HTTPClient)}
		if err := v.checkSignature(ctx, f, info); err != nil {
			return nil, err
		}
	} else {
		v.skip(StepDiscovery, "the issuer was refused")
		v.skip(StepSignature, "the issuer's keys were not fetched")
	}
	v.checkTimes(info, at, opts.Leeway)
	v.checkAudience(info, opts.Audiences)
	v.Valid = len(v.Failed()) == 0
	return v, nil
}

func describeFormat(f Format) string {
	if f == FormatJWE {
		return "encrypted (JWE)"
	}
	return string(f)
}

// checkIssuer decides whether the issuer's keys may be fetched.
func (v *Verdict) checkIssuer(info *Info, trusted []string) bool {
	iss := info.Issuer
	if iss == "" {
		v.add(StepIssuer, false, "the token has no usable iss claim: its keys cannot be found")
		return false
	}
	if len(trusted) > 0 && !slices.ContainsFunc(trusted, func(t string) bool { return sameIssuer(t, iss) }) {
		v.add(StepIssuer, false, "%s is not a trusted issuer (trusted: %s)", quote(iss), strings.Join(trusted, ", "))
		return false
	}
	u, err := url.Parse(iss)
	switch {
	case err != nil || u.Host == "" || u.User != nil:
		v.add(StepIssuer, false, "iss %s is not a usable URL", quote(iss))
		return false
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		v.add(StepIssuer, false, "iss %s has a query or fragment, which an OpenID issuer cannot have", quote(iss))
		return false
	case !fetchable(u):
		v.add(StepIssuer, false, "%s is not https: refusing to fetch its keys", quote(iss))
		return false
	}
	detail := iss
	if len(trusted) > 0 {
		detail += ", trusted"
	}
	if u.Scheme != "https" {
		detail += ", loopback test issuer over plain http"
	}
	v.add(StepIssuer, true, "%s", detail)
	return true
}

func sameIssuer(a, b string) bool {
	return strings.TrimRight(a, "/") == strings.TrimRight(b, "/")
}

// fetchable: https anywhere, http only on loopback test beds.
func fetchable(u *url.URL) bool {
	switch u.Scheme {
	case "https":
		return u.Host != ""
	case "http":
		return isLoopback(u.Hostname())
	}
	return false
}

func isLoopback(host string) bool {
	switch host {
	case "127.0.0.1", "localhost", "::1":
		return true
	}
	return false
}

// checkSignature fetches discovery and JWKS and verifies the signature. An
// error means a document could not be fetched or read.
func (v *Verdict) checkSignature(ctx context.Context, f *fetcher, info *Info) error {
	discURL := strings.TrimRight(info.Issuer, "/") + discoveryPath
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := f.getJSON(ctx, discURL, "OpenID discovery document", func(b []byte) error {
		return json.Unmarshal(b, &doc)
	}); err != nil {
		return err
	}
	if doc.JWKSURI == "" {
		return &helper.Error{
			Kind: helper.KindUnavailable,
			Msg:  fmt.Sprintf("the discovery document at %s has no jwks_uri", discURL),
			Fix:  "the issuer publishes no signing keys; ask its operators",
		}
	}
	ju, err := url.Parse(doc.JWKSURI)
	switch {
	case doc.Issuer != info.Issuer && !sameIssuer(doc.Issuer, info.Issuer):
		v.add(StepDiscovery, false, "%s describes issuer %s, not %s: refusing its keys", discURL, quote(doc.Issuer), quote(info.Issuer))
	case err != nil || !fetchable(ju) || ju.User != nil:
		v.add(StepDiscovery, false, "%s gives jwks_uri %s, which is not an https URL: refusing it", discURL, quote(doc.JWKSURI))
	default:
		detail := discURL
		if doc.Issuer != info.Issuer {
			detail += fmt.Sprintf(" (it names the issuer %s: differs only by a trailing slash)", quote(doc.Issuer))
		}
		v.add(StepDiscovery, true, "%s", detail)
	}
	if !v.Checks[len(v.Checks)-1].OK {
		v.skip(StepSignature, "the discovery document was refused")
		return nil
	}
	jwksURL := ju.Redacted()
	v.JWKSURI = jwksURL

	alg := info.Header.Alg
	switch {
	case alg == "none":
		v.add(StepSignature, false, "the token is unsigned (alg none)")
		return nil
	case alg == "":
		v.add(StepSignature, false, "the token header has no alg")
		return nil
	case strings.HasPrefix(alg, "HS"):
		v.add(StepSignature, false, "alg %s is a shared-secret algorithm: an issuer's public keys cannot verify it", alg)
		return nil
	case !slices.Contains(acceptedAlgs, alg):
		v.add(StepSignature, false, "alg %s is not supported (supported: %s)", quote(alg), strings.Join(acceptedAlgs, ", "))
		return nil
	}

	var keys []publicKey
	if err := f.getJSON(ctx, jwksURL, "JWK Set", func(b []byte) error {
		var perr error
		keys, perr = parseJWKS(b)
		return perr
	}); err != nil {
		return err
	}
	key, why := selectKey(keys, info.Header.KeyID, alg, jwksURL)
	if why != "" {
		v.add(StepSignature, false, "%s", why)
		return nil
	}
	p := jwt.NewParser(jwt.WithValidMethods([]string{alg}), jwt.WithoutClaimsValidation(), jwt.WithJSONNumber())
	_, err = p.Parse(info.Raw, func(*jwt.Token) (any, error) { return key.Key, nil })
	kidDesc := "kid " + quote(key.KeyID)
	if key.KeyID == "" {
		kidDesc = "the only key"
	}
	switch {
	case err == nil:
		v.add(StepSignature, true, "%s, %s, from %s", alg, kidDesc, jwksURL)
	case errors.Is(err, jwt.ErrInvalidKeyType):
		v.add(StepSignature, false, "key %s at %s is an %s key, which cannot check an %s signature", kidDesc, jwksURL, key.Kty, alg)
	default:
		v.add(StepSignature, false, "the signature does not match key %s from %s: the token was altered or not issued by %s", kidDesc, jwksURL, info.Issuer)
	}
	return nil
}

// selectKey picks the verification key: the one named by kid, or the only
// usable key when the token has no kid. why explains a failure.
func selectKey(keys []publicKey, kid, alg, jwksURL string) (publicKey, string) {
	family := keyFamily(alg)
	if kid == "" {
		var usable []publicKey
		for _, k := range keys {
			if k.Key != nil && (family == "" || k.Kty == family) {
				usable = append(usable, k)
			}
		}
		switch len(usable) {
		case 1:
			return usable[0], ""
		case 0:
			return publicKey{}, fmt.Sprintf("%s has no usable %s key", jwksURL, family)
		}
		return publicKey{}, fmt.Sprintf("the token has no kid and %s has %d %s keys: cannot tell which one signed it", jwksURL, len(usable), family)
	}
	var unusable *publicKey
	var kids []string
	for _, k := range keys {
		if k.KeyID != kid {
			if k.KeyID != "" && len(kids) < 10 {
				kids = append(kids, quote(k.KeyID))
			}
			continue
		}
		if k.Key != nil && (family == "" || k.Kty == family) {
			return k, ""
		}
		if unusable == nil || k.Key != nil {
			k := k
			unusable = &k
		}
	}
	if unusable != nil {
		why := unusable.Why
		if why == "" {
			why = fmt.Sprintf("it is an %s key, and %s needs an %s key", unusable.Kty, alg, family)
		}
		return publicKey{}, fmt.Sprintf("key kid %s at %s is unusable: %s", quote(kid), jwksURL, why)
	}
	has := "no keys with a kid"
	if len(kids) > 0 {
		has = "keys " + strings.Join(kids, ", ")
	}
	return publicKey{}, fmt.Sprintf("no key with kid %s at %s (it has %s): the token is not from this issuer, or the issuer rotated its keys", quote(kid), jwksURL, has)
}

func (v *Verdict) checkTimes(info *Info, now time.Time, leeway time.Duration) {
	switch {
	case info.Expiry.IsZero():
		v.add(StepExpiry, false, "the token has no usable exp claim")
	case !now.Before(info.Expiry.Add(leeway)):
		v.add(StepExpiry, false, "expired %s ago, at %s", FormatTTL(now.Sub(info.Expiry)), info.Expiry.UTC().Format(TimeLayout))
	case !now.Before(info.Expiry):
		v.add(StepExpiry, true, "expired %s ago, within the %s leeway", FormatTTL(now.Sub(info.Expiry)), FormatTTL(leeway))
	default:
		v.add(StepExpiry, true, "valid for %s", FormatTTL(info.Expiry.Sub(now)))
	}
	switch {
	case info.NotBefore.IsZero() && info.Has("nbf"):
		v.add(StepNotBefore, false, "the nbf claim is unusable")
	case info.NotBefore.IsZero():
		v.add(StepNotBefore, true, "no nbf claim")
	case now.Add(leeway).Before(info.NotBefore):
		v.add(StepNotBefore, false, "not valid before %s, %s from now: is this machine's clock right?", info.NotBefore.UTC().Format(TimeLayout), FormatTTL(info.NotBefore.Sub(now)))
	default:
		v.add(StepNotBefore, true, "valid since %s", info.NotBefore.UTC().Format(TimeLayout))
	}
}

func (v *Verdict) checkAudience(info *Info, want []string) {
	auds := info.Audiences
	quoted := func(list []string) string {
		q := make([]string, len(list))
		for i, s := range list {
			q[i] = quote(s)
		}
		return strings.Join(q, ", ")
	}
	if len(want) == 0 {
		if len(auds) == 0 {
			v.skip(StepAudience, "no expected audience given (--aud), and the token has no aud")
		} else {
			v.skip(StepAudience, "no expected audience given (--aud); the token is for %s", quoted(auds))
		}
		return
	}
	if len(auds) == 0 {
		v.add(StepAudience, false, "the token has no aud, expected %s", quoted(want))
		return
	}
	for _, a := range auds {
		if a == AnyAudience {
			v.add(StepAudience, true, "%s (any service)", AnyAudience)
			return
		}
		if slices.Contains(want, a) {
			v.add(StepAudience, true, "%s", quote(a))
			return
		}
	}
	detail := fmt.Sprintf("token is for %s, expected %s", quoted(auds), quoted(want))
	for _, a := range auds {
		if slices.ContainsFunc(want, func(w string) bool { return sameIssuer(a, w) }) {
			detail += " (they differ only by a trailing slash, which services compare exactly)"
			break
		}
	}
	v.add(StepAudience, false, "%s", detail)
}

// RenderVerdict writes the verdict as aligned lines, the same layout as
// Render, e.g.
//
//	Verification : INVALID (audience)
//	issuer       : OK (https://iam.example)
//	signature    : OK (RS256, kid "rsa1", from https://iam.example/jwk)
//	audience     : FAIL: token is for "https://a", expected "https://b"
func RenderVerdict(w io.Writer, v *Verdict) error {
	bw := bufio.NewWriter(w)
	if v == nil {
		fmt.Fprintf(bw, "%-*s : not performed\n", labelWidth, "Verification")
		return bw.Flush()
	}
	head := "VALID"
	if !v.Valid {
		head = "INVALID (" + strings.Join(v.Failed(), ", ") + ")"
	}
	fmt.Fprintf(bw, "%-*s : %s\n", labelWidth, "Verification", head)
	for _, c := range v.Checks {
		var s string
		switch {
		case c.Skipped:
			s = "not checked: " + c.Detail
		case c.OK && c.Detail != "":
			s = "OK (" + c.Detail + ")"
		case c.OK:
			s = "OK"
		default:
			s = "FAIL: " + c.Detail
		}
		fmt.Fprintf(bw, "%-*s : %s\n", labelWidth, c.Name, clean(s))
	}
	return bw.Flush()
}

// fetcher gets small JSON documents from an issuer.
type fetcher struct {
	client *http.Client
}

// safeClient copies c (or a default client) with a redirect policy that
// keeps to https (or loopback) and at most 5 hops.
func safeClient(c *http.Client) *http.Client {
	cp := http.Client{}
	if c != nil {
		cp = *c
	}
	prev := cp.CheckRedirect
	cp.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("stopped after 5 redirects")
		}
		if !fetchable(req.URL) {
			return fmt.Errorf("refused a redirect to %s: not https", req.URL.Redacted())
		}
		if prev != nil {
			return prev(req, via)
		}
		return nil
	}
	return &cp
}

// getJSON fetches rawURL and hands the body to decode. Every failure is a
// *helper.Error of KindUnavailable naming the URL and what was expected.
func (f *fetcher) getJSON(ctx context.Context, rawURL, what string, decode func([]byte) error) error {
	unavailable := func(format string, args ...any) *helper.Error {
		return &helper.Error{
			Kind: helper.KindUnavailable,
			Msg:  fmt.Sprintf(format, args...),
			Fix:  "check the network (proxy, firewall) and that the issuer is up, then retry; or inspect without --verify",
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return unavailable("cannot fetch the %s: bad URL %s", what, quote(rawURL))
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "tokenhelper")
	resp, err := f.client.Do(req)
	if err != nil {
		return fetchError(ctx, err, what, rawURL, unavailable)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		hint := ""
		if resp.StatusCode == http.StatusNotFound && strings.HasSuffix(rawURL, discoveryPath) {
			hint = ": is the token's iss really an OpenID Connect issuer?"
		}
		return unavailable("fetching the %s from %s: HTTP %s%s", what, rawURL, resp.Status, hint)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	if err != nil {
		return fetchError(ctx, err, what, rawURL, unavailable)
	}
	if len(body) > MaxBody {
		return unavailable("the %s at %s is larger than %d KiB: refusing it", what, rawURL, MaxBody>>10)
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if trimmed := strings.TrimLeft(string(body[:min(len(body), 512)]), " \t\r\n\ufeff"); strings.HasPrefix(trimmed, "<") || ct == "text/html" && !strings.HasPrefix(trimmed, "{") {
		return unavailable("the %s at %s is an HTML page, not JSON (a login portal, proxy or maintenance page?)", what, rawURL)
	}
	if err := decode(body); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return unavailable("the %s at %s is not valid JSON (at byte %d)", what, rawURL, se.Offset)
		case errors.As(err, &te):
			return unavailable("the %s at %s is malformed: %s has the wrong type", what, rawURL, te.Field)
		}
		return unavailable("the %s at %s is malformed: %s", what, rawURL, err)
	}
	return nil
}

func fetchError(ctx context.Context, err error, what, rawURL string, unavailable func(string, ...any) *helper.Error) error {
	var e *helper.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded:
		e = unavailable("timed out fetching the %s from %s", what, rawURL)
	case errors.Is(err, context.Canceled):
		e = unavailable("cancelled while fetching the %s from %s", what, rawURL)
	default:
		cause := err
		var ue *url.Error
		if errors.As(err, &ue) {
			cause = ue.Err
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			e = unavailable("timed out fetching the %s from %s", what, rawURL)
		} else {
			e = unavailable("cannot fetch the %s from %s: %s", what, rawURL, cause)
		}
	}
	e.Err = err
	return e
}
