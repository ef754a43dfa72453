package testbed_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/integrations/testbed"
)

func TestDiscovery(t *testing.T) {
	t.Parallel()
	for _, https := range []bool{false, true} {
		tb := testbed.Start(t, testbed.Options{HTTPS: https})
		if strings.HasSuffix(tb.IssuerURL, "/") {
			t.Errorf("issuer %q has a trailing slash", tb.IssuerURL)
		}
		if https != (tb.CAFile != "") || https != strings.HasPrefix(tb.IssuerURL, "https://") {
			t.Errorf("https=%v: issuer %q, CA file %q", https, tb.IssuerURL, tb.CAFile)
		}
		for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
			var d map[string]any
			getJSON(t, tb, tb.IssuerURL+path, &d)
			if str(d["issuer"]) != tb.IssuerURL {
				t.Errorf("%s: issuer %v, want %s", path, d["issuer"], tb.IssuerURL)
			}
			for _, k := range []string{"token_endpoint", "jwks_uri", "registration_endpoint", "device_authorization_endpoint",
				"revocation_endpoint", "introspection_endpoint", "userinfo_endpoint"} {
				if !strings.HasPrefix(str(d[k]), tb.IssuerURL+"/") {
					t.Errorf("%s: %s = %v", path, k, d[k])
				}
			}
			grants := strs(d["grant_types_supported"])
			for _, g := range []string{testbed.GrantDeviceCode, testbed.GrantRefreshToken, testbed.GrantTokenExchange, testbed.GrantClientCredentials, testbed.GrantPassword} {
				if !slices.Contains(grants, g) {
					t.Errorf("grant_types_supported %v lacks %s", grants, g)
				}
			}
			if slices.Contains(grants, "implicit") {
				t.Errorf("grant_types_supported advertises implicit")
			}
		}
		var jwks struct {
			Keys []map[string]any `json:"keys"`
		}
		getJSON(t, tb, tb.JWKSURL(), &jwks)
		if len(jwks.Keys) != 1 || jwks.Keys[0]["alg"] != "RS256" || jwks.Keys[0]["kid"] == "" || jwks.Keys[0]["d"] != nil {
			t.Errorf("JWKS = %v", jwks)
		}
	}
}

