package native

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tokenhelper/tokenhelper/helper"
)

const goodJWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"

func TestDecodeTokenAnswer(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		code   string      // OAuth error code
		kind   helper.Kind // other error
	}{
		{"ok", 200, `{"access_token":"` + goodJWT + `","token_type":"Bearer","expires_in":3600,"refresh_token":"r1"}`, "", 0},
		{"expires_in as a string", 200, `{"access_token":"abc","token_type":"bearer","expires_in":"60"}`, "", 0},
		{"oauth error", 400, `{"error":"invalid_grant","error_description":"gone"}`, "invalid_grant", 0},
		{"oauth error with 200", 200, `{"error":"authorization_pending"}`, "authorization_pending", 0},
		{"bare 401", 401, `Unauthorized`, "invalid_client", 0},
		{"proxy page", 502, `<html><body>Bad Gateway</body></html>`, "", helper.KindUnavailable},
		{"truncated JSON", 200, `{"access_token":"eyJ`, "", helper.KindUnavailable},
		{"no access token", 200, `{"token_type":"Bearer"}`, "", helper.KindUnavailable},
		{"DPoP token", 200, `{"access_token":"abc","token_type":"DPoP"}`, "", helper.KindUnavailable},
		{"token with a space", 200, `{"access_token":"a b"}`, "", helper.KindUnavailable},
		{"refresh token with a newline", 200, `{"access_token":"abc","refresh_token":"r\n1"}`, "", helper.KindUnavailable},
		{"error is not a string", 400, `{"error":42}`, "", helper.KindUnavailable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr, err := decodeTokenAnswer(c.status, []byte(c.body))
			var oe *oauthError
			switch {
			case c.code != "":
				if !errors.As(err, &oe) || oe.Code != c.code {
					t.Fatalf("err %v, want OAuth error %s", err, c.code)
				}
			case c.kind != 0:
				if helper.KindOf(err) != c.kind || errors.As(err, &oe) {
					t.Fatalf("err %v, want kind %v", err, c.kind)
				}
				if strings.Contains(err.Error(), "Bad Gateway</") || strings.Contains(err.Error(), "eyJ") {
					t.Errorf("error echoes the body: %v", err)
				}
			default:
				if err != nil || tr.AccessToken == "" {
					t.Fatalf("tr %+v err %v", tr, err)
				}
			}
		})
	}
	tr, _ := decodeTokenAnswer(200, []byte(`{"access_token":"abc","expires_in":"60"}`))
	if tr.ExpiresIn != 60 {
		t.Errorf("expires_in %d", tr.ExpiresIn)
	}
}

func TestParseDeviceAuthorization(t *testing.T) {
	ok := `{"device_code":"dc","user_code":"BCDF-GHJK","verification_uri":"https://iam.example.org/device",
		"verification_uri_complete":"https://iam.example.org/device?user_code=BCDF-GHJK","expires_in":600,"interval":5}`
	dc, err := parseDeviceAuthorization([]byte(ok))
	if err != nil || dc.lifetime != 10*time.Minute || dc.interval != 5*time.Second || dc.complete == "" {
		t.Fatalf("%+v %v", dc, err)
	}
	// Defaults and bounds.
	dc, err = parseDeviceAuthorization([]byte(`{"device_code":"dc","user_code":"X","verification_url":"https://iam.example.org/d","expires_in":99999999,"interval":0}`))
	if err != nil || dc.lifetime != maxDeviceLifetime || dc.interval != defaultPollInterval || dc.verify != "https://iam.example.org/d" {
		t.Fatalf("%+v %v", dc, err)
	}
	// A hostile provider: escape sequences in the code are dropped; a
	// javascript: or plain-http URI is refused; an unusable complete URI
	// is ignored.
	dc, err = parseDeviceAuthorization([]byte(`{"device_code":"dc","user_code":"AB\u001b[2JCD","verification_uri":"https://iam.example.org/d","verification_uri_complete":"javascript:alert(1)"}`))
	if err != nil || dc.userCode != "AB[2JCD" || dc.complete != "" {
		t.Fatalf("%+v %v", dc, err)
	}
	for _, bad := range []string{
		`{"device_code":"dc","user_code":"X","verification_uri":"http://evil.example.org/d"}`,
		`{"device_code":"dc","user_code":"X","verification_uri":"javascript:alert(1)"}`,
		`{"device_code":"d c","user_code":"X","verification_uri":"https://iam.example.org/d"}`,
		`{"device_code":"dc","user_code":"","verification_uri":"https://iam.example.org/d"}`,
		`not json`,
	} {
		if _, err := parseDeviceAuthorization([]byte(bad)); helper.KindOf(err) != helper.KindUnavailable {
			t.Errorf("%s: err %v", bad, err)
		}
	}
}

