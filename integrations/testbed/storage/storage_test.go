package storage

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenhelper/tokenhelper/helper"
)

func TestAuthorizationMatrix(t *testing.T) {
	const (
		read   = "storage.read:/data"
		create = "storage.create:/data"
		modify = "storage.modify:/data"
	)
	type fileWant struct {
		name, content string
		exists        bool
	}
	tests := []struct {
		name   string
		scope  string
		method string
		path   string // below the server; "{base}" in hdr values is replaced
		body   string
		hdr    map[string]string
		want   int
		files  []fileWant
	}{
		// storage.read
		{name: "read GET", scope: read, method: "GET", path: "/storage/vo/data/existing.txt", want: 200},
		{name: "read HEAD", scope: read, method: "HEAD", path: "/storage/vo/data/existing.txt", want: 200},
		{name: "read OPTIONS", scope: read, method: "OPTIONS", path: "/storage/vo/data/existing.txt", want: 200},
		{name: "read cannot PUT new", scope: read, method: "PUT", path: "/storage/vo/data/new.txt", body: "n", want: 403,
			files: []fileWant{{name: "vo/data/new.txt"}}},
		{name: "read cannot PUT over", scope: read, method: "PUT", path: "/storage/vo/data/existing.txt", body: "n", want: 403,
			files: []fileWant{{"vo/data/existing.txt", "old", true}}},
		{name: "read cannot DELETE", scope: read, method: "DELETE", path: "/storage/vo/data/existing.txt", want: 403,
			files: []fileWant{{"vo/data/existing.txt", "old", true}}},
		{name: "read cannot MKCOL", scope: read, method: "MKCOL", path: "/storage/vo/data/d", want: 403},
		{name: "stage implies read", scope: "storage.stage:/data", method: "GET", path: "/storage/vo/data/existing.txt", want: 200},
		{name: "create does not imply read", scope: create, method: "GET", path: "/storage/vo/data/existing.txt", want: 403},

		// storage.create
		{name: "create PUT new", scope: create, method: "PUT", path: "/storage/vo/data/new.txt", body: "n", want: 201,
			files: []fileWant{{"vo/data/new.txt", "n", true}}},
		{name: "create PUT new with parents", scope: create, method: "PUT", path: "/storage/vo/data/a/b/new.txt", body: "n", want: 201,
			files: []fileWant{{"vo/data/a/b/new.txt", "n", true}}},
		{name: "create cannot overwrite", scope: create, method: "PUT", path: "/storage/vo/data/existing.txt", body: "n", want: 403,
			files: []fileWant{{"vo/data/existing.txt", "old", true}}},
		{name: "create MKCOL", scope: create, method: "MKCOL", path: "/storage/vo/data/d", want: 201},
		{name: "create cannot DELETE", scope: create, method: "DELETE", path: "/storage/vo/data/existing.txt", want: 403,
			files: []fileWant{{"vo/data/existing.txt", "old", true}}},
		{name: "create cannot MOVE", scope: read + " " + create, method: "MOVE", path: "/storage/vo/data/existing.txt",
			hdr: map[string]string{"Destination": "{base}/storage/vo/data/moved.txt"}, want: 403,
			files: []fileWant{{"vo/data/existing.txt", "old", true}, {name: "vo/data/moved.txt"}}},
		{name: "read+create COPY to new", scope: read + " " + create, method: "COPY", path: "/storage/vo/data/existing.txt",
			hdr: map[string]string{"Destination": "{base}/storage/vo/data/copy.txt"}, want: 201,
			files: []fileWant{{"vo/data/copy.txt", "old", true}}},
		{name: "create cannot COPY onto existing", scope: read + " " + create, method: "COPY", path: "/storage/vo/data/sub/f.txt",
			hdr: map[string]string{"Destination": "{base}/storage/vo/data/existing.txt"}, want: 403,
			files: []fileWant{{"vo/data/existing.txt", "old", true}}},
		{name: "create COPY onto existing with Overwrite F", scope: read + " " + create, method: "COPY", path: "/storage/vo/data/sub/f.txt",
			hdr: map[string]string{"Destination": "{base}/storage/vo/data/existing.txt", "Overwrite": "F"}, want: 412,
			files: []fileWant{{"vo/data/existing.txt", "old", true}}},
		{name: "COPY needs read on source", scope: create, method: "COPY", path: "/storage/vo/data/existing.txt",
			hdr: map[string]string{"Destination": "{base}/storage/vo/data/copy.txt"}, want: 403},
		{name: "create cannot PROPPATCH", scope: read + " " + create, method: "PROPPATCH", path: "/storage/vo/data/existing.txt",
			body: proppatchBody, want: 403},

		// storage.modify
		{name: "modify PUT over", scope: modify, method: "PUT", path: "/storage/vo/data/existing.txt", body: "new", want: 204,
			files: []fileWant{{"vo/data/existing.txt", "new", true}}},
		{name: "modify PUT new", scope: modify, method: "PUT", path: "/storage/vo/data/new.txt", body: "n", want: 201,
			files: []fileWant{{"vo/data/new.txt", "n", true}}},
		{name: "modify DELETE", scope: modify, method: "DELETE", path: "/storage/vo/data/existing.txt", want: 204,
			files: []fileWant{{name: "vo/data/existing.txt"}}},
		{name: "modify DELETE collection", scope: modify, method: "DELETE", path: "/storage/vo/data/sub", want: 204,
			files: []fileWant{{name: "vo/data/sub/f.txt"}}},
		{name: "modify MOVE", scope: modify, method: "MOVE", path: "/storage/vo/data/existing.txt",
			hdr: map[string]string{"Destination": "{base}/storage/vo/data/moved.txt"}, want: 201,
			files: []fileWant{{name: "vo/data/existing.txt"}, {"vo/data/moved.txt", "old", true}}},
		{name: "modify MOVE overwrite", scope: modify, method: "MOVE", path: "/storage/vo/data/sub/f.txt",
			hdr: map[string]string{"Destination": "/storage/vo/data/existing.txt", "Overwrite": "T"}, want: 204,
			files: []fileWant{{"vo/data/existing.txt", "f", true}}},
		{name: "modify COPY onto existing", scope: read + " " + modify, method: "COPY", path: "/storage/vo/data/sub/f.txt",
			hdr: map[string]string{"Destination": "{base}/storage/vo/data/existing.txt"}, want: 204,
			files: []fileWant{{"vo/data/existing.txt", "f", true}}},
		{name: "modify PROPPATCH", scope: modify, method: "PROPPATCH", path: "/storage/vo/data/existing.txt", body: proppatchBody, want: 207},
		{name: "modify cannot MOVE out of scope", scope: modify, method: "MOVE", path: "/storage/vo/data/existing.txt",
			hdr: map[string]string{"Destination": "{base}/storage/vo/secret/stolen.txt"}, want: 403,
			files: []fileWant{{"vo/data/existing.txt", "old", true}, {name: "vo/secret/stolen.txt"}}},
		{name: "modify cannot MOVE in from out of scope", scope: modify, method: "MOVE", path: "/storage/vo/secret/s.txt",
			hdr: map[string]string{"Destination": "{base}/storage/vo/data/s.txt"}, want: 403,
			files: []fileWant{{"vo/secret/s.txt", "s", true}}},
		{name: "MOVE Destination on another host", scope: modify, method: "MOVE", path: "/storage/vo/data/existing.txt",
			hdr: map[string]string{"Destination": "http://elsewhere.example/storage/vo/data/x"}, want: 502},
		{name: "MOVE Destination outside prefix", scope: modify, method: "MOVE", path: "/storage/vo/data/existing.txt",
			hdr: map[string]string{"Destination": "{base}/storagex/vo/data/x"}, want: 502},
		{name: "MOVE without Destination", scope: modify, method: "MOVE", path: "/storage/vo/data/existing.txt", want: 400},

		// paths outside the scope
		{name: "sibling with common prefix", scope: read, method: "GET", path: "/storage/vo/database/x.txt", want: 403},
		{name: "dot-dot out of scope", scope: read, method: "GET", path: "/storage/vo/data/../secret/s.txt", want: 403},
		{name: "encoded dot-dot out of scope", scope: read, method: "GET", path: "/storage/vo/data/%2e%2e/secret/s.txt", want: 403},
		{name: "encoded slash and dot-dot", scope: read, method: "GET", path: "/storage/vo/data%2F..%2Fsecret%2Fs.txt", want: 403},
		{name: "dot-dot staying inside scope", scope: read, method: "GET", path: "/storage/vo/data/sub/../existing.txt", want: 200},
		{name: "dot-dot above the root", scope: "storage.read:/", method: "GET", path: "/storage/../../outside/o.txt", want: 403},
		{name: "outside base path", scope: "storage.read:/", method: "GET", path: "/storage/outside/o.txt", want: 403},
		{name: "scope dot-dot cannot climb above base", scope: "storage.read:/../outside", method: "GET", path: "/storage/outside/o.txt", want: 403},
		{name: "create dot-dot PUT out of scope", scope: create, method: "PUT", path: "/storage/vo/data/%2e%2e/secret/new.txt", body: "n", want: 403,
			files: []fileWant{{name: "vo/secret/new.txt"}}},
		{name: "scope on a file", scope: "storage.read:/data/existing.txt", method: "GET", path: "/storage/vo/data/existing.txt", want: 200},
		{name: "scope on a file does not cover a sibling", scope: "storage.read:/data/existing.txt", method: "GET", path: "/storage/vo/data/existing.txt2", want: 403},
		{name: "root scope covers all of base", scope: "storage.read:/", method: "GET", path: "/storage/vo/secret/s.txt", want: 200},
		{name: "one of several scopes", scope: "openid storage.read:/database offline_access storage.read:/secret", method: "GET", path: "/storage/vo/secret/s.txt", want: 200},
		{name: "scope without path gives nothing", scope: "storage.read", method: "GET", path: "/storage/vo/data/existing.txt", want: 403},
		{name: "relative scope path gives nothing", scope: "storage.read:data", method: "GET", path: "/storage/vo/data/existing.txt", want: 403},
		{name: "outside the prefix", scope: read, method: "GET", path: "/storagefoo/vo/data/existing.txt", want: 404},

		// methods the storage does not offer
		{name: "LOCK", scope: modify, method: "LOCK", path: "/storage/vo/data/existing.txt", want: 405},
		{name: "POST", scope: modify, method: "POST", path: "/storage/vo/data/existing.txt", want: 405},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			hdr := map[string]string{}
			for k, v := range tc.hdr {
				hdr[k] = strings.ReplaceAll(v, "{base}", f.base)
			}
			resp, body := f.do(tc.method, tc.path, f.token(tc.scope), tc.body, hdr)
			if resp.StatusCode != tc.want {
				t.Fatalf("%s %s with %q: status %d, want %d; body %q", tc.method, tc.path, tc.scope, resp.StatusCode, tc.want, body)
			}
			if tc.want == 403 {
				ch := resp.Header.Get("WWW-Authenticate")
				if !strings.HasPrefix(ch, `Bearer realm="`) || !strings.Contains(ch, `error="insufficient_scope"`) {
					t.Errorf("403 challenge = %q", ch)
				}
			}
			for _, fw := range tc.files {
				got, ok := f.read(fw.name)
				if ok != fw.exists || got != fw.content {
					t.Errorf("%s: (%q, %v), want (%q, %v)", fw.name, got, ok, fw.content, fw.exists)
				}
			}
			if tc.method == "GET" && tc.want == 200 && body == "" {
				t.Errorf("GET returned an empty body")
			}
		})
	}
}

