package testbed_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/tokenhelper/tokenhelper/integrations/testbed"
)

func TestMain(m *testing.M) {
	// zitadel op logs every route it registers at Info; keep test output
	// for what matters.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	os.Exit(m.Run())
}

// fast returns options for quick device flows.
func fast(o testbed.Options) testbed.Options {
	o.Lifetimes.PollInterval = time.Second
	return o
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// oauthCtx makes x/oauth2 use the test bed's client.
func oauthCtx(t *testing.T, tb *testbed.Testbed) context.Context {
	return context.WithValue(ctxT(t, 30*time.Second), oauth2.HTTPClient, tb.HTTPClient())
}

// confidential registers a confidential client with the given grants.
func confidential(t *testing.T, tb *testbed.Testbed, spec testbed.ClientSpec) testbed.ClientSpec {
	t.Helper()
	spec, err := tb.RegisterClient(spec)
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func oauthConfig(tb *testbed.Testbed, c testbed.ClientSpec, scopes ...string) *oauth2.Config {
	return &oauth2.Config{ClientID: c.ID, ClientSecret: c.Secret, Endpoint: tb.OAuth2Endpoint(), Scopes: scopes}
}

// claims verifies a JWT against the keys published at the test bed's
// jwks_uri (found through discovery) and returns its header and claims.
func claims(t *testing.T, tb *testbed.Testbed, raw string) (jose.Header, map[string]any) {
	t.Helper()
	var disc struct {
		JWKSURI string `json:"jwks_uri"`
	}
	getJSON(t, tb, tb.IssuerURL+"/.well-known/openid-configuration", &disc)
	var keys jose.JSONWebKeySet
	getJSON(t, tb, disc.JWKSURI, &keys)
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("not a JWS: %v", err)
	}
	h := jws.Signatures[0].Header
	ks := keys.Key(h.KeyID)
	if len(ks) != 1 {
		t.Fatalf("kid %q not in the JWKS", h.KeyID)
	}
	payload, err := jws.Verify(ks[0].Key)
	if err != nil {
		t.Fatalf("signature: %v", err)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return h, c
}

func getJSON(t *testing.T, tb *testbed.Testbed, u string, v any) {
	t.Helper()
	resp, err := tb.HTTPClient().Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

// post sends a form, with Basic client authentication when id is set, and
// returns the status and the decoded JSON body.
func post(t *testing.T, tb *testbed.Testbed, u string, id, secret string, form url.Values) (int, map[string]any) {
	t.Helper()
	return postRaw(t, tb, u, id, secret, form.Encode())
}

func postRaw(t *testing.T, tb *testbed.Testbed, u string, id, secret string, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	resp, err := tb.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(b) > 0 && json.Unmarshal(b, &out) != nil {
		t.Fatalf("POST %s: %s: not JSON: %.200q", u, resp.Status, b)
	}
	return resp.StatusCode, out
}

// oauthErr returns the OAuth error code of an x/oauth2 error.
func oauthErr(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

func str(v any) string { s, _ := v.(string); return s }

func num(v any) int64 { f, _ := v.(float64); return int64(f) }

func strs(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, x := range l {
		out = append(out, str(x))
	}
	return out
}

// loginAlice runs a device flow with x/oauth2 for alice and returns the
// token.
func loginAlice(t *testing.T, tb *testbed.Testbed, conf *oauth2.Config, opts ...oauth2.AuthCodeOption) *oauth2.Token {
	t.Helper()
	ctx := oauthCtx(t, tb)
	da, err := conf.DeviceAuth(ctx, opts...)
	if err != nil {
		t.Fatalf("DeviceAuth: %v", err)
	}
	if err := tb.ApproveDevice(da.UserCode, "alice"); err != nil {
		t.Fatal(err)
	}
	tok, err := conf.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatalf("DeviceAccessToken: %v", err)
	}
	return tok
}

// oauth2SetSecret adds client authentication to DeviceAuth, which
// x/oauth2 does not send (golang/oauth2#685).
func oauth2SetSecret(secret string) oauth2.AuthCodeOption {
	return oauth2.SetAuthURLParam("client_secret", secret)
}

// oauth2Audience asks for an audience in DeviceAuth (IAM accepts it).
func oauth2Audience(aud string) oauth2.AuthCodeOption {
	return oauth2.SetAuthURLParam("audience", aud)
}

// requireTools skips the test when a tool is missing, or fails it when
// CI=true (the CI image must have it).
func requireTools(t *testing.T, pkg string, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not found (install the Debian package %s)", tool, pkg)
			}
			t.Skipf("%s not found (install the Debian package %s)", tool, pkg)
		}
	}
}
