package config

import (
	"strings"
	"testing"

	toml "github.com/pelletier/go-toml/v2"

	"github.com/tokenhelper/tokenhelper/helper"
)

// FuzzParse: Parse never panics, fails only with a one-line KindConfig
// error, and whatever it accepts validates again, survives a TOML round
// trip and can be routed against. Seeds: testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add([]byte(Example))
	f.Add([]byte(routesDoc))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.toml", data)
		if err != nil {
			if !helper.IsKind(err, helper.KindConfig) {
				t.Fatalf("error of kind %v: %v", helper.KindOf(err), err)
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("multi-line error: %q", err.Error())
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parsed config does not re-validate: %v", err)
		}
		out, err := toml.Marshal(c)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		c2, err := Parse("roundtrip.toml", out)
		if err != nil {
			t.Fatalf("round trip fails: %v\n%s", err, out)
		}
		if len(c2.Profiles) != len(c.Profiles) || len(c2.Routes) != len(c.Routes) || len(c2.Renew) != len(c.Renew) {
			t.Fatalf("round trip changed the config:\n%s", out)
		}
		for _, r := range c.Routes {
			if _, err := c.MatchURL(r.URL); err != nil && !helper.IsKind(err, helper.KindUsage) {
				t.Fatalf("route %q: %v", r.URL, err)
			}
		}
		if _, err := c.Select("", ""); err != nil {
			t.Fatalf("Select: %v", err)
		}
	})
}

// FuzzMatchURL: routing any string never panics, and a match always
// agrees with the rules (same host class, path under the route's path on a
// segment boundary). The second argument adds a route of its own.
// Seeds: testdata/fuzz/FuzzMatchURL.
func FuzzMatchURL(f *testing.F) {
	f.Add("https://storage.example.org/data/sub/f", "https://storage.example.org/data")
	f.Add("roots://xrd.example.org//store/x", "roots://xrd.example.org//store")
	base := mustParse(f, routesDoc)
	f.Fuzz(func(t *testing.T, raw, route string) {
		c := mustParse(t, routesDoc)
		c.Routes = append(c.Routes, Route{URL: route, Profile: "q"})
		if c.Validate() != nil {
			c = base
		}
		m, err := c.MatchURL(raw)
		if err != nil {
			if k := helper.KindOf(err); k != helper.KindUsage {
				t.Fatalf("error of kind %v: %v", k, err)
			}
			return
		}
		if m == nil {
			return
		}
		tgt, err := TargetFromURL(raw)
		if err != nil {
			t.Fatalf("matched a URL TargetFromURL rejects: %v", err)
		}
		cr, msg := compileRoute(m.Route.URL)
		if msg != "" {
			t.Fatalf("matched an invalid route %q: %s", m.Route.URL, msg)
		}
		host, _ := normHost(tgt.Host)
		class, _, _ := schemeClass(tgt.Scheme)
		if cr.key.host != host || cr.key.class != class {
			t.Fatalf("%q matched route %q of another host or scheme", raw, m.Route.URL)
		}
		if !underPath(cleanPath(tgt.Path), cr.key.path) {
			t.Fatalf("%q matched route %q outside its path", raw, m.Route.URL)
		}
		if m.Profile == nil || m.Profile.Name != m.Route.Profile {
			t.Fatalf("match without its profile: %+v", m)
		}
	})
}
