package storage

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// testClient has a deadline, like every network call of the project.
var testClient = &http.Client{Timeout: 30 * time.Second}

// t0 is the test clock's start.
var t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

// testClock is an injectable clock tests advance instead of sleeping.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testKey is a signing key of the test issuer.
type testKey struct {
	kid  string
	alg  string
	priv crypto.Signer
}

var (
	rsaKeys = sync.OnceValues(func() (*rsa.PrivateKey, *rsa.PrivateKey) {
		a, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		b, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return a, b
	})
	ecKey = sync.OnceValue(func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
)

func rsaKey1() testKey { a, _ := rsaKeys(); return testKey{kid: "rsa1", alg: "RS256", priv: a} }
func rsaKey2() testKey { _, b := rsaKeys(); return testKey{kid: "rsa2", alg: "RS256", priv: b} }
func ecKey1() testKey  { return testKey{kid: "ec1", alg: "ES256", priv: ecKey()} }

// jwk renders the public half of k as a JWK.
func (k testKey) jwk() map[string]any {
	b64 := base64.RawURLEncoding.EncodeToString
	switch pub := k.priv.Public().(type) {
	case *rsa.PublicKey:
		return map[string]any{"kty": "RSA", "kid": k.kid, "use": "sig", "alg": "RS256",
			"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes())}
	case *ecdsa.PublicKey:
		raw, err := pub.Bytes() // 0x04 || X || Y
		if err != nil {
			panic(err)
		}
		return map[string]any{"kty": "EC", "kid": k.kid, "use": "sig", "alg": "ES256", "crv": "P-256",
			"x": b64(raw[1:33]), "y": b64(raw[33:])}
	}
	panic("unknown key type")
}

// testIssuer is a tiny OpenID issuer: discovery and JWKS only, with hit
// counters, key rotation and an outage switch.
type testIssuer struct {
	srv       *httptest.Server
	mu        sync.Mutex
	published []testKey
	// metaOverride replaces discovery fields (for broken-issuer tests).
	metaOverride map[string]any
	down         atomic.Bool
	discovery    atomic.Int32
	jwks         atomic.Int32
}

func newTestIssuer(t *testing.T, keys ...testKey) *testIssuer {
	return startTestIssuer(t, false, keys...)
}

// startTestIssuer starts the issuer over plain http or, with tls, over
// https with httptest's own certificate.
func startTestIssuer(t *testing.T, tls bool, keys ...testKey) *testIssuer {
	t.Helper()
	ti := &testIssuer{published: keys}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		ti.discovery.Add(1)
		if ti.down.Load() {
			http.Error(w, "<html>maintenance</html>", http.StatusInternalServerError)
			return
		}
		meta := map[string]any{"issuer": ti.srv.URL, "jwks_uri": ti.srv.URL + "/jwk"}
		ti.mu.Lock()
		for k, v := range ti.metaOverride {
			meta[k] = v
		}
		ti.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(meta)
	})
	mux.HandleFunc("GET /jwk", func(w http.ResponseWriter, r *http.Request) {
		ti.jwks.Add(1)
		ti.mu.Lock()
		var set []any
		for _, k := range ti.published {
			set = append(set, k.jwk())
		}
		ti.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": set})
	})
	if tls {
		ti.srv = httptest.NewTLSServer(mux)
	} else {
		ti.srv = httptest.NewServer(mux)
	}
	t.Cleanup(ti.srv.Close)
	return ti
}

func (ti *testIssuer) URL() string { return ti.srv.URL }

func (ti *testIssuer) publish(keys ...testKey) {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	ti.published = keys
}

// fixture is a storage served over real HTTP on 127.0.0.1, with a test
// issuer, a test clock and a directory tree:
//
//	vo/data/existing.txt  "old"
//	vo/data/sub/f.txt     "f"
//	vo/database/x.txt     "x"
//	vo/secret/s.txt       "s"
//	outside/o.txt         "o"   (outside BasePath /vo)
type fixture struct {
	t     *testing.T
	iss   *testIssuer
	clock *testClock
	root  string
	base  string // http://127.0.0.1:port
	url   string // base + "/storage"
	srv   *Server

	mu   sync.Mutex
	logs []logLine
	done chan logLine // receives each log line when non-nil
}

type logLine struct {
	method, path string
	status       int
	sub          string
}

func newFixture(t *testing.T, tweak func(*Options)) *fixture {
	t.Helper()
	f := &fixture{t: t, iss: newTestIssuer(t, rsaKey1(), ecKey1()), clock: &testClock{t: t0}, root: t.TempDir()}
	for name, body := range map[string]string{
		"vo/data/existing.txt": "old",
		"vo/data/sub/f.txt":    "f",
		"vo/database/x.txt":    "x",
		"vo/secret/s.txt":      "s",
		"outside/o.txt":        "o",
	} {
		p := filepath.Join(f.root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ts := httptest.NewUnstartedServer(nil)
	f.base = "http://" + ts.Listener.Addr().String()
	f.url = f.base + "/storage"
	opts := Options{
		Issuer:    f.iss.URL(),
		Audiences: []string{f.base},
		Root:      f.root,
		BasePath:  "/vo",
		Prefix:    "/storage",
		Now:       f.clock.Now,
		Log: func(method, path string, status int, sub string) {
			l := logLine{method, path, status, sub}
			f.mu.Lock()
			f.logs = append(f.logs, l)
			ch := f.done
			f.mu.Unlock()
			if ch != nil {
				ch <- l
			}
		},
	}
	if tweak != nil {
		tweak(&opts)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	ts.Config.Handler = srv
	ts.Start()
	t.Cleanup(ts.Close)
	return f
}

// claims returns the default claims of a valid token with the given scope.
func (f *fixture) claims(scope string) jwt.MapClaims {
	now := f.clock.Now()
	return jwt.MapClaims{
		"iss":      f.iss.URL(),
		"sub":      "alice-sub",
		"aud":      f.base,
		"exp":      now.Add(20 * time.Minute).Unix(),
		"nbf":      now.Add(-time.Minute).Unix(),
		"iat":      now.Add(-time.Minute).Unix(),
		"jti":      "jti-1",
		"wlcg.ver": "1.0",
		"scope":    scope,
	}
}

// sign signs claims with k (kid and alg from k).
func sign(t *testing.T, k testKey, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(k.alg), c)
	tok.Header["kid"] = k.kid
	s, err := tok.SignedString(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// token mints a valid RS256 token with the given scope.
func (f *fixture) token(scope string) string {
	return sign(f.t, rsaKey1(), f.claims(scope))
}

// do sends a request to path (below the fixture's base URL) and returns
// the response with its body read.
func (f *fixture) do(method, path, token, body string, hdr map[string]string) (*http.Response, string) {
	f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.base+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := testClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp, string(b)
}

// read returns a file's content below the root ("" and false if missing).
func (f *fixture) read(name string) (string, bool) {
	b, err := os.ReadFile(filepath.Join(f.root, filepath.FromSlash(name)))
	if err != nil {
		return "", false
	}
	return string(b), true
}

func (f *fixture) logged() []logLine {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]logLine(nil), f.logs...)
}
