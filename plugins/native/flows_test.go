package native_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
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

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it)\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

// normalize replaces what changes from run to run.
func (e *env) normalize(s string) string {
	s = strings.ReplaceAll(s, e.tb.IssuerURL, "ISSUER")
	s = strings.ReplaceAll(s, e.dirs.StateDir, "STATE")
	s = regexp.MustCompile(`client-[A-Za-z0-9_-]{16}`).ReplaceAllString(s, "CLIENT")
	s = regexp.MustCompile(`\b[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}\b`).ReplaceAllString(s, "CODE")
	return s
}

func TestRegisterDeviceFlowHeadless(t *testing.T) {
	e := newEnv(t, testbed.Options{HTTPS: true, Lifetimes: testbed.Lifetimes{PollInterval: time.Second}})
	tok := e.register()

	c := e.tb.Counters()
	if c.Endpoint(testbed.EndpointRegistration) != 1 || c.Endpoint(testbed.EndpointDeviceAuthorization) != 1 {
		t.Errorf("registration %d, device authorization %d requests; want 1 and 1", c.Endpoint(testbed.EndpointRegistration), c.Endpoint(testbed.EndpointDeviceAuthorization))
	}
	if n := c.Grant(testbed.GrantDeviceCode); n != 1 {
		t.Errorf("%d device-code polls, want 1 (approved before the first)", n)
	}
	golden(t, "register_headless.golden", e.normalize(e.ui.Output()))

	cl := claims(t, tok.AccessToken)
	if !strings.Contains(cl["scope"].(string), "storage.modify:/home/alice") {
		t.Errorf("scope claim %q", cl["scope"])
	}
	if tok.Source != native.Source || tok.Profile != "tb" || !tok.Expiry.Equal(clockStart.Add(time.Second+20*time.Minute)) {
		t.Errorf("token %+v (expiry %v)", tok, tok.Expiry)
	}
	// State: private, and the refresh token is live at the provider.
	for _, p := range []string{e.accountPath(), e.keyPath()} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", p, fi.Mode(), err)
		}
	}
	if fi, err := os.Stat(filepath.Dir(e.accountPath())); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir: %v %v", fi.Mode(), err)
	}
	acct := e.account()
	if acct["client_auth"] != "client_secret_basic" || acct["dynamic"] != true {
		t.Errorf("account %v", acct)
	}
	raw, _ := os.ReadFile(e.accountPath())
	rt := e.secretOf("refresh_token")
	cs := e.secretOf("client_secret")
	if rt == "" || cs == "" || bytes.Contains(raw, []byte(rt)) || bytes.Contains(raw, []byte(cs)) {
		t.Fatalf("secrets not stored sealed")
	}
	if !introspect(t, e.tb, acct["client_id"].(string), rt) {
		t.Error("stored refresh token is not active")
	}
	info, err := e.backend().Account()
	if err != nil || info == nil || info.Username != "alice" || !info.LoggedIn {
		t.Errorf("Account() = %+v, %v", info, err)
	}
}