const proppatchBody = `<?xml version="1.0" encoding="utf-8"?>
<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:test"><D:set><D:prop><Z:color>blue</Z:color></D:prop></D:set></D:propertyupdate>`

func TestInsufficientScopeNamesTheScope(t *testing.T) {
	f := newFixture(t, nil)
	resp, body := f.do("PUT", "/storage/vo/data/existing.txt", f.token("storage.create:/data"), "x", nil)
	if resp.StatusCode != 403 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	ch := resp.Header.Get("WWW-Authenticate")
	if !strings.Contains(ch, `scope="storage.modify:/data/existing.txt"`) {
		t.Errorf("challenge %q does not name storage.modify:/data/existing.txt", ch)
	}
	if !strings.Contains(body, "storage.modify:/data/existing.txt") {
		t.Errorf("body %q does not name the missing scope", body)
	}
}

func TestTokenRejected(t *testing.T) {
	f := newFixture(t, nil)
	other := newTestIssuer(t, rsaKey1())
	_, strangerKey := rsaKeys()
	tests := []struct {
		name   string
		token  func() string
		header string // the Authorization header; default "Bearer <token>"
		desc   string // part of error_description; "" for no error attribute
	}{
		{name: "missing", token: func() string { return "" }},
		{name: "basic auth", header: "Basic YWxpY2U6cHc=", token: func() string { return "" }},
		{name: "wrong aud", desc: "audience", token: func() string {
			c := f.claims("storage.read:/")
			c["aud"] = "https://other.example"
			return f.sign(c)
		}},
		{name: "aud with trailing slash", desc: "audience", token: func() string {
			c := f.claims("storage.read:/")
			c["aud"] = f.base + "/"
			return f.sign(c)
		}},
		{name: "no aud", desc: "aud", token: func() string {
			c := f.claims("storage.read:/")
			delete(c, "aud")
			return f.sign(c)
		}},
		{name: "expired", desc: "expired", token: func() string {
			c := f.claims("storage.read:/")
			c["exp"] = t0.Add(-time.Second).Unix()
			return f.sign(c)
		}},
		{name: "no exp", desc: "exp", token: func() string {
			c := f.claims("storage.read:/")
			delete(c, "exp")
			return f.sign(c)
		}},
		{name: "not yet valid", desc: "nbf", token: func() string {
			c := f.claims("storage.read:/")
			c["nbf"] = t0.Add(time.Minute).Unix()
			return f.sign(c)
		}},
		{name: "no nbf", desc: "nbf", token: func() string {
			c := f.claims("storage.read:/")
			delete(c, "nbf")
			return f.sign(c)
		}},
		{name: "issued in the future", desc: "iat", token: func() string {
			c := f.claims("storage.read:/")
			c["iat"] = t0.Add(time.Hour).Unix()
			return f.sign(c)
		}},
		{name: "no sub", desc: "sub", token: func() string {
			c := f.claims("storage.read:/")
			delete(c, "sub")
			return f.sign(c)
		}},
		{name: "no scope", desc: "scope", token: func() string {
			c := f.claims("")
			delete(c, "scope")
			return f.sign(c)
		}},
		{name: "scope array", desc: "scope", token: func() string {
			c := f.claims("")
			c["scope"] = []string{"storage.read:/"}
			return f.sign(c)
		}},
		{name: "wlcg.ver 2.0", desc: "wlcg.ver", token: func() string {
			c := f.claims("storage.read:/")
			c["wlcg.ver"] = "2.0"
			return f.sign(c)
		}},
		{name: "bad signature", desc: "signature", token: func() string {
			// Signed by another key under the published kid.
			return sign(t, testKey{kid: "rsa1", alg: "RS256", priv: strangerKey}, f.claims("storage.read:/"))
		}},
		{name: "tampered payload", desc: "signature", token: func() string {
			good := f.token("storage.read:/data")
			parts := strings.Split(good, ".")
			c := f.claims("storage.read:/")
			forged := sign(t, rsaKey1(), c)
			return parts[0] + "." + strings.Split(forged, ".")[1] + "." + parts[2]
		}},
		{name: "unknown kid", desc: "key", token: func() string {
			return sign(t, testKey{kid: "nope", alg: "RS256", priv: strangerKey}, f.claims("storage.read:/"))
		}},
		{name: "no kid", desc: "kid", token: func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodRS256, f.claims("storage.read:/"))
			s, _ := tok.SignedString(rsaKey1().priv)
			return s
		}},
		{name: "wrong issuer", desc: "issuer", token: func() string {
			c := f.claims("storage.read:/")
			c["iss"] = other.URL()
			return f.sign(c)
		}},
		{name: "HS256 with the public key as secret", desc: "", token: func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, f.claims("storage.read:/"))
			tok.Header["kid"] = "rsa1"
			s, _ := tok.SignedString([]byte("secret"))
			return s
		}},
		{name: "alg none", desc: "", token: func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodNone, f.claims("storage.read:/"))
			tok.Header["kid"] = "rsa1"
			s, _ := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
			return s
		}},
		{name: "ES256 key with RS256 alg header", desc: "", token: func() string {
			// kid of the EC key, signed with RSA.
			return sign(t, testKey{kid: "ec1", alg: "RS256", priv: rsaKey1().priv}, f.claims("storage.read:/"))
		}},
		{name: "not a JWT", desc: "malformed", token: func() string { return "abc.def" }},
		{name: "not b64token", desc: "malformed", header: "Bearer a b", token: func() string { return "" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := tc.token()
			h := tc.header
			if h == "" && tok != "" {
				h = "Bearer " + tok
			}
			var hdr map[string]string
			if h != "" {
				hdr = map[string]string{"Authorization": h}
			}
			resp, body := f.do("GET", "/storage/vo/data/existing.txt", "", "", hdr)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401; body %q", resp.StatusCode, body)
			}
			ch := resp.Header.Get("WWW-Authenticate")
			if !strings.HasPrefix(ch, `Bearer realm="`+DefaultRealm+`"`) {
				t.Errorf("challenge %q", ch)
			}
			switch {
			case tok == "" && tc.header == "" || tc.name == "basic auth":
				if strings.Contains(ch, "error=") {
					t.Errorf("challenge for a request without token has an error: %q", ch)
				}
			default:
				if !strings.Contains(ch, `error="invalid_token"`) || !strings.Contains(ch, "error_description=") {
					t.Errorf("challenge %q lacks invalid_token", ch)
				}
				if !strings.Contains(ch, tc.desc) {
					t.Errorf("challenge %q does not mention %q", ch, tc.desc)
				}
			}
			if tok != "" {
				for _, part := range strings.Split(tok, ".") {
					if len(part) > 8 && (strings.Contains(ch, part) || strings.Contains(body, part)) {
						t.Errorf("the answer echoes the token")
					}
				}
			}
		})
	}
	for _, l := range f.logged() {
		if l.sub != "" || l.status != 401 {
			t.Errorf("log line %+v: want status 401 and no sub", l)
		}
	}
}

