package config

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/tokenhelper/tokenhelper/helper"
)

// RouteTarget is the URL a tool wants a token for, as the tool's protocol
// gives it.
type RouteTarget struct {
	// Scheme: https, http, davs, dav, root, roots, xroot, xroots
	// (case-insensitive).
	Scheme string
	// Host name or IP address; "[::1]" and "host:port" forms are accepted
	// (the port is used when Port is 0).
	Host string
	// Port; 0 means the scheme's default (443, 80 or 1094).
	Port int
	// Path of the URL, decoded ("/data/file"). Only used when PathKnown.
	Path string
	// PathKnown is false when the tool did not say which path it wants
	// (git with credential.useHttpPath=false sends no path).
	PathKnown bool
}

// Match is the profile (and token parameters) that serve a URL.
type Match struct {
	Profile *Profile
	Route   *Route
	// Scopes and Audiences to request: the route's when it sets them,
	// else the profile's. Callers may modify them.
	Scopes    []string
	Audiences []string
	// PathIgnored is true when the path was unknown and the host also has
	// path-specific routes that a known path might have selected. Tools
	// may suggest `git config --global credential.useHttpPath true`.
	PathIgnored bool
}

// schemeClass maps a scheme to the class routes match on, with its default
// port. davs is https, dav is http, xroot(s) is root(s).
func schemeClass(scheme string) (class string, port int, ok bool) {
	switch strings.ToLower(scheme) {
	case "https", "davs":
		return "https", 443, true
	case "http", "dav":
		return "http", 80, true
	case "root", "xroot":
		return "root", 1094, true
	case "roots", "xroots":
		return "roots", 1094, true
	}
	return "", 0, false
}

// routeKey identifies what a route serves; two routes with equal keys are
// a configuration error.
type routeKey struct {
	class string
	host  string
	port  int
	path  string // cleaned, no trailing slash; "" for the whole host
}

type compiledRoute struct {
	key routeKey
}

// compileRoute parses a route URL; msg says what is wrong with it.
func compileRoute(raw string) (cr compiledRoute, msg string) {
	if strings.IndexFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return cr, fmt.Sprintf("%s contains whitespace or control characters", quoteValue(raw))
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return cr, fmt.Sprintf("%s is not a URL like \"https://host[:port]/path\"", quoteValue(raw))
	}
	class, _, ok := schemeClass(u.Scheme)
	if !ok {
		return cr, fmt.Sprintf("unsupported scheme %s (use https, davs, http, dav, root, roots, xroot or xroots)", quoteValue(u.Scheme))
	}
	if u.Host == "" {
		return cr, fmt.Sprintf("%s has no host", quoteValue(raw))
	}
	if u.User != nil {
		return cr, "must not contain a user name or password"
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(raw, "#") {
		return cr, "must not have a query (?...) or fragment (#...): routes match scheme, host, port and path"
	}
	host, hmsg := normHost(u.Hostname())
	if hmsg != "" {
		return cr, hmsg
	}
	if class == "http" && !isLoopback(host) {
		return cr, fmt.Sprintf("scheme %s sends the token unencrypted: use https or davs (http is only allowed for 127.0.0.1, localhost and [::1])", quoteValue(strings.ToLower(u.Scheme)))
	}
	port, pmsg := parsePort(u.Port(), class)
	if pmsg != "" {
		return cr, pmsg
	}
	cr.key = routeKey{class: class, host: host, port: port, path: cleanPath(u.Path)}
	return cr, ""
}

// parsePort returns the port, or the scheme class default for "".
func parsePort(p, class string) (int, string) {
	if p == "" {
		_, def, _ := schemeClass(class)
		return def, ""
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Sprintf("invalid port %s", quoteValue(p))
	}
	return n, ""
}

// normHost lowercases a host name, drops a trailing dot and brackets, and
// writes IP addresses in canonical form.
func normHost(h string) (string, string) {
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if h == "" {
		return "", "no host"
	}
	if ip := net.ParseIP(h); ip != nil {
		return ip.String(), ""
	}
	for _, r := range h {
		if !isHostChar(r) {
			if r == '*' {
				return "", fmt.Sprintf("host %s: wildcards are not supported; write one route per host", quoteValue(h))
			}
			return "", fmt.Sprintf("invalid host name %s", quoteValue(h))
		}
	}
	return h, ""
}

// isHostChar reports whether r may appear in a route's lower-cased host
// name.
func isHostChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_'
}