// TestAccessTokenProfile checks the tokens against the WLCG Common JWT
// Profile and what scitokens-cpp 0.7.3 demands.
func TestAccessTokenProfile(t *testing.T) {
	t.Parallel()
	start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tb := testbed.Start(t, fast(testbed.Options{Clock: testbed.NewClock(start), Lifetimes: testbed.Lifetimes{Access: 20 * time.Minute}}))
	conf := oauthConfig(tb, testbed.ClientSpec{ID: testbed.DemoClientID}, "openid", "offline_access", "wlcg.groups", "storage.read:/", "storage.modify:/home/alice", "storage.modify:/home/bob")
	tok := loginAlice(t, tb, conf)

	h, c := claims(t, tb, tok.AccessToken)
	if h.Algorithm != "RS256" || h.KeyID == "" || h.ExtraHeaders["typ"] != "JWT" {
		t.Errorf("header: alg %s kid %q typ %v", h.Algorithm, h.KeyID, h.ExtraHeaders["typ"])
	}
	want := map[string]any{
		"wlcg.ver":  "1.0",
		"iss":       tb.IssuerURL,
		"aud":       testbed.AnyAudience,
		"client_id": testbed.DemoClientID,
		"iat":       float64(start.Unix()),
		"nbf":       float64(start.Unix()),
		"exp":       float64(start.Add(20 * time.Minute).Unix()),
		// storage.modify:/home/bob is not alice's: dropped, as IAM does.
		"scope": "openid offline_access wlcg.groups storage.read:/ storage.modify:/home/alice",
	}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("claim %s = %v, want %v", k, c[k], v)
		}
	}
	if g := strs(c["wlcg.groups"]); !slices.Equal(g, []string{"/wlcg", "/wlcg/xfers"}) {
		t.Errorf("wlcg.groups = %v", g)
	}
	if str(c["sub"]) == "" || str(c["jti"]) == "" {
		t.Errorf("sub %v jti %v", c["sub"], c["jti"])
	}
	if got := time.Until(tok.Expiry); got < 19*time.Minute || got > 21*time.Minute {
		t.Errorf("expires_in gives %v, want 20m (from the test bed's clock, not the machine's)", got)
	}
	if tok.Extra("id_token") == nil {
		t.Error("no id_token with openid")
	}
	if tok.RefreshToken == "" {
		t.Error("no refresh token with offline_access")
	}

	// A second token for the same grant has another jti; a token without
	// wlcg.groups has no groups; several audiences make an array.
	tok2, err := tb.IssueToken("alice", []string{"storage.read:/"}, []string{"https://a.example", "https://b.example"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, c2 := claims(t, tb, tok2)
	if c2["jti"] == c["jti"] || c2["wlcg.groups"] != nil || !slices.Equal(strs(c2["aud"]), []string{"https://a.example", "https://b.example"}) {
		t.Errorf("second token claims: %v", c2)
	}
	if num(c2["exp"])-num(c2["iat"]) != 3600 {
		t.Errorf("lifetime %d s, want 3600", num(c2["exp"])-num(c2["iat"]))
	}
}

func TestMintOverrides(t *testing.T) {
	t.Parallel()
	tb := testbed.Start(t, testbed.Options{})
	raw, err := tb.Mint(testbed.TokenSpec{Subject: "robot", Scopes: []string{"storage.read:/"}, Claims: map[string]any{"wlcg.ver": "2.0", "nbf": nil}})
	if err != nil {
		t.Fatal(err)
	}
	_, c := claims(t, tb, raw)
	if c["wlcg.ver"] != "2.0" || c["nbf"] != nil || c["sub"] != "robot" {
		t.Errorf("claims %v", c)
	}
	bad, err := tb.Mint(testbed.TokenSpec{User: "alice", UnknownKey: true})
	if err != nil {
		t.Fatal(err)
	}
	code, body := post(t, tb, tb.IntrospectionURL(), "", "", nil)
	_ = body
	if code == http.StatusOK {
		t.Error("introspection without client authentication succeeded")
	}
	spec := confidential(t, tb, testbed.ClientSpec{})
	if _, out := post(t, tb, tb.IntrospectionURL(), spec.ID, spec.Secret, url.Values{"token": {bad}}); out["active"] != false {
		t.Errorf("token with a bad signature introspects as %v", out)
	}
	if _, err := tb.Mint(testbed.TokenSpec{User: "mallory"}); err == nil {
		t.Error("Mint for an unknown user succeeded")
	}
}

func TestDeviceFlowWithOAuth2(t *testing.T) {
	t.Parallel()
	tb := testbed.Start(t, fast(testbed.Options{}))
	client := confidential(t, tb, testbed.ClientSpec{Grants: []string{"device", "refresh"}})
	conf := oauthConfig(tb, client, "openid", "offline_access", "storage.read:/")
	secret := oauth2.SetAuthURLParam("client_secret", client.Secret) // DeviceAuth sends no client auth (golang/oauth2#685)

	t.Run("approved while polling", func(t *testing.T) {
		t.Parallel()
		ctx := oauthCtx(t, tb)
		da, err := conf.DeviceAuth(ctx, secret)
		if err != nil {
			t.Fatal(err)
		}
		if da.VerificationURI != tb.DevicePageURL() || da.Interval != 1 || !strings.Contains(da.VerificationURIComplete, da.UserCode) {
			t.Errorf("device response %+v", da)
		}
		// A poll before approval: authorization_pending.
		code, out := post(t, tb, tb.TokenURL(), client.ID, client.Secret, url.Values{"grant_type": {testbed.GrantDeviceCode}, "device_code": {da.DeviceCode}})
		if code != 400 || out["error"] != "authorization_pending" {
			t.Errorf("poll before approval: %d %v, want authorization_pending", code, out)
		}
		if err := tb.ApproveDevice(da.UserCode, "alice"); err != nil {
			t.Fatal(err)
		}
		tok, err := conf.DeviceAccessToken(ctx, da)
		if err != nil {
			t.Fatal(err)
		}
		if tok.RefreshToken == "" || tok.AccessToken == "" {
			t.Fatalf("token %+v", tok)
		}
	})
	t.Run("without client secret", func(t *testing.T) {
		t.Parallel()
		_, err := conf.DeviceAuth(oauthCtx(t, tb))
		if oauthErr(err) != "invalid_client" {
			t.Errorf("confidential client without secret: %v", err)
		}
	})
	t.Run("denied", func(t *testing.T) {
		t.Parallel()
		ctx := oauthCtx(t, tb)
		da, err := conf.DeviceAuth(ctx, secret)
		if err != nil {
			t.Fatal(err)
		}
		if err := tb.DenyDevice(da.UserCode); err != nil {
			t.Fatal(err)
		}
		if _, err := conf.DeviceAccessToken(ctx, da); oauthErr(err) != "access_denied" {
			t.Errorf("denied request: %v, want access_denied", err)
		}
		if err := tb.ApproveDevice(da.UserCode, "alice"); err == nil {
			t.Error("approving a denied request succeeded")
		}
	})
	t.Run("expired", func(t *testing.T) {
		t.Parallel()
		tb := testbed.Start(t, fast(testbed.Options{Lifetimes: testbed.Lifetimes{DeviceCode: 5 * time.Minute}}))
		conf := oauthConfig(tb, testbed.ClientSpec{ID: testbed.DemoClientID})
		ctx := oauthCtx(t, tb)
		da, err := conf.DeviceAuth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tb.Clock.Advance(5*time.Minute + time.Second)
		if _, err := conf.DeviceAccessToken(ctx, da); oauthErr(err) != "expired_token" {
			t.Errorf("expired code: %v, want expired_token", err)
		}
		if err := tb.ApproveDevice(da.UserCode, "alice"); err == nil {
			t.Error("approving an expired request succeeded")
		}
	})
	t.Run("code used twice", func(t *testing.T) {
		t.Parallel()
		ctx := oauthCtx(t, tb)
		da, err := conf.DeviceAuth(ctx, secret)
		if err != nil {
			t.Fatal(err)
		}
		if err := tb.ApproveDevice(da.UserCode, "alice"); err != nil {
			t.Fatal(err)
		}
		if _, err := conf.DeviceAccessToken(ctx, da); err != nil {
			t.Fatal(err)
		}
		if _, err := conf.DeviceAccessToken(ctx, da); oauthErr(err) != "invalid_grant" {
			t.Errorf("second redemption: %v, want invalid_grant", err)
		}
	})
	t.Run("client without device grant", func(t *testing.T) {
		t.Parallel()
		cc := confidential(t, tb, testbed.ClientSpec{Grants: []string{"client_credentials"}})
		_, err := oauthConfig(tb, cc).DeviceAuth(oauthCtx(t, tb), oauth2.SetAuthURLParam("client_secret", cc.Secret))
		if oauthErr(err) != "unauthorized_client" {
			t.Errorf("got %v, want unauthorized_client", err)
		}
	})
}

func TestSlowDownWithOAuth2(t *testing.T) {
	t.Parallel()
	tb := testbed.Start(t, fast(testbed.Options{}))
	conf := oauthConfig(tb, testbed.ClientSpec{ID: testbed.DemoClientID}, "openid")
	ctx := oauthCtx(t, tb)
	da, err := conf.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.Inject(testbed.EndpointToken, testbed.OAuthError("slow_down").ForGrant("device").Once()); err != nil {
		t.Fatal(err)
	}
	if err := tb.ApproveDevice(da.UserCode, "alice"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := conf.DeviceAccessToken(ctx, da); err != nil {
		t.Fatal(err)
	}
	// x/oauth2 polls after 1 s, gets slow_down, waits 1+5 s, then succeeds.
	if d := time.Since(start); d < 6*time.Second {
		t.Errorf("token after %v: slow_down was not honoured", d)
	}
	c := tb.Counters()
	if c.Grant("device") != 2 || c.Faults[testbed.EndpointToken] != 1 {
		t.Errorf("counters %+v, want 2 device polls, 1 faulted", c)
	}
}

func TestRefreshRotation(t *testing.T) {
	t.Parallel()
	tb := testbed.Start(t, fast(testbed.Options{}))
	client := confidential(t, tb, testbed.ClientSpec{})
	conf := oauthConfig(tb, client)
	rt, err := tb.RefreshTokenFor("alice", client.ID, []string{"openid", "storage.read:/", "storage.create:/"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := oauthCtx(t, tb)
	tb.ResetCounters()
	tok, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rt, Expiry: time.Now().Add(-time.Minute)}).Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" || tok.RefreshToken == rt {
		t.Fatalf("no rotation: new refresh token %q", tok.RefreshToken)
	}
	if n := tb.Counters().Grant(testbed.GrantRefreshToken); n != 1 {
		t.Errorf("%d refresh requests reached the provider, want 1", n)
	}
	// Replaying the old refresh token fails; the new one works once.
	_, err = conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rt, Expiry: time.Now().Add(-time.Minute)}).Token()
	if oauthErr(err) != "invalid_grant" {
		t.Errorf("reused refresh token: %v, want invalid_grant", err)
	}
	tok2, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Minute)}).Token()
	if err != nil {
		t.Fatalf("rotated refresh token: %v", err)
	}
	if n := tb.Counters().Grant("refresh"); n != 3 {
		t.Errorf("%d refresh requests, want 3 (AuthStyleInHeader: no retries)", n)
	}
	_, c := claims(t, tb, tok2.AccessToken)
	if c["scope"] != "openid storage.read:/ storage.create:/ offline_access" {
		t.Errorf("scope after refresh = %v, want the whole grant", c["scope"])
	}
	// A wrong client secret is answered 401 (RFC 6749 5.2), not 400.
	code, out := post(t, tb, tb.TokenURL(), client.ID, "wrong", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok2.RefreshToken}})
	if code != http.StatusUnauthorized || out["error"] != "invalid_client" {
		t.Errorf("wrong secret: %d %v", code, out)
	}
	// Another client cannot use it.
	other := confidential(t, tb, testbed.ClientSpec{})
	_, err = oauthConfig(tb, other).TokenSource(ctx, &oauth2.Token{RefreshToken: tok2.RefreshToken, Expiry: time.Now().Add(-time.Minute)}).Token()
	if oauthErr(err) != "invalid_grant" {
		t.Errorf("refresh by another client: %v, want invalid_grant", err)
	}
}

