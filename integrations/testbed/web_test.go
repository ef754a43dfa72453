package testbed_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/integrations/testbed"
)

// fetch sends a request and returns the status and body.
func fetch(t *testing.T, tb *testbed.Testbed, method, u string, header http.Header, body io.Reader) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := tb.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var formHeader = http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}

func TestDevicePage(t *testing.T) {
	t.Parallel()
	tb := testbed.Start(t, fast(testbed.Options{HTTPS: true}))
	conf := oauthConfig(tb, testbed.ClientSpec{ID: testbed.DemoClientID}, "openid", "offline_access", "storage.read:/", "storage.modify:/home/bob")
	ctx := oauthCtx(t, tb)
	session := regexp.MustCompile(`name="session" value="([^"]+)"`)

	da, err := conf.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	code, page := fetch(t, tb, "GET", da.VerificationURIComplete, nil, nil)
	if code != 200 || !strings.Contains(page, `value="`+da.UserCode+`"`) {
		t.Fatalf("device page: %d, code not prefilled:\n%s", code, page)
	}
	login := func(user, pw, userCode string) (int, string) {
		form := url.Values{"user_code": {userCode}, "username": {user}, "password": {pw}}
		return fetch(t, tb, "POST", tb.DevicePageURL(), formHeader, strings.NewReader(form.Encode()))
	}
	if code, page := login("alice", "wrong", da.UserCode); code != 401 || !strings.Contains(page, "wrong password") {
		t.Errorf("wrong password: %d", code)
	}
	if code, _ := login("alice", "alice-password", "XXXX-XXXX"); code != 400 {
		t.Errorf("unknown code: %d", code)
	}
	// Codes are accepted in any case, with or without the dash.
	code, page = login("alice", "alice-password", strings.ToLower(strings.ReplaceAll(da.UserCode, "-", "")))
	m := session.FindStringSubmatch(page)
	if code != 200 || m == nil {
		t.Fatalf("consent page: %d\n%s", code, page)
	}
	if !strings.Contains(page, "<code>storage.read:/</code>") || !strings.Contains(page, "dropped") {
		t.Errorf("consent page does not show granted and dropped scopes:\n%s", page)
	}
	decide := func(sess, decision string) int {
		form := url.Values{"session": {sess}, "decision": {decision}}
		code, _ := fetch(t, tb, "POST", tb.DevicePageURL(), formHeader, strings.NewReader(form.Encode()))
		return code
	}
	if code := decide(m[1], "approve"); code != 200 {
		t.Fatalf("approve: %d", code)
	}
	if code := decide(m[1], "approve"); code != 400 {
		t.Errorf("reused approval form: %d", code)
	}
	tok, err := conf.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatal(err)
	}
	if _, c := claims(t, tb, tok.AccessToken); c["scope"] != "openid offline_access storage.read:/" {
		t.Errorf("scope %v", c["scope"])
	}

	// Deny through the page.
	da, err = conf.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, page = login("bob", "bob-password", da.UserCode)
	m = session.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no consent form:\n%s", page)
	}
	decide(m[1], "deny")
	if _, err := conf.DeviceAccessToken(ctx, da); oauthErr(err) != "access_denied" {
		t.Errorf("denied on the page: %v", err)
	}

	code, page = fetch(t, tb, "GET", tb.IssuerURL+"/", nil, nil)
	if code != 200 || !strings.Contains(page, "/device") {
		t.Errorf("index page: %d", code)
	}
}

