package rig

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tokenhelper/tokenhelper/helper/secret"
	"github.com/tokenhelper/tokenhelper/integrations/testbed"
)

// secretLog collects what the rig's test bed issues.
type secretLog struct {
	mu  sync.Mutex
	all map[string]testbed.SecretKind
}

func (s *secretLog) add(k testbed.SecretKind, v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.all == nil {
		s.all = map[string]testbed.SecretKind{}
	}
	s.all[v] = k
}

// Secrets returns every secret the rig's test bed has issued (tokens,
// client secrets, registration tokens, device codes, passwords) and the
// profile's passphrase, with their kind.
func (r *Rig) Secrets() map[string]testbed.SecretKind {
	r.secrets.mu.Lock()
	defer r.secrets.mu.Unlock()
	out := make(map[string]testbed.SecretKind, len(r.secrets.all)+1)
	for v, k := range r.secrets.all {
		out[v] = k
	}
	if r.Passphrase != "" {
		out[r.Passphrase] = "passphrase"
	}
	return out
}

// Leaks returns the kinds of the secrets found in s (empty: none). Only
// secrets of 8 characters or more are searched (user codes and short
// demo values would match by chance).
func (r *Rig) Leaks(s string) []string {
	var out []string
	for v, k := range r.Secrets() {
		if len(v) >= 8 && strings.Contains(s, v) {
			out = append(out, string(k))
		}
	}
	return out
}

// ProfileDir is the native profile's state directory.
func (r *Rig) ProfileDir() string { return filepath.Join(r.StateDir, "profiles", Profile) }

// StoredSecret decrypts one secret of the native profile's state
// (refresh_token, client_secret, registration_access_token): "" when
// absent. It fails the test when the state cannot be read: unusable
// state is what the campaign looks for.
func (r *Rig) StoredSecret(name string) (string, error) {
	return r.SecretIn(filepath.Join(r.ProfileDir(), "account.json"), name)
}

// SecretIn decrypts one secret of an account file (account.json, or a
// temporary file an interrupted write left) with the profile's key.
func (r *Rig) SecretIn(accountFile, name string) (string, error) {
	b, err := os.ReadFile(accountFile)
	if err != nil {
		return "", err
	}
	var a struct {
		ClientID string            `json:"client_id"`
		Secrets  map[string][]byte `json:"secrets"`
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return "", err
	}
	sealed := a.Secrets[name]
	if len(sealed) == 0 {
		return "", nil
	}
	id, err := secret.Key{Path: filepath.Join(r.ProfileDir(), "key.json"), Profile: Profile}.Unlock(r.Passphrase, secret.KeyOptions{})
	if err != nil {
		return "", err
	}
	plain, err := id.Open(sealed)
	return string(plain), err
}

// ClientID is the native profile's client (from its state).
func (r *Rig) ClientID() string {
	b, err := os.ReadFile(filepath.Join(r.ProfileDir(), "account.json"))
	if err != nil {
		return ""
	}
	var a struct {
		ClientID string `json:"client_id"`
	}
	if json.Unmarshal(b, &a) != nil {
		return ""
	}
	return a.ClientID
}

// Active asks the test bed (RFC 7662 introspection, with a client of its
// own) whether a token is active: a refresh token that was rotated or
// revoked is not.
func (r *Rig) Active(token string) bool {
	r.t.Helper()
	r.introOnce.Do(func() {
		spec, err := r.TB.RegisterClient(testbed.ClientSpec{Name: "introspector", Grants: []string{"client_credentials"}})
		if err != nil {
			r.t.Fatal(err)
		}
		r.intro = spec
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.TB.IntrospectionURL(), strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		r.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(r.intro.ID), url.QueryEscape(r.intro.Secret))
	resp, err := r.TB.HTTPClient().Do(req)
	if err != nil {
		r.t.Fatalf("introspection: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		Active bool `json:"active"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		r.t.Fatalf("introspection: %v", err)
	}
	return out.Active
}
