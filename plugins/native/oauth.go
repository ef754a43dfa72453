package native

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/httpclient"
)

// maxResponse bounds every answer read from a provider (1 MiB, as
// golang.org/x/oauth2 does).
const maxResponse = 1 << 20

// Client authentication methods (RFC 7591 token_endpoint_auth_method).
const (
	authBasic = "client_secret_basic"
	authPost  = "client_secret_post"
	authNone  = "none"
)

// Grant types sent as grant_type.
const (
	grantDeviceCode        = "urn:ietf:params:oauth:grant-type:device_code"
	grantRefreshToken      = "refresh_token"
	grantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
	grantClientCredentials = "client_credentials"
	grantPassword          = "password"
	tokenTypeAccessToken   = "urn:ietf:params:oauth:token-type:access_token"
)

// clientAuth is how a client proves who it is at the provider. The style
// is never guessed: it is what the client was registered with.
type clientAuth struct {
	ID     string
	Secret string
	Method string // authBasic, authPost or authNone
}

// apply adds the client's credentials to a request and its form.
func (c clientAuth) apply(req *http.Request, form url.Values) {
	switch c.Method {
	case authBasic:
		// RFC 6749 2.3.1: both parts form-encoded before Basic encoding.
		cred := url.QueryEscape(c.ID) + ":" + url.QueryEscape(c.Secret)
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(cred)))
	case authPost:
		form.Set("client_id", c.ID)
		form.Set("client_secret", c.Secret)
	default:
		form.Set("client_id", c.ID)
	}
}

// oauthError is an error response of RFC 6749 5.2 (and RFC 8628 3.5).
type oauthError struct {
	Code        string
	Description string
	Status      int
	Endpoint    string // "token", "device authorization", ...
}

func (e *oauthError) Error() string {
	s := fmt.Sprintf("the provider's %s endpoint answered %s", e.Endpoint, e.Code)
	if e.Description != "" {
		s += " (" + e.Description + ")"
	}
	return s
}

// tokenResponse is a successful token endpoint answer (RFC 6749 5.1,
// RFC 8693 2.2.1). refresh_expires_in is Keycloak's.
type tokenResponse struct {
	AccessToken      string  `json:"access_token"`
	TokenType        string  `json:"token_type"`
	ExpiresIn        flexInt `json:"expires_in"`
	RefreshToken     string  `json:"refresh_token"`
	RefreshExpiresIn flexInt `json:"refresh_expires_in"`
	Scope            string  `json:"scope"`
	IDToken          string  `json:"id_token"`
	IssuedTokenType  string  `json:"issued_token_type"`
}

// flexInt reads a JSON number or a numeric string (some providers send
// expires_in as "3600"); anything else, and negative values, read as 0.
type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	*f = 0
	if n, err := strconv.ParseFloat(strings.Trim(string(b), `"`), 64); err == nil && n >= 0 && n <= 1<<31 {
		*f = flexInt(n)
	}
	return nil // never an error: a bad value reads as 0 (unknown)
}

// provider talks HTTP to one identity provider.
type provider struct {
	hc     *http.Client
	issuer string
	now    func() time.Time
}

// do sends req (whose body is already set) and returns the status and the
// body, bounded. Transport failures are KindUnavailable errors that name
// the host and the reason, never the request; a cancelled ctx is returned
// as ctx.Err() so the caller can tell an interrupt from a failure.
func (p *provider) do(ctx context.Context, req *http.Request, what string) (int, http.Header, []byte, error) {
	req = req.WithContext(ctx)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "tokenhelper")
	hc := p.hc
	if req.Method != http.MethodGet {
		// Never follow a redirect with secrets in the body (307/308 resend
		// it): a redirect is an answer, reported as unexpected.
		c := *p.hc
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		hc = &c
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, nil, p.netError(ctx, req.URL, what, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return 0, nil, nil, p.netError(ctx, req.URL, what, err)
	}
	if len(body) > maxResponse {
		return 0, nil, nil, helper.Errorf(helper.KindUnavailable, "the provider's answer to %s is larger than 1 MiB: not an OAuth answer", what).
			WithFix("check the issuer URL; retry later")
	}
	return resp.StatusCode, resp.Header, body, nil
}

// netError describes a transport failure in one line, without the URL's
// query (there is none in our requests, but be safe) or any body.
func (p *provider) netError(ctx context.Context, u *url.URL, what string, err error) error {
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return ctx.Err()
	}
	host := u.Host
	reason := "network error"
	fix := "check the network and the issuer URL, or retry later"
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	var rec tls.RecordHeaderError
	var dns *net.DNSError
	var ne net.Error
	switch {
	case errors.As(err, &ua):
		reason = "its TLS certificate is signed by an unknown authority"
		fix = "if the provider uses a private CA, set ca_file (a PEM bundle) in the profile"
	case errors.As(err, &hn):
		reason = "its TLS certificate is for another host name"
		fix = "check the issuer URL"
	case errors.As(err, &ci):
		reason = "its TLS certificate is invalid or expired"
		fix = "check the machine's clock and the issuer URL"
	case errors.As(err, &rec):
		reason = "it does not speak TLS"
		fix = "check the issuer URL (https vs http)"
	case errors.As(err, &dns):
		reason = "the host name does not resolve"
	case errors.Is(err, syscall.ECONNREFUSED):
		reason = "connection refused"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		reason = "timed out"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		reason = "the connection was closed"
	}
	return &helper.Error{
		Kind: helper.KindUnavailable,
		Msg:  fmt.Sprintf("cannot reach the provider at %s for %s: %s", host, what, reason),
		Fix:  fix,
		Err:  err,
	}
}