func TestRefreshDownScoping(t *testing.T) {
	t.Parallel()
	tb := testbed.Start(t, testbed.Options{})
	client := confidential(t, tb, testbed.ClientSpec{})
	rt, err := tb.RefreshTokenFor("alice", client.ID, []string{"openid", "storage.read:/", "storage.modify:/home/alice"})
	if err != nil {
		t.Fatal(err)
	}
	refresh := func(scope, audience string) (int, map[string]any) {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
		if scope != "" {
			form.Set("scope", scope)
		}
		if audience != "" {
			form.Set("audience", audience)
		}
		code, out := post(t, tb, tb.TokenURL(), client.ID, client.Secret, form)
		if code == http.StatusOK {
			rt = str(out["refresh_token"])
		}
		return code, out
	}
	for _, tc := range []struct {
		scope, audience string
		status          int
		wantScope       string
		wantAud         any
	}{
		{"storage.read:/data", "https://se.example:1094", 200, "storage.read:/data", "https://se.example:1094"},
		{"storage.modify:/home/alice/sub storage.read:/", "https://a.example https://b.example", 200,
			"storage.modify:/home/alice/sub storage.read:/", []any{"https://a.example", "https://b.example"}},
		{"", "", 200, "openid storage.read:/ storage.modify:/home/alice offline_access", testbed.AnyAudience},
		{"storage.modify:/", "", 400, "", nil},
		{"storage.create:/home/alice", "", 400, "", nil},
	} {
		code, out := refresh(tc.scope, tc.audience)
		if code != tc.status {
			t.Errorf("scope %q: status %d %v, want %d", tc.scope, code, out, tc.status)
			continue
		}
		if code != 200 {
			if out["error"] != "invalid_scope" {
				t.Errorf("scope %q: error %v, want invalid_scope", tc.scope, out["error"])
			}
			continue
		}
		_, c := claims(t, tb, str(out["access_token"]))
		if c["scope"] != tc.wantScope || str(out["scope"]) != tc.wantScope {
			t.Errorf("scope %q: token scope %v / response %v, want %q", tc.scope, c["scope"], out["scope"], tc.wantScope)
		}
		if !equalJSON(c["aud"], tc.wantAud) {
			t.Errorf("audience %q: aud %v, want %v", tc.audience, c["aud"], tc.wantAud)
		}
	}
}

