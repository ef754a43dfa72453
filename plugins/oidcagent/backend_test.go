package oidcagent

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
)

func profile(name, account string) *config.Profile {
	return &config.Profile{Name: name, Backend: BackendName, Account: account}
}

// The agent's failure replies (texts as oidc-agent 4.2.6 sends them) map
// to the kind a caller acts on and a fix that names the command to run.
func TestFailureReplies(t *testing.T) {
	tokenish := makeJWT(map[string]any{"sub": "leaked", "exp": 1900000000, "jti": "abcdefabcdefabcdefabcdefabcdef"})
	for _, tc := range []struct {
		name    string
		text    string
		issuer  bool // profile by issuer instead of account
		kind    helper.Kind
		cause   error
		msg     string
		fix     string
		notText bool // the agent's text must not appear (redacted)
	}{
		{"unknown account", "No account configured with that short name", false, helper.KindConfig, ErrUnknownAccount,
			`has no account named "wlcg"`, "oidc-gen wlcg", false},
		{"not loaded", "account not loaded", false, helper.KindLoginNeeded, ErrNotLoaded,
			`Account "wlcg" is not loaded in oidc-agent`, "run: oidc-add wlcg", false},
		{"not loaded by issuer", "account not loaded", true, helper.KindLoginNeeded, ErrNotLoaded,
			"no account for issuer https://iam.example.org/ is loaded", "oidc-gen --issuer https://iam.example.org/ NAME", false},
		{"locked", "Agent locked", false, helper.KindLoginNeeded, ErrAgentFailure, "oidc-agent is locked", "oidc-add -X", false},
		{"prompt cancelled", "user cancelled password prompt", false, helper.KindLoginNeeded, ErrNotLoaded,
			"user cancelled password prompt", "oidc-add wlcg", false},
		{"refresh token revoked", "invalid_grant: token has expired or was revoked", false, helper.KindLoginNeeded, ErrAgentFailure,
			"could not refresh account \"wlcg\": invalid_grant: token has expired or was revoked", "oidc-gen wlcg --reauthenticate", false},
		{"client gone", "invalid_client: Bad client credentials", false, helper.KindLoginNeeded, ErrAgentFailure,
			"no longer accepts the client", "oidc-gen -d wlcg", false},
		{"confirmation denied", "operation forbidden", false, helper.KindDenied, ErrAgentFailure, "operation forbidden", "oidc-add wlcg", false},
		{"scope refused", "invalid_scope: storage.write:/ not allowed", false, helper.KindDenied, ErrAgentFailure,
			"the provider refused the token for account \"wlcg\": invalid_scope", "scopes and audiences", false},
		{"bad request", "Bad Request: Unknown request type.", false, helper.KindUnavailable, ErrAgentFailure,
			"rejected the request", "oidc-agent --version", false},
		{"provider error", "server_error", false, helper.KindUnavailable, ErrAgentFailure,
			"could not get a token for account \"wlcg\": server_error", "oidc-token wlcg", false},
		{"provider unreachable", "could not connect to url", false, helper.KindUnavailable, ErrAgentFailure,
			"could not connect to url", "provider is reachable", false},
		{"no reason", "", false, helper.KindUnavailable, ErrAgentFailure, "no reason given", "retry", false},
		{"token in error text", "refresh failed for " + tokenish, false, helper.KindUnavailable, ErrAgentFailure,
			"refresh failed for [redacted]", "retry", true},
		{"control characters", "evil\x1b[2J\r\nline\x00two", false, helper.KindUnavailable, ErrAgentFailure,
			"evil [2J line two", "retry", false},
		{"very long", strings.Repeat("x ", 500), false, helper.KindUnavailable, ErrAgentFailure, "x x x…", "retry", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFake(t, "unix", replyJSON(map[string]any{"status": "failure", "error": tc.text,
				"info": "Most likely the refresh token expired."}))
			p := profile("wlcg", "wlcg")
			if tc.issuer {
				p = &config.Profile{Name: "iam", Issuer: testIssuer}
			}
			b, err := New(p, f.env(t))
			if err != nil {
				t.Fatal(err)
			}
			_, err = b.Token(context.Background(), helper.Request{})
			var he *helper.Error
			if !errors.As(err, &he) {
				t.Fatalf("not a *helper.Error: %v", err)
			}
			if he.Kind != tc.kind || !errors.Is(err, tc.cause) {
				t.Fatalf("kind %v (want %v), err %v", he.Kind, tc.kind, err)
			}
			if !strings.Contains(he.Msg, tc.msg) || !strings.Contains(he.Fix, tc.fix) {
				t.Fatalf("msg %q (want %q), fix %q (want %q)", he.Msg, tc.msg, he.Fix, tc.fix)
			}
			if strings.ContainsAny(err.Error(), "\x00\x1b\r\n") || len(he.Msg) > 400 {
				t.Fatalf("message not one clean line: %q", err)
			}
			if tc.notText {
				assertNoLeak(t, err, tokenish)
			}
		})
	}
}

