package jwtinfo

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Paris without depending on the machine's zoneinfo
	"unicode"

	"github.com/golang-jwt/jwt/v5"
)

// renderCase is one token shown by Render (and JSON) against golden files.
type renderCase struct {
	name  string
	token func(t *testing.T) string
}

func renderCases() []renderCase {
	return []renderCase{
		{"iam-aud-string", func(t *testing.T) string {
			// Like seed 000 (`lsstfr token`): LSST France IAM, 72 h lifetime.
			k := genKeys(t)
			iat := now.Add(-8*time.Minute - 17*time.Second)
			return sign(t, jwt.SigningMethodRS256, k.rsa, "rsa1", jwt.MapClaims{
				"iss":       "https://lsst.iam.in2p3.fr/",
				"wlcg.ver":  "1.0",
				"sub":       "abcdefgh-1234-5678-a1b2-cd3fg4hi5jK6",
				"client_id": "1234z987-6789-987Y-ac65-78hv5c6w23bp",
				"aud":       AnyAudience,
				"scope":     "entitlements storage.modify:/users address phone openid profile storage.read:/ eduperson_scoped_affiliation eduperson_assurance eduperson_entitlement email storage.modify:/groups",
				"iat":       unix(iat),
				"nbf":       unix(iat),
				"exp":       unix(iat.Add(72 * time.Hour)),
				"jti":       "3c0e7a1f-55b2-4b8e-9d1c-6a2f0e4b7d93",
			}, nil)
		}},
		{"wlcg-conformant", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodRS256, genKeys(t).rsa, "rsa1", wlcgClaims("https://wlcg.cloud.cnaf.infn.it/"), nil)
		}},
		{"aud-array-groups-many-scopes", func(t *testing.T) string {
			iat := now.Add(-20 * time.Minute)
			return sign(t, jwt.SigningMethodES256, genKeys(t).ec, "ec1", jwt.MapClaims{
				"iss":                 "https://cms-auth.web.cern.ch/",
				"wlcg.ver":            "1.0",
				"sub":                 "7c1f0a2e-9b3d-4e5f-8a6b-1c2d3e4f5a6b",
				"preferred_username":  "alice",
				"azp":                 "tokenhelper-cms",
				"aud":                 []any{"https://eoscms.cern.ch:8443", "https://xrootd-cms.infn.it:1094", "https://cmsdcache-kit-disk.gridka.de:2880"},
				"scope":               "openid profile email offline_access wlcg wlcg.groups storage.read:/store storage.create:/store/user/alice storage.modify:/store/temp/user/alice storage.stage:/store/data compute.read compute.modify compute.create compute.cancel eduperson_entitlement eduperson_scoped_affiliation address phone",
				"wlcg.groups":         []any{"/cms", "/cms/uscms", "/cms/itcms", "/cms/ALARM", "/cms/TEAM", "/cms/users", "/cms/production", "/cms/dcms"},
				"eduperson_assurance": []any{"https://refeds.org/assurance/IAP/low", "https://refeds.org/assurance/ID/unique"},
				"acr":                 "https://refeds.org/profile/mfa",
				"iat":                 unix(iat),
				"nbf":                 unix(iat),
				"exp":                 unix(iat.Add(time.Hour)),
				"jti":                 "f3b2c1d0-1111-2222-3333-444455556666",
			}, map[string]any{"typ": "at+jwt"})
		}},
		{"expired", func(t *testing.T) string {
			c := wlcgClaims("https://wlcg.cloud.cnaf.infn.it/")
			exp := now.Add(-3*time.Minute - 12*time.Second)
			c["iat"], c["nbf"], c["exp"] = unix(exp.Add(-20*time.Minute)), unix(exp.Add(-20*time.Minute)), unix(exp)
			return sign(t, jwt.SigningMethodRS256, genKeys(t).rsa, "rsa1", c, nil)
		}},
		{"opaque", func(*testing.T) string {
			return "  eyJ0b2tlbiI6Im9wYXF1ZSJ9.not-a-jwt_at~all+but/a.valid.b64token==\n"
		}},
		{"jwe", func(*testing.T) string {
			return unsigned(`{"alg":"RSA-OAEP-256","enc":"A256GCM","kid":"enc1"}`, "encrypted-key") + ".aXY.dGFn"
		}},
		{"profile-failures", func(t *testing.T) string {
			// No sub, no jti, no nbf, no kid; http issuer; wlcg.ver 2.0;
			// trailing-slash aud; bad scopes and group; 12 h lifetime;
			// nbf... issued 10 minutes in the future (clock skew).
			iat := now.Add(10 * time.Minute)
			return sign(t, jwt.SigningMethodRS256, genKeys(t).rsa, "", jwt.MapClaims{
				"iss":         "http://iam.example.org",
				"wlcg.ver":    "2.0",
				"aud":         "https://dcache.example.org/",
				"scope":       "storage.read storage.write:/data storage.modify:data compute.read:/jobs compute.start openid",
				"wlcg.groups": []any{"cms", "/cms/ok"},
				"iat":         unix(iat),
				"exp":         unix(iat.Add(12 * time.Hour)),
			}, nil)
		}},
		{"not-yet-valid", func(t *testing.T) string {
			c := wlcgClaims("https://wlcg.cloud.cnaf.infn.it/")
			nbf := now.Add(4 * time.Minute)
			c["iat"], c["nbf"], c["exp"] = unix(now), unix(nbf), unix(nbf.Add(time.Hour))
			return sign(t, jwt.SigningMethodRS256, genKeys(t).rsa, "rsa1", c, nil)
		}},
		{"garbage-types", func(*testing.T) string {
			// Wrong types everywhere, a terminal escape in sub, alg none.
			return unsigned(`{"alg":"none","typ":"JWT"}`,
				`{"iss":42,"sub":"evil\u001b[31mred\u001b[0m","exp":"tomorrow","iat":1e300,"nbf":null,`+
					`"aud":[1,"https://ok.example"],"scope":["storage.read:/",7],"wlcg.ver":1.0,"jti":{"x":1},`+
					`"wlcg.groups":"/cms","azp":"\u202eevil"}`)
		}},
	}
}

