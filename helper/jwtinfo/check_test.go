package jwtinfo

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	iat := now.Add(-10 * time.Minute)
	base := func() map[string]any {
		return map[string]any{
			"iss": "https://iam.example/", "wlcg.ver": "1.0", "sub": "s", "aud": "https://se.example:2880",
			"scope": "storage.read:/ openid", "iat": iat.Unix(), "nbf": iat.Unix(),
			"exp": iat.Add(time.Hour).Unix(), "jti": "j",
		}
	}
	hdr := map[string]any{"alg": "RS256", "kid": "k"}
	for _, c := range []struct {
		name   string
		mutate func(c, h map[string]any)
		want   []string
	}{
		{"conformant", func(c, h map[string]any) {}, nil},
		{"ES256 at+jwt without nbf", func(c, h map[string]any) { h["alg"], h["typ"] = "ES256", "at+jwt"; delete(c, "nbf") }, nil},
		{"application/at+jwt without nbf", func(c, h map[string]any) { h["typ"] = "application/at+JWT"; delete(c, "nbf") }, nil},
		{"no nbf", func(c, h map[string]any) { delete(c, "nbf") }, []string{CodeMissingNBF}},
		{"missing sub", func(c, h map[string]any) { delete(c, "sub") }, []string{CodeMissingClaim}},
		{"missing all", func(c, h map[string]any) {
			for _, k := range requiredClaims {
				delete(c, k)
			}
		}, []string{CodeMissingClaim}},
		{"null jti", func(c, h map[string]any) { c["jti"] = nil }, []string{CodeClaimType, CodeMissingClaim}},
		{"empty aud array", func(c, h map[string]any) { c["aud"] = []any{} }, []string{CodeMissingClaim}},
		{"aud any", func(c, h map[string]any) { c["aud"] = AnyAudience }, nil},
		{"aud trailing slash", func(c, h map[string]any) { c["aud"] = []any{"https://ok", "https://bad/"} }, []string{CodeAudTrailingSlash}},
		{"http iss", func(c, h map[string]any) { c["iss"] = "http://iam.example" }, []string{CodeIssuerNotHTTPS}},
		{"iss not a URL", func(c, h map[string]any) { c["iss"] = "iam.example" }, []string{CodeIssuerNotHTTPS}},
		{"wlcg.ver 2.0", func(c, h map[string]any) { c["wlcg.ver"] = "2.0" }, []string{CodeWLCGVersion}},
		{"wlcg.ver number", func(c, h map[string]any) { c["wlcg.ver"] = json.Number("1.0") }, []string{CodeWLCGVersion}},
		{"wlcg.ver bool", func(c, h map[string]any) { c["wlcg.ver"] = true }, []string{CodeClaimType}},
		{"no scope", func(c, h map[string]any) { delete(c, "scope") }, []string{CodeNoScope}},
		{"scp instead of scope", func(c, h map[string]any) { delete(c, "scope"); c["scp"] = []any{"storage.read:/"} }, nil},
		{"all good scopes", func(c, h map[string]any) {
			c["scope"] = "storage.read:/ storage.create:/a storage.modify:/a/b storage.stage:/ compute.read compute.modify compute.create compute.cancel offline_access"
		}, nil},
		{"storage without path", func(c, h map[string]any) { c["scope"] = "storage.modify" }, []string{CodeScopeSyntax}},
		{"storage relative path", func(c, h map[string]any) { c["scope"] = "storage.read:data" }, []string{CodeScopeSyntax}},
		{"storage empty path", func(c, h map[string]any) { c["scope"] = "storage.read:" }, []string{CodeScopeSyntax}},
		{"storage unknown", func(c, h map[string]any) { c["scope"] = "storage.write:/" }, []string{CodeScopeUnknown}},
		{"compute with path", func(c, h map[string]any) { c["scope"] = "compute.create:/x" }, []string{CodeScopeSyntax}},
		{"compute unknown", func(c, h map[string]any) { c["scope"] = "compute.delete" }, []string{CodeScopeUnknown}},
		{"group syntax", func(c, h map[string]any) { c["wlcg.groups"] = []any{"/ok", "bad"} }, []string{CodeGroupSyntax}},
		{"6h is allowed", func(c, h map[string]any) { c["exp"] = iat.Add(6 * time.Hour).Unix() }, nil},
		{"lifetime", func(c, h map[string]any) { c["exp"] = iat.Add(6*time.Hour + time.Second).Unix() }, []string{CodeLifetime}},
		{"lifetime from nbf", func(c, h map[string]any) { delete(c, "iat"); c["exp"] = iat.Add(72 * time.Hour).Unix() }, []string{CodeMissingClaim, CodeLifetime}},
		{"exp before iat", func(c, h map[string]any) { c["exp"] = iat.Add(-time.Second).Unix() }, []string{CodeExpired, CodeTimeOrder}},
		{"expired", func(c, h map[string]any) { c["exp"] = now.Unix() }, []string{CodeExpired}},
		{"not yet valid", func(c, h map[string]any) { c["nbf"] = now.Add(time.Second).Unix() }, []string{CodeNotYetValid}},
		{"iat within skew", func(c, h map[string]any) { c["iat"] = now.Add(time.Minute).Unix() }, nil},
		{"iat in future", func(c, h map[string]any) { c["iat"] = now.Add(2 * time.Minute).Unix() }, []string{CodeIssuedInFuture}},
		{"exp string", func(c, h map[string]any) { c["exp"] = "tomorrow" }, []string{CodeClaimType}},
		{"alg none", func(c, h map[string]any) { h["alg"] = "none" }, []string{CodeAlg}},
		{"alg HS256", func(c, h map[string]any) { h["alg"] = "HS256" }, []string{CodeAlg}},
		{"no alg", func(c, h map[string]any) { delete(h, "alg") }, []string{CodeAlg}},
		{"no kid", func(c, h map[string]any) { delete(h, "kid") }, []string{CodeMissingKID}},
	} {
		t.Run(c.name, func(t *testing.T) {
			claims, h := base(), maps(hdr)
			c.mutate(claims, h)
			info, err := Parse(unsigned(mustJSON(t, h), mustJSON(t, claims)))
			if err != nil {
				t.Fatal(err)
			}
			ws := Check(info, now)
			var got []string
			for _, w := range ws {
				if w.Msg == "" || strings.Contains(w.Msg, "\n") {
					t.Errorf("bad message %q", w.Msg)
				}
				got = append(got, w.Code)
			}
			got = slices.Compact(got)
			if !slices.Equal(got, c.want) {
				t.Errorf("codes %q, want %q\n%v", got, c.want, ws)
			}
		})
	}
}

