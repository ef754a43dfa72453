package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
)

// base is a valid profile on lines 1-2 that error cases build on.
const base = "[profiles.x]\nissuer = \"https://iam.example.org/\"\n"

func TestExampleParses(t *testing.T) {
	c, err := Parse("example.toml", []byte(Example))
	if err != nil {
		t.Fatalf("Example does not parse: %v", err)
	}
	if got := c.ProfileNames(); !slices.Equal(got, []string{"cms", "robot", "wlcg"}) {
		t.Errorf("profiles = %v", got)
	}
	for name, backend := range map[string]string{"wlcg": BackendNative, "cms": BackendOIDCAgent, "robot": BackendFile} {
		if p := c.Profiles[name]; p.Backend != backend || p.Name != name || p.Username != DefaultUsername {
			t.Errorf("profile %s: backend %q name %q username %q", name, p.Backend, p.Name, p.Username)
		}
	}
	if c.Profiles["wlcg"].MinValid.D() != 5*time.Minute {
		t.Errorf("min_valid = %v", c.Profiles["wlcg"].MinValid.D())
	}
	if len(c.Routes) != 3 || len(c.Renew) != 1 {
		t.Errorf("routes %d renew %d", len(c.Routes), len(c.Renew))
	}
	m, err := c.MatchURL("https://dcache.example.org:2880/pnfs/example.org/data/wlcg/run1/f.root")
	if err != nil || m == nil || m.Route != &c.Routes[0] || !slices.Contains(m.Scopes, "storage.modify:/") {
		t.Errorf("dCache data route: %+v, %v", m, err)
	}
	m, err = c.MatchURL("davs://dcache.example.org:2880/pnfs/example.org/other")
	if err != nil || m == nil || m.Route != &c.Routes[1] || !slices.Equal(m.Audiences, []string{"https://wlcg.cern.ch/jwt/v1/any"}) {
		t.Errorf("dCache door route: %+v, %v", m, err)
	}
	m, err = c.Match(RouteTarget{Scheme: "https", Host: "GitLab.example.org"})
	if err != nil || m == nil || m.Profile.Name != "cms" {
		t.Errorf("git route: %+v, %v", m, err)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("re-validate: %v", err)
	}
}

