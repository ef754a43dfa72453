package file

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
)

func TestScopeCovers(t *testing.T) {
	for _, c := range []struct {
		have, want string
		ok         bool
	}{
		{"openid", "openid", true},
		{"storage.read:/", "storage.read:/data", true},
		{"storage.read:/data", "storage.read:/data/x", true},
		{"storage.read:/data", "storage.read:/data", true},
		{"storage.read:/data/", "storage.read:/data", true},
		{"storage.read:/data", "storage.read:/database", false},
		{"storage.read:/data", "storage.read:/", false},
		{"storage.modify:/", "storage.create:/x", true},
		{"storage.create:/", "storage.modify:/x", false},
		{"storage.stage:/", "storage.read:/x", true},
		{"storage.read:/", "storage.stage:/x", false},
		{"storage.read:/", "compute.read", false},
		{"compute.read", "compute.read", true},
		{"compute.read", "compute.modify", false},
	} {
		if got := ScopeCovers(c.have, c.want); got != c.ok {
			t.Errorf("ScopeCovers(%q, %q) = %v, want %v", c.have, c.want, got, c.ok)
		}
	}
}

func writeToken(t *testing.T, path string, exp time.Time, scope string, aud any, mode os.FileMode) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": "https://iam.example.org", "sub": "alice", "exp": exp.Unix(), "scope": scope, "aud": aud,
	}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(s+"\r\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestToken(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	tok := writeToken(t, good, now.Add(time.Hour), "storage.read:/data openid", "https://se.example.org", 0o600)
	open := filepath.Join(dir, "open")
	writeToken(t, open, now.Add(time.Hour), "openid", "x", 0o644)
	old := filepath.Join(dir, "old")
	writeToken(t, old, now.Add(-3*time.Minute), "openid", "x", 0o600)

	env := Env{Now: func() time.Time { return now }, TmpDir: dir}
	be := func(path string) *Backend { return New(&config.Profile{Name: "f", TokenFile: path}, env) }
	ctx := context.Background()

	got, err := be(good).Token(ctx, helper.Request{Profile: "f", MinValid: time.Minute, Scopes: []string{"storage.read:/data/sub"}, Audiences: []string{"https://se.example.org/"}})
	if err != nil {
		t.Fatal(err)
	}
	if got.AccessToken != tok || !got.Expiry.Equal(now.Add(time.Hour).Truncate(time.Second)) || got.Issuer != "https://iam.example.org" {
		t.Errorf("got %+v (expiry %v)", got, got.Expiry)
	}

	for name, c := range map[string]struct {
		path string
		req  helper.Request
		kind helper.Kind
	}{
		"group readable": {open, helper.Request{}, helper.KindUnsafe},
		"expired":        {old, helper.Request{}, helper.KindNoToken},
		"min-valid":      {good, helper.Request{MinValid: 2 * time.Hour}, helper.KindNoToken},
		"missing scope":  {good, helper.Request{Scopes: []string{"storage.modify:/data"}}, helper.KindNoToken},
		"wrong aud":      {good, helper.Request{Audiences: []string{"https://other.example.org"}}, helper.KindNoToken},
		"missing file":   {filepath.Join(dir, "nope"), helper.Request{}, helper.KindNoToken},
	} {
		_, err := be(c.path).Token(ctx, c.req)
		if !helper.IsKind(err, c.kind) {
			t.Errorf("%s: err = %v (kind %v), want kind %v", name, err, helper.KindOf(err), c.kind)
		}
		if err != nil && len(tok) > 20 && contains(err.Error(), tok[:20]) {
			t.Errorf("%s: error leaks the token", name)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