func TestRenderGolden(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	zones := []*time.Location{time.UTC, paris}
	for _, c := range renderCases() {
		raw := c.token(t)
		info, err := Parse(raw)
		if err != nil {
			t.Fatalf("%s: Parse: %v", c.name, err)
		}
		warns := Check(info, now)
		for _, loc := range zones {
			var buf bytes.Buffer
			if err := Render(&buf, info, warns, RenderOptions{Now: now, Location: loc}); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			assertNoSecret(t, c.name+" render", out, strings.TrimSpace(raw))
			assertPrintable(t, c.name, out)
			zone := "utc"
			if loc != time.UTC {
				zone = "paris"
			}
			golden(t, "render/"+c.name+"."+zone+".golden", buf.Bytes())
		}

		b, err := JSON(info, warns, now)
		if err != nil {
			t.Fatalf("%s: JSON: %v", c.name, err)
		}
		assertNoSecret(t, c.name+" json", string(b), strings.TrimSpace(raw))
		// The fingerprint depends on the (random) signature: mask it.
		b = regexp.MustCompile(`"fingerprint": "sha256:[0-9a-f]+"`).ReplaceAll(b, []byte(`"fingerprint": "sha256:…"`))
		golden(t, "json/"+c.name+".golden", b)
	}
}

// assertPrintable: Render output is lines of printable text, whatever
// the token holds (no terminal escapes, no bidi overrides).
func assertPrintable(t *testing.T, where, out string) {
	t.Helper()
	for _, r := range out {
		if r != '\n' && !unicode.IsPrint(r) {
			t.Errorf("%s: output contains non-printable %U", where, r)
			return
		}
	}
}

func TestRenderNilAndDefaults(t *testing.T) {
	var buf bytes.Buffer
	if err := Render(&buf, nil, nil, RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != "Token        : (none)\n" {
		t.Errorf("nil info rendered as %q", got)
	}
}

func TestFormatTTL(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{71*time.Hour + 25*time.Minute + 46*time.Second + 900*time.Millisecond, "71h25m46s"},
		{59 * time.Minute, "59m0s"},
		{500 * time.Millisecond, "0s"},
		{0, "0s"},
		{-(3*time.Minute + 12*time.Second), "-3m12s"},
		{-400 * time.Millisecond, "0s"},
		{time.Duration(-1 << 63), "-2562047h47m16s"},
	} {
		if got := FormatTTL(c.d); got != c.want {
			t.Errorf("FormatTTL(%v) = %q, want %q", c.d, got, c.want)
		}
	}
}

func TestRenderWrapsLongLists(t *testing.T) {
	var scopes []string
	for i := range 40 {
		scopes = append(scopes, "scope"+strings.Repeat("x", i%7))
	}
	info := &Info{IsJWT: true, Format: FormatJWT, Claims: map[string]any{"scope": "x"}, Scopes: scopes,
		Groups: []string{"/a", "/b"}}
	for _, width := range []int{40, 80, 120} {
		var buf bytes.Buffer
		if err := Render(&buf, info, nil, RenderOptions{Now: now, Location: time.UTC, Width: width}); err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
			if !strings.HasPrefix(line, "Scopes") && !strings.HasPrefix(line, "   ") {
				continue // only the wrapped scope lines
			}
			if n := len([]rune(line)); n > max(width, 15+20) {
				t.Errorf("width %d: line of %d runes: %q", width, n, line)
			}
		}
	}
}

func TestCleanValues(t *testing.T) {
	for in, want := range map[string]string{
		"plain value":            "plain value",
		"été":                    "été",
		"a\x1b[31mb":             `"a\x1b[31mb"`,
		"line\nbreak":            `"line\nbreak"`,
		"\u202eevil":             `"\u202eevil"`,
		"bad\xffutf8":            `"bad\xffutf8"`,
		strings.Repeat("x", 250): strings.Repeat("x", maxValue) + "…",
	} {
		if got := clean(in); got != want {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
}
