package jwtinfo

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenhelper/tokenhelper/helper"
)

func TestParseRejects(t *testing.T) {
	good := sign(t, jwt.SigningMethodRS256, genKeys(t).rsa, "rsa1", wlcgClaims("https://iam.example"), nil)
	parts := strings.Split(good, ".")
	enc := base64.RawURLEncoding.EncodeToString
	for _, c := range []struct {
		name, in string
		kind     helper.Kind
		msg      string // substring of the message
	}{
		{"empty", "", helper.KindNoToken, "empty"},
		{"only whitespace", " \t\r\n\v\f", helper.KindNoToken, "empty"},
		{"bearer prefix", "Bearer " + good, helper.KindInvalidToken, `starts with "Bearer "`},
		{"header line", "Authorization: Bearer " + good, helper.KindInvalidToken, "Authorization"},
		{"json document", `{"access_token":"` + good + `"}`, helper.KindInvalidToken, "JSON document"},
		{"quoted", `"` + good + `"`, helper.KindInvalidToken, "quoted"},
		{"two tokens", good + "\n" + good, helper.KindInvalidToken, "whitespace at byte"},
		{"wrapped", good[:40] + " " + good[40:], helper.KindInvalidToken, "whitespace at byte 41 of"},
		{"control", good[:10] + "\x00" + good[10:], helper.KindInvalidToken, "control character at byte 11"},
		{"non-ascii", "jéton" + good, helper.KindInvalidToken, "non-ASCII character at byte 2"},
		{"percent", good[:5] + "%" + good[5:], helper.KindInvalidToken, "a character at byte 6"},
		{"inner padding", good[:5] + "=" + good[5:], helper.KindInvalidToken, `"=" padding at byte 6`},
		{"truncated jwt", parts[0] + "." + parts[1], helper.KindInvalidToken, "malformed JWT: it has 2 dot-separated parts"},
		{"four parts", good + ".x", helper.KindInvalidToken, "4 dot-separated parts"},
		{"payload not b64url", parts[0] + ".a+b/." + parts[2], helper.KindInvalidToken, "payload (second part) is not base64url"},
		{"payload not object", parts[0] + "." + enc([]byte(`["x"]`)) + "." + parts[2], helper.KindInvalidToken, "not a JSON object"},
		{"payload null", parts[0] + "." + enc([]byte(`null`)) + "." + parts[2], helper.KindInvalidToken, "not a JSON object"},
		{"payload bad json", parts[0] + "." + enc([]byte(`{"a":`)) + "." + parts[2], helper.KindInvalidToken, "not a JSON object"},
		{"signature padded", good + "==", helper.KindInvalidToken, "signature (third part) is not base64url"},
	} {
		t.Run(c.name, func(t *testing.T) {
			info, err := Parse(c.in)
			if err == nil {
				t.Fatalf("Parse accepted it: %v", info)
			}
			var he *helper.Error
			if !errors.As(err, &he) || he.Kind != c.kind {
				t.Fatalf("error %v (kind %v), want kind %v", err, helper.KindOf(err), c.kind)
			}
			if !strings.Contains(he.Msg, c.msg) {
				t.Errorf("message %q does not say %q", he.Msg, c.msg)
			}
			if he.Fix == "" {
				t.Errorf("no Fix in %q", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("message is not one line: %q", err)
			}
			for _, p := range parts {
				if strings.Contains(err.Error(), p) {
					t.Errorf("error echoes part of the token: %q", err)
				}
			}
		})
	}
}

func TestParseFormats(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	for _, c := range []struct {
		name, in string
		want     Format
	}{
		{"plain opaque", "4f1e7c2a9b8d4e6fa0b1c2d3e4f5a6b7", FormatOpaque},
		{"opaque with dots", "abc.def.ghi", FormatOpaque},
		{"opaque with padding", "c2VjcmV0IHRva2Vu==", FormatOpaque},
		{"json head without alg, 2 parts", enc([]byte(`{"x":1}`)) + ".abc", FormatOpaque},
		{"jwt", unsigned(`{"alg":"RS256","kid":"k"}`, `{"sub":"x"}`), FormatJWT},
		{"jwt unknown alg", unsigned(`{"alg":"XX999"}`, `{"sub":"x"}`), FormatJWT},
		{"jwt no alg", unsigned(`{"typ":"JWT"}`, `{"sub":"x"}`), FormatJWT},
		{"jwt empty signature", strings.TrimSuffix(unsigned(`{"alg":"none"}`, `{}`), enc([]byte("not a real signature"))), FormatJWT},
		{"jwe", unsigned(`{"alg":"dir","enc":"A128GCM"}`, `x`) + ".aXY.dGFn", FormatJWE},
		{"trailing newline", unsigned(`{"alg":"ES256"}`, `{}`) + "\r\n", FormatJWT},
	} {
		t.Run(c.name, func(t *testing.T) {
			info, err := Parse(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if info.Format != c.want || info.IsJWT != (c.want == FormatJWT) {
				t.Errorf("format %q IsJWT %v, want %q", info.Format, info.IsJWT, c.want)
			}
			if info.Raw != strings.TrimSpace(c.in) || info.Length != len(info.Raw) {
				t.Errorf("Raw/Length not the trimmed token")
			}
		})
	}
}

func TestParseClaims(t *testing.T) {
	iat := time.Date(2026, 4, 23, 9, 0, 19, 0, time.UTC)
	for _, c := range []struct {
		name, payload string
		check         func(t *testing.T, i *Info)
	}{
		{"aud string", `{"aud":"https://a"}`, func(t *testing.T, i *Info) {
			eq(t, "aud", i.Audiences, []string{"https://a"})
		}},
		{"aud array", `{"aud":["https://a","https://b"]}`, func(t *testing.T, i *Info) {
			eq(t, "aud", i.Audiences, []string{"https://a", "https://b"})
		}},
		{"scope string", `{"scope":" storage.read:/  openid "}`, func(t *testing.T, i *Info) {
			eq(t, "scope", i.Scopes, []string{"storage.read:/", "openid"})
		}},
		{"scp array", `{"scp":["storage.read:/","openid"]}`, func(t *testing.T, i *Info) {
			eq(t, "scp", i.Scopes, []string{"storage.read:/", "openid"})
			if len(i.problems) != 0 {
				t.Errorf("scp as an array is fine, got %v", i.problems)
			}
		}},
		{"scope wins over scp", `{"scope":"a","scp":["b"]}`, func(t *testing.T, i *Info) {
			eq(t, "scope", i.Scopes, []string{"a"})
		}},
		{"wlcg.groups", `{"wlcg.groups":["/cms","/cms/x"],"groups":["y"]}`, func(t *testing.T, i *Info) {
			eq(t, "groups", i.Groups, []string{"/cms", "/cms/x"})
		}},
		{"groups", `{"groups":["a","b"]}`, func(t *testing.T, i *Info) {
			eq(t, "groups", i.Groups, []string{"a", "b"})
		}},
		{"azp over client_id", `{"azp":"a","client_id":"c"}`, func(t *testing.T, i *Info) {
			eq(t, "client", []string{i.ClientID}, []string{"a"})
		}},
		{"client_id", `{"client_id":"c"}`, func(t *testing.T, i *Info) {
			eq(t, "client", []string{i.ClientID}, []string{"c"})
		}},
		{"integer dates", fmt.Sprintf(`{"iat":%d,"nbf":%d,"exp":%d}`, iat.Unix(), iat.Unix(), iat.Unix()+3600), func(t *testing.T, i *Info) {
			if !i.IssuedAt.Equal(iat) || !i.NotBefore.Equal(iat) || !i.Expiry.Equal(iat.Add(time.Hour)) {
				t.Errorf("dates %v %v %v", i.IssuedAt, i.NotBefore, i.Expiry)
			}
		}},
		{"float and exponent dates", `{"iat":1776934819.5,"exp":1.7769384190e9}`, func(t *testing.T, i *Info) {
			if !i.IssuedAt.Equal(iat.Add(500*time.Millisecond)) || !i.Expiry.Equal(iat.Add(time.Hour)) {
				t.Errorf("dates %v %v", i.IssuedAt, i.Expiry)
			}
		}},
		{"bad dates", `{"iat":-1,"nbf":"soon","exp":1e400}`, func(t *testing.T, i *Info) {
			if !i.IssuedAt.IsZero() || !i.NotBefore.IsZero() || !i.Expiry.IsZero() {
				t.Errorf("unusable dates kept: %v %v %v", i.IssuedAt, i.NotBefore, i.Expiry)
			}
			if len(i.problems) != 3 {
				t.Errorf("want 3 problems, got %v", i.problems)
			}
		}},
		{"other fields", `{"iss":"https://i","sub":"s","preferred_username":"u","jti":"j","acr":"a","eduperson_assurance":"x","wlcg.ver":"1.0"}`, func(t *testing.T, i *Info) {
			eq(t, "fields", []string{i.Issuer, i.Subject, i.Username, i.JTI, i.ACR, i.WLCGVersion}, []string{"https://i", "s", "u", "j", "a", "1.0"})
			eq(t, "assurance", i.Assurance, []string{"x"})
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			info, err := Parse(unsigned(`{"alg":"RS256","kid":"k","typ":"at+jwt"}`, c.payload))
			if err != nil {
				t.Fatal(err)
			}
			if info.Header.Alg != "RS256" || info.Header.KeyID != "k" || info.Header.Type != "at+jwt" {
				t.Errorf("header %+v", info.Header)
			}
			c.check(t, info)
		})
	}
}

func eq(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

// Info must never print the raw token, whatever verb is used.
func TestInfoDoesNotLeak(t *testing.T) {
	raw := sign(t, jwt.SigningMethodRS256, genKeys(t).rsa, "rsa1", wlcgClaims("https://iam.example"), nil)
	info, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		assertNoSecret(t, verb+" of *Info", fmt.Sprintf(verb, info), raw)
		assertNoSecret(t, verb+" of Info", fmt.Sprintf(verb, *info), raw)
	}
	assertNoSecret(t, "json.Marshal(Info)", mustJSON(t, info), raw)
}