// Scopes, audiences and min-valid: the request's, else the profile's, else
// none (the agent's defaults).
func TestBackendRequestDefaults(t *testing.T) {
	exp := time.Now().Add(time.Hour)
	f := startFake(t, "unix", replyJSON(success("tok", testIssuer, exp.Unix())))
	p := &config.Profile{Name: "wlcg", Account: "wlcg-acc", Scopes: []string{"storage.read:/"},
		Audiences: []string{"https://se.example"}, MinValid: config.Duration(5 * time.Minute)}
	b, err := New(p, f.env(t))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := b.Token(context.Background(), helper.Request{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(tok.Scopes, " ") != "storage.read:/" || strings.Join(tok.Audiences, " ") != "https://se.example" ||
		tok.Profile != "wlcg" || tok.Source != "oidc-agent" {
		t.Fatalf("token %+v", *tok)
	}
	tok, err = b.Token(context.Background(), helper.Request{Profile: "cli-name", Scopes: []string{"openid", "compute.read"},
		Audiences: []string{"any"}, MinValid: 10 * time.Minute, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(tok.Scopes, " ") != "openid compute.read" || strings.Join(tok.Audiences, " ") != "any" || tok.Profile != "cli-name" {
		t.Fatalf("token %+v", *tok)
	}
	reqs := f.requests()
	if mustJSON(reqs[0]) != `{"account":"wlcg-acc","application_hint":"tokenhelper","audience":"https://se.example","min_valid_period":300,"request":"access_token","scope":"storage.read:/"}` {
		t.Fatalf("first request %s", mustJSON(reqs[0]))
	}
	if mustJSON(reqs[1]) != `{"account":"wlcg-acc","application_hint":"tokenhelper","audience":"any","min_valid_period":-1,"request":"access_token","scope":"openid compute.read"}` {
		t.Fatalf("second request %s", mustJSON(reqs[1]))
	}
	// No profile defaults: nothing but the account goes out.
	b, _ = New(profile("bare", "wlcg-acc"), f.env(t))
	if _, err := b.Token(context.Background(), helper.Request{}); err != nil {
		t.Fatal(err)
	}
	if got := mustJSON(f.requests()[2]); got != `{"account":"wlcg-acc","application_hint":"tokenhelper","min_valid_period":0,"request":"access_token"}` {
		t.Fatalf("bare request %s", got)
	}
}

// A token the agent cannot make last min-valid is refused, not handed out.
func TestBackendMinValidUnreachable(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	jwt := makeJWT(map[string]any{"exp": now.Add(20 * time.Minute).Unix()})
	f := startFake(t, "unix", replyJSON(success(jwt, testIssuer, now.Add(time.Hour).Unix())))
	env := f.env(t)
	env.Now = func() time.Time { return now }
	b, _ := New(profile("wlcg", "wlcg"), env)
	_, err := b.Token(context.Background(), helper.Request{MinValid: 30 * time.Minute})
	if helper.KindOf(err) != helper.KindConfig || !strings.Contains(err.Error(), "valid for 20m0s, less than the 30m0s asked for") ||
		!strings.Contains(err.Error(), "min_valid in [profiles.wlcg]") {
		t.Fatalf("got %v", err)
	}
	assertNoLeak(t, err, jwt)
	if tok, err := b.Token(context.Background(), helper.Request{MinValid: 10 * time.Minute}); err != nil || tok.AccessToken != jwt {
		t.Fatalf("10m: %v %v", tok, err)
	}
}

func TestNewRejectsUnusableProfile(t *testing.T) {
	for _, p := range []*config.Profile{nil, {Name: "x", Backend: BackendName}} {
		_, err := New(p, testEnv(t, nil))
		if helper.KindOf(err) != helper.KindConfig || !strings.Contains(err.Error(), "account") {
			t.Fatalf("%+v: %v", p, err)
		}
	}
}

func TestBackendTimeoutFromProfile(t *testing.T) {
	var f *fakeAgent
	f = startFake(t, "unix", func(net.Conn, map[string]any) { <-f.done })
	p := profile("wlcg", "wlcg")
	p.Timeout = config.Duration(150 * time.Millisecond)
	b, _ := New(p, f.env(t))
	_, err := b.Token(context.Background(), helper.Request{})
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "within 150ms") {
		t.Fatalf("got %v", err)
	}
	st, err := b.Status(context.Background())
	if !errors.Is(err, ErrTimeout) || st.OK {
		t.Fatalf("status %+v %v", st, err)
	}
}

func TestStatus(t *testing.T) {
	f := startFake(t, "unix", replyJSON(map[string]any{"status": "success", "info": []string{"egi", "wlcg"}}))
	for _, tc := range []struct {
		p     *config.Profile
		ok    bool
		lines []string
	}{
		{profile("w", "wlcg"), true, []string{"agent: reachable at " + f.addr + " (OIDC_SOCK)", "loaded accounts: egi, wlcg", `account "wlcg": loaded`}},
		{profile("o", "other"), false, []string{"agent: reachable at " + f.addr + " (OIDC_SOCK)", "loaded accounts: egi, wlcg", `account "other": not loaded (run: oidc-add other)`}},
		{&config.Profile{Name: "i", Issuer: testIssuer}, true, []string{"agent: reachable at " + f.addr + " (OIDC_SOCK)", "loaded accounts: egi, wlcg", "issuer " + testIssuer + ": the agent uses a loaded account of this issuer"}},
	} {
		b, _ := New(tc.p, f.env(t))
		st, err := b.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st.Backend != "oidc-agent" || st.OK != tc.ok || strings.Join(st.Lines, "\n") != strings.Join(tc.lines, "\n") {
			t.Fatalf("%s: %+v", tc.p.Name, st)
		}
	}
}

func TestZeroConfig(t *testing.T) {
	for _, tc := range []struct {
		name     string
		accounts []string
		want     string
		kind     helper.Kind
		msg      string
	}{
		{"one", []string{"wlcg"}, "wlcg", 0, ""},
		{"none", []string{}, "", helper.KindLoginNeeded, "no account is loaded in oidc-agent"},
		{"several", []string{"wlcg", "egi", "cms"}, "", helper.KindNoProfile, "3 accounts are loaded in oidc-agent (cms, egi, wlcg)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFake(t, "unix", replyJSON(map[string]any{"status": "success", "info": tc.accounts}))
			p, err := ZeroConfig(context.Background(), f.env(t))
			if tc.want != "" {
				if err != nil || p.Account != tc.want || p.Name != tc.want || p.Backend != "oidc-agent" {
					t.Fatalf("%+v %v", p, err)
				}
				// The profile works as is.
				if _, err := New(p, f.env(t)); err != nil {
					t.Fatal(err)
				}
				return
			}
			if p != nil || helper.KindOf(err) != tc.kind || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("%+v %v", p, err)
			}
			var several *SeveralAccountsError
			if tc.kind == helper.KindNoProfile {
				if !errors.As(err, &several) || strings.Join(several.Accounts, ",") != "cms,egi,wlcg" {
					t.Fatalf("no account list in %v", err)
				}
				if !strings.Contains(err.Error(), "-p NAME") {
					t.Fatalf("no fix in %v", err)
				}
			}
			if tc.kind == helper.KindLoginNeeded && !strings.Contains(err.Error(), "oidc-add NAME") {
				t.Fatalf("no fix in %v", err)
			}
		})
	}
	_, err := ZeroConfig(context.Background(), testEnv(t, nil))
	if !errors.Is(err, ErrNoAgent) {
		t.Fatalf("no agent: %v", err)
	}
}
