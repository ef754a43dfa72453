// Package storage is the test bed's WLCG-token-protected storage: a WebDAV
// server (RFC 4918, golang.org/x/net/webdav over a directory) that
// authorizes requests the way dCache and XRootD with the SciTokens plugin
// (scitokens-cpp 0.7.3) do, following the WLCG Common JWT Profile v1.0
// (zenodo 3460258) and RFC 6750 bearer-token usage.
//
// A request carries its token in "Authorization: Bearer <token>" or in the
// "authz=Bearer%20<token>" query parameter (davix, XrdClHttp). The token must
// be a JWT signed with RS256 or ES256 by a key the trusted issuer publishes
// (OpenID discovery → jwks_uri → JWKS), with iss equal to the trusted issuer,
// an aud naming this storage or https://wlcg.cern.ch/jwt/v1/any, a valid exp,
// an nbf (unless the header typ is at+jwt), an iat not in the future, a sub,
// a string scope claim and, when present, wlcg.ver "1.0"; otherwise the
// answer is 401 with a WWW-Authenticate: Bearer challenge (RFC 6750 §3).
//
// Authorization is by WLCG storage scopes, "storage.<authz>:<path>", where
// the path is relative to Options.BasePath (scitokens' base_path) and covers
// itself and everything below it on segment boundaries:
//
//	storage.read    GET, HEAD, OPTIONS, PROPFIND
//	storage.create  PUT of a new file (parents created), MKCOL, the
//	                Destination of a COPY/MOVE that does not overwrite
//	storage.modify  everything create allows, plus PUT over an existing
//	                file, DELETE, PROPPATCH, the source of a MOVE and an
//	                overwritten Destination
//	storage.stage   implies storage.read
//
// A valid token without the needed scope gets 403 (with an RFC 6750
// insufficient_scope challenge naming the scope that was missing).
// LOCK, UNLOCK and POST are not offered (405), like XRootD.
//
// A PUT creates missing parent collections (as XRootD and dCache do; MKCOL
// keeps RFC 4918's 409) and writes to a temporary file that replaces the
// target only when the upload is complete, so an interrupted (400),
// stalled (408, Options.RequestTimeout) or oversized (413,
// Options.MaxBodyBytes) upload leaves the old content in place. Files are
// reached through os.Root: a symbolic link cannot lead outside Options.Root.
//
// Differences from scitokens-cpp, on purpose: keys are fetched lazily and
// cached for Options.KeyCacheTTL, and a token whose kid is not in the cache
// triggers one refetch (at most once per Options.KeyRefetchInterval), so a
// key rotation at the issuer is picked up; scitokens-cpp keeps its cache
// and does not refetch on an unknown kid. When the issuer's keys cannot be
// fetched at all, the answer is 503 rather than a token error.
package storage

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/webdav"

	"github.com/tokenhelper/tokenhelper/helper"
)

// AnyAudience is the WLCG audience every relying party accepts.
const AnyAudience = "https://wlcg.cern.ch/jwt/v1/any"

// Defaults for the zero values of Options.
const (
	DefaultMaxBodyBytes       int64 = 1 << 30 // 1 GiB
	DefaultRequestTimeout           = 5 * time.Minute
	DefaultKeyFetchTimeout          = 10 * time.Second
	DefaultKeyCacheTTL              = 10 * time.Minute
	DefaultKeyRefetchInterval       = 30 * time.Second
	DefaultRealm                    = "tokenhelper-testbed storage"
)

