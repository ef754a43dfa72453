package config

import (
	"slices"
	"strings"
	"testing"

	"github.com/tokenhelper/tokenhelper/helper"
)

const routesDoc = `
[profiles.p]
issuer = "https://iam.example.org/"
scopes = ["openid"]
audiences = ["aud-p"]
[profiles.q]
account = "q"

[[routes]] # 0
url = "https://Storage.Example.org/data"
profile = "p"
scopes = ["storage.read:/data"]
[[routes]] # 1
url = "https://storage.example.org/data/sub/"
profile = "q"
[[routes]] # 2
url = "davs://storage.example.org:2880"
profile = "q"
audiences = ["https://storage.example.org:2880"]
[[routes]] # 3
url = "roots://xrd.example.org//store"
profile = "p"
[[routes]] # 4
url = "https://git.example.org"
profile = "q"
[[routes]] # 5
url = "https://git.example.org/atlas"
profile = "p"
[[routes]] # 6
url = "https://paths.example.org/a"
profile = "p"
[[routes]] # 7
url = "http://127.0.0.1:8080/"
profile = "p"
[[routes]] # 8
url = "https://[::1]:8443/x"
profile = "p"
`

func TestMatchURL(t *testing.T) {
	c := mustParse(t, routesDoc)
	tests := []struct {
		url   string
		route int // -1 = no match
	}{
		{"https://storage.example.org/data", 0},
		{"https://storage.example.org/data/", 0},
		{"https://STORAGE.example.org./data/x/y", 0},
		{"https://storage.example.org:443/data/x", 0},
		{"davs://storage.example.org/data/x", 0},
		{"DAVS://storage.example.org/data", 0},
		{"https://storage.example.org/database", -1},
		{"https://storage.example.org/data/../etc", -1},
		{"https://storage.example.org/data/./x/../../etc/passwd", -1},
		{"https://storage.example.org//data//x", 0},
		{"https://storage.example.org/data/sub/file", 1},
		{"https://storage.example.org/data/sub", 1},
		{"https://storage.example.org/data/subway", 0},
		{"https://storage.example.org/data%2Fsub/f", 1},
		{"https://storage.example.org/data/sub/../x", 0},
		{"https://storage.example.org", -1},
		{"https://storage.example.org/", -1},
		{"https://storage.example.org:2880/anything", 2},
		{"https://storage.example.org:2880", 2},
		{"http://storage.example.org/data", -1},
		{"https://storage.example.org:8443/data", -1},
		{"https://storage.example.org.evil.org/data", -1},
		{"https://evilstorage.example.org/data", -1},
		{"roots://xrd.example.org:1094//store/user/f", 3},
		{"xroots://xrd.example.org//store/x", 3},
		{"root://xrd.example.org//store/x", -1},
		{"roots://xrd.example.org//storex", -1},
		{"ftp://storage.example.org/data", -1},
		{"https://git.example.org/atlas/repo.git", 5},
		{"https://git.example.org/cms/repo.git", 4},
		{"https://git.example.org/atlasx", 4},
		{"http://127.0.0.1:8080/anything", 7},
		{"http://127.0.0.1/anything", -1},
		{"http://localhost:8080/", -1},
		{"https://[::1]:8443/x/y", 8},
		{"https://[0:0::1]:8443/x", 8},
		{"https://[::1]/x", -1},
		{"https://paths.example.org/a/b", 6},
		{"https://paths.example.org/b", -1},
		{"https://user:pw@storage.example.org/data?authz=x#f", 0},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			m, err := c.MatchURL(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			if tt.route < 0 {
				if m != nil {
					t.Fatalf("matched %s, want no match", m.Route.URL)
				}
				return
			}
			if m == nil {
				t.Fatalf("no match, want routes[%d]", tt.route)
			}
			if m.Route != &c.Routes[tt.route] {
				t.Fatalf("matched %s, want routes[%d] %s", m.Route.URL, tt.route, c.Routes[tt.route].URL)
			}
			if m.Profile != c.Profiles[m.Route.Profile] {
				t.Errorf("profile %s for route with profile %s", m.Profile.Name, m.Route.Profile)
			}
		})
	}
}