func TestDeviceFlowOutcomes(t *testing.T) {
	type tc struct {
		name    string
		setup   func(e *env)
		cancel  bool
		kind    helper.Kind // 0: success
		polls   int
		elapsed time.Duration
		output  []string
	}
	cases := []tc{
		{name: "approved after pending polls", setup: func(e *env) { e.approveAt(7 * time.Second) },
			polls: 2, elapsed: 10 * time.Second, output: []string{"Approved."}},
		{name: "slow_down adds 5s to every later poll", setup: func(e *env) {
			e.inject(testbed.EndpointToken, testbed.OAuthError("slow_down").Once().ForGrant(testbed.GrantDeviceCode))
			e.approveAt(21 * time.Second)
		}, polls: 3, elapsed: 25 * time.Second, output: []string{"now every 10s", "Approved."}},
		{name: "denied", setup: func(e *env) { e.denyAt(time.Second) }, kind: helper.KindDenied, polls: 1,
			output: []string{"Waiting for approval"}},
		{name: "expired_token from the provider", setup: func(e *env) {
			e.inject(testbed.EndpointToken, testbed.OAuthError("expired_token").Once().ForGrant(testbed.GrantDeviceCode))
		}, kind: helper.KindLoginNeeded, polls: 1},
		{name: "code expires without approval", setup: func(e *env) {
			e.tb.SetLifetimes(testbed.Lifetimes{DeviceCode: time.Minute, PollInterval: 5 * time.Second})
		}, kind: helper.KindLoginNeeded, polls: 11, elapsed: time.Minute},
		{name: "transient failures are retried", setup: func(e *env) {
			e.inject(testbed.EndpointToken, testbed.Status(503).Times(2).ForGrant(testbed.GrantDeviceCode))
			e.approveAt(time.Second)
		}, polls: 3, elapsed: 15 * time.Second, output: []string{"No answer from the provider", "Approved."}},
		{name: "provider down", setup: func(e *env) {
			e.inject(testbed.EndpointToken, testbed.Status(503).ForGrant(testbed.GrantDeviceCode))
		}, kind: helper.KindUnavailable, polls: 5},
		{name: "interrupted", cancel: true, polls: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, testbed.Options{})
			if _, err := e.backend().Register(context.Background(), native.Registration{NoLogin: true}, e.request()); err != nil {
				t.Fatal(err)
			}
			e.tb.ResetCounters()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if c.setup != nil {
				c.setup(e)
			}
			if c.cancel {
				e.onSleep = func(elapsed time.Duration) {
					if elapsed > 6*time.Second {
						cancel()
					}
				}
			}
			start := e.clock.Now()
			tok, err := e.backend().Login(ctx, helper.LoginRequest{Request: e.request(), Flow: config.FlowDevice})
			switch {
			case c.cancel:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("err %v, want context.Canceled", err)
				}
			case c.kind == 0:
				if err != nil {
					t.Fatalf("login: %v\n%s", err, e.ui.Output())
				}
				if tok == nil || tok.AccessToken == "" {
					t.Fatal("no token")
				}
				if e.secretOf("refresh_token") == "" {
					t.Error("no refresh token stored")
				}
			default:
				_ = wantKind(t, err, c.kind)
				if e.secretOf("refresh_token") != "" {
					t.Error("a refresh token was stored after a failed login")
				}
			}
			if n := e.tb.Counters().Grant(testbed.GrantDeviceCode); n != c.polls {
				t.Errorf("%d polls, want %d", n, c.polls)
			}
			if c.elapsed != 0 {
				if got := e.clock.Now().Sub(start); got != c.elapsed {
					t.Errorf("took %v on the clock, want %v", got, c.elapsed)
				}
			}
			out := e.ui.Output()
			for _, w := range c.output {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if err != nil && c.kind != 0 {
				if s := err.Error(); strings.Contains(s, e.secretOf("client_secret")) {
					t.Error("error shows the client secret")
				}
			}
		})
	}
}

func (e *env) inject(ep testbed.Endpoint, f testbed.Fault) {
	e.t.Helper()
	if err := e.tb.Inject(ep, f); err != nil {
		e.t.Fatal(err)
	}
}

// On a terminal: the QR code of the complete URI and a countdown redrawn
// in place every second.
func TestDeviceFlowTerminal(t *testing.T) {
	e := newEnv(t, testbed.Options{})
	if _, err := e.backend().Register(context.Background(), native.Registration{NoLogin: true}, e.request()); err != nil {
		t.Fatal(err)
	}
	e.ui.terminal = true
	e.approveAt(7 * time.Second)
	if _, err := e.backend(func(o *native.Options) { o.Headless = false }).Login(context.Background(), helper.LoginRequest{Request: e.request(), Flow: config.FlowDevice}); err != nil {
		t.Fatal(err)
	}
	out := e.ui.Output()
	for _, w := range []string{
		"or scan this QR code", "█", "▀",
		"\r\x1b[KWaiting for approval... the code expires in 10m0s",
		"\r\x1b[KWaiting for approval... the code expires in 9m51s",
		"\r\x1b[KApproved.\n",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q", w)
		}
	}
	if n := strings.Count(out, "\r\x1b[KWaiting"); n != 10 {
		t.Errorf("countdown drawn %d times, want 10 (once a second until the approved poll)", n)
	}
}