// cleanPath makes "/data/", "data", "/data//x/.." all "/data"; the root is "".
func cleanPath(p string) string {
	p = path.Clean("/" + p)
	if p == "/" {
		return ""
	}
	return p
}

// underPath reports whether p is rp or below it on a segment boundary.
func underPath(p, rp string) bool {
	return rp == "" || p == rp || strings.HasPrefix(p, rp+"/")
}

// TargetFromURL splits an absolute URL into a RouteTarget (PathKnown true).
// The error never repeats the URL, which may carry a token in its query.
func TargetFromURL(raw string) (RouteTarget, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return RouteTarget{}, helper.Errorf(helper.KindUsage, "cannot route a URL that is not absolute (scheme://host/path)")
	}
	t := RouteTarget{Scheme: u.Scheme, Host: u.Hostname(), Path: u.Path, PathKnown: true}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return RouteTarget{}, helper.Errorf(helper.KindUsage, "cannot route %s://%s: invalid port", u.Scheme, u.Hostname())
		}
		t.Port = n
	}
	return t, nil
}

// MatchURL is Match for an absolute URL such as
// "davs://dcache.example.org:2880/data/file".
func (c *Config) MatchURL(raw string) (*Match, error) {
	t, err := TargetFromURL(raw)
	if err != nil {
		return nil, err
	}
	return c.Match(t)
}

// Match finds the route serving t: same scheme class (davs is https, dav is
// http), host (case-insensitive) and port (missing = scheme default), and
// the longest route path that is a prefix of t's path on a segment
// boundary. No route → (nil, nil): callers decline silently. When the path
// is unknown only whole-host routes match; if the host has only
// path-specific routes, Match fails with KindNoProfile and a Fix naming
// credential.useHttpPath.
func (c *Config) Match(t RouteTarget) (*Match, error) {
	if c == nil || len(c.Routes) == 0 {
		return nil, nil
	}
	class, def, ok := schemeClass(t.Scheme)
	if !ok {
		return nil, nil
	}
	hostport := t.Host
	port := t.Port
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		hostport = h
		if port == 0 {
			if n, err := strconv.Atoi(p); err == nil {
				port = n
			}
		}
	}
	host, msg := normHost(hostport)
	if msg != "" {
		return nil, nil
	}
	if port == 0 {
		port = def
	}
	tpath := ""
	if t.PathKnown {
		tpath = cleanPath(t.Path)
	}

	best, bestLen, pathSpecific := -1, -1, false
	for i, r := range c.Routes {
		cr, msg := compileRoute(r.URL)
		if msg != "" {
			return nil, helper.Errorf(helper.KindConfig, "%s: %s: %s", location(c.Path, 0), displayPath([]string{"routes", strconv.Itoa(i), "url"}), msg)
		}
		k := cr.key
		if k.class != class || k.host != host || k.port != port {
			continue
		}
		if !t.PathKnown {
			if k.path != "" {
				pathSpecific = true
				continue
			}
		} else if !underPath(tpath, k.path) {
			continue
		}
		if len(k.path) > bestLen {
			best, bestLen = i, len(k.path)
		}
	}
	if best < 0 {
		if pathSpecific {
			return nil, helper.Errorf(helper.KindNoProfile,
				"the routes for %s://%s depend on the URL path, but the path is unknown", strings.ToLower(t.Scheme), hostForMsg(host, port, def)).
				WithFix("run: git config --global credential.useHttpPath true")
		}
		return nil, nil
	}
	r := &c.Routes[best]
	p := c.Profiles[r.Profile]
	if p == nil {
		return nil, helper.Errorf(helper.KindConfig, "%s: %s: no profile %s", location(c.Path, 0),
			displayPath([]string{"routes", strconv.Itoa(best), "profile"}), quoteValue(r.Profile))
	}
	m := &Match{Profile: p, Route: r, PathIgnored: pathSpecific}
	m.Scopes = slices.Clone(p.Scopes)
	if len(r.Scopes) > 0 {
		m.Scopes = slices.Clone(r.Scopes)
	}
	m.Audiences = slices.Clone(p.Audiences)
	if len(r.Audiences) > 0 {
		m.Audiences = slices.Clone(r.Audiences)
	}
	return m, nil
}

func hostForMsg(host string, port, def int) string {
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != def {
		return host + ":" + strconv.Itoa(port)
	}
	return host
}
