package jwtinfo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/tokenhelper/tokenhelper/helper"
)

// parseSeeds are the committed seed corpus of FuzzParse
// (testdata/fuzz/FuzzParse/, written by go test -update).
func parseSeeds() map[string]string {
	iat := now.Add(-time.Minute).Unix()
	wlcg := fmt.Sprintf(`{"iss":"https://iam.example/","wlcg.ver":"1.0","sub":"s","aud":["https://a","https://b/"],`+
		`"scope":"storage.read:/ storage.modify compute.read:/x openid","wlcg.groups":["/cms","x"],`+
		`"iat":%d,"nbf":%d,"exp":%d.5,"jti":"j","azp":"c"}`, iat, iat, iat+3600)
	return map[string]string{
		"wlcg":          unsigned(`{"alg":"RS256","kid":"k","typ":"at+jwt"}`, wlcg),
		"garbage-types": unsigned(`{"alg":"none"}`, `{"iss":1,"exp":"x","iat":1e400,"nbf":-5,"aud":[1,{}],"scope":[2],"scp":7,"wlcg.ver":1.0,"wlcg.groups":{},"sub":"\u001b]0;x\u0007"}`),
		"opaque":        "4f1e7c2a9b8d4e6fa0b1c2d3e4f5a6b7==",
		"jwe":           unsigned(`{"alg":"dir","enc":"A128GCM"}`, "x") + ".aXY.dGFn",
		"truncated":     strings.Join(strings.Split(unsigned(`{"alg":"RS256"}`, `{"sub":"x"}`), ".")[:2], "."),
		"bearer-prefix": "Bearer abc.def.ghi",
		"whitespace":    " \t" + unsigned(`{"alg":"ES256"}`, `{}`) + "\r\n",
		"deep":          unsigned(`{"alg":"RS256"}`, `{"a":`+strings.Repeat("[", 100)+strings.Repeat("]", 100)+`}`),
		"huge-exp":      unsigned(`{"alg":"RS256"}`, `{"exp":253402300800,"iat":0,"nbf":253402300799}`),
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range parseSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		info, err := Parse(s)
		tok := strings.TrimFunc(s, isCSpace)
		if err != nil {
			var he *helper.Error
			if !errors.As(err, &he) || he.Msg == "" || strings.ContainsAny(he.Error(), "\n\r") {
				t.Fatalf("error %#v", err)
			}
			if len(tok) >= 16 && strings.Contains(err.Error(), tok) {
				t.Fatal("error echoes the token")
			}
			return
		}
		for _, n := range []time.Time{now, {}, time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)} {
			warns := Check(info, n)
			var buf bytes.Buffer
			if err := Render(&buf, info, warns, RenderOptions{Now: n, Location: time.UTC, Width: 60}); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			if len(tok) >= 16 && strings.Contains(out, tok) {
				t.Fatal("Render printed the token")
			}
			for _, r := range out {
				if r != '\n' && !unicode.IsPrint(r) {
					t.Fatalf("Render printed %U", r)
				}
			}
			b, err := JSON(info, warns, n)
			if err != nil {
				t.Fatalf("JSON: %v", err)
			}
			if !json.Valid(b) {
				t.Fatal("JSON is not valid JSON")
			}
		}
	})
}

// jwksSeeds are the committed seed corpus of FuzzParseJWKS.
func jwksSeeds(t testing.TB) map[string]string {
	k := genKeys(t)
	good := mustJSON(t, map[string]any{"keys": []any{jwkOf("rsa1", &k.rsa.PublicKey), jwkOf("ec1", &k.ec.PublicKey), jwkOf("ed1", k.ed.Public())}})
	return map[string]string{
		"good":     good,
		"empty":    `{"keys":[]}`,
		"no-keys":  `{}`,
		"odd-keys": `{"keys":[1,null,{"kty":"EC","crv":"P-256","x":"AA","y":"AA"},{"kty":"RSA","n":"AQAB","e":"AA"},{"kty":"OKP","crv":"X25519","x":"AA"},{"kty":"RSA","use":"enc"}]}`,
	}
}

func FuzzParseJWKS(f *testing.F) {
	for _, s := range jwksSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		keys, err := parseJWKS([]byte(s))
		if err != nil {
			return
		}
		for _, k := range keys {
			if (k.Key == nil) == (k.Why == "") {
				t.Fatalf("key %+v: exactly one of Key and Why must be set", k)
			}
			for _, alg := range []string{"RS256", "ES256", "EdDSA", "XX"} {
				selectKey(keys, k.KeyID, alg, "https://x/jwk")
			}
		}
		selectKey(keys, "", "RS256", "https://x/jwk")
	})
}

// TestFuzzSeeds keeps the committed seed corpora in step with the seed
// lists above (go test -update rewrites them).
func TestFuzzSeeds(t *testing.T) {
	for name, s := range parseSeeds() {
		golden(t, "fuzz/FuzzParse/"+name, []byte(fmt.Sprintf("go test fuzz v1\nstring(%q)\n", s)))
	}
	// The JWKS seeds hold random keys: written once under -update, then
	// kept (they only need to exist).
	for name, s := range jwksSeeds(t) {
		path := "fuzz/FuzzParseJWKS/" + name
		if _, err := os.Stat(filepath.Join("testdata", path)); err == nil || !*update {
			if err != nil {
				t.Errorf("seed %s is missing: run go test -update", path)
			}
			continue
		}
		golden(t, path, []byte(fmt.Sprintf("go test fuzz v1\nstring(%q)\n", s)))
	}
}
