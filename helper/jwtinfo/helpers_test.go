package jwtinfo

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var update = flag.Bool("update", false, "rewrite golden files and fuzz seed corpora under testdata/")

// now is the fixed clock of the tests: 11:08:36 CEST, like seed 000.
var now = time.Date(2026, 4, 23, 9, 8, 36, 0, time.UTC)

type testKeys struct {
	rsa, rsa2 *rsa.PrivateKey
	ec        *ecdsa.PrivateKey
	ed        ed25519.PrivateKey
}

var (
	keysOnce sync.Once
	keys     testKeys
)

// genKeys generates the test keys once per test binary.
func genKeys(t testing.TB) testKeys {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if keys.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if keys.rsa2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if keys.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if _, keys.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
	})
	return keys
}

// sign makes a JWS with method and key; kid "" leaves kid out; extra
// header fields are merged in.
func sign(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims, hdr map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	for k, v := range hdr {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("signing test token: %v", err)
	}
	return s
}

// unsigned builds a JWT-shaped string from raw JSON parts with a fake
// signature (for parse-only tests and fuzz seeds: deterministic).
func unsigned(header, payload string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(payload)) + "." + enc([]byte("not a real signature"))
}

func unix(t time.Time) int64 { return t.Unix() }

// wlcgClaims is a conformant WLCG token issued 8m17s before now, valid 1 h.
func wlcgClaims(iss string) jwt.MapClaims {
	iat := now.Add(-8*time.Minute - 17*time.Second)
	return jwt.MapClaims{
		"iss":      iss,
		"wlcg.ver": "1.0",
		"sub":      "abcdefgh-1234-5678-a1b2-cd3fg4hi5jK6",
		"aud":      "https://dcache.example.org:2880",
		"scope":    "storage.read:/ storage.modify:/users/alice openid",
		"iat":      unix(iat),
		"nbf":      unix(iat),
		"exp":      unix(iat.Add(time.Hour)),
		"jti":      "0b6d6c4e-8f5a-4d44-9b8e-2f1a7c3d9e01",
		"azp":      "1234z987-6789-987Y-ac65-78hv5c6w23bp",
	}
}

// golden compares got with testdata/<name>, rewriting it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run go test -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (rerun with -update after review)\n--- got:\n%s\n--- want:\n%s", path, got, want)
	}
}

// assertNoSecret fails when s contains the token or its signature.
func assertNoSecret(t *testing.T, where, s, token string) {
	t.Helper()
	if token == "" {
		return
	}
	if strings.Contains(s, token) {
		t.Errorf("%s contains the raw token", where)
	}
	if i := strings.LastIndexByte(token, '.'); i >= 0 && len(token)-i > 8 {
		if strings.Contains(s, token[i+1:]) {
			t.Errorf("%s contains the token's signature", where)
		}
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
