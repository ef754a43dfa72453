package config

import (
	"testing"

	"github.com/tokenhelper/tokenhelper/helper"
)

func mustParse(t testing.TB, doc string) *Config {
	t.Helper()
	c, err := Parse("/home/alice/.config/tokenhelper/config.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSelect(t *testing.T) {
	two := "[profiles.a]\nissuer = \"https://a.example.org\"\n[profiles.b]\naccount = \"b\"\n"
	tests := []struct {
		name      string
		doc       string
		flag, env string
		want      string // profile name; "" = nil
		wantErr   string
	}{
		{"flag wins", "default_profile = \"a\"\n" + two, "b", "a", "b", ""},
		{"env next", "default_profile = \"a\"\n" + two, "", "b", "b", ""},
		{"default_profile next", "default_profile = \"b\"\n" + two, "", "", "b", ""},
		{"only profile", "[profiles.solo]\naccount = \"s\"\n", "", "", "solo", ""},
		{"several and no default", two, "", "", "", ""},
		{"no profiles", "", "", "", "", ""},
		{"unknown flag", two, "c", "", "",
			`unknown profile "c" (from -p): /home/alice/.config/tokenhelper/config.toml defines a, b: use one of: a, b; or add [profiles.c] to the config file`},
		{"unknown env", two, "", "wlcg", "",
			`unknown profile "wlcg" (from TOKENHELPER_PROFILE): /home/alice/.config/tokenhelper/config.toml defines a, b: use one of: a, b; or add [profiles.wlcg] to the config file`},
		{"unknown in empty file", "", "x", "", "",
			`unknown profile "x" (from -p): /home/alice/.config/tokenhelper/config.toml defines no profiles: add [profiles.x] to /home/alice/.config/tokenhelper/config.toml (see docs/config.md)`},
		{"unknown odd name", two, "a b", "", "",
			`unknown profile "a b" (from -p): /home/alice/.config/tokenhelper/config.toml defines a, b: use one of: a, b; or add [profiles."a b"] to the config file`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, tt.doc)
			p, err := c.Select(tt.flag, tt.env)
			if tt.wantErr != "" {
				if !helper.IsKind(err, helper.KindNoProfile) || err.Error() != tt.wantErr {
					t.Fatalf("err = %v\nwant %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if p != nil {
				got = p.Name
			}
			if got != tt.want {
				t.Errorf("selected %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSelectNilAndHandBuilt(t *testing.T) {
	var c *Config
	if p, err := c.Select("", ""); p != nil || err != nil {
		t.Errorf("nil config: %v %v", p, err)
	}
	if _, err := c.Select("x", ""); !helper.IsKind(err, helper.KindNoProfile) {
		t.Errorf("nil config, named profile: %v", err)
	}
	h := &Config{Profiles: map[string]*Profile{"a": nil}}
	p, err := h.Select("a", "")
	if err != nil || p == nil || p.Name != "a" {
		t.Errorf("hand-built: %+v %v", p, err)
	}
}