func TestParseAccount(t *testing.T) {
	good := map[string]any{
		"format": accountFormat, "version": accountVersion, "profile": "p", "issuer": "https://iam.example.org/",
		"endpoints": map[string]any{"token": "https://iam.example.org/token", "revocation": "http://elsewhere.example.org/revoke"},
		"client_id": "c1", "client_auth": authBasic, "created": "2026-11-05T09:00:00Z",
	}
	b, _ := json.Marshal(good)
	a, err := parseAccount(b)
	if err != nil {
		t.Fatal(err)
	}
	if a.Endpoints.Revocation != "" {
		t.Error("a plain-http endpoint elsewhere was kept")
	}
	for name, mod := range map[string]func(m map[string]any){
		"format":        func(m map[string]any) { m["format"] = "x" },
		"version":       func(m map[string]any) { m["version"] = 2 },
		"no client":     func(m map[string]any) { delete(m, "client_id") },
		"client id":     func(m map[string]any) { m["client_id"] = "a\nb" },
		"auth":          func(m map[string]any) { m["client_auth"] = "private_key_jwt" },
		"http token":    func(m map[string]any) { m["endpoints"] = map[string]any{"token": "http://iam.example.org/token"} },
		"missing token": func(m map[string]any) { m["endpoints"] = map[string]any{} },
	} {
		m := map[string]any{}
		for k, v := range good {
			m[k] = v
		}
		mod(m)
		b, _ := json.Marshal(m)
		if _, err := parseAccount(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := parseAccount(append(b, []byte(`{}`)...)); err == nil {
		t.Error("trailing data accepted")
	}
}

func TestParseMetadata(t *testing.T) {
	p := &provider{issuer: "https://iam.example.org/"}
	md, err := p.parseMetadata([]byte(`{"issuer":"https://iam.example.org","token_endpoint":"https://iam.example.org/token",
		"device_authorization_endpoint":"https://iam.example.org/devicecode","registration_endpoint":"http://iam.example.org/register",
		"grant_types_supported":["refresh_token"]}`), "x")
	if err != nil {
		t.Fatal(err)
	}
	if md.Endpoints.Registration != "" || md.Endpoints.DeviceAuthorization == "" || md.SupportsGrant(grantTokenExchange) {
		t.Errorf("metadata %+v", md)
	}
	if _, err := p.parseMetadata([]byte(`{"issuer":"https://other.example.org","token_endpoint":"https://iam.example.org/token"}`), "x"); helper.KindOf(err) != helper.KindConfig {
		t.Errorf("issuer mismatch: %v", err)
	}
	if _, err := p.parseMetadata([]byte(`{"issuer":"https://iam.example.org/","token_endpoint":"http://iam.example.org/token"}`), "x"); helper.KindOf(err) != helper.KindUnsafe {
		t.Errorf("http token endpoint: %v", err)
	}
	// Loopback http is fine (test beds).
	lp := &provider{issuer: "http://127.0.0.1:8080"}
	if _, err := lp.parseMetadata([]byte(`{"issuer":"http://127.0.0.1:8080","token_endpoint":"http://127.0.0.1:8080/token"}`), "x"); err != nil {
		t.Error(err)
	}
}

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                  "plain",
		"a\x1b[31mred\x1b[0m":    "a[31mred[0m",
		"bidi\u202eevil":         "bidievil",
		"  spaced\n":             "spaced",
		strings.Repeat("x", 300): strings.Repeat("x", 200) + "…",
	} {
		if got := clean(in, 200); got != want {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAuthStyleIsNeverGuessed(t *testing.T) {
	for _, c := range []struct {
		supported []string
		want      string
	}{
		{nil, authBasic},
		{[]string{"client_secret_post"}, authPost},
		{[]string{"private_key_jwt", "client_secret_basic", "client_secret_post"}, authBasic},
		{[]string{"private_key_jwt"}, authBasic},
	} {
		if got := authMethodFor(c.supported); got != c.want {
			t.Errorf("authMethodFor(%v) = %s, want %s", c.supported, got, c.want)
		}
	}
}

func FuzzDecodeTokenAnswer(f *testing.F) {
	f.Add(200, []byte(`{"access_token":"abc","token_type":"Bearer","expires_in":3600,"refresh_token":"r"}`))
	f.Add(400, []byte(`{"error":"slow_down"}`))
	f.Add(502, []byte(`<html>`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		tr, err := decodeTokenAnswer(status, body)
		if err == nil {
			if !helper.IsB64Token(tr.AccessToken) || (tr.RefreshToken != "" && !printableASCII(tr.RefreshToken)) || tr.ExpiresIn < 0 {
				t.Fatalf("accepted %+v", tr)
			}
			return
		}
		var oe *oauthError
		if errors.As(err, &oe) {
			checkShowable(t, oe.Code)
			checkShowable(t, oe.Description)
		}
	})
}

func FuzzParseDeviceAuthorization(f *testing.F) {
	f.Add([]byte(`{"device_code":"dc","user_code":"BCDF-GHJK","verification_uri":"https://iam.example.org/device","expires_in":600,"interval":5}`))
	f.Add([]byte(`{"device_code":"dc","user_code":"\u001b]8;;","verification_uri":"https://x/","interval":-4}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		dc, err := parseDeviceAuthorization(body)
		if err != nil {
			return
		}
		checkShowable(t, dc.userCode)
		checkShowable(t, dc.verify)
		checkShowable(t, dc.complete)
		if checkEndpoint(dc.verify) != nil || dc.lifetime <= 0 || dc.lifetime > maxDeviceLifetime || dc.interval <= 0 || dc.interval > maxPollInterval {
			t.Fatalf("accepted %+v", dc)
		}
	})
}

func FuzzParseAccount(f *testing.F) {
	f.Add([]byte(`{"format":"tokenhelper-native-account","version":1,"profile":"p","issuer":"https://i/","endpoints":{"token":"https://i/t"},"client_id":"c","client_auth":"none"}`))
	f.Add([]byte(`{"format":"tokenhelper-native-account","version":1,"secrets":{"refresh_token":"!!"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := parseAccount(data)
		if err != nil {
			return
		}
		if checkEndpoint(a.Endpoints.Token) != nil || !printableASCII(a.ClientID) {
			t.Fatalf("accepted %+v", a)
		}
	})
}

// checkShowable fails when s would be unsafe on a terminal.
func checkShowable(t *testing.T, s string) {
	t.Helper()
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			t.Fatalf("%q holds control character %U", s, r)
		}
	}
	if !utf8.ValidString(s) {
		t.Fatalf("%q is not valid UTF-8", s)
	}
}

// A token endpoint that redirects does not get the refresh token resent
// elsewhere (307/308 would replay the body).
func TestNoRedirectWithSecrets(t *testing.T) {
	hit := false
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hit = true }))
	defer elsewhere.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/token", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	p := &provider{hc: srv.Client(), issuer: srv.URL, now: time.Now}
	_, err := p.token(context.Background(), srv.URL+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"RT"}}, &clientAuth{ID: "c", Secret: "s", Method: authBasic})
	if helper.KindOf(err) != helper.KindUnavailable || !strings.Contains(err.Error(), "HTTP 307") {
		t.Errorf("err %v", err)
	}
	if hit {
		t.Error("the request was replayed to the redirect target")
	}
}