// sign signs claims with the fixture's default key.
func (f *fixture) sign(c jwt.MapClaims) string { return sign(f.t, rsaKey1(), c) }

func TestTokenAccepted(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Leeway = time.Minute })
	tests := []struct {
		name  string
		token func() string
	}{
		{"RS256", func() string { return f.token("storage.read:/data") }},
		{"ES256", func() string { return sign(t, ecKey1(), f.claims("storage.read:/data")) }},
		{"any audience", func() string {
			c := f.claims("storage.read:/data")
			c["aud"] = AnyAudience
			return f.sign(c)
		}},
		{"audience array", func() string {
			c := f.claims("storage.read:/data")
			c["aud"] = []string{"https://other.example", f.base}
			return f.sign(c)
		}},
		{"expired within leeway", func() string {
			c := f.claims("storage.read:/data")
			c["exp"] = t0.Add(-30 * time.Second).Unix()
			return f.sign(c)
		}},
		{"no nbf with typ at+jwt", func() string {
			c := f.claims("storage.read:/data")
			delete(c, "nbf")
			tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
			tok.Header["kid"] = "rsa1"
			tok.Header["typ"] = "at+jwt"
			s, err := tok.SignedString(rsaKey1().priv)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
		{"no wlcg.ver", func() string {
			c := f.claims("storage.read:/data")
			delete(c, "wlcg.ver")
			return f.sign(c)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.do("GET", "/storage/vo/data/existing.txt", tc.token(), "", nil)
			if resp.StatusCode != 200 || body != "old" {
				t.Fatalf("status %d body %q", resp.StatusCode, body)
			}
		})
	}
	if n := f.iss.discovery.Load(); n != 1 {
		t.Errorf("discovery fetched %d times, want 1 (keys are cached)", n)
	}
}

func TestClockDecidesExpiry(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.token("storage.read:/data")
	if resp, _ := f.do("GET", "/storage/vo/data/existing.txt", tok, "", nil); resp.StatusCode != 200 {
		t.Fatalf("fresh token: %d", resp.StatusCode)
	}
	f.clock.Advance(21 * time.Minute)
	if resp, _ := f.do("GET", "/storage/vo/data/existing.txt", tok, "", nil); resp.StatusCode != 401 {
		t.Fatalf("token past exp by the injected clock: %d, want 401", resp.StatusCode)
	}
}

func TestAuthzQueryParameter(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.token("storage.read:/data storage.create:/data")
	get := func(rawQuery string, hdr map[string]string) (*http.Response, string) {
		return f.do("GET", "/storage/vo/data/existing.txt?"+rawQuery, "", "", hdr)
	}
	if resp, body := get("authz=Bearer%20"+tok, nil); resp.StatusCode != 200 || body != "old" {
		t.Fatalf("authz=Bearer%%20…: %d %q", resp.StatusCode, body)
	}
	if resp, _ := get("x=1&authz=Bearer+"+tok+"&y=2", nil); resp.StatusCode != 200 {
		t.Fatalf("authz=Bearer+… among other parameters: %d", resp.StatusCode)
	}
	if resp, _ := get("authz="+tok, nil); resp.StatusCode != 200 {
		t.Fatalf("authz without Bearer prefix: %d", resp.StatusCode)
	}
	if resp, _ := get("authz=Bearer%20"+tok, map[string]string{"Authorization": "Bearer " + tok}); resp.StatusCode != 200 {
		t.Fatalf("same token twice: %d", resp.StatusCode)
	}
	other := f.token("storage.read:/")
	if resp, _ := get("authz=Bearer%20"+tok, map[string]string{"Authorization": "Bearer " + other}); resp.StatusCode != 400 ||
		!strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_request"`) {
		t.Fatalf("two different tokens: %d %q, want 400 invalid_request", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if resp, _ := get("authz=Bearer%20"+tok+"&authz=Bearer%20"+tok, nil); resp.StatusCode != 400 {
		t.Fatalf("two authz parameters: %d, want 400", resp.StatusCode)
	}
	if resp, _ := get("authz=Bearer%20garbage", nil); resp.StatusCode != 401 {
		t.Fatalf("garbage token: %d, want 401", resp.StatusCode)
	}
	resp, _ := f.do("PUT", "/storage/vo/data/q.txt?authz=Bearer%20"+tok, "", "q", nil)
	if resp.StatusCode != 201 {
		t.Fatalf("PUT with authz: %d", resp.StatusCode)
	}
	if got, _ := f.read("vo/data/q.txt"); got != "q" {
		t.Fatalf("q.txt = %q", got)
	}
	for _, l := range f.logged() {
		if strings.Contains(l.path, tok[:20]) || strings.Contains(l.path, "authz") {
			t.Errorf("log line %+v carries the query", l)
		}
	}
}

// multistatus is the part of a PROPFIND answer the tests read.
type multistatus struct {
	Responses []struct {
		Href string `xml:"href"`
	} `xml:"response"`
}

func TestPropfindDepth(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.token("storage.read:/data")
	// An upload in progress must not show.
	if err := os.WriteFile(filepath.Join(f.root, "vo/data", uploadPrefix+"abc"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	list := func(path, depth string) []string {
		t.Helper()
		resp, body := f.do("PROPFIND", path, tok, "", map[string]string{"Depth": depth})
		if resp.StatusCode != 207 {
			t.Fatalf("PROPFIND %s depth %s: %d %q", path, depth, resp.StatusCode, body)
		}
		var ms multistatus
		if err := xml.Unmarshal([]byte(body), &ms); err != nil {
			t.Fatal(err)
		}
		var hrefs []string
		for _, r := range ms.Responses {
			hrefs = append(hrefs, r.Href)
		}
		slices.Sort(hrefs)
		return hrefs
	}
	if got, want := list("/storage/vo/data", "1"), []string{
		"/storage/vo/data/", "/storage/vo/data/existing.txt", "/storage/vo/data/sub/",
	}; !slices.Equal(got, want) {
		t.Errorf("depth 1: %q, want %q", got, want)
	}
	if got, want := list("/storage/vo/data", "0"), []string{"/storage/vo/data/"}; !slices.Equal(got, want) {
		t.Errorf("depth 0: %q, want %q", got, want)
	}
	if got, want := list("/storage/vo/data", "infinity"), []string{
		"/storage/vo/data/", "/storage/vo/data/existing.txt", "/storage/vo/data/sub/", "/storage/vo/data/sub/f.txt",
	}; !slices.Equal(got, want) {
		t.Errorf("depth infinity: %q, want %q", got, want)
	}
	if resp, _ := f.do("PROPFIND", "/storage/vo", tok, "", map[string]string{"Depth": "1"}); resp.StatusCode != 403 {
		t.Errorf("PROPFIND above the scope: %d, want 403", resp.StatusCode)
	}
}

func TestOptions(t *testing.T) {
	f := newFixture(t, nil)
	resp, _ := f.do("OPTIONS", "/storage/vo/data/existing.txt", f.token("storage.read:/data"), "", nil)
	if resp.StatusCode != 200 || resp.Header.Get("DAV") != "1" || !strings.Contains(resp.Header.Get("Allow"), "PUT") ||
		strings.Contains(resp.Header.Get("Allow"), "LOCK") {
		t.Fatalf("OPTIONS: %d DAV=%q Allow=%q", resp.StatusCode, resp.Header.Get("DAV"), resp.Header.Get("Allow"))
	}
}

func TestKeyRotation(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.KeyRefetchInterval = time.Minute })
	get := func(k testKey) int {
		resp, _ := f.do("GET", "/storage/vo/data/existing.txt", sign(t, k, f.claims("storage.read:/data")), "", nil)
		return resp.StatusCode
	}
	if s := get(rsaKey1()); s != 200 {
		t.Fatalf("rsa1: %d", s)
	}
	// The issuer rotates to rsa2: the unknown kid triggers one refetch.
	f.iss.publish(rsaKey2())
	if s := get(rsaKey2()); s != 200 {
		t.Fatalf("rsa2 after rotation: %d", s)
	}
	if n := f.iss.jwks.Load(); n != 2 {
		t.Fatalf("JWKS fetched %d times, want 2", n)
	}
	// rsa1 is gone from the new set.
	if s := get(rsaKey1()); s != 401 {
		t.Fatalf("rotated-out rsa1: %d, want 401", s)
	}
	// Unknown kids refetch at most once per KeyRefetchInterval.
	if n := f.iss.jwks.Load(); n != 2 {
		t.Fatalf("JWKS fetched %d times, want 2 (rate limit)", n)
	}
	f.iss.publish(rsaKey2(), ecKey1())
	if s := get(ecKey1()); s != 401 {
		t.Fatalf("ec1 within the refetch interval: %d, want 401", s)
	}
	f.clock.Advance(time.Minute)
	if s := get(ecKey1()); s != 200 {
		t.Fatalf("ec1 after the refetch interval: %d, want 200", s)
	}
	if n := f.iss.jwks.Load(); n != 3 {
		t.Fatalf("JWKS fetched %d times, want 3", n)
	}
}

func TestKeyCacheTTL(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.KeyCacheTTL = 10 * time.Minute })
	tok := f.token("storage.read:/data")
	for range 3 {
		f.do("GET", "/storage/vo/data/existing.txt", tok, "", nil)
	}
	f.clock.Advance(10 * time.Minute)
	tok = f.token("storage.read:/data")
	f.do("GET", "/storage/vo/data/existing.txt", tok, "", nil)
	if n := f.iss.jwks.Load(); n != 2 {
		t.Fatalf("JWKS fetched %d times, want 2 (one per TTL)", n)
	}
}

