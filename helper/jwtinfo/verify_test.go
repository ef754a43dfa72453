package jwtinfo

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenhelper/tokenhelper/helper"
)

// testIssuer is a loopback OpenID provider serving discovery and a JWKS.
type testIssuer struct {
	srv *httptest.Server
	// Issuer is the iss to put in tokens (srv.URL, with a trailing slash
	// when asked).
	Issuer string

	mu        sync.Mutex
	jwks      any
	discovery func(w http.ResponseWriter, r *http.Request) // overrides the default document
	jwksFunc  func(w http.ResponseWriter, r *http.Request) // overrides the default JWKS
	paths     []string
	hits      atomic.Int32
}

type issuerOpts struct {
	tls   bool
	slash bool
}

func newIssuer(t *testing.T, o issuerOpts) *testIssuer {
	t.Helper()
	is := &testIssuer{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		is.hits.Add(1)
		is.mu.Lock()
		is.paths = append(is.paths, r.URL.Path)
		disc, jf, keys := is.discovery, is.jwksFunc, is.jwks
		is.mu.Unlock()
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			if disc != nil {
				disc(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"issuer": is.Issuer, "jwks_uri": is.srv.URL + "/jwk", "token_endpoint": is.srv.URL + "/token"})
		case "/jwk":
			if jf != nil {
				jf(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(keys)
		default:
			http.NotFound(w, r)
		}
	})
	if o.tls {
		is.srv = httptest.NewTLSServer(h)
	} else {
		is.srv = httptest.NewServer(h)
	}
	t.Cleanup(is.srv.Close)
	is.Issuer = is.srv.URL
	if o.slash {
		is.Issuer += "/"
	}
	k := genKeys(t)
	is.setKeys(jwkOf("rsa1", &k.rsa.PublicKey), jwkOf("ec1", &k.ec.PublicKey), jwkOf("ed1", k.ed.Public()))
	return is
}

func (is *testIssuer) setKeys(keys ...map[string]any) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.jwks = map[string]any{"keys": keys}
}

func (is *testIssuer) set(f func(is *testIssuer)) {
	is.mu.Lock()
	defer is.mu.Unlock()
	f(is)
}

func jwkOf(kid string, pub any) map[string]any {
	b64 := base64.RawURLEncoding.EncodeToString
	m := map[string]any{"use": "sig"}
	if kid != "" {
		m["kid"] = kid
	}
	switch p := pub.(type) {
	case *rsa.PublicKey:
		m["kty"], m["alg"] = "RSA", "RS256"
		m["n"], m["e"] = b64(p.N.Bytes()), b64(big.NewInt(int64(p.E)).Bytes())
	case *ecdsa.PublicKey:
		raw, err := p.Bytes()
		if err != nil {
			panic(err)
		}
		m["kty"], m["crv"], m["alg"] = "EC", "P-256", "ES256"
		m["x"], m["y"] = b64(raw[1:33]), b64(raw[33:])
	case ed25519.PublicKey:
		m["kty"], m["crv"], m["alg"] = "OKP", "Ed25519", "EdDSA"
		m["x"] = b64(p)
	}
	return m
}

// claimsFor is a conformant token of the issuer, valid for 51m43s at now.
func claimsFor(is *testIssuer) jwt.MapClaims { return wlcgClaims(is.Issuer) }

func verifyOpts(is *testIssuer) VerifyOptions {
	return VerifyOptions{HTTPClient: is.srv.Client(), Now: func() time.Time { return now }}
}

func checkOf(v *Verdict, name string) CheckResult {
	for _, c := range v.Checks {
		if c.Name == name {
			return c
		}
	}
	return CheckResult{Name: name, Detail: "(step missing)"}
}

