package testbed

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// maxFormBody bounds request bodies: OAuth requests are small.
const maxFormBody = 1 << 20

// reencodeForm rewrites an application/x-www-form-urlencoded body whose
// values were not URL-encoded (oidc-agent 4.2.6 sends "scope=openid
// offline_access" with a literal space). A key or value is taken as raw
// text, and encoded, when it cannot be a correctly encoded one: it holds a
// space, a control or non-ASCII byte, a ';' (which Go's form parser
// rejects), or a '%' not followed by two hex digits. Correctly encoded parts are left alone, so '+' keeps meaning a
// space there. Raw '&' and '=' inside values cannot be told apart from
// separators and are not recovered.
func reencodeForm(body []byte) ([]byte, bool) {
	if !needsReencode(body) {
		return body, false
	}
	var out bytes.Buffer
	for i, pair := range bytes.Split(body, []byte("&")) {
		if i > 0 {
			out.WriteByte('&')
		}
		k, v, hasEq := bytes.Cut(pair, []byte("="))
		out.Write(fixPart(k))
		if hasEq {
			out.WriteByte('=')
			out.Write(fixPart(v))
		}
	}
	return out.Bytes(), true
}

func needsReencode(b []byte) bool {
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c <= ' ' || c >= 0x7f || c == ';':
			return true
		case c == '%' && !isPercentEscape(b, i):
			return true
		}
	}
	return false
}

func fixPart(p []byte) []byte {
	if !needsReencode(p) {
		return p
	}
	return []byte(url.QueryEscape(string(p)))
}

// isPercentEscape reports whether b[i] starts a %XX escape.
func isPercentEscape(b []byte, i int) bool {
	return i+2 < len(b) && isHex(b[i+1]) && isHex(b[i+2])
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// statusRecorder remembers the status a handler wrote, for the log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// classify maps a provider path to its endpoint.
func classify(path string) Endpoint {
	switch {
	case path == pathDiscovery || path == pathOAuthDiscovery:
		return EndpointDiscovery
	case path == pathJWKS:
		return EndpointJWKS
	case path == pathToken:
		return EndpointToken
	case path == pathDeviceAuthorization:
		return EndpointDeviceAuthorization
	case path == pathRegistration || strings.HasPrefix(path, pathRegistration+"/"):
		return EndpointRegistration
	case path == pathRevocation:
		return EndpointRevocation
	case path == pathIntrospection:
		return EndpointIntrospection
	case path == pathUserinfo:
		return EndpointUserinfo
	case path == pathAuthorization || strings.HasPrefix(path, pathAuthorization+"/"):
		return EndpointAuthorization
	case path == pathDevicePage || strings.HasPrefix(path, pathDevicePage+"/"):
		return EndpointDevicePage
	}
	return EndpointOther
}

// instrument wraps a handler with what every request goes through:
// panic recovery, a body bound, form re-encoding, counters, injected faults
// and the request log. classifyFn names the endpoint; admin paths (nil
// endpoint) are neither counted nor faulted.
func (tb *Testbed) instrument(next http.Handler, classifyFn func(*http.Request) (Endpoint, bool)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		w = rec
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				tb.logf("panic serving %s %s: %v", r.Method, r.URL.Path, v)
				if rec.status == 0 {
					http.Error(w, "internal error in the test bed", http.StatusInternalServerError)
				}
			}
		}()

		grant := ""
		if r.Body != nil && r.Method == http.MethodPost && isForm(r) {
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFormBody))
			r.Body.Close()
			if err != nil {
				http.Error(w, "request body too large or unreadable", http.StatusRequestEntityTooLarge)
				return
			}
			body, _ = reencodeForm(body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
			if v, err := url.ParseQuery(string(body)); err == nil {
				grant = v.Get("grant_type")
			}
		} else if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxBodyFor(r))
		}

		endpoint, counted := classifyFn(r)
		if counted {
			f, faulted := tb.faults.take(endpoint, grant)
			tb.counters.count(endpoint, grant, faulted)
			if faulted && !serveFault(w, r, f, tb.closing) {
				tb.logRequest(r, endpoint, grant, rec.status, "fault "+string(f.Kind))
				return
			}
		}
		next.ServeHTTP(w, r)
		tb.logRequest(r, endpoint, grant, rec.status, "")
	})
}

// maxBodyFor bounds non-form bodies: registration JSON is small, storage
// uploads may be large.
func maxBodyFor(r *http.Request) int64 {
	if strings.HasPrefix(r.URL.Path, pathRegistration) || strings.HasPrefix(r.URL.Path, "/admin/") {
		return maxFormBody
	}
	return 1 << 40
}

func isForm(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/x-www-form-urlencoded"
}

func (tb *Testbed) logRequest(r *http.Request, e Endpoint, grant string, status int, note string) {
	if tb.opts.Logf == nil {
		return
	}
	if status == 0 {
		status = http.StatusOK
	}
	msg := fmt.Sprintf("%s %s endpoint=%s", r.Method, r.URL.Path, e)
	if grant != "" {
		msg += " grant=" + shortGrant(grant)
	}
	msg += fmt.Sprintf(" status=%d", status)
	if note != "" {
		msg += " " + note
	}
	tb.logf("%s", msg)
}

func (tb *Testbed) logf(format string, args ...any) {
	if tb.opts.Logf != nil {
		tb.opts.Logf(format, args...)
	}
}

// shortGrant returns a log-friendly grant name; unknown values (which a
// client controls) are bounded and quoted.
func shortGrant(g string) string {
	switch g {
	case GrantDeviceCode:
		return "device_code"
	case GrantTokenExchange:
		return "token_exchange"
	case GrantRefreshToken, GrantClientCredentials, GrantPassword, "authorization_code":
		return g
	}
	if len(g) > 40 {
		g = g[:40]
	}
	return fmt.Sprintf("%q", g)
}