func TestIssuerDown(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.KeyRefetchInterval = time.Minute })
	f.iss.down.Store(true)
	tok := f.token("storage.read:/data")
	resp, body := f.do("GET", "/storage/vo/data/existing.txt", tok, "", nil)
	if resp.StatusCode != 503 || !strings.Contains(body, "HTTP 500") {
		t.Fatalf("issuer down: %d %q, want 503 naming HTTP 500", resp.StatusCode, body)
	}
	if strings.Contains(body, "maintenance") {
		t.Errorf("the answer echoes the issuer's error page: %q", body)
	}
	// No hammering: the next request within the interval does not fetch.
	f.do("GET", "/storage/vo/data/existing.txt", tok, "", nil)
	if n := f.iss.discovery.Load(); n != 1 {
		t.Fatalf("discovery fetched %d times, want 1", n)
	}
	f.iss.down.Store(false)
	f.clock.Advance(time.Minute)
	tok = f.token("storage.read:/data")
	if resp, _ := f.do("GET", "/storage/vo/data/existing.txt", tok, "", nil); resp.StatusCode != 200 {
		t.Fatalf("issuer back: %d", resp.StatusCode)
	}
	// Keys already known stay usable when a later refresh fails.
	f.iss.down.Store(true)
	f.clock.Advance(time.Hour)
	tok = f.token("storage.read:/data")
	if resp, _ := f.do("GET", "/storage/vo/data/existing.txt", tok, "", nil); resp.StatusCode != 200 {
		t.Fatalf("stale keys while the issuer is down: %d", resp.StatusCode)
	}
}

