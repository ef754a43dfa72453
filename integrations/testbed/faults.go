package testbed

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Endpoint names a provider (or storage) endpoint for fault injection and
// counters.
type Endpoint string

// The endpoints.
const (
	EndpointDiscovery           Endpoint = "discovery"
	EndpointJWKS                Endpoint = "jwks"
	EndpointToken               Endpoint = "token"
	EndpointDeviceAuthorization Endpoint = "device_authorization"
	EndpointRegistration        Endpoint = "registration"
	EndpointRevocation          Endpoint = "revocation"
	EndpointIntrospection       Endpoint = "introspection"
	EndpointUserinfo            Endpoint = "userinfo"
	EndpointAuthorization       Endpoint = "authorization"
	EndpointDevicePage          Endpoint = "device_page"
	EndpointStorage             Endpoint = "storage"
	EndpointOther               Endpoint = "other"
)

// Endpoints lists every endpoint name, for validation and help texts.
var Endpoints = []Endpoint{
	EndpointDiscovery, EndpointJWKS, EndpointToken, EndpointDeviceAuthorization,
	EndpointRegistration, EndpointRevocation, EndpointIntrospection, EndpointUserinfo,
	EndpointAuthorization, EndpointDevicePage, EndpointStorage, EndpointOther,
}

// FaultKind is what an injected fault does.
type FaultKind string

// The fault kinds.
const (
	// FaultStatus answers with an HTTP status (default 503) and a short
	// text/plain body.
	FaultStatus FaultKind = "status"
	// FaultDelay holds the request for Delay before handling it normally;
	// a zero Delay holds it until the client gives up or the test bed
	// closes. A client that gives up cancels the request: it is not
	// handled.
	FaultDelay FaultKind = "delay"
	// FaultMalformedJSON answers 200 with a truncated JSON document.
	FaultMalformedJSON FaultKind = "malformed_json"
	// FaultHTMLError answers with an HTML error page (default 502), as a
	// proxy in front of IAM does.
	FaultHTMLError FaultKind = "html_error"
	// FaultOversized answers 200 with a JSON body of Size bytes (default
	// 16 MiB) that never ends properly.
	FaultOversized FaultKind = "oversized"
	// FaultOAuthError answers with an OAuth error response: {"error":
	// OAuthError} and status 400 (401 for invalid_client) unless Status
	// says otherwise.
	FaultOAuthError FaultKind = "oauth_error"
)

// Fault is an injected failure. Build one with Status, Delay, Hang,
// MalformedJSON, HTMLError, Oversized or OAuthError, then narrow it with
// Once, Times or ForGrant.
type Fault struct {
	Kind FaultKind `json:"kind"`
	// Status overrides the HTTP status of Status, HTMLError and
	// OAuthError faults.
	Status int `json:"status,omitempty"`
	// Delay of a FaultDelay; 0 holds until the client gives up.
	Delay time.Duration `json:"delay,omitempty"`
	// OAuthError is the error code of a FaultOAuthError (slow_down,
	// access_denied, expired_token, invalid_grant, authorization_pending,
	// invalid_client, server_error, temporarily_unavailable, ...).
	OAuthError string `json:"oauth_error,omitempty"`
	// Size of a FaultOversized body in bytes.
	Size int64 `json:"size,omitempty"`
	// Count limits the fault to the next Count matching requests; 0 means
	// until cleared.
	Count int `json:"count,omitempty"`
	// Grant limits the fault to token requests with this grant_type (URN
	// or short name, as in ClientSpec.Grants).
	Grant string `json:"grant,omitempty"`
}

// Status returns a fault answering with HTTP status code (5xx usually).
func Status(code int) Fault { return Fault{Kind: FaultStatus, Status: code} }

// Delay returns a fault that holds requests for d, then handles them.
func Delay(d time.Duration) Fault { return Fault{Kind: FaultDelay, Delay: d} }

// Hang returns a fault that holds requests until the client gives up (its
// deadline) or the test bed closes; they are never handled.
func Hang() Fault { return Fault{Kind: FaultDelay} }

// MalformedJSON returns a fault answering 200 with broken JSON.
func MalformedJSON() Fault { return Fault{Kind: FaultMalformedJSON} }