func TestRefreshRotatesAndDownscopes(t *testing.T) {
	e := newEnv(t, testbed.Options{Storage: true})
	e.register()
	clientID := e.account()["client_id"].(string)
	be := e.backend()
	ctx := context.Background()

	rt0 := e.secretOf("refresh_token")
	e.tb.ResetCounters()
	tok, err := be.Token(ctx, e.request())
	if err != nil {
		t.Fatal(err)
	}
	rt1 := e.secretOf("refresh_token")
	if rt1 == rt0 || introspect(t, e.tb, clientID, rt0) || !introspect(t, e.tb, clientID, rt1) {
		t.Fatal("the rotated refresh token was not stored")
	}
	if s := claims(t, tok.AccessToken)["scope"].(string); !strings.Contains(s, "storage.create:/") {
		t.Errorf("default token scope %q", s)
	}

	aud := e.tb.StorageOrigin()
	down := helper.Request{Profile: "tb", Scopes: []string{"storage.read:/home/alice"}, Audiences: []string{aud}}.Normalized()
	tok, err = be.Token(ctx, down)
	if err != nil {
		t.Fatal(err)
	}
	cl := claims(t, tok.AccessToken)
	if cl["scope"] != "storage.read:/home/alice" || cl["aud"] != aud {
		t.Errorf("down-scoped token: scope %v aud %v", cl["scope"], cl["aud"])
	}
	if strings.Join(tok.Scopes, " ") != "storage.read:/home/alice" || strings.Join(tok.Audiences, " ") != aud {
		t.Errorf("token scopes %v audiences %v", tok.Scopes, tok.Audiences)
	}
	if n := e.tb.Counters().Grant(testbed.GrantRefreshToken); n != 2 {
		t.Errorf("%d refreshes, want 2", n)
	}

	// Up-scoping is refused; the session survives.
	rt2 := e.secretOf("refresh_token")
	_, err = be.Token(ctx, helper.Request{Profile: "tb", Scopes: []string{"storage.modify:/"}})
	he := wantKind(t, err, helper.KindDenied)
	if !strings.Contains(he.Msg, "storage.modify:/") || !strings.Contains(he.Fix, "storage.read:/") {
		t.Errorf("error %q", he.Error())
	}
	if e.secretOf("refresh_token") != rt2 || !introspect(t, e.tb, clientID, rt2) {
		t.Error("a refused down-scoping lost the session")
	}
}

func TestSessionExpired(t *testing.T) {
	e := newEnv(t, testbed.Options{})
	e.register()
	e.clock.Advance(31 * 24 * time.Hour) // refresh tokens live 30 days
	be := e.backend()
	_, err := be.Token(context.Background(), e.request())
	he := wantKind(t, err, helper.KindLoginNeeded)
	if !strings.HasPrefix(he.Msg, "session expired") || he.Fix != "run: tokenhelper login -p tb" {
		t.Errorf("error %q", he.Error())
	}
	if e.secretOf("refresh_token") != "" {
		t.Error("the dead refresh token was kept")
	}
	// Later calls fail at once, without asking the provider.
	before := e.tb.Counters().Endpoint(testbed.EndpointToken)
	_, err = be.Token(context.Background(), e.request())
	_ = wantKind(t, err, helper.KindLoginNeeded)
	if after := e.tb.Counters().Endpoint(testbed.EndpointToken); after != before {
		t.Errorf("%d token requests after the session ended", after-before)
	}
	st, _ := be.Status(context.Background())
	if st.OK || !strings.Contains(strings.Join(st.Lines, "\n"), "session expired") {
		t.Errorf("status %+v", st)
	}
	// login (no flow named) goes to the device flow.
	e.approveAt(time.Second)
	if _, err := be.Login(context.Background(), helper.LoginRequest{Request: e.request()}); err != nil {
		t.Fatalf("login: %v", err)
	}
	if _, err := be.Token(context.Background(), e.request()); err != nil {
		t.Fatalf("token after login: %v", err)
	}
}

func TestLoginRefreshesFirst(t *testing.T) {
	e := newEnv(t, testbed.Options{})
	e.register()
	e.tb.ResetCounters()
	if _, err := e.backend(func(o *native.Options) { o.Headless = false }).Login(context.Background(), helper.LoginRequest{Request: e.request()}); err != nil {
		t.Fatal(err)
	}
	c := e.tb.Counters()
	if c.Grant(testbed.GrantRefreshToken) != 1 || c.Endpoint(testbed.EndpointDeviceAuthorization) != 0 {
		t.Errorf("login did %d refreshes, %d device authorizations; want 1, 0", c.Grant(testbed.GrantRefreshToken), c.Endpoint(testbed.EndpointDeviceAuthorization))
	}
	if !strings.Contains(e.ui.Output(), "Refreshed the session") {
		t.Errorf("output %q", e.ui.Output())
	}
}