func TestVerifyVerdicts(t *testing.T) {
	k := genKeys(t)
	type tc struct {
		name   string
		issuer issuerOpts
		setup  func(is *testIssuer)
		token  func(is *testIssuer) string
		opts   func(o *VerifyOptions, is *testIssuer)
		valid  bool
		step   string // the step to look at
		ok     bool   // its expected OK
		skip   bool   // its expected Skipped
		detail string // substring of its detail; "$SRV" is replaced by the server URL
		noHits bool   // the issuer must not be contacted
	}
	rs := func(kid string, mut func(c jwt.MapClaims)) func(is *testIssuer) string {
		return func(is *testIssuer) string {
			c := claimsFor(is)
			if mut != nil {
				mut(c)
			}
			return sign(t, jwt.SigningMethodRS256, k.rsa, kid, c, nil)
		}
	}
	for _, c := range []tc{
		{name: "good RS256", token: rs("rsa1", nil), valid: true,
			step: StepSignature, ok: true, detail: `RS256, kid "rsa1", from $SRV/jwk`},
		{name: "good RS256 over https", issuer: issuerOpts{tls: true}, token: rs("rsa1", nil), valid: true,
			step: StepSignature, ok: true, detail: `RS256, kid "rsa1", from https://127.0.0.1`},
		{name: "good ES256", token: func(is *testIssuer) string {
			return sign(t, jwt.SigningMethodES256, k.ec, "ec1", claimsFor(is), nil)
		}, valid: true, step: StepSignature, ok: true, detail: `ES256, kid "ec1"`},
		{name: "good EdDSA", token: func(is *testIssuer) string {
			return sign(t, jwt.SigningMethodEdDSA, k.ed, "ed1", claimsFor(is), nil)
		}, valid: true, step: StepSignature, ok: true, detail: `EdDSA, kid "ed1"`},
		{name: "issuer with trailing slash", issuer: issuerOpts{slash: true}, token: rs("rsa1", nil), valid: true,
			step: StepDiscovery, ok: true, detail: "$SRV/.well-known/openid-configuration"},
		{name: "discovery names issuer without the slash", issuer: issuerOpts{slash: true},
			setup: func(is *testIssuer) {
				is.discovery = func(w http.ResponseWriter, r *http.Request) {
					_ = json.NewEncoder(w).Encode(map[string]any{"issuer": is.srv.URL, "jwks_uri": is.srv.URL + "/jwk"})
				}
			}, token: rs("rsa1", nil), valid: true, step: StepDiscovery, ok: true, detail: "differs only by a trailing slash"},
		{name: "no kid, one key", setup: func(is *testIssuer) { is.jwks = map[string]any{"keys": []any{jwkOf("", &k.rsa.PublicKey)}} },
			token: rs("", nil), valid: true, step: StepSignature, ok: true, detail: "RS256, the only key"},
		{name: "no kid, one RSA key among others", setup: func(is *testIssuer) {
			is.jwks = map[string]any{"keys": []any{jwkOf("", &k.rsa.PublicKey), jwkOf("e", &k.ec.PublicKey)}}
		}, token: rs("", nil), valid: true, step: StepSignature, ok: true},
		{name: "no kid, several keys", setup: func(is *testIssuer) {
			is.jwks = map[string]any{"keys": []any{jwkOf("a", &k.rsa.PublicKey), jwkOf("b", &k.rsa2.PublicKey)}}
		}, token: rs("", nil), step: StepSignature, detail: "has no kid and $SRV/jwk has 2 RSA keys"},
		{name: "bad signature", token: func(is *testIssuer) string {
			return sign(t, jwt.SigningMethodRS256, k.rsa2, "rsa1", claimsFor(is), nil)
		}, step: StepSignature, detail: `signature does not match key kid "rsa1" from $SRV/jwk`},
		{name: "tampered claims", token: func(is *testIssuer) string {
			good := strings.Split(sign(t, jwt.SigningMethodRS256, k.rsa, "rsa1", claimsFor(is), nil), ".")
			c := claimsFor(is)
			c["scope"] = "storage.modify:/"
			forged := strings.Split(sign(t, jwt.SigningMethodRS256, k.rsa2, "rsa1", c, nil), ".")
			return good[0] + "." + forged[1] + "." + good[2]
		}, step: StepSignature, detail: "signature does not match"},
		{name: "unknown kid", token: rs("rsa9", nil), step: StepSignature,
			detail: `no key with kid "rsa9" at $SRV/jwk (it has keys "rsa1", "ec1", "ed1")`},
		{name: "kid of the wrong key type", token: func(is *testIssuer) string {
			return sign(t, jwt.SigningMethodES256, k.ec, "rsa1", claimsFor(is), nil)
		}, step: StepSignature, detail: `key kid "rsa1" at $SRV/jwk is unusable: it is an RSA key, and ES256 needs an EC key`},
		{name: "unusable key", setup: func(is *testIssuer) {
			bad := jwkOf("rsa1", &k.rsa.PublicKey)
			bad["n"] = "AQAB"
			is.jwks = map[string]any{"keys": []any{bad}}
		}, token: rs("rsa1", nil), step: StepSignature, detail: "unusable: RSA key of 17 bits is too small"},
		{name: "HS256", token: func(is *testIssuer) string {
			return sign(t, jwt.SigningMethodHS256, []byte("shared secret"), "rsa1", claimsFor(is), nil)
		}, step: StepSignature, detail: "shared-secret algorithm"},
		{name: "alg none", token: func(is *testIssuer) string {
			return sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "rsa1", claimsFor(is), nil)
		}, step: StepSignature, detail: "unsigned (alg none)"},

		{name: "expected aud matches", token: rs("rsa1", nil), opts: func(o *VerifyOptions, is *testIssuer) {
			o.Audiences = []string{"https://other", "https://dcache.example.org:2880"}
		}, valid: true, step: StepAudience, ok: true, detail: `"https://dcache.example.org:2880"`},
		{name: "wrong aud", token: rs("rsa1", nil), opts: func(o *VerifyOptions, is *testIssuer) { o.Audiences = []string{"https://xrootd.example:1094"} },
			step: StepAudience, detail: `token is for "https://dcache.example.org:2880", expected "https://xrootd.example:1094"`},
		{name: "aud differs by trailing slash", token: rs("rsa1", nil), opts: func(o *VerifyOptions, is *testIssuer) { o.Audiences = []string{"https://dcache.example.org:2880/"} },
			step: StepAudience, detail: "differ only by a trailing slash"},
		{name: "aud any", token: rs("rsa1", func(c jwt.MapClaims) { c["aud"] = []any{"https://x", AnyAudience} }),
			opts:  func(o *VerifyOptions, is *testIssuer) { o.Audiences = []string{"https://xrootd.example:1094"} },
			valid: true, step: StepAudience, ok: true, detail: "(any service)"},
		{name: "no aud but one expected", token: rs("rsa1", func(c jwt.MapClaims) { delete(c, "aud") }),
			opts: func(o *VerifyOptions, is *testIssuer) { o.Audiences = []string{"https://x"} }, step: StepAudience, detail: "has no aud"},
		{name: "aud not checked", token: rs("rsa1", nil), valid: true, step: StepAudience, skip: true,
			detail: `no expected audience given (--aud); the token is for "https://dcache.example.org:2880"`},

		{name: "expired", token: rs("rsa1", func(c jwt.MapClaims) { c["exp"] = now.Add(-3*time.Minute - 12*time.Second).Unix() }),
			step: StepExpiry, detail: "expired 3m12s ago"},
		{name: "expired within leeway", token: rs("rsa1", func(c jwt.MapClaims) { c["exp"] = now.Add(-20 * time.Second).Unix() }),
			opts: func(o *VerifyOptions, is *testIssuer) { o.Leeway = 30 * time.Second }, valid: true, step: StepExpiry, ok: true, detail: "within the 30s leeway"},
		{name: "no exp", token: rs("rsa1", func(c jwt.MapClaims) { delete(c, "exp") }), step: StepExpiry, detail: "no usable exp"},
		{name: "not yet valid", token: rs("rsa1", func(c jwt.MapClaims) { c["nbf"] = now.Add(4 * time.Minute).Unix() }),
			step: StepNotBefore, detail: "4m0s from now"},
		{name: "nbf within leeway", token: rs("rsa1", func(c jwt.MapClaims) { c["nbf"] = now.Add(10 * time.Second).Unix() }),
			opts: func(o *VerifyOptions, is *testIssuer) { o.Leeway = 30 * time.Second }, valid: true, step: StepNotBefore, ok: true},

		{name: "trusted issuer", issuer: issuerOpts{slash: true}, token: rs("rsa1", nil),
			opts: func(o *VerifyOptions, is *testIssuer) {
				o.TrustedIssuers = []string{"https://other", strings.TrimSuffix(is.Issuer, "/")}
			},
			valid: true, step: StepIssuer, ok: true, detail: ", trusted"},
		{name: "untrusted issuer", token: rs("rsa1", nil), opts: func(o *VerifyOptions, is *testIssuer) {
			o.TrustedIssuers = []string{"https://wlcg.cloud.cnaf.infn.it/"}
		},
			step: StepIssuer, detail: "is not a trusted issuer (trusted: https://wlcg.cloud.cnaf.infn.it/)", noHits: true},
		{name: "plain http issuer elsewhere", token: rs("rsa1", func(c jwt.MapClaims) { c["iss"] = "http://iam.example.org" }),
			step: StepIssuer, detail: `"http://iam.example.org" is not https: refusing to fetch its keys`, noHits: true},
		{name: "no iss", token: rs("rsa1", func(c jwt.MapClaims) { delete(c, "iss") }), step: StepIssuer, detail: "no usable iss", noHits: true},
		{name: "iss with query", token: rs("rsa1", func(c jwt.MapClaims) { c["iss"] = "https://iam.example/?x=1" }),
			step: StepIssuer, detail: "query or fragment", noHits: true},
		{name: "discovery for another issuer", setup: func(is *testIssuer) {
			is.discovery = func(w http.ResponseWriter, r *http.Request) {
				_ = json.NewEncoder(w).Encode(map[string]any{"issuer": "https://evil.example", "jwks_uri": is.srv.URL + "/jwk"})
			}
		}, token: rs("rsa1", nil), step: StepDiscovery, detail: `describes issuer "https://evil.example"`},
		{name: "jwks_uri not https", setup: func(is *testIssuer) {
			is.discovery = func(w http.ResponseWriter, r *http.Request) {
				_ = json.NewEncoder(w).Encode(map[string]any{"issuer": is.Issuer, "jwks_uri": "http://keys.example.org/jwk"})
			}
		}, token: rs("rsa1", nil), step: StepDiscovery, detail: `jwks_uri "http://keys.example.org/jwk", which is not an https URL`},
	} {
		t.Run(c.name, func(t *testing.T) {
			is := newIssuer(t, c.issuer)
			if c.setup != nil {
				is.set(c.setup)
			}
			raw := c.token(is)
			opts := verifyOpts(is)
			if c.opts != nil {
				c.opts(&opts, is)
			}
			v, err := Verify(context.Background(), raw, opts)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			var buf bytes.Buffer
			if err := RenderVerdict(&buf, v); err != nil {
				t.Fatal(err)
			}
			assertNoSecret(t, "verdict", buf.String()+mustJSON(t, v), raw)
			if v.Valid != c.valid {
				t.Errorf("Valid = %v, want %v\n%s", v.Valid, c.valid, &buf)
			}
			if (v.Err() == nil) != c.valid || (!c.valid && helper.KindOf(v.Err()) != helper.KindInvalidToken) {
				t.Errorf("Err() = %v for Valid %v", v.Err(), v.Valid)
			}
			got := checkOf(v, c.step)
			want := strings.ReplaceAll(c.detail, "$SRV", is.srv.URL)
			if got.OK != c.ok || got.Skipped != c.skip || !strings.Contains(got.Detail, want) {
				t.Errorf("%s = %+v, want ok=%v skipped=%v detail containing %q\n%s", c.step, got, c.ok, c.skip, want, &buf)
			}
			if c.noHits && is.hits.Load() != 0 {
				t.Errorf("the issuer was contacted %d times", is.hits.Load())
			}
			is.mu.Lock()
			for _, p := range is.paths {
				if strings.Contains(p, "//") {
					t.Errorf("requested path %q", p)
				}
			}
			is.mu.Unlock()
		})
	}
}