func TestMatchTargets(t *testing.T) {
	c := mustParse(t, routesDoc)
	tests := []struct {
		name        string
		target      RouteTarget
		route       int
		pathIgnored bool
		wantErr     string
	}{
		{"git without path: host route", RouteTarget{Scheme: "https", Host: "git.example.org"}, 4, true, ""},
		{"git with path", RouteTarget{Scheme: "https", Host: "git.example.org", Path: "atlas/repo.git", PathKnown: true}, 5, false, ""},
		{"git without path, host:port form", RouteTarget{Scheme: "https", Host: "git.example.org:443"}, 4, true, ""},
		{"path unknown, only path routes", RouteTarget{Scheme: "https", Host: "paths.example.org"}, -1, false,
			"the routes for https://paths.example.org depend on the URL path, but the path is unknown: run: git config --global credential.useHttpPath true"},
		{"path unknown, only path routes, port", RouteTarget{Scheme: "https", Host: "storage.example.org:443"}, -1, false,
			"the routes for https://storage.example.org depend on the URL path, but the path is unknown: run: git config --global credential.useHttpPath true"},
		{"path unknown, whole-host davs route", RouteTarget{Scheme: "https", Host: "storage.example.org", Port: 2880}, 2, false, ""},
		{"path unknown ignores a path given anyway", RouteTarget{Scheme: "https", Host: "paths.example.org", Path: "/a"}, -1, false,
			"the routes for https://paths.example.org depend on the URL path"},
		{"ipv6 host without brackets", RouteTarget{Scheme: "https", Host: "::1", Port: 8443, Path: "/x", PathKnown: true}, 8, false, ""},
		{"ipv6 host with brackets and port", RouteTarget{Scheme: "https", Host: "[::1]:8443", Path: "/x", PathKnown: true}, 8, false, ""},
		{"explicit port wins over host:port", RouteTarget{Scheme: "https", Host: "storage.example.org:443", Port: 2880, PathKnown: true}, 2, false, ""},
		{"unknown scheme", RouteTarget{Scheme: "gopher", Host: "storage.example.org"}, -1, false, ""},
		{"garbage host", RouteTarget{Scheme: "https", Host: "a b/c"}, -1, false, ""},
		{"unknown host", RouteTarget{Scheme: "https", Host: "other.example.org", PathKnown: true}, -1, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := c.Match(tt.target)
			if tt.wantErr != "" {
				if !helper.IsKind(err, helper.KindNoProfile) || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v\nwant KindNoProfile %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.route < 0 {
				if m != nil {
					t.Fatalf("matched %s", m.Route.URL)
				}
				return
			}
			if m == nil || m.Route != &c.Routes[tt.route] {
				t.Fatalf("match = %+v, want routes[%d]", m, tt.route)
			}
			if m.PathIgnored != tt.pathIgnored {
				t.Errorf("PathIgnored = %v", m.PathIgnored)
			}
		})
	}
}

func TestMatchScopesAudiences(t *testing.T) {
	c := mustParse(t, routesDoc)
	m, _ := c.MatchURL("https://storage.example.org/data/f")
	if !slices.Equal(m.Scopes, []string{"storage.read:/data"}) || !slices.Equal(m.Audiences, []string{"aud-p"}) {
		t.Errorf("route 0: scopes %v audiences %v", m.Scopes, m.Audiences)
	}
	m.Scopes[0] = "changed"
	m.Audiences[0] = "changed"
	if c.Routes[0].Scopes[0] != "storage.read:/data" || c.Profiles["p"].Audiences[0] != "aud-p" {
		t.Error("changing a Match changed the config")
	}
	m, _ = c.MatchURL("davs://storage.example.org:2880/x")
	if m.Scopes != nil || !slices.Equal(m.Audiences, []string{"https://storage.example.org:2880"}) {
		t.Errorf("route 2: scopes %v audiences %v", m.Scopes, m.Audiences)
	}
	m, _ = c.MatchURL("https://git.example.org/atlas/x")
	if !slices.Equal(m.Scopes, []string{"openid"}) || !slices.Equal(m.Audiences, []string{"aud-p"}) {
		t.Errorf("route 5: scopes %v audiences %v", m.Scopes, m.Audiences)
	}
}

func TestMatchURLErrorsHideTheURL(t *testing.T) {
	c := mustParse(t, routesDoc)
	for _, raw := range []string{
		"not a url SECRET",
		"/relative/SECRET",
		"https://storage.example.org:0/x?authz=Bearer%20SECRET",
		"https://storage.example.org:http/SECRET",
		"https://[::1/SECRET",
	} {
		m, err := c.MatchURL(raw)
		if m != nil || err == nil {
			t.Errorf("%q: match %v err %v", raw, m, err)
			continue
		}
		if strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%q: error repeats the URL: %v", raw, err)
		}
	}
}

func TestMatchEmptyAndHandBuilt(t *testing.T) {
	var nilc *Config
	if m, err := nilc.MatchURL("https://a/b"); m != nil || err != nil {
		t.Errorf("nil config: %v %v", m, err)
	}
	if m, err := (&Config{}).MatchURL("https://a/b"); m != nil || err != nil {
		t.Errorf("empty config: %v %v", m, err)
	}
	bad := &Config{Routes: []Route{{URL: "ftp://a", Profile: "p"}}}
	if _, err := bad.MatchURL("https://a/b"); !helper.IsKind(err, helper.KindConfig) {
		t.Errorf("invalid hand-built route: %v", err)
	}
	orphan := &Config{Routes: []Route{{URL: "https://a", Profile: "p"}}}
	if _, err := orphan.MatchURL("https://a/b"); !helper.IsKind(err, helper.KindConfig) {
		t.Errorf("route to a missing profile: %v", err)
	}
}