func equalJSON(a, b any) bool {
	la, oka := a.([]any)
	lb, okb := b.([]any)
	if oka && okb {
		return slices.EqualFunc(la, lb, func(x, y any) bool { return x == y })
	}
	return a == b
}

func TestLifetimesWithClock(t *testing.T) {
	t.Parallel()
	tb := testbed.Start(t, testbed.Options{Lifetimes: testbed.Lifetimes{Access: 10 * time.Minute, Refresh: 2 * time.Hour}})
	client := confidential(t, tb, testbed.ClientSpec{})
	rt, _ := tb.RefreshTokenFor("alice", client.ID, []string{"storage.read:/"})
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	code, out := post(t, tb, tb.TokenURL(), client.ID, client.Secret, form)
	if code != 200 || num(out["expires_in"]) != 600 {
		t.Fatalf("refresh: %d %v", code, out)
	}
	at, rt := str(out["access_token"]), str(out["refresh_token"])
	introspect := func(tok string) bool {
		_, o := post(t, tb, tb.IntrospectionURL(), client.ID, client.Secret, url.Values{"token": {tok}})
		return o["active"] == true
	}
	if !introspect(at) || !introspect(rt) {
		t.Fatal("fresh tokens are not active")
	}
	tb.Clock.Advance(10*time.Minute + time.Second)
	if introspect(at) {
		t.Error("access token still active after its lifetime")
	}
	if !introspect(rt) {
		t.Error("refresh token inactive before its lifetime")
	}
	tb.Clock.Advance(2 * time.Hour)
	if introspect(rt) {
		t.Error("refresh token active after its lifetime")
	}
	code, out = post(t, tb, tb.TokenURL(), client.ID, client.Secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	if code != 400 || out["error"] != "invalid_grant" {
		t.Errorf("expired refresh token: %d %v, want invalid_grant", code, out)
	}
}

func TestTokenExchangeWithOAuth2(t *testing.T) {
	t.Parallel()
	tb := testbed.Start(t, testbed.Options{})
	client := confidential(t, tb, testbed.ClientSpec{Grants: []string{"exchange", "refresh"}})
	subject, err := tb.IssueToken("alice", []string{"storage.read:/", "storage.modify:/home/alice", "wlcg.groups"}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	exchange := func(scopes []string, params url.Values) (*oauth2.Token, error) {
		params.Set("grant_type", testbed.GrantTokenExchange)
		params.Set("subject_token", subject)
		params.Set("subject_token_type", "urn:ietf:params:oauth:token-type:access_token")
		cc := &clientcredentials.Config{
			ClientID: client.ID, ClientSecret: client.Secret, TokenURL: tb.TokenURL(),
			AuthStyle: oauth2.AuthStyleInHeader, Scopes: scopes, EndpointParams: params,
		}
		return cc.Token(oauthCtx(t, tb))
	}
	tok, err := exchange([]string{"storage.read:/home/alice"}, url.Values{"audience": {"https://se.example"}})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Extra("issued_token_type") != "urn:ietf:params:oauth:token-type:access_token" || tok.RefreshToken != "" {
		t.Errorf("response: issued_token_type %v refresh %q", tok.Extra("issued_token_type"), tok.RefreshToken)
	}
	_, c := claims(t, tb, tok.AccessToken)
	_, sc := claims(t, tb, subject)
	if c["scope"] != "storage.read:/home/alice" || c["aud"] != "https://se.example" || c["sub"] != sc["sub"] || c["client_id"] != client.ID {
		t.Errorf("exchanged claims %v", c)
	}
	if _, err := exchange([]string{"storage.modify:/"}, url.Values{}); oauthErr(err) != "invalid_scope" {
		t.Errorf("widening exchange: %v, want invalid_scope", err)
	}
	tok, err = exchange([]string{"storage.read:/", "offline_access"}, url.Values{})
	if err != nil || tok.RefreshToken == "" {
		t.Errorf("exchange with offline_access: %v, refresh %q", err, tok.RefreshToken)
	}
	tb.Clock.Advance(time.Hour)
	if _, err := exchange(nil, url.Values{}); oauthErr(err) != "invalid_request" {
		t.Errorf("expired subject token: %v, want invalid_request", err)
	}
	noGrant := confidential(t, tb, testbed.ClientSpec{})
	cc := &clientcredentials.Config{ClientID: noGrant.ID, ClientSecret: noGrant.Secret, TokenURL: tb.TokenURL(), AuthStyle: oauth2.AuthStyleInHeader,
		EndpointParams: url.Values{"grant_type": {testbed.GrantTokenExchange}, "subject_token": {subject}, "subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}}}
	if _, err := cc.Token(oauthCtx(t, tb)); oauthErr(err) != "unauthorized_client" {
		t.Errorf("client without the exchange grant: %v, want unauthorized_client", err)
	}
}

func TestClientCredentialsWithOAuth2(t *testing.T) {
	t.Parallel()
	tb := testbed.Start(t, testbed.Options{})
	robot := confidential(t, tb, testbed.ClientSpec{Grants: []string{"client_credentials"}, Scopes: []string{"storage.read:/robot", "compute.read"}})
	cc := &clientcredentials.Config{ClientID: robot.ID, ClientSecret: robot.Secret, TokenURL: tb.TokenURL(), AuthStyle: oauth2.AuthStyleInHeader,
		Scopes: []string{"storage.read:/robot/in", "storage.read:/", "compute.read"}, EndpointParams: url.Values{"audience": {"https://ce.example"}}}
	tok, err := cc.Token(oauthCtx(t, tb))
	if err != nil {
		t.Fatal(err)
	}
	_, c := claims(t, tb, tok.AccessToken)
	if c["sub"] != robot.ID || c["scope"] != "storage.read:/robot/in compute.read" || c["aud"] != "https://ce.example" || tok.RefreshToken != "" {
		t.Errorf("claims %v refresh %q", c, tok.RefreshToken)
	}
	cc.ClientSecret = "wrong"
	if _, err := cc.Token(oauthCtx(t, tb)); oauthErr(err) != "invalid_client" {
		t.Errorf("wrong secret: %v, want invalid_client", err)
	}
	pub := &clientcredentials.Config{ClientID: testbed.DemoClientID, TokenURL: tb.TokenURL(), AuthStyle: oauth2.AuthStyleInParams}
	if _, err := pub.Token(oauthCtx(t, tb)); oauthErr(err) != "invalid_client" {
		t.Errorf("public client: %v, want invalid_client", err)
	}
}

func TestPasswordGrantWithOAuth2(t *testing.T) {
	t.Parallel()
	tb := testbed.Start(t, testbed.Options{})
	allowed := confidential(t, tb, testbed.ClientSpec{AllowPassword: true})
	refused := confidential(t, tb, testbed.ClientSpec{})
	ctx := oauthCtx(t, tb)
	tok, err := oauthConfig(tb, allowed, "openid", "offline_access", "storage.read:/").PasswordCredentialsToken(ctx, "alice", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" {
		t.Error("no refresh token with offline_access")
	}
	if _, c := claims(t, tb, tok.AccessToken); c["scope"] != "openid offline_access storage.read:/" {
		t.Errorf("scope %v", c["scope"])
	}
	if _, err := oauthConfig(tb, allowed).PasswordCredentialsToken(ctx, "alice", "wrong"); oauthErr(err) != "invalid_grant" {
		t.Errorf("wrong password: %v, want invalid_grant", err)
	}
	if _, err := oauthConfig(tb, refused).PasswordCredentialsToken(ctx, "alice", "alice-password"); oauthErr(err) != "unauthorized_client" {
		t.Errorf("client not flagged: %v, want unauthorized_client", err)
	}
	bad := allowed
	bad.Secret = "nope"
	if _, err := oauthConfig(tb, bad).PasswordCredentialsToken(ctx, "alice", "alice-password"); oauthErr(err) != "invalid_client" {
		t.Errorf("wrong client secret: %v, want invalid_client", err)
	}
}

func TestRevocation(t *testing.T) {
	t.Parallel()
	tb := testbed.Start(t, testbed.Options{})
	client := confidential(t, tb, testbed.ClientSpec{})
	other := confidential(t, tb, testbed.ClientSpec{})
	rt, _ := tb.RefreshTokenFor("alice", client.ID, []string{"storage.read:/"})

	if code, _ := post(t, tb, tb.RevocationURL(), other.ID, other.Secret, url.Values{"token": {rt}}); code == 200 {
		t.Error("another client revoked the refresh token")
	}
	if code, out := post(t, tb, tb.RevocationURL(), client.ID, client.Secret, url.Values{"token": {rt}, "token_type_hint": {"refresh_token"}}); code != 200 {
		t.Fatalf("revocation: %d %v", code, out)
	}
	code, out := post(t, tb, tb.TokenURL(), client.ID, client.Secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	if code != 400 || out["error"] != "invalid_grant" {
		t.Errorf("revoked refresh token: %d %v, want invalid_grant", code, out)
	}
	// Unknown tokens are fine (RFC 7009 2.2).
	if code, _ := post(t, tb, tb.RevocationURL(), client.ID, client.Secret, url.Values{"token": {"no-such-token"}}); code != 200 {
		t.Errorf("unknown token: %d", code)
	}
	// Access tokens: introspection reports them inactive afterwards.
	at, _ := tb.Mint(testbed.TokenSpec{User: "alice", ClientID: client.ID})
	post(t, tb, tb.RevocationURL(), client.ID, client.Secret, url.Values{"token": {at}})
	if _, o := post(t, tb, tb.IntrospectionURL(), client.ID, client.Secret, url.Values{"token": {at}}); o["active"] != false {
		t.Errorf("revoked access token introspects as %v", o)
	}
}

func TestUserinfoAndIntrospection(t *testing.T) {
	t.Parallel()
	tb := testbed.Start(t, testbed.Options{})
	at, _ := tb.IssueToken("alice", []string{"openid", "wlcg.groups:/wlcg/xfers"}, nil, 0)
	req, _ := http.NewRequest(http.MethodGet, tb.UserinfoURL(), nil)
	req.Header.Set("Authorization", "Bearer "+at)
	resp, err := tb.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("userinfo: %s", resp.Status)
	}
	client := confidential(t, tb, testbed.ClientSpec{})
	_, o := post(t, tb, tb.IntrospectionURL(), client.ID, client.Secret, url.Values{"token": {at}})
	if o["active"] != true || o["username"] != "alice" || !slices.Equal(strs(o["wlcg.groups"]), []string{"/wlcg/xfers"}) {
		t.Errorf("introspection %v", o)
	}
	req.Header.Set("Authorization", "Bearer garbage")
	resp, err = tb.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("userinfo with a bad token: %s", resp.Status)
	}
}

// TestUnencodedForm sends a body the way oidc-agent 4.2.6 does: values not
// URL-encoded.
func TestUnencodedForm(t *testing.T) {
	t.Parallel()
	tb := testbed.Start(t, testbed.Options{})
	client := confidential(t, tb, testbed.ClientSpec{})
	rt, _ := tb.RefreshTokenFor("alice", client.ID, []string{"openid", "offline_access", "storage.read:/"})
	body := "grant_type=refresh_token&refresh_token=" + rt + "&scope=openid storage.read:/data&audience=https://se.example:8443"
	code, out := postRaw(t, tb, tb.TokenURL(), client.ID, client.Secret, body)
	if code != 200 {
		t.Fatalf("%d %v", code, out)
	}
	if out["scope"] != "openid storage.read:/data" {
		t.Errorf("scope %v", out["scope"])
	}
	if _, c := claims(t, tb, str(out["access_token"])); c["aud"] != "https://se.example:8443" {
		t.Errorf("aud %v", c["aud"])
	}
}

func TestApproveNextFromAnotherGoroutine(t *testing.T) {
	t.Parallel()
	tb := testbed.Start(t, fast(testbed.Options{}))
	conf := oauthConfig(tb, testbed.ClientSpec{ID: testbed.DemoClientID}, "openid", "offline_access")
	ctx := oauthCtx(t, tb)
	approved := make(chan testbed.DeviceRequest, 1)
	go func() {
		r, err := tb.ApproveNext(ctx, "bob")
		if err != nil {
			t.Error(err)
		}
		approved <- r
	}()
	da, err := conf.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := conf.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatal(err)
	}
	if r := <-approved; r.UserCode != da.UserCode || r.ClientID != testbed.DemoClientID {
		t.Errorf("approved %+v, want %s", r, da.UserCode)
	}
	if _, c := claims(t, tb, tok.AccessToken); c["sub"] == "" {
		t.Error("no sub")
	}
	// Waiting gives up with the context.
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := tb.WaitForDeviceRequest(short); err == nil {
		t.Error("WaitForDeviceRequest returned without a request")
	}
	if _, err := tb.ApproveNext(ctx, "nobody"); err == nil {
		t.Error("ApproveNext for an unknown user succeeded")
	}
}

// TestProfileTOML checks the snippet against tokenhelper's own
// configuration types.
func TestProfileTOML(t *testing.T) {
	t.Parallel()
	tb := testbed.Start(t, testbed.Options{HTTPS: true, Storage: true})
	var cfg config.Config
	if err := toml.Unmarshal([]byte(tb.ProfileTOML("testbed", nil)), &cfg); err != nil {
		t.Fatal(err)
	}
	p := cfg.Profiles["testbed"]
	if p == nil || p.Backend != "native" || p.Issuer != tb.IssuerURL || p.CAFile != tb.CAFile || !slices.Equal(p.Scopes, testbed.DemoScopes) {
		t.Fatalf("profile %+v", p)
	}
	if len(cfg.Routes) != 1 || cfg.Routes[0].URL != tb.StorageURL || cfg.Routes[0].Profile != "testbed" {
		t.Errorf("routes %+v", cfg.Routes)
	}
	odd := `lab "one"\x`
	var cfg2 config.Config
	if err := toml.Unmarshal([]byte(tb.ProfileTOML(odd, []string{"a\tb"})), &cfg2); err != nil {
		t.Fatal(err)
	}
	if p := cfg2.Profiles[odd]; p == nil || !slices.Equal(p.Scopes, []string{"a\tb"}) || cfg2.Routes[0].Profile != odd {
		t.Errorf("odd names: %+v", cfg2)
	}
}
