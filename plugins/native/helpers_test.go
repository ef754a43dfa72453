package native_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/helper/secret"
	"github.com/tokenhelper/tokenhelper/integrations/testbed"
	"github.com/tokenhelper/tokenhelper/plugins/native"
)

// testPass is the passphrase of every test profile.
const testPass = "correct horse battery staple"

// testScopes are asked for at login.
var testScopes = []string{"openid", "offline_access", "wlcg.groups", "storage.read:/", "storage.create:/", "storage.modify:/home/alice"}

// fakeUI is a person at a terminal (or not): output captured, answers
// to prompts queued.
type fakeUI struct {
	mu       sync.Mutex
	out      bytes.Buffer
	terminal bool
	now      func() time.Time
	secrets  []string
	lines    []string
	prompts  []string
}

func (u *fakeUI) Out() io.Writer { return lockedWriter{u} }
func (u *fakeUI) Terminal() bool { return u.terminal }
func (u *fakeUI) Now() time.Time { return u.now() }
func (u *fakeUI) Output() string { u.mu.Lock(); defer u.mu.Unlock(); return u.out.String() }
func (u *fakeUI) Prompts() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return strings.Join(u.prompts, "\n")
}

func (u *fakeUI) reset() { u.mu.Lock(); defer u.mu.Unlock(); u.out.Reset(); u.prompts = nil }

func (u *fakeUI) Secret(prompt string) (string, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.prompts = append(u.prompts, prompt)
	if !u.terminal {
		return "", &helper.Error{Kind: helper.KindLoginNeeded, Msg: "no terminal"}
	}
	if len(u.secrets) == 0 {
		return "", fmt.Errorf("unexpected secret prompt %q", prompt)
	}
	s := u.secrets[0]
	u.secrets = u.secrets[1:]
	return s, nil
}

func (u *fakeUI) Line(prompt string) (string, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.prompts = append(u.prompts, prompt)
	if len(u.lines) == 0 {
		return "", fmt.Errorf("unexpected prompt %q", prompt)
	}
	s := u.lines[0]
	u.lines = u.lines[1:]
	return s, nil
}

type lockedWriter struct{ u *fakeUI }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.u.mu.Lock()
	defer w.u.mu.Unlock()
	return w.u.out.Write(p)
}

// env is one test's world: a test bed on a frozen clock, private
// directories, a fake person, an in-memory unlock cache.
type env struct {
	t     *testing.T
	tb    *testbed.Testbed
	clock *testbed.Clock
	dirs  config.Dirs
	ui    *fakeUI
	cache *secret.MemoryCache
	p     *config.Profile

	// onSleep runs after each Sleep of the backend with the time slept
	// since the backend was built (device-flow scripts approve here).
	onSleep func(elapsed time.Duration)
	slept   time.Duration
	sleeps  int
}

var clockStart = time.Date(2026, 11, 5, 9, 0, 0, 0, time.UTC)

func newEnv(t *testing.T, opts testbed.Options) *env {
	t.Helper()
	clock := testbed.NewClock(clockStart)
	opts.Clock = clock
	tb := testbed.Start(t, opts)
	root := t.TempDir()
	e := &env{
		t: t, tb: tb, clock: clock,
		dirs: config.Dirs{
			Home:       root,
			ConfigFile: filepath.Join(root, "config", "tokenhelper", "config.toml"),
			CacheDir:   filepath.Join(root, "cache", "tokenhelper"),
			StateDir:   filepath.Join(root, "state", "tokenhelper"),
		},
		ui:    &fakeUI{now: clock.Now},
		cache: secret.NewMemoryCache(clock),
		p: &config.Profile{
			Name: "tb", Backend: config.BackendNative, Issuer: tb.IssuerURL, CAFile: tb.CAFile,
			Scopes: testScopes, PassphraseEnv: "TEST_PASS",
		},
	}
	return e
}

func (e *env) lookupEnv(k string) (string, bool) {
	if k == "TEST_PASS" {
		return testPass, true
	}
	return "", false
}

// backend builds the native backend for e.p with fast scrypt.
func (e *env) backend(mods ...func(*native.Options)) *native.Backend {
	e.t.Helper()
	o := native.Options{
		Dirs:        e.dirs,
		Now:         e.clock.Now,
		Sleep:       e.sleep,
		LookupEnv:   e.lookupEnv,
		UI:          e.ui,
		HTTPClient:  e.tb.HTTPClient(),
		UnlockCache: e.cache,
		KeyOptions:  secret.KeyOptions{WorkFactor: 10},
		Headless:    true,
	}
	for _, m := range mods {
		m(&o)
	}
	b, err := native.New(e.p, o)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func (e *env) sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e.clock.Advance(d)
	e.slept += d
	e.sleeps++
	if e.onSleep != nil {
		e.onSleep(e.slept)
	}
	return ctx.Err()
}