func TestAdminAPI(t *testing.T) {
	t.Parallel()
	tb := testbed.Start(t, fast(testbed.Options{}))
	auth := http.Header{"Authorization": {"Bearer " + tb.AdminToken()}, "Content-Type": {"application/x-www-form-urlencoded"}}
	admin := func(method, path, body string) (int, map[string]any) {
		code, out := fetch(t, tb, method, tb.AdminURL()+path, auth, strings.NewReader(body))
		var m map[string]any
		_ = json.Unmarshal([]byte(out), &m) // m stays nil for a body that is not JSON
		return code, m
	}
	if code, _ := fetch(t, tb, "GET", tb.AdminURL()+"/counters", nil, nil); code != 401 {
		t.Errorf("admin without token: %d", code)
	}
	b, err := os.ReadFile(filepath.Join(tb.Dir, "admin-token"))
	if err != nil || strings.TrimSpace(string(b)) != tb.AdminToken() {
		t.Errorf("admin-token file: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(tb.Dir, "admin-token")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("admin-token mode: %v %v", fi.Mode(), err)
	}
	info, err := testbed.ReadInfo(tb.Dir)
	if err != nil || info.Issuer != tb.IssuerURL || info.AdminURL != tb.AdminURL() {
		t.Errorf("ReadInfo: %+v %v", info, err)
	}

	conf := oauthConfig(tb, testbed.ClientSpec{ID: testbed.DemoClientID}, "openid")
	ctx := oauthCtx(t, tb)
	da, err := conf.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	code, out := fetch(t, tb, "GET", tb.AdminURL()+"/device/pending", auth, nil)
	if code != 200 || !strings.Contains(out, da.UserCode) {
		t.Errorf("pending: %d %s", code, out)
	}
	if code, m := admin("POST", "/device/approve", url.Values{"user_code": {da.UserCode}, "user": {"nobody"}}.Encode()); code != 400 {
		t.Errorf("approve for an unknown user: %d %v", code, m)
	}
	if code, m := admin("POST", "/device/approve", url.Values{"user_code": {da.UserCode}, "user": {"alice"}}.Encode()); code != 200 || m["status"] != "approved" {
		t.Errorf("approve: %d %v", code, m)
	}
	if code, _ := admin("POST", "/device/approve", url.Values{"user_code": {da.UserCode}, "user": {"alice"}}.Encode()); code != 409 {
		t.Errorf("second approval: %d, want 409", code)
	}
	if code, _ := admin("POST", "/device/deny", url.Values{"user_code": {"NOPE-NOPE"}}.Encode()); code != 404 {
		t.Errorf("deny unknown code: %d, want 404", code)
	}
	if _, err := conf.DeviceAccessToken(ctx, da); err != nil {
		t.Fatal(err)
	}

	// approve-next waits for the request a client makes meanwhile.
	done := make(chan map[string]any, 1)
	go func() {
		_, m := admin("POST", "/device/approve-next", url.Values{"user": {"bob"}, "wait": {"20s"}}.Encode())
		done <- m
	}()
	da, err = conf.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m := <-done; m["user_code"] != da.UserCode {
		t.Errorf("approve-next: %v, want %s", m, da.UserCode)
	}
	if code, _ := admin("POST", "/device/approve-next", url.Values{"user": {"bob"}, "wait": {"50ms"}}.Encode()); code != 408 {
		t.Errorf("approve-next without a request: %d, want 408", code)
	}

	before := tb.Clock.Now()
	if code, m := admin("POST", "/clock/advance", "by=2h"); code != 200 || m["now"] == nil {
		t.Errorf("advance: %d %v", code, m)
	}
	if d := tb.Clock.Now().Sub(before); d < 2*time.Hour {
		t.Errorf("clock moved %v", d)
	}

	jsonHeader := http.Header{"Authorization": auth["Authorization"], "Content-Type": {"application/json"}}
	code, _ = fetch(t, tb, "POST", tb.AdminURL()+"/faults", jsonHeader, bytes.NewReader([]byte(`{"endpoint":"discovery","kind":"status","status":504,"count":1}`)))
	if code != 200 {
		t.Fatalf("inject: %d", code)
	}
	if code, _ := fetch(t, tb, "GET", tb.DiscoveryURL(), nil, nil); code != 504 {
		t.Errorf("injected through the API: %d", code)
	}
	code, _ = fetch(t, tb, "POST", tb.AdminURL()+"/faults", jsonHeader, bytes.NewReader([]byte(`{"endpoint":"discovery","kind":"delay","delay":"forever"}`)))
	if code != 400 {
		t.Errorf("bad delay: %d", code)
	}
	code, out = fetch(t, tb, "GET", tb.AdminURL()+"/counters", auth, nil)
	var c testbed.Counters
	if err := json.Unmarshal([]byte(out), &c); err != nil || code != 200 || c.Requests[testbed.EndpointDiscovery] != 1 || c.Faults[testbed.EndpointDiscovery] != 1 {
		t.Errorf("counters: %d %s", code, out)
	}
	code, out = fetch(t, tb, "POST", tb.AdminURL()+"/clients", jsonHeader, strings.NewReader(`{"id":"scripted","allow_password":true}`))
	if code != 201 || !strings.Contains(out, `"client_secret"`) {
		t.Errorf("admin client: %d %s", code, out)
	}
	if spec, ok := tb.Client("scripted"); !ok || !spec.AllowPassword {
		t.Errorf("client %+v", spec)
	}
}

func TestRegistration(t *testing.T) {
	t.Parallel()
	tb := testbed.Start(t, fast(testbed.Options{}))
	req := `{"client_name":"oidc-agent:test","grant_types":["refresh_token","urn:ietf:params:oauth:grant-type:device_code","password"],
		"response_types":["token"],"scope":"openid offline_access storage.read:/","token_endpoint_auth_method":"client_secret_basic",
		"redirect_uris":["http://localhost:4242"]}`
	code, body := fetch(t, tb, "POST", tb.RegistrationURL(), http.Header{"Content-Type": {"application/json"}}, strings.NewReader(req))
	var reg map[string]any
	if err := json.Unmarshal([]byte(body), &reg); err != nil || code != 201 {
		t.Fatalf("register: %d %s", code, body)
	}
	for _, k := range []string{"client_id", "client_secret", "registration_access_token", "registration_client_uri"} {
		if str(reg[k]) == "" {
			t.Errorf("registration response lacks %s: %v", k, reg)
		}
	}
	if g := strs(reg["grant_types"]); len(g) != 2 {
		t.Errorf("grant_types %v: password must not be granted by self-registration", g)
	}
	clientURI, regToken := str(reg["registration_client_uri"]), str(reg["registration_access_token"])

	// The client works: device flow, refresh; scopes outside its
	// registration are dropped.
	client := testbed.ClientSpec{ID: str(reg["client_id"]), Secret: str(reg["client_secret"])}
	tok := loginAlice(t, tb, oauthConfig(tb, client, "openid", "offline_access", "storage.read:/", "storage.create:/"),
		oauth2SetSecret(client.Secret))
	if _, c := claims(t, tb, tok.AccessToken); c["scope"] != "openid offline_access storage.read:/" {
		t.Errorf("scope %v", c["scope"])
	}
	// RFC 7592 read.
	code, body = fetch(t, tb, "GET", clientURI, http.Header{"Authorization": {"Bearer " + regToken}}, nil)
	if code != 200 || !strings.Contains(body, client.ID) {
		t.Errorf("read: %d %s", code, body)
	}
	if code, _ := fetch(t, tb, "GET", clientURI, http.Header{"Authorization": {"Bearer wrong"}}, nil); code != 401 {
		t.Errorf("read with a wrong token: %d", code)
	}
	if code, _ := fetch(t, tb, "PUT", clientURI, http.Header{"Authorization": {"Bearer " + regToken}}, strings.NewReader("{}")); code != 405 {
		t.Errorf("update: %d, want 405", code)
	}
	// RFC 7592 delete: the registration and its refresh tokens are gone.
	if code, _ := fetch(t, tb, "DELETE", clientURI, http.Header{"Authorization": {"Bearer " + regToken}}, nil); code != 204 {
		t.Errorf("delete: %d", code)
	}
	if code, _ := fetch(t, tb, "GET", clientURI, http.Header{"Authorization": {"Bearer " + regToken}}, nil); code != 401 {
		t.Errorf("read after delete: %d", code)
	}
	code, out := post(t, tb, tb.TokenURL(), client.ID, client.Secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
	if code == 200 || out["error"] != "invalid_client" {
		t.Errorf("refresh with a deleted client: %d %v", code, out)
	}

	for _, bad := range []string{`not json`, `{"token_endpoint_auth_method":"private_key_jwt"}`, `{"grant_types":["urn:example:magic"]}`, `{"grant_types":["password"]}`} {
		code, body := fetch(t, tb, "POST", tb.RegistrationURL(), http.Header{"Content-Type": {"application/json"}}, strings.NewReader(bad))
		if code != 400 || !strings.Contains(body, "invalid_client_metadata") {
			t.Errorf("register %s: %d %s", bad, code, body)
		}
	}
	// A public client (no secret) can be registered too.
	code, body = fetch(t, tb, "POST", tb.RegistrationURL(), http.Header{"Content-Type": {"application/json"}}, strings.NewReader(`{"token_endpoint_auth_method":"none"}`))
	if code != 201 || strings.Contains(body, "client_secret\"") {
		t.Errorf("public registration: %d %s", code, body)
	}
}

func TestPersistentDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tb1, err := testbed.New(testbed.Options{HTTPS: true, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ca1, _ := os.ReadFile(tb1.CAFile)
	if tb, err := testbed.New(testbed.Options{Dir: dir}); err == nil {
		tb.Close()
		t.Error("a second test bed started on a directory in use")
	} else if !strings.Contains(err.Error(), "already runs") {
		t.Errorf("second test bed on the same dir: %v", err)
	}
	if _, err := testbed.ReadInfo(dir); err != nil {
		t.Errorf("the refused test bed removed the running one's testbed.json: %v", err)
	}
	tok, _ := tb1.IssueToken("alice", []string{"storage.read:/"}, nil, 0)
	tb1.Close()
	if _, err := os.Stat(filepath.Join(dir, testbed.InfoFileName)); err == nil {
		t.Error("testbed.json left behind by Close")
	}
	tb2, err := testbed.New(testbed.Options{HTTPS: true, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer tb2.Close()
	ca2, _ := os.ReadFile(tb2.CAFile)
	if !bytes.Equal(ca1, ca2) {
		t.Error("CA changed across restarts with the same Dir")
	}
	h1, _ := claims(t, tb2, tok) // verifies with tb2's JWKS
	if h1.KeyID == "" {
		t.Error("no kid")
	}
	for _, f := range []string{"ca-key.pem", "signing-key.pem", "server-key.pem", "admin-token", testbed.InfoFileName} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: %v %v", f, fi.Mode(), err)
		}
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v", fi.Mode())
	}
	// A key file others can read is refused.
	if err := os.Chmod(filepath.Join(dir, "signing-key.pem"), 0o644); err != nil {
		t.Fatal(err)
	}
	if tb3, err := testbed.New(testbed.Options{Dir: dir}); err == nil {
		tb3.Close()
		t.Error("a world-readable signing key was used")
	}
}