func maps(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestCheckNonJWT(t *testing.T) {
	for _, c := range []struct {
		info *Info
		code string
	}{
		{nil, CodeOpaque},
		{&Info{Format: FormatOpaque}, CodeOpaque},
		{&Info{}, CodeOpaque},
		{&Info{Format: FormatJWE}, CodeEncrypted},
	} {
		ws := Check(c.info, now)
		if len(ws) != 1 || ws[0].Code != c.code {
			t.Errorf("Check(%v) = %v, want one %q warning", c.info, ws, c.code)
		}
	}
}

func TestMissingClaimMessage(t *testing.T) {
	info, err := Parse(unsigned(`{"alg":"RS256","kid":"k"}`, `{"iss":"https://x","nbf":1,"scope":"openid"}`))
	if err != nil {
		t.Fatal(err)
	}
	ws := Check(info, now)
	if len(ws) == 0 || ws[0].Code != CodeMissingClaim {
		t.Fatalf("got %v", ws)
	}
	want := "missing claim(s) the WLCG profile requires: sub, exp, wlcg.ver, aud, iat, jti; without wlcg.ver this is not a WLCG profile token, and WLCG storage may refuse it"
	if ws[0].Msg != want {
		t.Errorf("message\n got %q\nwant %q", ws[0].Msg, want)
	}
}