// HTMLError returns a fault answering 502 with an HTML page.
func HTMLError() Fault { return Fault{Kind: FaultHTMLError} }

// Oversized returns a fault answering 200 with a body of size bytes
// (16 MiB when size <= 0).
func Oversized(size int64) Fault { return Fault{Kind: FaultOversized, Size: size} }

// OAuthError returns a fault answering with the OAuth error code.
func OAuthError(code string) Fault { return Fault{Kind: FaultOAuthError, OAuthError: code} }

// Once limits f to the next matching request.
func (f Fault) Once() Fault { return f.Times(1) }

// Times limits f to the next n matching requests.
func (f Fault) Times(n int) Fault { f.Count = n; return f }

// ForGrant limits f to token requests with grant type g.
func (f Fault) ForGrant(g string) Fault { f.Grant = g; return f }

// validate checks a fault and fills in defaults.
func (f Fault) validate() (Fault, error) {
	switch f.Kind {
	case FaultStatus:
		if f.Status == 0 {
			f.Status = http.StatusServiceUnavailable
		}
	case FaultHTMLError:
		if f.Status == 0 {
			f.Status = http.StatusBadGateway
		}
	case FaultOAuthError:
		if f.OAuthError == "" {
			return f, fmt.Errorf("an oauth_error fault needs an error code")
		}
		if f.Status == 0 {
			f.Status = http.StatusBadRequest
			if f.OAuthError == "invalid_client" {
				f.Status = http.StatusUnauthorized
			}
		}
	case FaultOversized:
		if f.Size <= 0 {
			f.Size = 16 << 20
		}
	case FaultDelay, FaultMalformedJSON:
	default:
		return f, fmt.Errorf("unknown fault kind %q", f.Kind)
	}
	if f.Status != 0 && (f.Status < 100 || f.Status > 599) {
		return f, fmt.Errorf("HTTP status %d out of range", f.Status)
	}
	if f.Count < 0 {
		return f, fmt.Errorf("fault count %d is negative", f.Count)
	}
	if f.Grant != "" {
		g, ok := normalizeGrant(f.Grant)
		if !ok {
			return f, fmt.Errorf("unknown grant type %q", f.Grant)
		}
		f.Grant = g
	}
	return f, nil
}

// faultTable holds the injected faults per endpoint, in injection order.
type faultTable struct {
	mu     sync.Mutex
	faults map[Endpoint][]*Fault
}

func (t *faultTable) add(e Endpoint, f Fault) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.faults == nil {
		t.faults = map[Endpoint][]*Fault{}
	}
	t.faults[e] = append(t.faults[e], &f)
}

func (t *faultTable) clear(es ...Endpoint) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(es) == 0 {
		t.faults = nil
		return
	}
	for _, e := range es {
		delete(t.faults, e)
	}
}

// take returns the first fault that applies to a request and uses it up.
func (t *faultTable) take(e Endpoint, grant string) (Fault, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	list := t.faults[e]
	for i, f := range list {
		if f.Grant != "" && f.Grant != grant {
			continue
		}
		out := *f
		if f.Count > 0 {
			f.Count--
			if f.Count == 0 {
				t.faults[e] = slices.Delete(list, i, i+1)
			}
		}
		return out, true
	}
	return Fault{}, false
}

// active lists the faults still armed, per endpoint.
func (t *faultTable) active() map[Endpoint][]Fault {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[Endpoint][]Fault{}
	for e, list := range t.faults {
		for _, f := range list {
			out[e] = append(out[e], *f)
		}
	}
	return out
}

const htmlErrorPage = `<html>
<head><title>%d %s</title></head>
<body>
<center><h1>%d %s</h1></center>
<hr><center>nginx</center>
</body>
</html>
`