func TestIssuerHangsBounded(t *testing.T) {
	block := make(chan struct{})
	hang := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = hang.Serve(ln) }()
	t.Cleanup(func() { close(block); _ = hang.Close() })
	iss := "http://" + ln.Addr().String()

	srv, err := New(Options{Issuer: iss, Root: t.TempDir(), KeyFetchTimeout: 200 * time.Millisecond, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	c := jwt.MapClaims{"iss": iss, "sub": "s", "aud": AnyAudience, "exp": t0.Add(time.Hour).Unix(),
		"nbf": t0.Unix(), "scope": "storage.read:/"}
	req, _ := http.NewRequest("GET", "/x", nil)
	req.Header.Set("Authorization", "Bearer "+sign(t, rsaKey1(), c))
	rec := newRecorder()
	done := make(chan struct{})
	go func() { srv.ServeHTTP(rec, req); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("a hanging issuer hangs the storage")
	}
	if rec.status != 503 {
		t.Fatalf("status %d, want 503", rec.status)
	}
}

// recorder is a minimal ResponseWriter (httptest.ResponseRecorder without
// the deadline support, to exercise that path too).
type recorder struct {
	h      http.Header
	status int
	body   strings.Builder
}

func newRecorder() *recorder { return &recorder{h: http.Header{}} }

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = 200
	}
	return r.body.Write(b)
}