func TestParseDefaults(t *testing.T) {
	c, err := Parse("c.toml", []byte(`
[profiles.a]
account = "acc"
[profiles.b]
token_file = "/t"
account = "acc"
[profiles.c]
issuer = "http://127.0.0.1:8080/realm"
username = "me"
[profiles.d]
backend = "vault"
options = { mount = "secret" }
[profiles."cms.prod"]
issuer = "https://[::1]:8443"
[plugins.vault]
sha256 = "ABCDEF0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789"
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": BackendOIDCAgent, "b": BackendFile, "c": BackendNative, "d": "vault", "cms.prod": BackendNative}
	for n, b := range want {
		p := c.Profiles[n]
		if p.Backend != b || p.Name != n {
			t.Errorf("%s: backend %q name %q, want %q", n, p.Backend, p.Name, b)
		}
	}
	if c.Profiles["c"].Username != "me" || c.Profiles["a"].Username != "oauth2" {
		t.Errorf("usernames %q %q", c.Profiles["c"].Username, c.Profiles["a"].Username)
	}
	if got := c.Plugins["vault"].SHA256; got != strings.ToLower(got) {
		t.Errorf("sha256 not normalised: %s", got)
	}
	if c.Path != "c.toml" {
		t.Errorf("Path = %q", c.Path)
	}
	empty, err := Parse("e.toml", nil)
	if err != nil || empty.Profiles == nil || len(empty.Profiles) != 0 {
		t.Errorf("empty document: %+v %v", empty, err)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want string // a trailing "*" matches any rest
	}{
		// Unknown keys, with suggestions.
		{"unknown key suggestion", base + "scope = [\"openid\"]\n",
			`config.toml:3: unknown key "scope" in [profiles.x] (did you mean "scopes"?)`},
		{"unknown key wlcg", "[profiles.wlcg]\nissuer = \"https://iam.example.org/\"\n\n\n\n\n\n\n\n\n\nscope = \"x\"\n",
			`config.toml:12: unknown key "scope" in [profiles.wlcg] (did you mean "scopes"?)`},
		{"unknown key hyphen", base + "min-valid = \"5m\"\n",
			`config.toml:3: unknown key "min-valid" in [profiles.x] (did you mean "min_valid"?)`},
		{"unknown key lists valid keys", "[[routes]]\nurl = \"https://a\"\nprofile = \"x\"\nfrobnicate = 1\n",
			`config.toml:4: unknown key "frobnicate" in [[routes]] (valid keys: audiences, profile, scopes, url)`},
		{"unknown key in inline array", "routes = [\n  {url = \"https://a\", profile = \"x\"},\n\n  {url = \"https://b\", prof = \"x\"},\n]\n" + base,
			`config.toml:4: unknown key "prof" in [[routes]] (did you mean "profile"?)`},
		{"unknown top-level table", "[profile.x]\nissuer = \"https://a\"\n",
			`config.toml:1: unknown key "profile" at the top level (did you mean "profiles"?)`},
		{"unknown dotted key", base + "bar.baz = 1\n",
			`config.toml:3: unknown key "bar" in [profiles.x] (valid keys: account, audiences, *`},
		{"unknown nested in second profile", base + "[profiles.y]\nissuer = \"https://a\"\n[profiles.y.extra]\n",
			`config.toml:5: unknown key "extra" in [profiles.y] (valid keys: account, audiences, backend, ca_file, client_id, command, exchange, flow, isolate, issuer, min_valid, options, passphrase_cmd, passphrase_env, passphrase_file, plaintext, scopes, timeout, token_file, unlock_for, username)`},
		{"secret in config", base + "client_secret = \"s3cr3t\"\n",
			`config.toml:3: unknown key "client_secret" in [profiles.x]: tokenhelper never reads secrets from its config file; remove it`},
		{"unknown plugin key", "[plugins.vault]\nsha = \"00\"\n",
			`config.toml:2: unknown key "sha" in [plugins.vault] (valid keys: path, sha256)`},

		// Types.
		{"invalid duration", base + "\n\nmin_valid = \"5x\"\n",
			`config.toml:5: profiles.x.min_valid: invalid duration "5x" (use e.g. "5m", "1h30m")`},
		{"integer duration", base + "timeout = 30\n",
			`config.toml:3: profiles.x.timeout: invalid duration 30 (use a string, e.g. "5m", "1h30m")`},
		{"duration without unit", "[[renew]]\nprofile = \"x\"\nmin_valid = \"10\"\n",
			`config.toml:3: renew[0].min_valid: invalid duration "10" (use e.g. "5m", "1h30m")`},
		{"string for list", base + "scopes = \"openid\"\n",
			`config.toml:3: profiles.x.scopes: expected an array of strings, got the string "openid" (write scopes = ["openid"])`},
		{"number in list", base + "audiences = [\n \"a\",\n 3,\n]\n",
			`config.toml:5: profiles.x.audiences[1]: expected a string, got the integer 3`},
		{"bool as string", base + "isolate = \"yes\"\n",
			`config.toml:3: profiles.x.isolate: expected true or false, got the string "yes"`},
		{"table for array of tables", "[routes]\nurl = \"https://a\"\n",
			`config.toml:1: routes: expected an array of tables, got a table (write [[routes]] for each entry)`},
		{"profile not a table", "profiles.x = \"abc\"\n",
			`config.toml:1: profiles.x: expected a table, got the string "abc" (a profile is a table: [profiles.NAME])`},
		{"option not a string", base + "options = {a = 1}\n",
			`config.toml:3: profiles.x.options.a: expected a string, got the integer 1`},
		{"scalar given sub-key", base + "[profiles.x.issuer]\n",
			`config.toml:3:2: invalid TOML: *`},

		// TOML syntax, with line:column.
		{"syntax incomplete array", base + "scopes = [\"a\"\n",
			`config.toml:3:14: invalid TOML: array is incomplete`},
		{"syntax missing equals", base + "\nscopes\n",
			`config.toml:4:7: invalid TOML: *`},
		{"duplicate table", base + "[profiles.x]\n",
			`config.toml:3:2: invalid TOML: *`},
		{"duplicate key", base + "issuer = \"https://b\"\n",
			`config.toml:3:1: invalid TOML: key issuer is already defined`},

		// Backends and profiles.
		{"bad backend name", base + "backend = \"OIDC_agent\"\n",
			`config.toml:3: profiles.x.backend: invalid backend name "OIDC_agent" (use "native", "oidc-agent", "file" or the NAME of tokenhelper-plugin-NAME: lowercase letters, digits and "-")`},
		{"native needs issuer", "[profiles.x]\nscopes = [\"a\"]\n",
			`config.toml:1: profiles.x: the native backend needs issuer (the OIDC issuer URL, e.g. "https://wlcg.cloud.cnaf.infn.it/")`},
		{"oidc-agent needs account", "[profiles.x]\nbackend = \"oidc-agent\"\n",
			`config.toml:1: profiles.x: the oidc-agent backend needs account (an oidc-agent account short name) or issuer`},
		{"bad profile name", "[profiles.\"my profile\"]\nissuer = \"https://a\"\n",
			`config.toml:1: profiles."my profile": invalid profile name (use letters, digits, ".", "_" and "-")`},
		{"issuer http", "[profiles.x]\nissuer = \"http://iam.example.org/\"\n",
			`config.toml:2: profiles.x.issuer: "http://iam.example.org/" must use https (http is only allowed for 127.0.0.1, localhost and [::1])`},
		{"issuer query", "[profiles.x]\nissuer = \"https://iam.example.org/?a=b\"\n",
			`config.toml:2: profiles.x.issuer: "https://iam.example.org/?a=b" must not have a query (?...) or fragment (#...)`},
		{"issuer fragment", "[profiles.x]\nissuer = \"https://iam.example.org/#x\"\n",
			`config.toml:2: profiles.x.issuer: "https://iam.example.org/#x" must not have a query (?...) or fragment (#...)`},
		{"issuer not url", "[profiles.x]\nissuer = \"iam.example.org\"\n",
			`config.toml:2: profiles.x.issuer: "iam.example.org" is not a URL like "https://iam.example.org/"`},
		{"issuer ftp", "[profiles.x]\nissuer = \"ftp://iam.example.org\"\n",
			`config.toml:2: profiles.x.issuer: "ftp://iam.example.org" must be an https URL`},
		{"issuer userinfo", "[profiles.x]\nissuer = \"https://u:p@iam.example.org\"\n",
			`config.toml:2: profiles.x.issuer: must not contain a user name or password`},
		{"scope with space", base + "scopes = [\"openid\", \"storage.read:/ storage.create:/\"]\n",
			`config.toml:3: profiles.x.scopes[1]: scope "storage.read:/ storage.create:/" contains whitespace (write one scope per list item)`},
		{"empty audience", base + "audiences = [\"\"]\n",
			`config.toml:3: profiles.x.audiences[0]: empty audience`},
		{"negative duration", base + "min_valid = \"-5m\"\n",
			`config.toml:3: profiles.x.min_valid: must not be negative (-5m0s)`},
		{"unknown flow", base + "flow = \"implicit\"\n",
			`config.toml:3: profiles.x.flow: unknown flow "implicit" (use "device", "password" or "client-credentials")`},
		{"relative token file", "[profiles.x]\ntoken_file = \"~/token\"\n",
			`config.toml:2: profiles.x.token_file: "~/token" is not an absolute path (tokenhelper does not expand "~" or variables: write the full path)`},
		{"bad passphrase env", base + "passphrase_env = \"MY-PASS\"\n",
			`config.toml:3: profiles.x.passphrase_env: "MY-PASS" is not an environment variable name`},
		{"default profile missing", "default_profile = \"wlcg\"\n" + base,
			`config.toml:1: default_profile: no profile "wlcg" (profiles: x)`},
		{"relative plugin dir", "plugin_dirs = [\"/ok\", \"bin\"]\n",
			`config.toml:1: plugin_dirs[1]: "bin" is not an absolute path (tokenhelper does not expand "~" or variables: write the full path)`},
		{"plugin pin short checksum", "[plugins.vault]\nsha256 = \"abc\"\n",
			`config.toml:2: plugins.vault.sha256: not a SHA-256 checksum (64 hex digits, as printed by sha256sum)`},
		{"plugin pin empty", "[plugins.vault]\n",
			`config.toml:1: plugins.vault: set sha256 (the executable's checksum), path, or both`},

		// Routes.
		{"route unknown profile", base + "[[routes]]\nurl = \"https://a.example.org\"\nprofile = \"y\"\n",
			`config.toml:5: routes[0].profile: no profile "y" (profiles: x)`},
		{"route without profile", base + "[[routes]]\nurl = \"https://a.example.org\"\n",
			`config.toml:3: routes[0]: profile is required (profiles: x)`},
		{"route without url", base + "[[routes]]\nprofile = \"x\"\n",
			`config.toml:3: routes[0]: url is required (e.g. url = "https://dcache.example.org:2880/data")`},
		{"route no scheme", base + "[[routes]]\nurl = \"dcache.example.org/data\"\nprofile = \"x\"\n",
			`config.toml:4: routes[0].url: "dcache.example.org/data" is not a URL like "https://host[:port]/path"`},
		{"route bad scheme", base + "[[routes]]\nurl = \"s3://bucket\"\nprofile = \"x\"\n",
			`config.toml:4: routes[0].url: unsupported scheme "s3" (use https, davs, http, dav, root, roots, xroot or xroots)`},
		{"route no host", base + "[[routes]]\nurl = \"https:///data\"\nprofile = \"x\"\n",
			`config.toml:4: routes[0].url: "https:///data" has no host`},
		{"route userinfo", base + "[[routes]]\nurl = \"https://me:pw@a.example.org\"\nprofile = \"x\"\n",
			`config.toml:4: routes[0].url: must not contain a user name or password`},
		{"route query", base + "[[routes]]\nurl = \"https://a.example.org/d?x=1\"\nprofile = \"x\"\n",
			`config.toml:4: routes[0].url: must not have a query (?...) or fragment (#...): routes match scheme, host, port and path`},
		{"route wildcard", base + "[[routes]]\nurl = \"https://*.example.org\"\nprofile = \"x\"\n",
			`config.toml:4: routes[0].url: host "*.example.org": wildcards are not supported; write one route per host`},
		{"route bad port", base + "[[routes]]\nurl = \"https://a.example.org:99999\"\nprofile = \"x\"\n",
			`config.toml:4: routes[0].url: invalid port "99999"`},
		{"route http", base + "[[routes]]\nurl = \"http://a.example.org\"\nprofile = \"x\"\n",
			`config.toml:4: routes[0].url: scheme "http" sends the token unencrypted: use https or davs (http is only allowed for 127.0.0.1, localhost and [::1])`},
		{"route duplicate", base + "[[routes]]\nurl = \"https://a.example.org/data\"\nprofile = \"x\"\n[[routes]]\nurl = \"davs://A.example.org:443/data/\"\nprofile = \"x\"\n",
			`config.toml:7: routes[1].url: same URL as routes[0] (line 4): only one route may serve it`},
		{"route duplicate after cleaning", base + "[[routes]]\nurl = \"https://a.example.org/\"\nprofile = \"x\"\n[[routes]]\nurl = \"https://a.example.org/data/..\"\nprofile = \"x\"\n",
			`config.toml:7: routes[1].url: same URL as routes[0] (line 4): only one route may serve it`},
		{"route scope whitespace", base + "[[routes]]\nurl = \"https://a.example.org\"\nprofile = \"x\"\nscopes = [\"a\tb\"]\n",
			`config.toml:6: routes[0].scopes[0]: scope "a\tb" contains whitespace (write one scope per list item)`},

		// Renew outputs.
		{"renew unknown profile", base + "[[renew]]\nprofile = \"nope\"\n",
			`config.toml:4: renew[0].profile: no profile "nope" (profiles: x)`},
		{"renew duplicate file", base + "[[renew]]\nprofile = \"x\"\nfile = \"/run/t\"\n[[renew]]\nprofile = \"x\"\nfile = \"/run/./t\"\n",
			`config.toml:8: renew[1].file: renew[0] already writes the file "/run/t"`},

		// The first problem in the file wins.
		{"first problem wins", base + "[[routes]]\nurl = \"ftp://a\"\nprofile = \"x\"\n[profiles.y]\nflow = \"magic\"\nissuer = \"https://a\"\ndefault_profile_typo = 1\n",
			`config.toml:9: unknown key "default_profile_typo" in [profiles.y]*`},
		{"first validation problem wins", "[[routes]]\nurl = \"ftp://a\"\nprofile = \"x\"\n" + base,
			`config.toml:2: routes[0].url: unsupported scheme "ftp" (use https, davs, http, dav, root, roots, xroot or xroots)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("config.toml", []byte(tt.doc))
			if err == nil {
				t.Fatalf("no error; config %+v", c)
			}
			var he *helper.Error
			if !errors.As(err, &he) || he.Kind != helper.KindConfig {
				t.Fatalf("error %v is not a KindConfig *helper.Error", err)
			}
			got := err.Error()
			if strings.Contains(got, "\n") {
				t.Errorf("error has more than one line: %q", got)
			}
			if prefix, ok := strings.CutSuffix(tt.want, "*"); ok {
				if !strings.HasPrefix(got, prefix) {
					t.Errorf("got  %s\nwant prefix %s", got, tt.want)
				}
				return
			}
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	data := []byte("# " + strings.Repeat("x", MaxFileSize) + "\n")
	_, err := Parse("big.toml", data)
	if !helper.IsKind(err, helper.KindConfig) || !strings.Contains(err.Error(), "larger than 1 MiB") {
		t.Fatalf("err = %v", err)
	}
}

func TestErrorsDoNotEchoSecretsKeys(t *testing.T) {
	// A secret pasted under an unknown key must not appear in the message.
	_, err := Parse("c.toml", []byte(base+"refresh_token = \"eyJhbGciOiJSUzI1NiJ9.secretpart\"\n"))
	if err == nil || strings.Contains(err.Error(), "secretpart") {
		t.Fatalf("err = %v", err)
	}
}

func TestValidateHandBuilt(t *testing.T) {
	c := &Config{
		Profiles: map[string]*Profile{"a": {Issuer: "https://iam.example.org"}, "n": nil},
		Routes:   []Route{{URL: "https://x.example.org/a", Profile: "a"}},
	}
	err := c.Validate()
	// "n" becomes an empty native profile without issuer.
	if err == nil || err.Error() != `config: profiles.n: the native backend needs issuer (the OIDC issuer URL, e.g. "https://wlcg.cloud.cnaf.infn.it/")` {
		t.Fatalf("err = %v", err)
	}
	c.Profiles["n"].Issuer = "https://iam.example.org"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Profiles["n"].Name != "n" || c.Profiles["a"].Backend != BackendNative {
		t.Errorf("defaults not applied: %+v", c.Profiles)
	}
}

func TestSuggest(t *testing.T) {
	keys := tomlKeys(configType.Field(2).Type.Elem().Elem()) // Profile
	for in, want := range map[string]string{
		"scope": "scopes", "audience": "audiences", "tokenfile": "token_file", "Issuer": "issuer",
		"clientid": "client_id", "min_valid_period": "min_valid", "xyz": "", "passphrase-cmd": "passphrase_cmd",
		"unlock": "unlock_for", "a": "",
	} {
		if got := suggest(in, keys); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}
