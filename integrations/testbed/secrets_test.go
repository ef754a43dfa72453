package testbed_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokenhelper/tokenhelper/integrations/testbed"
)

// recorded collects what RecordSecret receives.
type recorded struct {
	mu  sync.Mutex
	all map[testbed.SecretKind][]string
}

func (r *recorded) add(k testbed.SecretKind, v string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.all == nil {
		r.all = map[testbed.SecretKind][]string{}
	}
	r.all[k] = append(r.all[k], v)
}

func (r *recorded) has(k testbed.SecretKind, v string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return v != "" && slices.Contains(r.all[k], v)
}

// Every secret a client can get from the test bed is recorded: passwords,
// client secrets, registration access tokens, device codes, access, ID and
// refresh tokens (device flow, refresh, minted directly).
func TestRecordSecret(t *testing.T) {
	t.Parallel()
	var rec recorded
	tb := testbed.Start(t, fast(testbed.Options{RecordSecret: rec.add}))
	if !rec.has(testbed.SecretPassword, "alice-password") || !rec.has(testbed.SecretPassword, "bob-password") {
		t.Error("demo users' passwords not recorded")
	}

	client := confidential(t, tb, testbed.ClientSpec{})
	if !rec.has(testbed.SecretClientSecret, client.Secret) {
		t.Error("client secret not recorded")
	}

	// Dynamic registration: secret and registration access token.
	req, _ := http.NewRequest(http.MethodPost, tb.RegistrationURL(), strings.NewReader(`{"client_name":"x","grant_types":["refresh_token","urn:ietf:params:oauth:grant-type:device_code"]}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := tb.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var reg map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&reg); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !rec.has(testbed.SecretClientSecret, str(reg["client_secret"])) || !rec.has(testbed.SecretRegistrationToken, str(reg["registration_access_token"])) {
		t.Errorf("dynamic registration secrets not recorded: %v", reg["client_id"])
	}

	conf := oauthConfig(tb, client, "openid", "offline_access", "storage.read:/")
	ctx := oauthCtx(t, tb)
	da, err := conf.DeviceAuth(ctx, oauth2SetSecret(client.Secret))
	if err != nil {
		t.Fatal(err)
	}
	if !rec.has(testbed.SecretDeviceCode, da.DeviceCode) {
		t.Error("device code not recorded")
	}
	if err := tb.ApproveDevice(da.UserCode, "alice"); err != nil {
		t.Fatal(err)
	}
	tok, err := conf.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatal(err)
	}
	idToken, _ := tok.Extra("id_token").(string)
	if !rec.has(testbed.SecretAccessToken, tok.AccessToken) || !rec.has(testbed.SecretRefreshToken, tok.RefreshToken) || !rec.has(testbed.SecretIDToken, idToken) {
		t.Errorf("device-flow tokens not recorded (id token present: %v)", idToken != "")
	}
	refreshed, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Minute)}).Token()
	if err != nil {
		t.Fatal(err)
	}
	if !rec.has(testbed.SecretAccessToken, refreshed.AccessToken) || !rec.has(testbed.SecretRefreshToken, refreshed.RefreshToken) {
		t.Error("refreshed tokens not recorded")
	}

	minted, err := tb.IssueToken("bob", []string{"storage.read:/public"}, nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := tb.RefreshTokenFor("alice", client.ID, []string{"openid"})
	if err != nil {
		t.Fatal(err)
	}
	if !rec.has(testbed.SecretAccessToken, minted) || !rec.has(testbed.SecretRefreshToken, rt) {
		t.Error("directly minted tokens not recorded")
	}
}

// Without Options.RecordSecret, $TOKENHELPER_TESTBED_SECRETS names a file
// (0600) that every test bed appends to, one KIND<TAB>VALUE line each.
func TestRecordSecretsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets")
	t.Setenv(testbed.EnvRecordSecrets, path)
	tb1 := testbed.Start(t, testbed.Options{Users: []testbed.User{{Name: "carol", Password: "pass\twith tab"}}})
	tb2 := testbed.Start(t, testbed.Options{})
	tok1, err := tb1.IssueToken("carol", nil, nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	tok2, err := tb2.IssueToken("alice", nil, nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	tb1.Close()
	tb2.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	for _, want := range []string{
		"access_token\t" + tok1 + "\n", "access_token\t" + tok2 + "\n",
		"password\tpass\\twith tab\n", "password\talice-password\n",
	} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("%s lacks %q", path, want)
		}
	}
	for i, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if strings.Count(line, "\t") != 1 {
			t.Errorf("line %d is not KIND<TAB>VALUE: %q", i+1, line)
		}
	}
}