// postForm POSTs an application/x-www-form-urlencoded request with client
// authentication (auth may be nil) and returns status and body.
func (p *provider) postForm(ctx context.Context, endpoint string, form url.Values, auth *clientAuth, what string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, nil)
	if err != nil {
		return 0, nil, helper.Errorf(helper.KindConfig, "the provider's %s endpoint is not a usable URL", what).
			WithFix("log in again so its metadata is read anew")
	}
	if auth != nil {
		auth.apply(req, form)
	}
	body := form.Encode()
	req.Body = io.NopCloser(strings.NewReader(body))
	req.ContentLength = int64(len(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	status, _, respBody, err := p.do(ctx, req, what)
	return status, respBody, err
}

// token sends a token endpoint request and decodes the answer. Errors are
// *oauthError for an OAuth error response, else *helper.Error
// (KindUnavailable) or ctx.Err().
func (p *provider) token(ctx context.Context, endpoint string, form url.Values, auth *clientAuth) (*tokenResponse, error) {
	status, body, err := p.postForm(ctx, endpoint, form, auth, "a token")
	if err != nil {
		return nil, err
	}
	return decodeTokenAnswer(status, body)
}

// decodeTokenAnswer reads a token endpoint's answer: *oauthError for an
// OAuth error response, a KindUnavailable *helper.Error for anything that
// is not a usable bearer token response.
func decodeTokenAnswer(status int, body []byte) (*tokenResponse, error) {
	if oe := parseOAuthError(status, body, "token"); oe != nil {
		return nil, oe
	}
	if status < 200 || status > 299 {
		return nil, httpStatusError(status, body, "the token endpoint")
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		return nil, helper.Errorf(helper.KindUnavailable, "the provider's token endpoint answered something that is not a token response").
			WithFix("retry later; if it persists, check the issuer URL")
	}
	if tr.TokenType != "" && !strings.EqualFold(tr.TokenType, "bearer") && !strings.EqualFold(tr.TokenType, "N_A") {
		return nil, helper.Errorf(helper.KindUnavailable, "the provider issued a token of type %s, not a bearer token", clean(tr.TokenType, 40)).
			WithFix("ask the provider's administrators for bearer tokens")
	}
	if !helper.IsB64Token(tr.AccessToken) {
		return nil, helper.Errorf(helper.KindUnavailable, "the provider issued an access token that is not a valid bearer token").
			WithFix("retry later; if it persists, report it to the provider's administrators")
	}
	if tr.RefreshToken != "" && !printableASCII(tr.RefreshToken) {
		return nil, helper.Errorf(helper.KindUnavailable, "the provider issued a malformed refresh token").
			WithFix("retry later; if it persists, report it to the provider's administrators")
	}
	return &tr, nil
}

// parseOAuthError returns the OAuth error in an answer, if it is one: a
// JSON object with an "error" member (RFC 6749 5.2), whatever the status.
// A bare 401 is invalid_client.
func parseOAuthError(status int, body []byte, endpoint string) *oauthError {
	var e struct {
		Error       any    `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(body, &e) == nil {
		if code, ok := e.Error.(string); ok && code != "" {
			return &oauthError{Code: clean(code, 64), Description: clean(e.Description, 200), Status: status, Endpoint: endpoint}
		}
	}
	if status == http.StatusUnauthorized {
		return &oauthError{Code: "invalid_client", Status: status, Endpoint: endpoint}
	}
	return nil
}

// httpStatusError describes an unexpected HTTP answer (a proxy error page,
// a 5xx) without echoing its body.
func httpStatusError(status int, body []byte, what string) *helper.Error {
	kind := "answer"
	if bytes.Contains(bytes.ToLower(body[:min(len(body), 512)]), []byte("<html")) {
		kind = "HTML page"
	}
	msg := fmt.Sprintf("%s answered HTTP %d %s (%s)", what, status, http.StatusText(status), kind)
	if status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout {
		return helper.Errorf(helper.KindUnavailable, "%s", msg).WithFix("the provider is having trouble: retry later")
	}
	return helper.Errorf(helper.KindUnavailable, "%s", msg).WithFix("check the issuer URL; retry later")
}

// clean makes provider-supplied text safe to show on a terminal: control
// and format characters (escape sequences, bidi overrides) are dropped, and
// the text is cut to n runes.
func clean(s string, n int) string {
	var b strings.Builder
	count := 0
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == unicode.ReplacementChar {
			continue
		}
		if count == n {
			b.WriteString("…")
			break
		}
		b.WriteRune(r)
		count++
	}
	return strings.TrimSpace(b.String())
}

// printableASCII reports whether s is non-empty printable ASCII (what
// refresh tokens, client ids and secrets are in practice; anything else
// would be unsafe to put in a header or a form).
func printableASCII(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// checkEndpoint accepts an endpoint URL from provider metadata: absolute,
// https (http only on loopback, for test beds), no user info or fragment.
// Secrets are sent there, so a plain-http endpoint elsewhere is refused.
func checkEndpoint(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" {
		return errors.New("not an absolute URL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if httpclient.IsLoopback(u) {
			return nil
		}
		return errors.New("plain http outside this machine")
	}
	return errors.New("not an https URL")
}

// authMethodFor picks the client authentication method from what the
// provider supports, preferring Basic (RFC 6749's MUST-support).
func authMethodFor(supported []string) string {
	if len(supported) == 0 {
		return authBasic
	}
	for _, m := range []string{authBasic, authPost} {
		for _, s := range supported {
			if s == m {
				return m
			}
		}
	}
	return authBasic
}
