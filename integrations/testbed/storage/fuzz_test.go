package storage

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"net/http"
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/tokenhelper/tokenhelper/helper"
)

// FuzzExtractToken: never panics; a token found is RFC 6750 syntax, comes
// from the request, and is gone from the query after stripAuthzQuery.
// Seeds: testdata/fuzz/FuzzExtractToken.
func FuzzExtractToken(f *testing.F) {
	f.Add("Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln", "")
	f.Fuzz(func(t *testing.T, auth, rawQuery string) {
		h := http.Header{}
		if auth != "" {
			h.Set("Authorization", auth)
		}
		tok, aerr := extractToken(h, rawQuery)
		if aerr != nil {
			if tok != "" {
				t.Fatalf("token %q returned with an error", tok)
			}
			if aerr.status != 400 && aerr.status != 401 {
				t.Fatalf("status %d", aerr.status)
			}
			if len(auth) > 12 && strings.Contains(aerr.desc, auth) {
				t.Fatalf("error description echoes the header: %q", aerr.desc)
			}
			return
		}
		if !helper.IsB64Token(tok) || len(tok) > maxTokenBytes {
			t.Fatalf("bad token %q accepted", tok)
		}
		if !strings.Contains(auth, tok) && !strings.Contains(unescapeLoose(rawQuery), tok) {
			t.Fatalf("token %q not from the request (%q, %q)", tok, auth, rawQuery)
		}
		if _, aerr := extractToken(http.Header{}, stripAuthzQuery(rawQuery)); aerr != errNoToken {
			t.Fatalf("authz survives stripAuthzQuery(%q) = %q", rawQuery, stripAuthzQuery(rawQuery))
		}
	})
}

// unescapeLoose unescapes each query part on its own, ignoring bad ones.
func unescapeLoose(q string) string {
	var b strings.Builder
	for _, kv := range strings.Split(q, "&") {
		_, v, _ := strings.Cut(kv, "=")
		if u, err := url.QueryUnescape(v); err == nil {
			b.WriteString(u)
		}
		b.WriteByte('&')
	}
	return b.String()
}

// FuzzScopes: grants stay below the base path, and a request path is only
// ever allowed when it lies, segment-wise, below a granted path.
// Seeds: testdata/fuzz/FuzzScopes.
func FuzzScopes(f *testing.F) {
	f.Add("storage.read:/data", "/vo", "/vo/data/x")
	f.Fuzz(func(t *testing.T, claim, base, reqPath string) {
		b := cleanPath(base)
		grants := parseScopes(claim, b)
		for _, g := range grants {
			if g.path != path.Clean(g.path) || !strings.HasPrefix(g.path, "/") || !covers(b, g.path) {
				t.Fatalf("grant %+v escapes base %q (claim %q)", g, b, claim)
			}
			if g.perm&permModify != 0 && g.perm&permCreate == 0 || g.perm&permStage != 0 && g.perm&permRead == 0 {
				t.Fatalf("grant %+v lacks an implied authorization", g)
			}
		}
		p := cleanPath(reqPath)
		for _, seg := range strings.Split(p, "/") {
			if seg == ".." {
				t.Fatalf("cleanPath(%q) = %q keeps ..", reqPath, p)
			}
		}
		for _, need := range []perm{permRead, permCreate, permModify, permStage} {
			if !allowed(grants, need, p) {
				continue
			}
			ok := false
			for _, g := range grants {
				if g.perm&need != 0 && (g.path == "/" || strings.HasPrefix(p+"/", g.path+"/")) {
					ok = true
				}
			}
			if !ok || !covers(b, p) {
				t.Fatalf("%s allowed on %q by %q below %q", need.scopeName(), p, claim, b)
			}
		}
		if rel, ok := relativeTo(b, p); ok {
			if path.Join(b, rel) != p || !strings.HasPrefix(rel, "/") {
				t.Fatalf("relativeTo(%q, %q) = %q", b, p, rel)
			}
		} else if covers(b, p) {
			t.Fatalf("relativeTo(%q, %q) refused a covered path", b, p)
		}
	})
}

// FuzzParseJWKS: never panics; every key returned has a kid and is an RSA
// key of at least 2048 bits or a P-256 key.
// Seeds: testdata/fuzz/FuzzParseJWKS.
func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := parseJWKS(data)
		if err != nil {
			if len(keys) != 0 {
				t.Fatal("keys with an error")
			}
			return
		}
		if len(keys) == 0 {
			t.Fatal("no keys and no error")
		}
		for kid, k := range keys {
			if kid == "" {
				t.Fatal("empty kid")
			}
			switch pk := k.key.(type) {
			case *rsa.PublicKey:
				if pk.N.BitLen() < 2048 || pk.E < 3 {
					t.Fatalf("weak RSA key accepted: %d bits, e=%d", pk.N.BitLen(), pk.E)
				}
			case *ecdsa.PublicKey:
				if pk.Curve.Params().Name != "P-256" {
					t.Fatalf("curve %s accepted", pk.Curve.Params().Name)
				}
			default:
				t.Fatalf("key type %T", k.key)
			}
		}
	})
}