func TestConcurrentFirstRequestsFetchOnce(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.token("storage.read:/data")
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for range 16 {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", f.url+"/vo/data/existing.txt", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := testClient.Do(req)
			if err != nil {
				errs <- err.Error()
				return
			}
			_ = resp.Body.Close()
			if resp.StatusCode != 200 {
				errs <- fmt.Sprint(resp.StatusCode)
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if n := f.iss.jwks.Load(); n != 1 {
		t.Errorf("JWKS fetched %d times by 16 concurrent first requests, want 1", n)
	}
}

func TestBodyLimit(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.MaxBodyBytes = 10 })
	tok := f.token("storage.modify:/data")
	// Known length above the limit: refused before reading.
	resp, _ := f.do("PUT", "/storage/vo/data/existing.txt", tok, "0123456789A", nil)
	if resp.StatusCode != 413 {
		t.Fatalf("Content-Length above the limit: %d, want 413", resp.StatusCode)
	}
	// Chunked body above the limit: refused while reading; the old file stays.
	req, _ := http.NewRequest("PUT", f.url+"/vo/data/existing.txt", io.MultiReader(strings.NewReader("0123456789"), strings.NewReader("ABC")))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.ContentLength = -1
	r2, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = r2.Body.Close()
	if r2.StatusCode != 413 {
		t.Fatalf("chunked body above the limit: %d, want 413", r2.StatusCode)
	}
	if got, _ := f.read("vo/data/existing.txt"); got != "old" {
		t.Fatalf("existing.txt = %q after a refused upload, want old", got)
	}
	assertNoUploadTemps(t, f.root)
	// Exactly at the limit is fine.
	if resp, _ := f.do("PUT", "/storage/vo/data/existing.txt", tok, "0123456789", nil); resp.StatusCode != 204 {
		t.Fatalf("body at the limit: %d", resp.StatusCode)
	}
}