// serveFault writes the fault's answer. It reports whether the request
// should still be handled normally (a Delay that ran out).
func serveFault(w http.ResponseWriter, r *http.Request, f Fault, closing <-chan struct{}) (handle bool) {
	switch f.Kind {
	case FaultDelay:
		var timeout <-chan time.Time
		if f.Delay > 0 {
			t := time.NewTimer(f.Delay)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-timeout:
			return true
		case <-r.Context().Done():
		case <-closing:
			http.Error(w, "the test bed is shutting down", http.StatusServiceUnavailable)
		}
		return false
	case FaultStatus:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(f.Status)
		fmt.Fprintf(w, "%d %s (injected by the test bed)\n", f.Status, http.StatusText(f.Status))
	case FaultHTMLError:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(f.Status)
		text := http.StatusText(f.Status)
		fmt.Fprintf(w, htmlErrorPage, f.Status, text, f.Status, text)
	case FaultMalformedJSON:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, `{"access_token":"eyJhbGciOi`)
	case FaultOversized:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		writeOversized(w, r, f.Size, closing)
	case FaultOAuthError:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if f.Status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="test bed"`)
		}
		w.WriteHeader(f.Status)
		// Fails only for a client that went away.
		_ = json.NewEncoder(w).Encode(map[string]string{
			"error":             f.OAuthError,
			"error_description": "injected by the test bed",
		})
	}
	return false
}

// writeOversized streams size bytes of a JSON string that never closes,
// stopping early when the client goes away or the test bed closes.
func writeOversized(w http.ResponseWriter, r *http.Request, size int64, closing <-chan struct{}) {
	chunk := []byte(strings.Repeat("x", 32<<10))
	head := []byte(`{"padding":"`)
	_, _ = w.Write(head) // a client gone away is seen below
	left := size - int64(len(head))
	for left > 0 {
		select {
		case <-r.Context().Done():
			return
		case <-closing:
			return
		default:
		}
		n := min(int64(len(chunk)), left)
		if _, err := w.Write(chunk[:n]); err != nil {
			return
		}
		left -= n
	}
}

// Counters is a snapshot of how many requests reached the provider.
type Counters struct {
	// Requests per endpoint, including those answered by a fault.
	Requests map[Endpoint]int
	// Grants counts token-endpoint requests per grant_type as sent
	// (including those answered by a fault).
	Grants map[string]int
	// Faults counts requests answered (or held) by an injected fault.
	Faults map[Endpoint]int
}

// Endpoint returns the number of requests to e.
func (c Counters) Endpoint(e Endpoint) int { return c.Requests[e] }

// Grant returns the number of token requests with grant type g (URN or
// short name).
func (c Counters) Grant(g string) int {
	if n, ok := normalizeGrant(g); ok {
		g = n
	}
	return c.Grants[g]
}

type counterTable struct {
	mu       sync.Mutex
	requests map[Endpoint]int
	grants   map[string]int
	faults   map[Endpoint]int
	changed  chan struct{} // closed and replaced on every count
}

func (c *counterTable) count(e Endpoint, grant string, faulted bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.requests == nil {
		c.requests, c.grants, c.faults = map[Endpoint]int{}, map[string]int{}, map[Endpoint]int{}
	}
	if c.changed != nil {
		close(c.changed)
		c.changed = nil
	}
	c.requests[e]++
	if e == EndpointToken {
		c.grants[grant]++
	}
	if faulted {
		c.faults[e]++
	}
}

func (c *counterTable) snapshot() Counters {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := Counters{Requests: map[Endpoint]int{}, Grants: map[string]int{}, Faults: map[Endpoint]int{}}
	for k, v := range c.requests {
		out.Requests[k] = v
	}
	for k, v := range c.grants {
		out.Grants[k] = v
	}
	for k, v := range c.faults {
		out.Faults[k] = v
	}
	return out
}

// wait blocks until cond holds for the counters.
func (c *counterTable) wait(done, closing <-chan struct{}, cond func(Counters) bool) bool {
	for {
		snap := c.snapshot()
		if cond(snap) {
			return true
		}
		c.mu.Lock()
		if c.changed == nil {
			c.changed = make(chan struct{})
		}
		ch := c.changed
		c.mu.Unlock()
		// A count between the snapshot and here closed the old channel or
		// is seen by the next snapshot: re-check before blocking.
		if cond(c.snapshot()) {
			return true
		}
		select {
		case <-ch:
		case <-done:
			return false
		case <-closing:
			return false
		}
	}
}

func (c *counterTable) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests, c.grants, c.faults = nil, nil, nil
}