// Options configures a Server. Issuer and Root are required.
type Options struct {
	// Issuer is the trusted issuer URL; a token's iss must equal it
	// exactly. Its keys are found through
	// Issuer/.well-known/openid-configuration → jwks_uri.
	Issuer string
	// HTTPClient fetches the issuer's metadata and keys; for an https
	// issuer it must trust the test bed's CA. Nil means a plain
	// &http.Client{}. Every fetch is bounded by KeyFetchTimeout.
	HTTPClient *http.Client
	// Audiences are the storage's own names (its URL, "https://host:port",
	// without trailing slash); a token's aud must contain one of them or
	// AnyAudience, compared exactly.
	Audiences []string
	// Root is the directory served. It must exist.
	Root string
	// BasePath is the namespace path scope paths are relative to, like
	// scitokens' base_path: with BasePath "/vo", storage.read:/data grants
	// /vo/data. Default "/".
	BasePath string
	// Prefix is the URL path the handler is mounted at, e.g. "/storage":
	// URL /storage/vo/data/f is namespace path /vo/data/f. Requests
	// outside Prefix get 404. Default "" (mounted at the root).
	Prefix string
	// Now is the clock for exp, nbf, iat and the key cache. Default
	// time.Now. Request deadlines always use the real clock.
	Now func() time.Time
	// Leeway is the clock skew tolerated on exp, nbf and iat. Default 0.
	Leeway time.Duration
	// MaxBodyBytes limits request bodies (413 beyond). Default
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// RequestTimeout bounds each request (reading the body and writing the
	// answer). Default DefaultRequestTimeout.
	RequestTimeout time.Duration
	// KeyFetchTimeout bounds one fetch of the issuer's metadata and JWKS.
	// Default DefaultKeyFetchTimeout.
	KeyFetchTimeout time.Duration
	// KeyCacheTTL is how long fetched keys are used before they are
	// fetched again. Default DefaultKeyCacheTTL.
	KeyCacheTTL time.Duration
	// KeyRefetchInterval is the least time between two refetches caused by
	// an unknown kid, and between a failed fetch and the next attempt.
	// Default DefaultKeyRefetchInterval.
	KeyRefetchInterval time.Duration
	// Realm is the realm of the WWW-Authenticate challenge. Default
	// DefaultRealm. Printable ASCII without '"' and '\'.
	Realm string
	// Log, when set, is called once per request with the method, the URL
	// path (never the query, which may hold a token), the status sent and
	// the token's sub ("" when no valid token was presented).
	Log func(method, path string, status int, sub string)
}

// Server is an http.Handler serving the storage. It is safe for concurrent
// use and needs no Close.
type Server struct {
	issuer    string
	audiences []string
	base      string
	prefix    string
	realm     string
	now       func() time.Time
	leeway    time.Duration
	maxBody   int64
	timeout   time.Duration
	log       func(method, path string, status int, sub string)
	fs        rootFS
	dav       *webdav.Handler
	keys      *keyCache
}

// New validates opts and returns a Server. Errors are *helper.Error of kind
// KindConfig naming the option to fix.
func New(opts Options) (*Server, error) {
	bad := func(format string, args ...any) error {
		return helper.Errorf(helper.KindConfig, "storage: "+format, args...)
	}
	iu, err := url.Parse(opts.Issuer)
	if opts.Issuer == "" || err != nil || (iu.Scheme != "https" && iu.Scheme != "http") || iu.Host == "" ||
		iu.RawQuery != "" || iu.Fragment != "" {
		return nil, bad("Options.Issuer must be an absolute http(s) URL without query, got %q", opts.Issuer)
	}
	for _, a := range opts.Audiences {
		if a == "" {
			return nil, bad("Options.Audiences contains an empty audience")
		}
	}
	if opts.Root == "" {
		return nil, bad("Options.Root is required (the directory to serve)")
	}
	root, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, bad("Options.Root %q: %v", opts.Root, err)
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		return nil, bad("Options.Root %q is not an existing directory", opts.Root)
	}
	base := opts.BasePath
	if base == "" {
		base = "/"
	}
	if !strings.HasPrefix(base, "/") {
		return nil, bad("Options.BasePath must be absolute, got %q", opts.BasePath)
	}
	base = path.Clean(base)
	prefix := opts.Prefix
	if prefix != "" {
		if !strings.HasPrefix(prefix, "/") {
			return nil, bad("Options.Prefix must start with /, got %q", opts.Prefix)
		}
		prefix = path.Clean(prefix)
		if prefix == "/" {
			prefix = ""
		}
	}
	realm := opts.Realm
	if realm == "" {
		realm = DefaultRealm
	}
	for i := 0; i < len(realm); i++ {
		if c := realm[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return nil, bad("Options.Realm must be printable ASCII without quotes or backslashes")
		}
	}
	if opts.Leeway < 0 || opts.MaxBodyBytes < 0 || opts.RequestTimeout < 0 || opts.KeyFetchTimeout < 0 ||
		opts.KeyCacheTTL < 0 || opts.KeyRefetchInterval < 0 {
		return nil, bad("Options durations and sizes must not be negative")
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{}
	}
	s := &Server{
		issuer:    opts.Issuer,
		audiences: append([]string(nil), opts.Audiences...),
		base:      base,
		prefix:    prefix,
		realm:     realm,
		now:       now,
		leeway:    opts.Leeway,
		maxBody:   orDefault(opts.MaxBodyBytes, DefaultMaxBodyBytes),
		timeout:   orDefault(opts.RequestTimeout, DefaultRequestTimeout),
		log:       opts.Log,
		fs:        rootFS{dir: root},
		keys: &keyCache{
			issuer:      opts.Issuer,
			client:      client,
			now:         now,
			timeout:     orDefault(opts.KeyFetchTimeout, DefaultKeyFetchTimeout),
			ttl:         orDefault(opts.KeyCacheTTL, DefaultKeyCacheTTL),
			minInterval: orDefault(opts.KeyRefetchInterval, DefaultKeyRefetchInterval),
		},
	}
	s.dav = &webdav.Handler{Prefix: prefix, FileSystem: s.fs, LockSystem: webdav.NewMemLS()}
	return s, nil
}