func assertNoUploadTemps(t *testing.T, root string) {
	t.Helper()
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && isUploadTemp(d.Name()) {
			t.Errorf("upload temporary left behind: %s", p)
		}
		return nil
	})
}

func TestInterruptedUploadKeepsOldFile(t *testing.T) {
	f := newFixture(t, nil)
	done := make(chan logLine, 1)
	f.mu.Lock()
	f.done = done
	f.mu.Unlock()
	tok := f.token("storage.modify:/data")
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(f.base, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := fmt.Fprintf(conn, "PUT /storage/vo/data/existing.txt HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 100\r\n\r\npartial", tok); err != nil {
		t.Fatal(err)
	}
	_ = conn.Close()
	select {
	case l := <-done:
		if l.status != 400 || l.sub != "alice-sub" {
			t.Errorf("log %+v, want status 400 for alice-sub", l)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the server did not finish the interrupted upload")
	}
	if got, _ := f.read("vo/data/existing.txt"); got != "old" {
		t.Fatalf("existing.txt = %q after an interrupted upload, want old", got)
	}
	assertNoUploadTemps(t, f.root)
}

func TestSymlinkCannotEscapeRoot(t *testing.T) {
	f := newFixture(t, nil)
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("top secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(f.root, "vo/data/link")); err != nil {
		t.Fatal(err)
	}
	tok := f.token("storage.modify:/data storage.read:/data")
	resp, body := f.do("GET", "/storage/vo/data/link/secret", tok, "", nil)
	if resp.StatusCode == 200 || strings.Contains(body, "top secret") {
		t.Fatalf("symlink escape: %d %q", resp.StatusCode, body)
	}
	resp, _ = f.do("PUT", "/storage/vo/data/link/planted", tok, "x", nil)
	if resp.StatusCode < 400 {
		t.Fatalf("PUT through a symlink out of the root: %d", resp.StatusCode)
	}
	if _, err := os.Stat(filepath.Join(outside, "planted")); err == nil {
		t.Fatal("file planted outside the root")
	}
}

func TestLog(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.token("storage.read:/data")
	f.do("GET", "/storage/vo/data/existing.txt", tok, "", nil)
	f.do("GET", "/storage/vo/secret/s.txt", tok, "", nil)
	f.do("GET", "/storage/vo/data/existing.txt", "", "", nil)
	want := []logLine{
		{"GET", "/storage/vo/data/existing.txt", 200, "alice-sub"},
		{"GET", "/storage/vo/secret/s.txt", 403, "alice-sub"},
		{"GET", "/storage/vo/data/existing.txt", 401, ""},
	}
	if got := f.logged(); !slices.Equal(got, want) {
		t.Fatalf("log %+v, want %+v", got, want)
	}
}

func TestPutCreatesAndOverwritesAtomically(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.token("storage.read:/data storage.modify:/data")
	resp, _ := f.do("PUT", "/storage/vo/data/new.txt", tok, "one", nil)
	if resp.StatusCode != 201 || resp.Header.Get("ETag") == "" {
		t.Fatalf("PUT new: %d ETag %q", resp.StatusCode, resp.Header.Get("ETag"))
	}
	resp, _ = f.do("PUT", "/storage/vo/data/new.txt", tok, "two", nil)
	if resp.StatusCode != 204 {
		t.Fatalf("PUT over: %d", resp.StatusCode)
	}
	if _, body := f.do("GET", "/storage/vo/data/new.txt", tok, "", nil); body != "two" {
		t.Fatalf("GET after overwrite: %q", body)
	}
	if resp, _ := f.do("PUT", "/storage/vo/data/sub", tok, "x", nil); resp.StatusCode != 405 {
		t.Fatalf("PUT onto a collection: %d, want 405", resp.StatusCode)
	}
	if resp, _ := f.do("PUT", "/storage/vo/data/existing.txt/below", tok, "x", nil); resp.StatusCode != 409 {
		t.Fatalf("PUT below a file: %d, want 409", resp.StatusCode)
	}
	if resp, _ := f.do("MKCOL", "/storage/vo/data/x/y", tok, "", nil); resp.StatusCode != 409 {
		t.Fatalf("MKCOL with a missing parent: %d, want 409 (RFC 4918)", resp.StatusCode)
	}
	assertNoUploadTemps(t, f.root)
}

func TestNewValidates(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ok := Options{Issuer: "https://iam.example", Root: dir}
	tests := []struct {
		name  string
		tweak func(*Options)
		field string
	}{
		{"no issuer", func(o *Options) { o.Issuer = "" }, "Issuer"},
		{"relative issuer", func(o *Options) { o.Issuer = "iam.example" }, "Issuer"},
		{"ftp issuer", func(o *Options) { o.Issuer = "ftp://iam.example" }, "Issuer"},
		{"issuer with query", func(o *Options) { o.Issuer = "https://iam.example/?a=b" }, "Issuer"},
		{"no root", func(o *Options) { o.Root = "" }, "Root"},
		{"missing root", func(o *Options) { o.Root = filepath.Join(dir, "nope") }, "Root"},
		{"root is a file", func(o *Options) { o.Root = file }, "Root"},
		{"relative base", func(o *Options) { o.BasePath = "vo" }, "BasePath"},
		{"relative prefix", func(o *Options) { o.Prefix = "storage" }, "Prefix"},
		{"empty audience", func(o *Options) { o.Audiences = []string{""} }, "Audiences"},
		{"quote in realm", func(o *Options) { o.Realm = `a"b` }, "Realm"},
		{"negative leeway", func(o *Options) { o.Leeway = -1 }, "negative"},
		{"negative body limit", func(o *Options) { o.MaxBodyBytes = -1 }, "negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := ok
			tc.tweak(&o)
			_, err := New(o)
			if err == nil {
				t.Fatal("New accepted bad options")
			}
			if !helper.IsKind(err, helper.KindConfig) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error %q (kind %v) does not name %s as config", err, helper.KindOf(err), tc.field)
			}
		})
	}
	if _, err := New(ok); err != nil {
		t.Fatalf("good options: %v", err)
	}
}