func TestVerifyErrors(t *testing.T) {
	k := genKeys(t)
	big := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"keys":[` + strings.Repeat(" ", MaxBody) + `]}`))
	}
	for _, c := range []struct {
		name  string
		setup func(is *testIssuer)
		ctx   func() (context.Context, context.CancelFunc)
		kind  helper.Kind
		msg   string // substring; $SRV is replaced by the server URL
	}{
		{name: "discovery 500", setup: func(is *testIssuer) {
			is.discovery = func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) }
		}, kind: helper.KindUnavailable, msg: "fetching the OpenID discovery document from $SRV/.well-known/openid-configuration: HTTP 500 Internal Server Error"},
		{name: "discovery 404", setup: func(is *testIssuer) {
			is.discovery = func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }
		}, kind: helper.KindUnavailable, msg: "HTTP 404 Not Found: is the token's iss really an OpenID Connect issuer?"},
		{name: "discovery HTML", setup: func(is *testIssuer) {
			is.discovery = func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				_, _ = w.Write([]byte("<!DOCTYPE html><html><body>Maintenance</body></html>"))
			}
		}, kind: helper.KindUnavailable, msg: "the OpenID discovery document at $SRV/.well-known/openid-configuration is an HTML page, not JSON"},
		{name: "HTML sent as JSON", setup: func(is *testIssuer) {
			is.jwksFunc = func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte("\n  <html>login</html>"))
			}
		}, kind: helper.KindUnavailable, msg: "the JWK Set at $SRV/jwk is an HTML page"},
		{name: "discovery malformed JSON", setup: func(is *testIssuer) {
			is.discovery = func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{"issuer": "x",`)) }
		}, kind: helper.KindUnavailable, msg: "is not valid JSON"},
		{name: "discovery wrong types", setup: func(is *testIssuer) {
			is.discovery = func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{"issuer": 1, "jwks_uri": []}`)) }
		}, kind: helper.KindUnavailable, msg: "malformed: issuer has the wrong type"},
		{name: "no jwks_uri", setup: func(is *testIssuer) {
			is.discovery = func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte(`{"issuer": "` + is.Issuer + `"}`))
			}
		}, kind: helper.KindUnavailable, msg: "has no jwks_uri"},
		{name: "jwks oversized", setup: func(is *testIssuer) { is.jwksFunc = big }, kind: helper.KindUnavailable, msg: "the JWK Set at $SRV/jwk is larger than 1024 KiB"},
		{name: "jwks not a key set", setup: func(is *testIssuer) {
			is.jwksFunc = func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{"foo": 1}`)) }
		}, kind: helper.KindUnavailable, msg: `the JWK Set at $SRV/jwk is malformed: no "keys" array`},
		{name: "jwks 403", setup: func(is *testIssuer) {
			is.jwksFunc = func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusForbidden) }
		}, kind: helper.KindUnavailable, msg: "HTTP 403 Forbidden"},
		{name: "redirect to plain http", setup: func(is *testIssuer) {
			is.discovery = func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "http://iam.example.org/.well-known/openid-configuration", http.StatusFound)
			}
		}, kind: helper.KindUnavailable, msg: "refused a redirect to http://iam.example.org/.well-known/openid-configuration: not https"},
		{name: "slow server past deadline", setup: func(is *testIssuer) {
			is.discovery = func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
		}, ctx: func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 1500*time.Millisecond)
		}, kind: helper.KindUnavailable, msg: "timed out fetching the OpenID discovery document from $SRV"},
		{name: "slow body past deadline", setup: func(is *testIssuer) {
			is.jwksFunc = func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte(`{"keys":[`))
				w.(http.Flusher).Flush()
				<-r.Context().Done()
			}
		}, ctx: func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 1500*time.Millisecond)
		}, kind: helper.KindUnavailable, msg: "timed out fetching the JWK Set from $SRV/jwk"},
	} {
		t.Run(c.name, func(t *testing.T) {
			is := newIssuer(t, issuerOpts{})
			is.set(c.setup)
			raw := sign(t, jwt.SigningMethodRS256, k.rsa, "rsa1", claimsFor(is), nil)
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if c.ctx != nil {
				ctx, cancel = c.ctx()
			}
			defer cancel()
			start := time.Now()
			v, err := Verify(ctx, raw, verifyOpts(is))
			if err == nil {
				t.Fatalf("Verify succeeded: %+v", v)
			}
			if v != nil {
				t.Errorf("verdict %+v returned with an error", v)
			}
			if helper.KindOf(err) != c.kind {
				t.Errorf("kind %v, want %v: %v", helper.KindOf(err), c.kind, err)
			}
			want := strings.ReplaceAll(c.msg, "$SRV", is.srv.URL)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q\ndoes not contain %q", err, want)
			}
			assertNoSecret(t, "error", err.Error(), raw)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

func TestVerifyUnreachable(t *testing.T) {
	is := newIssuer(t, issuerOpts{})
	raw := sign(t, jwt.SigningMethodRS256, genKeys(t).rsa, "rsa1", claimsFor(is), nil)
	is.srv.Close()
	_, err := Verify(context.Background(), raw, verifyOpts(is))
	if helper.KindOf(err) != helper.KindUnavailable || !strings.Contains(err.Error(), "cannot fetch the OpenID discovery document from "+is.srv.URL) {
		t.Errorf("got %v", err)
	}
}

func TestVerifyInputErrors(t *testing.T) {
	for in, kind := range map[string]helper.Kind{
		"":                   helper.KindNoToken,
		"Bearer abc":         helper.KindInvalidToken,
		"opaque-token-value": helper.KindInvalidToken,
	} {
		v, err := Verify(context.Background(), in, VerifyOptions{})
		if v != nil || helper.KindOf(err) != kind {
			t.Errorf("Verify(%q) = %v, %v; want kind %v", in, v, err, kind)
		}
	}
}

// deadlineTransport records whether requests carry a deadline and answers
// with the discovery document and JWKS of the test keys.
type deadlineTransport struct {
	next        http.RoundTripper
	hasDeadline atomic.Bool
	remaining   atomic.Int64
}

func (d *deadlineTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if dl, ok := r.Context().Deadline(); ok {
		d.hasDeadline.Store(true)
		d.remaining.Store(int64(time.Until(dl)))
	}
	return d.next.RoundTrip(r)
}

func TestVerifyDefaultDeadline(t *testing.T) {
	is := newIssuer(t, issuerOpts{})
	raw := sign(t, jwt.SigningMethodRS256, genKeys(t).rsa, "rsa1", claimsFor(is), nil)
	tr := &deadlineTransport{next: is.srv.Client().Transport}
	opts := verifyOpts(is)
	opts.HTTPClient = &http.Client{Transport: tr}
	v, err := Verify(context.Background(), raw, opts)
	if err != nil || !v.Valid {
		t.Fatalf("Verify: %v %+v", err, v)
	}
	if !tr.hasDeadline.Load() {
		t.Fatal("requests had no deadline")
	}
	if r := time.Duration(tr.remaining.Load()); r > DefaultTimeout || r < DefaultTimeout-5*time.Second {
		t.Errorf("remaining time %v, want about %v", r, DefaultTimeout)
	}
}

func TestRenderVerdictGolden(t *testing.T) {
	k := genKeys(t)
	is := newIssuer(t, issuerOpts{})
	mask := func(s string) []byte { return []byte(strings.ReplaceAll(s, is.srv.URL, "http://ISSUER")) }
	good := sign(t, jwt.SigningMethodRS256, k.rsa, "rsa1", claimsFor(is), nil)
	c := claimsFor(is)
	c["exp"] = now.Add(-3*time.Minute - 12*time.Second).Unix()
	bad := sign(t, jwt.SigningMethodRS256, k.rsa2, "rsa1", c, nil)

	for _, g := range []struct {
		name string
		raw  string
		aud  []string
	}{
		{"valid-no-aud", good, nil},
		{"valid-aud", good, []string{"https://dcache.example.org:2880"}},
		{"invalid", bad, []string{"https://xrootd.example:1094"}},
	} {
		opts := verifyOpts(is)
		opts.Audiences = g.aud
		v, err := Verify(context.Background(), g.raw, opts)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := RenderVerdict(&buf, v); err != nil {
			t.Fatal(err)
		}
		golden(t, "verdict/"+g.name+".golden", mask(buf.String()))
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		golden(t, "verdict/"+g.name+".json.golden", mask(string(b)+"\n"))
	}
	var buf bytes.Buffer
	if err := RenderVerdict(&buf, nil); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "Verification : not performed\n" {
		t.Errorf("nil verdict: %q", buf.String())
	}
}