func orDefault[T int64 | time.Duration](v, d T) T {
	if v == 0 {
		return d
	}
	return v
}

// allowedMethods is what the storage offers.
const allowedMethods = "OPTIONS, GET, HEAD, PUT, DELETE, MKCOL, COPY, MOVE, PROPFIND, PROPPATCH"

// ServeHTTP authenticates and authorizes the request, then serves it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	sub := ""
	defer func() {
		if s.log != nil {
			s.log(r.Method, r.URL.Path, sw.code(), sub)
		}
	}()

	deadline := time.Now().Add(s.timeout)
	rc := http.NewResponseController(sw)
	_ = rc.SetReadDeadline(deadline)
	_ = rc.SetWriteDeadline(deadline)
	// Do not leave our deadline on a kept-alive connection that another
	// handler of the same server may serve next.
	defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
	ctx, cancel := context.WithDeadline(r.Context(), deadline)
	defer cancel()

	sub = s.serve(sw, r.WithContext(ctx))
}

// serve handles one request and returns the sub of its valid token.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) string {
	p, ok := s.local(r.URL.Path)
	if !ok {
		s.fail(w, http.StatusNotFound, "not under "+s.prefix)
		return ""
	}
	switch r.Method {
	case http.MethodOptions, http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete,
		"MKCOL", "COPY", "MOVE", "PROPFIND", "PROPPATCH":
	default:
		w.Header().Set("Allow", allowedMethods)
		s.fail(w, http.StatusMethodNotAllowed, r.Method+" is not supported by this storage")
		return ""
	}

	tok, aerr := extractToken(r.Header, r.URL.RawQuery)
	if aerr != nil {
		s.deny(w, aerr)
		return ""
	}
	cl, aerr := s.verify(r.Context(), tok)
	if aerr != nil {
		s.deny(w, aerr)
		return ""
	}
	sub := cl.Subject
	grants := parseScopes(cl.Scope.(string), s.base)

	needs, status, msg := s.needs(r, p)
	if status != 0 {
		s.fail(w, status, msg)
		return sub
	}
	for _, n := range needs {
		if !allowed(grants, n.perm, n.path) {
			s.deny(w, s.insufficient(n))
			return sub
		}
	}

	// The token stops here.
	r2 := new(http.Request)
	*r2 = *r
	r2.Header = r.Header.Clone()
	r2.Header.Del("Authorization")
	u := *r.URL
	u.RawQuery = stripAuthzQuery(u.RawQuery)
	r2.URL = &u
	r2.RequestURI = u.RequestURI()

	if r.ContentLength > s.maxBody {
		w.Header().Set("Connection", "close")
		s.fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", s.maxBody))
		return sub
	}
	body := r.Body
	if body == nil { // a request built by hand, not by net/http's server
		body = http.NoBody
	}
	r2.Body = http.MaxBytesReader(w, body, s.maxBody)

	switch r.Method {
	case http.MethodPut:
		status, msg := s.fs.put(w, r2, p, allowed(grants, permModify, p))
		if msg != "" {
			s.fail(w, status, msg)
		} else {
			w.WriteHeader(status)
		}
	case http.MethodOptions:
		w.Header().Set("Allow", allowHeader(s.fs.Stat(r.Context(), p)))
		w.Header().Set("DAV", "1")
		w.Header().Set("MS-Author-Via", "DAV")
		w.WriteHeader(http.StatusOK)
	default:
		s.dav.ServeHTTP(w, r2)
	}
	return sub
}