func TestMountedInMux(t *testing.T) {
	// The way the test bed mounts the storage next to the identity provider.
	f := newFixture(t, nil)
	mux := http.NewServeMux()
	mux.Handle("/storage/", f.srv)
	mux.HandleFunc("/other", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "idp") })
	ts := newLoopbackServer(t, mux)
	tok := f.token("storage.read:/data")
	client := &http.Client{Timeout: 10 * time.Second}
	for _, p := range []string{"/storage/vo/data/existing.txt", "/other"} {
		req, _ := http.NewRequestWithContext(context.Background(), "GET", ts+p, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != 200 || len(b) == 0 {
			t.Fatalf("GET %s: %d %q", p, resp.StatusCode, b)
		}
	}
}

// newLoopbackServer serves h on 127.0.0.1 and returns its base URL.
func newLoopbackServer(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

func TestHTTPSIssuer(t *testing.T) {
	iss := startTestIssuer(t, true, rsaKey1())
	mk := func(client *http.Client) *Server {
		srv, err := New(Options{Issuer: iss.URL(), HTTPClient: client, Root: t.TempDir(), Audiences: []string{"https://se.example"},
			Now: func() time.Time { return t0 }})
		if err != nil {
			t.Fatal(err)
		}
		return srv
	}
	c := jwt.MapClaims{"iss": iss.URL(), "sub": "s", "aud": "https://se.example", "exp": t0.Add(time.Hour).Unix(),
		"nbf": t0.Unix(), "scope": "storage.read:/"}
	tok := sign(t, rsaKey1(), c)
	serve := func(srv *Server) *recorder {
		req, _ := http.NewRequest("PROPFIND", "/", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := newRecorder()
		srv.ServeHTTP(rec, req)
		return rec
	}
	if rec := serve(mk(iss.srv.Client())); rec.status != 207 {
		t.Fatalf("client trusting the issuer's CA: %d %q", rec.status, rec.body.String())
	}
	rec := serve(mk(&http.Client{}))
	if rec.status != 503 || !strings.Contains(rec.body.String(), "certificate") {
		t.Fatalf("client not trusting the CA: %d %q, want 503 naming the certificate", rec.status, rec.body.String())
	}
	// An https issuer must not send us to an http jwks_uri.
	iss.mu.Lock()
	iss.metaOverride = map[string]any{"jwks_uri": "http://" + strings.TrimPrefix(iss.URL(), "https://") + "/jwk"}
	iss.mu.Unlock()
	if rec := serve(mk(iss.srv.Client())); rec.status != 503 || !strings.Contains(rec.body.String(), "not https") {
		t.Fatalf("http jwks_uri: %d %q", rec.status, rec.body.String())
	}
}

func TestBrokenIssuerMetadata(t *testing.T) {
	tests := []struct {
		name     string
		override map[string]any
		want     string
	}{
		{"other issuer", map[string]any{"issuer": "https://evil.example"}, "different issuer"},
		{"no jwks_uri", map[string]any{"jwks_uri": nil}, "jwks_uri"},
		{"relative jwks_uri", map[string]any{"jwks_uri": "/jwk"}, "jwks_uri"},
		{"jwks_uri not found", map[string]any{"jwks_uri": "{iss}/nope"}, "HTTP 404"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			for k, v := range tc.override {
				if s, ok := v.(string); ok {
					tc.override[k] = strings.ReplaceAll(s, "{iss}", f.iss.URL())
				}
			}
			f.iss.mu.Lock()
			f.iss.metaOverride = tc.override
			f.iss.mu.Unlock()
			resp, body := f.do("GET", "/storage/vo/data/existing.txt", f.token("storage.read:/"), "", nil)
			if resp.StatusCode != 503 || !strings.Contains(body, tc.want) || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("%d %q (Retry-After %q), want 503 naming %q", resp.StatusCode, body, resp.Header.Get("Retry-After"), tc.want)
			}
		})
	}
}

func TestRequestTimeout(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.RequestTimeout = 300 * time.Millisecond })
	done := make(chan logLine, 1)
	f.mu.Lock()
	f.done = done
	f.mu.Unlock()
	tok := f.token("storage.modify:/data")
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(f.base, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	// A client that stalls after a few bytes of its body.
	if _, err := fmt.Fprintf(conn, "PUT /storage/vo/data/existing.txt HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 100\r\n\r\nstall", tok); err != nil {
		t.Fatal(err)
	}
	select {
	case l := <-done:
		if l.status != http.StatusRequestTimeout {
			t.Errorf("log %+v, want status 408", l)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a stalled upload is not bounded by RequestTimeout")
	}
	if got, _ := f.read("vo/data/existing.txt"); got != "old" {
		t.Fatalf("existing.txt = %q after a stalled upload", got)
	}
	assertNoUploadTemps(t, f.root)
}