func TestExchangeDownscoping(t *testing.T) {
	e := newEnv(t, testbed.Options{})
	e.p.Exchange = true
	e.register()
	if g := e.account()["grant_types"].([]any); len(g) != 3 {
		t.Errorf("registered grants %v, want device code, refresh, exchange", g)
	}
	e.tb.ResetCounters()
	tok, err := e.backend().Token(context.Background(), helper.Request{Profile: "tb", Scopes: []string{"storage.read:/"}, Audiences: []string{"https://se.example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	c := e.tb.Counters()
	if c.Grant(testbed.GrantRefreshToken) != 1 || c.Grant(testbed.GrantTokenExchange) != 1 {
		t.Errorf("refreshes %d, exchanges %d; want 1, 1", c.Grant(testbed.GrantRefreshToken), c.Grant(testbed.GrantTokenExchange))
	}
	cl := claims(t, tok.AccessToken)
	if cl["scope"] != "storage.read:/" || cl["aud"] != "https://se.example.org" {
		t.Errorf("exchanged token scope %v aud %v", cl["scope"], cl["aud"])
	}
	// The default request needs no exchange.
	e.tb.ResetCounters()
	if _, err := e.backend().Token(context.Background(), e.request()); err != nil {
		t.Fatal(err)
	}
	if n := e.tb.Counters().Grant(testbed.GrantTokenExchange); n != 0 {
		t.Errorf("%d exchanges for the default request", n)
	}
}

func TestPasswordFlow(t *testing.T) {
	e := newEnv(t, testbed.Options{})
	spec, err := e.tb.RegisterClient(testbed.ClientSpec{Name: "robot-ish", Grants: []string{"password", "refresh"}, AllowPassword: true})
	if err != nil {
		t.Fatal(err)
	}
	e.ui.terminal = true
	e.ui.lines = []string{"alice"}
	e.ui.secrets = []string{"alice-password"}
	be := e.backend(func(o *native.Options) { o.Headless = false })
	tok, err := be.Register(context.Background(), native.Registration{ClientID: spec.ID, ClientSecret: spec.Secret, Flow: config.FlowPassword}, e.request())
	if err != nil {
		t.Fatalf("%v\n%s", err, e.ui.Output())
	}
	if got := e.ui.Prompts(); !strings.Contains(got, "User name at "+e.tb.IssuerURL) || !strings.Contains(got, "Password of alice at ") {
		t.Errorf("prompts %q", got)
	}
	if claims(t, tok.AccessToken)["sub"] == spec.ID {
		t.Error("token is for the client, not for alice")
	}
	if e.account()["flow"] != "password" || e.account()["dynamic"] == true {
		t.Errorf("account %v", e.account())
	}
	raw, _ := os.ReadFile(e.accountPath())
	if bytes.Contains(raw, []byte("alice-password")) {
		t.Fatal("the password was stored")
	}
	// Wrong password: denied, asked once, nothing stored.
	rt := e.secretOf("refresh_token")
	e.ui.lines, e.ui.secrets = nil, []string{"nope"}
	_, err = e.backend(func(o *native.Options) { o.Headless = false; o.Username = "alice" }).
		Login(context.Background(), helper.LoginRequest{Request: e.request(), Flow: config.FlowPassword})
	_ = wantKind(t, err, helper.KindDenied)
	if e.secretOf("refresh_token") != rt {
		t.Error("a failed login changed the session")
	}
	// Without a terminal: at once, without asking the provider.
	e.ui.terminal = false
	before := e.tb.Counters().Endpoint(testbed.EndpointToken)
	_, err = e.backend().Login(context.Background(), helper.LoginRequest{Request: e.request(), Flow: config.FlowPassword})
	_ = wantKind(t, err, helper.KindLoginNeeded)
	if e.tb.Counters().Endpoint(testbed.EndpointToken) != before {
		t.Error("a login without a terminal asked the provider")
	}
}

func TestPasswordFlowNotEnabled(t *testing.T) {
	e := newEnv(t, testbed.Options{})
	if _, err := e.backend().Register(context.Background(), native.Registration{NoLogin: true}, e.request()); err != nil {
		t.Fatal(err)
	}
	e.ui.terminal = true
	e.ui.secrets = []string{"alice-password"}
	_, err := e.backend(func(o *native.Options) { o.Username = "alice" }).Login(context.Background(), helper.LoginRequest{Request: e.request(), Flow: config.FlowPassword})
	he := wantKind(t, err, helper.KindDenied)
	if !strings.Contains(he.Fix, "ask the IAM administrators to enable the password grant") {
		t.Errorf("fix %q", he.Fix)
	}
}

func TestClientCredentials(t *testing.T) {
	e := newEnv(t, testbed.Options{})
	spec, err := e.tb.RegisterClient(testbed.ClientSpec{Name: "robot", Grants: []string{"client_credentials"}, Scopes: []string{"storage.read:/", "compute.read"}})
	if err != nil {
		t.Fatal(err)
	}
	e.p.Scopes = []string{"storage.read:/"}
	e.p.Flow = config.FlowClientCredentials
	e.p.Plaintext = true
	be := e.backend()
	tok, err := be.Register(context.Background(), native.Registration{ClientID: spec.ID, ClientSecret: spec.Secret, Flow: config.FlowClientCredentials, Plaintext: true}, e.request())
	if err != nil {
		t.Fatalf("%v\n%s", err, e.ui.Output())
	}
	if claims(t, tok.AccessToken)["sub"] != spec.ID {
		t.Error("client-credentials token is not the client's")
	}
	if !strings.Contains(e.ui.Output(), "UNENCRYPTED") {
		t.Errorf("no plaintext warning in %q", e.ui.Output())
	}
	if e.secretOf("refresh_token") != "" {
		t.Error("a refresh token was stored for client credentials")
	}
	// The token path needs no passphrase (plaintext) and no person.
	tok, err = e.backend(func(o *native.Options) { o.LookupEnv = func(string) (string, bool) { return "", false } }).
		Token(context.Background(), helper.Request{Profile: "tb", Scopes: []string{"compute.read"}})
	if err != nil {
		t.Fatal(err)
	}
	if claims(t, tok.AccessToken)["scope"] != "compute.read" {
		t.Errorf("scope %v", claims(t, tok.AccessToken)["scope"])
	}
	if n := e.tb.Counters().Grant(testbed.GrantClientCredentials); n != 2 {
		t.Errorf("%d client-credentials grants, want 2", n)
	}
}

func TestLogout(t *testing.T) {
	e := newEnv(t, testbed.Options{})
	e.register()
	clientID := e.account()["client_id"].(string)
	rt := e.secretOf("refresh_token")
	e.tb.ResetCounters()
	e.ui.reset()
	if err := e.backend().Logout(context.Background(), helper.LogoutRequest{Profile: "tb"}); err != nil {
		t.Fatal(err)
	}
	c := e.tb.Counters()
	if c.Endpoint(testbed.EndpointRevocation) != 1 || c.Endpoint(testbed.EndpointRegistration) != 1 {
		t.Errorf("revocation %d, registration %d requests", c.Endpoint(testbed.EndpointRevocation), c.Endpoint(testbed.EndpointRegistration))
	}
	if _, ok := e.tb.Client(clientID); ok {
		t.Error("the client still exists at the provider")
	}
	if _, err := os.Stat(filepath.Dir(e.accountPath())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state dir left: %v", err)
	}
	if introspect(t, e.tb, clientID, rt) {
		t.Error("the refresh token is still active")
	}
	golden(t, "logout.golden", e.normalize(e.ui.Output()))
	// Logging out again is fine.
	if err := e.backend().Logout(context.Background(), helper.LogoutRequest{Profile: "tb"}); err != nil {
		t.Fatal(err)
	}
}

func TestLogoutProviderDownThenForget(t *testing.T) {
	e := newEnv(t, testbed.Options{})
	e.register()
	clientID := e.account()["client_id"].(string)
	e.inject(testbed.EndpointRevocation, testbed.Status(503))
	err := e.backend().Logout(context.Background(), helper.LogoutRequest{Profile: "tb"})
	he := wantKind(t, err, helper.KindUnavailable)
	if !strings.Contains(he.Msg, "nothing was deleted") || !strings.Contains(he.Fix, "logout --forget -p tb") {
		t.Errorf("error %q", he.Error())
	}
	if _, err := os.Stat(e.accountPath()); err != nil {
		t.Fatal("state deleted although the provider was unreachable")
	}

	// --forget: no passphrase, no network.
	e.ui.reset()
	e.tb.ResetCounters()
	be := e.backend(func(o *native.Options) {
		o.LookupEnv = func(string) (string, bool) { return "", false }
		o.HTTPClient = &http.Client{Transport: failTransport{t}}
	})
	if err := be.Logout(context.Background(), helper.LogoutRequest{Profile: "tb", Forget: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(e.accountPath())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state dir left: %v", err)
	}
	out := e.ui.Output()
	if !strings.Contains(out, clientID) || !strings.Contains(out, "Nothing was sent to the provider") {
		t.Errorf("forget output %q", out)
	}
	golden(t, "forget.golden", e.normalize(out))
}

type failTransport struct{ t *testing.T }

func (f failTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.t.Errorf("unexpected request to %s", r.URL)
	return nil, errors.New("no network in this test")
}

func TestWrongPassphrase(t *testing.T) {
	e := newEnv(t, testbed.Options{})
	e.register()
	acct, _ := os.ReadFile(e.accountPath())
	key, _ := os.ReadFile(e.keyPath())
	// Registering remembered the unlock, which would now stand in for the
	// passphrase source: lock it, so the wrong passphrase is checked.
	if err := e.backend().Lock(); err != nil {
		t.Fatal(err)
	}
	e.tb.ResetCounters()
	be := e.backend(func(o *native.Options) {
		o.LookupEnv = func(k string) (string, bool) { return "not the passphrase", k == "TEST_PASS" }
	})
	_, err := be.Token(context.Background(), e.request())
	he := wantKind(t, err, helper.KindDenied)
	if !strings.Contains(he.Msg, "wrong passphrase for profile tb (from passphrase_env TEST_PASS)") || !strings.Contains(he.Fix, "logout --forget") {
		t.Errorf("error %q", he.Error())
	}
	if strings.Contains(err.Error(), "not the passphrase") {
		t.Error("the error shows the passphrase")
	}
	acct2, _ := os.ReadFile(e.accountPath())
	key2, _ := os.ReadFile(e.keyPath())
	if !bytes.Equal(acct, acct2) || !bytes.Equal(key, key2) {
		t.Error("state rewritten after a wrong passphrase")
	}
	if n := e.tb.Counters().Endpoint(testbed.EndpointToken); n != 0 {
		t.Errorf("%d token requests with a wrong passphrase", n)
	}
}

func TestLockedWithoutTerminal(t *testing.T) {
	e := newEnv(t, testbed.Options{})
	e.register()
	if err := e.backend().Lock(); err != nil { // registering remembered the unlock
		t.Fatal(err)
	}
	e.p.PassphraseEnv = ""
	_, err := e.backend().Token(context.Background(), helper.Request{Profile: "tb", Interactive: true})
	he := wantKind(t, err, helper.KindLoginNeeded)
	if !strings.Contains(he.Msg, "is locked") || !strings.Contains(he.Fix, "passphrase_env") {
		t.Errorf("error %q", he.Error())
	}
	// A terminal: prompted, then remembered in the unlock cache.
	e.ui.terminal = true
	e.ui.secrets = []string{testPass}
	if _, err := e.backend().Token(context.Background(), helper.Request{Profile: "tb", Interactive: true}); err != nil {
		t.Fatal(err)
	}
	e.ui.terminal = false
	if _, err := e.backend().Token(context.Background(), helper.Request{Profile: "tb"}); err != nil {
		t.Fatalf("unlock not remembered: %v", err)
	}
	st, _ := e.backend().Status(context.Background())
	if !st.OK || !strings.Contains(strings.Join(st.Lines, "\n"), "unlocked on this machine until") {
		t.Errorf("status %+v", st)
	}
	// Logout locks it again (the unlock leaves the cache).
	e.ui.terminal = true
	e.ui.secrets = []string{testPass}
	if err := e.backend().Logout(context.Background(), helper.LogoutRequest{Profile: "tb"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.cache.Get((secret.Key{Path: e.keyPath()}).CacheID()); !errors.Is(err, secret.ErrNotCached) {
		t.Errorf("unlock still cached after logout: %v", err)
	}
}

func TestLoginWithoutTerminal(t *testing.T) {
	e := newEnv(t, testbed.Options{})
	if _, err := e.backend().Register(context.Background(), native.Registration{NoLogin: true}, e.request()); err != nil {
		t.Fatal(err)
	}
	e.tb.ResetCounters()
	_, err := e.backend(func(o *native.Options) { o.Headless = false }).Login(context.Background(), helper.LoginRequest{Request: e.request()})
	he := wantKind(t, err, helper.KindLoginNeeded)
	if !strings.Contains(he.Fix, "--headless") {
		t.Errorf("fix %q", he.Fix)
	}
	if n := e.tb.Counters().Endpoint(testbed.EndpointDeviceAuthorization); n != 0 {
		t.Errorf("%d device authorizations without a person", n)
	}
	// Register without a terminal fails before registering anything.
	e.p.Name = "other"
	_, err = e.backend(func(o *native.Options) { o.Headless = false }).Register(context.Background(), native.Registration{}, e.request())
	_ = wantKind(t, err, helper.KindLoginNeeded)
	if n := e.tb.Counters().Endpoint(testbed.EndpointRegistration); n != 0 {
		t.Errorf("%d registrations without a person to log in", n)
	}
}

func TestRegisterTwiceAndForce(t *testing.T) {
	e := newEnv(t, testbed.Options{})
	e.register()
	old := e.account()["client_id"].(string)
	_, err := e.backend().Register(context.Background(), native.Registration{}, e.request())
	he := wantKind(t, err, helper.KindUsage)
	if !strings.Contains(he.Fix, "register -p tb --force") {
		t.Errorf("fix %q", he.Fix)
	}
	e.approveAt(time.Second)
	if _, err := e.backend().Register(context.Background(), native.Registration{Force: true}, e.request()); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.tb.Client(old); ok {
		t.Error("--force left the old client at the provider")
	}
	if e.account()["client_id"] == old {
		t.Error("no new client")
	}
}

func TestClientDeletedAtProvider(t *testing.T) {
	e := newEnv(t, testbed.Options{})
	e.register()
	acct := e.account()
	req, _ := http.NewRequest(http.MethodDelete, acct["registration_client_uri"].(string), nil)
	req.Header.Set("Authorization", "Bearer "+e.secretOf("registration_access_token"))
	resp, err := e.tb.HTTPClient().Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %v %v", resp, err)
	}
	resp.Body.Close()
	_, err = e.backend().Token(context.Background(), e.request())
	he := wantKind(t, err, helper.KindConfig)
	if !strings.Contains(he.Msg, "no longer accepts client") || !strings.Contains(he.Fix, "--force") {
		t.Errorf("error %q", he.Error())
	}
}

func TestProviderMisbehaves(t *testing.T) {
	cases := []struct {
		name  string
		fault testbed.Fault
		kind  helper.Kind
	}{
		{"HTML error page", testbed.HTMLError(), helper.KindUnavailable},
		{"malformed JSON", testbed.MalformedJSON(), helper.KindUnavailable},
		{"oversized answer", testbed.Oversized(4 << 20), helper.KindUnavailable},
		{"server_error", testbed.OAuthError("server_error"), helper.KindUnavailable},
		{"hang", testbed.Hang(), helper.KindUnavailable},
	}
	e := newEnv(t, testbed.Options{})
	e.register()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.tb.ClearFaults()
			if err := e.tb.Inject(testbed.EndpointToken, c.fault.Once()); err != nil {
				t.Fatal(err)
			}
			rt := storedSecret(t, e.accountPath(), e.keyPath(), "refresh_token")
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_, err := e.backend().Token(ctx, e.request())
			if c.name == "hang" {
				if !errors.Is(err, context.DeadlineExceeded) && helper.KindOf(err) != helper.KindUnavailable {
					t.Fatalf("err %v", err)
				}
			} else {
				_ = wantKind(t, err, c.kind)
			}
			if storedSecret(t, e.accountPath(), e.keyPath(), "refresh_token") != rt {
				t.Error("a failed refresh changed the stored refresh token")
			}
		})
	}
	// And the session still works.
	e.tb.ClearFaults()
	if _, err := e.backend().Token(context.Background(), e.request()); err != nil {
		t.Fatal(err)
	}
}

// Concurrent requests for different scopes in one process: the profile
// lock serializes the refreshes, each uses the token its predecessor
// stored.
func TestConcurrentRefreshesInProcess(t *testing.T) {
	e := newEnv(t, testbed.Options{})
	e.register()
	clientID := e.account()["client_id"].(string)
	e.tb.ResetCounters()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			scope := []string{"storage.read:/", "storage.create:/", "storage.read:/home", "storage.modify:/home/alice"}[i%4]
			_, err := e.backend().Token(context.Background(), helper.Request{Profile: "tb", Scopes: []string{scope}})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := e.tb.Counters().Grant(testbed.GrantRefreshToken); n != 16 {
		t.Errorf("%d refreshes, want 16", n)
	}
	if !introspect(t, e.tb, clientID, e.secretOf("refresh_token")) {
		t.Error("the stored refresh token is not the latest")
	}
}

func TestStatus(t *testing.T) {
	e := newEnv(t, testbed.Options{})
	be := e.backend()
	st, err := be.Status(context.Background())
	if err != nil || st.OK || !strings.Contains(st.Lines[0], "not registered: run tokenhelper register -p tb") {
		t.Fatalf("status %+v %v", st, err)
	}
	e.register()
	st, err = e.backend().Status(context.Background())
	if err != nil || !st.OK {
		t.Fatalf("status %+v %v", st, err)
	}
	// Registering unlocked the key for the default 12 hours (shown in
	// local time).
	out := strings.ReplaceAll(strings.Join(st.Lines, "\n"), "until "+clockStart.Add(12*time.Hour).Local().Format("15:04"), "until START+12h")
	golden(t, "status.golden", e.normalize(out+"\n"))
}

// What a crash between the provider's rotation and the write leaves: the
// old refresh token, now redeemed. The next refresh reports "session
// expired" (login needed), drops the dead token, and later calls fail at
// once.
func TestLostRotationIsReported(t *testing.T) {
	e := newEnv(t, testbed.Options{})
	e.register()
	before, err := os.ReadFile(e.accountPath())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.backend().Token(context.Background(), e.request()); err != nil {
		t.Fatal(err)
	}
	// The process "died" before storing the rotated token.
	if err := os.WriteFile(e.accountPath(), before, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = e.backend().Token(context.Background(), e.request())
	he := wantKind(t, err, helper.KindLoginNeeded)
	if !strings.HasPrefix(he.Error(), "session expired") || !strings.HasSuffix(he.Error(), "run: tokenhelper login -p tb") {
		t.Errorf("error %q", he.Error())
	}
	if e.secretOf("refresh_token") != "" {
		t.Error("the redeemed refresh token was kept")
	}
}

// A provider that refuses the token exchange grant at registration gets a
// second request without it.
func TestRegistrationWithoutExchangeFallback(t *testing.T) {
	e := newEnv(t, testbed.Options{})
	e.inject(testbed.EndpointRegistration, testbed.OAuthError("invalid_client_metadata").Once())
	e.register()
	if n := e.tb.Counters().Endpoint(testbed.EndpointRegistration); n != 2 {
		t.Errorf("%d registration requests, want 2", n)
	}
	if g := e.account()["grant_types"].([]any); len(g) != 2 {
		t.Errorf("grants %v, want device code and refresh token", g)
	}
	if !strings.Contains(e.ui.Output(), "refused the token exchange grant") {
		t.Errorf("output %q", e.ui.Output())
	}
}

// When storing the profile fails after the client was registered, the
// registration is undone: client deleted at the provider, no local state.
func TestRegistrationUndone(t *testing.T) {
	e := newEnv(t, testbed.Options{})
	_, err := e.backend().Register(context.Background(), native.Registration{
		Saved: func() error { return helper.Errorf(helper.KindConfig, "cannot write the config file") },
	}, e.request())
	_ = wantKind(t, err, helper.KindConfig)
	c := e.tb.Counters()
	if c.Endpoint(testbed.EndpointRegistration) != 2 || c.Endpoint(testbed.EndpointDeviceAuthorization) != 0 {
		t.Errorf("registration %d (want create + delete), device authorization %d", c.Endpoint(testbed.EndpointRegistration), c.Endpoint(testbed.EndpointDeviceAuthorization))
	}
	if _, err := os.Stat(filepath.Dir(e.accountPath())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state left behind: %v", err)
	}
}