// approveAt makes the first pending device request approved by alice once
// the backend has slept at least after.
func (e *env) approveAt(after time.Duration) {
	done := false
	e.onSleep = func(elapsed time.Duration) {
		if done || elapsed < after {
			return
		}
		if p := e.tb.PendingDevices(); len(p) > 0 {
			if err := e.tb.ApproveDevice(p[0].UserCode, "alice"); err != nil {
				e.t.Errorf("approve: %v", err)
			}
			done = true
		}
	}
}

func (e *env) denyAt(after time.Duration) {
	done := false
	e.onSleep = func(elapsed time.Duration) {
		if done || elapsed < after {
			return
		}
		if p := e.tb.PendingDevices(); len(p) > 0 {
			if err := e.tb.DenyDevice(p[0].UserCode); err != nil {
				e.t.Errorf("deny: %v", err)
			}
			done = true
		}
	}
}

func (e *env) request() helper.Request {
	return helper.Request{Profile: e.p.Name, Scopes: e.p.Scopes, Audiences: e.p.Audiences, MinValid: time.Minute}.Normalized()
}

// register registers e.p dynamically and logs in (device flow approved
// after the first poll).
func (e *env) register() *helper.Token {
	e.t.Helper()
	e.approveAt(time.Second)
	tok, err := e.backend().Register(context.Background(), native.Registration{}, e.request())
	if err != nil {
		e.t.Fatalf("register: %v\n%s", err, e.ui.Output())
	}
	e.onSleep = nil
	return tok
}

func (e *env) accountPath() string {
	return filepath.Join(e.dirs.StateDir, "profiles", e.p.Name, "account.json")
}

func (e *env) keyPath() string {
	return filepath.Join(e.dirs.StateDir, "profiles", e.p.Name, "key.json")
}

// account reads account.json as a generic map.
func (e *env) account() map[string]any {
	e.t.Helper()
	b, err := os.ReadFile(e.accountPath())
	if err != nil {
		e.t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		e.t.Fatal(err)
	}
	return m
}

// secretOf decrypts one stored secret ("refresh_token", "client_secret",
// "registration_access_token"); "" when absent.
func (e *env) secretOf(name string) string {
	e.t.Helper()
	return storedSecret(e.t, e.accountPath(), e.keyPath(), name)
}

func storedSecret(t testing.TB, accountPath, keyPath, name string) string {
	t.Helper()
	b, err := os.ReadFile(accountPath)
	if err != nil {
		t.Fatal(err)
	}
	var a struct {
		Secrets map[string][]byte `json:"secrets"`
	}
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	sealed := a.Secrets[name]
	if len(sealed) == 0 {
		return ""
	}
	id, err := secret.Key{Path: keyPath}.Unlock(testPass, secret.KeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := id.Open(sealed)
	if err != nil {
		t.Fatal(err)
	}
	return string(plain)
}

// introspectors holds, per test bed, a client for introspection (the
// test bed introspects any token for any authenticated client).
var introspectors sync.Map

// introspect asks the test bed whether token is active (clientID is the
// client it was issued to; documentation only).
func introspect(t testing.TB, tb *testbed.Testbed, clientID, token string) bool {
	t.Helper()
	v, ok := introspectors.Load(tb)
	if !ok {
		spec, err := tb.RegisterClient(testbed.ClientSpec{Name: "introspector", Grants: []string{"client_credentials"}})
		if err != nil {
			t.Fatal(err)
		}
		v, _ = introspectors.LoadOrStore(tb, spec)
	}
	spec := v.(testbed.ClientSpec)
	req, _ := http.NewRequest(http.MethodPost, tb.IntrospectionURL(), strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(spec.ID), url.QueryEscape(spec.Secret))
	resp, err := tb.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Active bool `json:"active"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("introspection: %v", err)
	}
	return out.Active
}

// claims decodes a JWT's payload without verification.
func claims(t testing.TB, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT")
	}
	b, err := base64URL(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func wantKind(t testing.TB, err error, k helper.Kind) *helper.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want kind %v", k)
	}
	if got := helper.KindOf(err); got != k {
		t.Fatalf("error kind %v, want %v: %v", got, k, err)
	}
	var he *helper.Error
	if !errors.As(err, &he) {
		t.Fatalf("not a *helper.Error: %v", err)
	}
	return he
}

func base64URL(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
