package native

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
)

// FuzzParseMetadata feeds provider discovery documents (OpenID Connect
// Discovery 1.0, RFC 8414) to the parser: it never panics, errors are
// one-line typed errors, and what it accepts has an https (or loopback
// http) token endpoint and no unusable optional endpoint.
func FuzzParseMetadata(f *testing.F) {
	f.Add([]byte(`{"issuer":"https://iam.example.org/","token_endpoint":"https://iam.example.org/token","device_authorization_endpoint":"https://iam.example.org/devicecode","registration_endpoint":"https://iam.example.org/iam/api/client-registration","revocation_endpoint":"https://iam.example.org/revoke","grant_types_supported":["refresh_token","urn:ietf:params:oauth:grant-type:device_code"],"token_endpoint_auth_methods_supported":["client_secret_basic"],"scopes_supported":["openid","offline_access"]}`))
	f.Add([]byte(`{"issuer":"https://iam.example.org","token_endpoint":"http://iam.example.org/token"}`))
	f.Add([]byte(`{"issuer":"https://other.example.org/","token_endpoint":"https://other.example.org/token"}`))
	f.Add([]byte(`{"issuer":"https://iam.example.org/","token_endpoint":"https://iam.example.org/token","revocation_endpoint":"javascript:alert(1)","registration_endpoint":"http://127.0.0.1:1/r"}`))
	f.Add([]byte(`{"issuer":"https://iam.example.org/\u001b[2J","token_endpoint":""}`))
	f.Add([]byte(`<html>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p := &provider{issuer: "https://iam.example.org/", now: time.Now}
		m, err := p.parseMetadata(body, "https://iam.example.org/.well-known/openid-configuration")
		if err != nil {
			var he *helper.Error
			if !errors.As(err, &he) || he.Msg == "" || strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("error %#v", err)
			}
			for _, r := range err.Error() {
				if r < 0x20 || r == 0x7f {
					t.Fatalf("error holds control character %U: %q", r, err.Error())
				}
			}
			return
		}
		if checkEndpoint(m.Endpoints.Token) != nil {
			t.Fatalf("accepted token endpoint %q", m.Endpoints.Token)
		}
		for _, e := range []string{m.Endpoints.DeviceAuthorization, m.Endpoints.Registration, m.Endpoints.Revocation} {
			if e != "" && checkEndpoint(e) != nil {
				t.Fatalf("kept endpoint %q", e)
			}
		}
		if !sameIssuer(m.Issuer, p.issuer) {
			t.Fatalf("accepted issuer %q", m.Issuer)
		}
	})
}