// local maps a URL path to a namespace path (absolute, cleaned), or false
// when it is not below Prefix on a segment boundary.
func (s *Server) local(urlPath string) (string, bool) {
	rest, ok := strings.CutPrefix(urlPath, s.prefix)
	if !ok || (rest != "" && rest[0] != '/') {
		return "", false
	}
	return cleanPath(rest), true
}

// need is one authorization a request requires.
type need struct {
	perm perm
	path string
}

// needs lists the authorizations a request requires on namespace path p,
// or an HTTP status and message for a request that cannot be served.
func (s *Server) needs(r *http.Request, p string) ([]need, int, string) {
	exists := func(p string) bool {
		_, err := s.fs.Stat(r.Context(), p)
		return err == nil
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, "PROPFIND":
		return []need{{permRead, p}}, 0, ""
	case http.MethodPut:
		if exists(p) {
			return []need{{permModify, p}}, 0, ""
		}
		return []need{{permCreate, p}}, 0, ""
	case "MKCOL":
		return []need{{permCreate, p}}, 0, ""
	case http.MethodDelete, "PROPPATCH":
		return []need{{permModify, p}}, 0, ""
	case "COPY", "MOVE":
		hdr := r.Header.Get("Destination")
		if hdr == "" {
			return nil, http.StatusBadRequest, "a Destination header is required"
		}
		u, err := url.Parse(hdr)
		if err != nil {
			return nil, http.StatusBadRequest, "the Destination header is not a URL"
		}
		if u.Host != "" && u.Host != r.Host {
			return nil, http.StatusBadGateway, "the Destination is on another server"
		}
		dst, ok := s.local(u.Path)
		if !ok {
			return nil, http.StatusBadGateway, "the Destination is not on this storage"
		}
		src := need{permRead, p}
		// The overwrite rules of golang.org/x/net/webdav: COPY overwrites
		// unless "Overwrite: F", MOVE only with "Overwrite: T".
		overwrite := r.Header.Get("Overwrite") != "F"
		if r.Method == "MOVE" {
			src.perm = permModify
			overwrite = r.Header.Get("Overwrite") == "T"
		}
		d := need{permCreate, dst}
		if overwrite && exists(dst) {
			d.perm = permModify
		}
		return []need{src, d}, 0, ""
	}
	return nil, http.StatusMethodNotAllowed, r.Method + " is not supported by this storage"
}

// insufficient builds the 403 for a missing authorization.
func (s *Server) insufficient(n need) *authError {
	e := &authError{status: http.StatusForbidden, code: "insufficient_scope"}
	rel, ok := relativeTo(s.base, n.path)
	if !ok {
		e.desc = "the path is outside the storage's base path " + s.base
		return e
	}
	scope := n.perm.scopeName() + ":" + (&url.URL{Path: rel}).EscapedPath()
	e.desc = "the token lacks " + scope
	e.scope = scope
	return e
}

// deny answers 400/401/403/503 for an authError, with an RFC 6750
// challenge on 401, 403 and 400 invalid_request.
func (s *Server) deny(w http.ResponseWriter, e *authError) {
	if e.status == http.StatusUnauthorized || e.status == http.StatusForbidden ||
		e.status == http.StatusBadRequest && e.code != "" {
		v := `Bearer realm="` + s.realm + `"`
		if e.code != "" {
			v += `, error="` + e.code + `", error_description="` + headerSafe(e.desc) + `"`
		}
		if e.scope != "" {
			v += `, scope="` + headerSafe(e.scope) + `"`
		}
		w.Header().Set("WWW-Authenticate", v)
	}
	if e.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(int((s.keys.minInterval+time.Second-1)/time.Second)))
	}
	s.fail(w, e.status, e.desc)
}

// fail writes a one-line plain-text error.
func (s *Server) fail(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, "%d %s: %s\n", status, http.StatusText(status), msg)
}

// headerSafe keeps the characters RFC 6750 allows in error_description
// (%x20-21 / %x23-5B / %x5D-7E) and replaces the others with '?'.
func headerSafe(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			b[i] = '?'
		}
	}
	return string(b)
}

// statusWriter records the status sent, for the access log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}
