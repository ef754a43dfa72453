package config

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/tokenhelper/tokenhelper/helper"
)

// The backend names built into tokenhelper; any other valid name is an
// external plugin tokenhelper-plugin-NAME.
const (
	BackendNative    = "native"
	BackendOIDCAgent = "oidc-agent"
	BackendFile      = "file"
)

// The login flows a profile may name.
const (
	FlowDevice            = "device"
	FlowPassword          = "password"
	FlowClientCredentials = "client-credentials"
)

// DefaultUsername is what the git credential helper sends as user name
// when a profile sets none.
const DefaultUsername = "oauth2"

var (
	backendName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	profileName = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
	envName     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	hexSHA256   = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// problem is one thing wrong with the configuration.
type problem struct {
	line int
	seq  int
	msg  string
}

type validator struct {
	name     string
	ix       *index
	problems []problem
}

func (v *validator) add(path []string, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if len(path) > 0 {
		msg = displayPath(path) + ": " + msg
	}
	v.problems = append(v.problems, problem{line: v.ix.line(path...), seq: len(v.problems), msg: msg})
}

// err returns the problem that comes first in the file.
func (v *validator) err() error {
	if len(v.problems) == 0 {
		return nil
	}
	sort.SliceStable(v.problems, func(i, j int) bool {
		a, b := v.problems[i], v.problems[j]
		if (a.line == 0) != (b.line == 0) {
			return b.line == 0
		}
		return a.line < b.line
	})
	p := v.problems[0]
	return helper.Errorf(helper.KindConfig, "%s: %s", location(v.name, p.line), p.msg)
}

// Validate applies defaults (Profile.Name, Profile.Backend, Profile.Username)
// and checks every rule of docs/config.md. Parse and Load call it; call it
// again after changing a Config by hand. Its error is a KindConfig
// *helper.Error naming the first problem.
func (c *Config) Validate() error {
	return c.validate(c.Path, nil)
}

func (c *Config) validate(name string, ix *index) error {
	v := &validator{name: name, ix: ix}
	if c.Profiles == nil {
		c.Profiles = map[string]*Profile{}
	}
	names := c.ProfileNames()
	for _, n := range names {
		p := c.Profiles[n]
		if p == nil {
			p = &Profile{}
			c.Profiles[n] = p
		}
		v.profile(n, p)
	}
	if c.DefaultProfile != "" {
		if _, ok := c.Profiles[c.DefaultProfile]; !ok {
			v.add([]string{"default_profile"}, "no profile %s%s", quoteValue(c.DefaultProfile), knownProfiles(names))
		}
	}
	for i, d := range c.PluginDirs {
		v.absPath([]string{"plugin_dirs", strconv.Itoa(i)}, d)
	}
	for _, n := range sortedKeys(c.Plugins) {
		pin := c.Plugins[n]
		path := []string{"plugins", n}
		if !backendName.MatchString(n) {
			v.add(path, "invalid plugin name (use lowercase letters, digits and \"-\", as in tokenhelper-plugin-NAME)")
		}
		if pin.SHA256 == "" && pin.Path == "" {
			v.add(path, "set sha256 (the executable's checksum), path, or both")
		}
		if pin.SHA256 != "" {
			pin.SHA256 = strings.ToLower(pin.SHA256)
			if !hexSHA256.MatchString(pin.SHA256) {
				v.add(appendPath(path, "sha256"), "not a SHA-256 checksum (64 hex digits, as printed by sha256sum)")
			}
		}
		v.absPath(appendPath(path, "path"), pin.Path)
		c.Plugins[n] = pin
	}
	v.routes(c)
	v.renew(c)
	return v.err()
}

func (v *validator) profile(n string, p *Profile) {
	path := []string{"profiles", n}
	key := func(k string) []string { return appendPath(path, k) }
	if !profileName.MatchString(n) {
		v.add(path, "invalid profile name (use letters, digits, \".\", \"_\" and \"-\")")
	}
	p.Name = n
	if p.Backend == "" {
		switch {
		case p.TokenFile != "":
			p.Backend = BackendFile
		case p.Account != "":
			p.Backend = BackendOIDCAgent
		default:
			p.Backend = BackendNative
		}
	} else if !backendName.MatchString(p.Backend) {
		v.add(key("backend"), "invalid backend name %s (use %q, %q, %q or the NAME of tokenhelper-plugin-NAME: lowercase letters, digits and \"-\")",
			quoteValue(p.Backend), BackendNative, BackendOIDCAgent, BackendFile)
	}
	if p.Username == "" {
		p.Username = DefaultUsername
	}
	switch p.Backend {
	case BackendNative:
		if p.Issuer == "" {
			v.add(path, "the native backend needs issuer (the OIDC issuer URL, e.g. \"https://wlcg.cloud.cnaf.infn.it/\")")
		}
	case BackendOIDCAgent:
		if p.Account == "" && p.Issuer == "" {
			v.add(path, "the oidc-agent backend needs account (an oidc-agent account short name) or issuer")
		}
	}
	if p.Issuer != "" {
		if msg := checkIssuer(p.Issuer); msg != "" {
			v.add(key("issuer"), "%s", msg)
		}
	}
	v.word(key("account"), p.Account, "an oidc-agent account name")
	v.word(key("client_id"), p.ClientID, "a client id")
	v.absPath(key("ca_file"), p.CAFile)
	v.absPath(key("token_file"), p.TokenFile)
	v.absPath(key("passphrase_file"), p.PassphraseFile)
	v.list(key("scopes"), p.Scopes, "scope")
	v.list(key("audiences"), p.Audiences, "audience")
	v.nonNegative(key("min_valid"), p.MinValid)
	v.nonNegative(key("timeout"), p.Timeout)
	switch p.Flow {
	case "", FlowDevice, FlowPassword, FlowClientCredentials:
	default:
		v.add(key("flow"), "unknown flow %s (use %q, %q or %q)", quoteValue(p.Flow), FlowDevice, FlowPassword, FlowClientCredentials)
	}
	if p.PassphraseEnv != "" && !envName.MatchString(p.PassphraseEnv) {
		v.add(key("passphrase_env"), "%s is not an environment variable name", quoteValue(p.PassphraseEnv))
	}
	if strings.ContainsRune(p.PassphraseCmd, 0) {
		v.add(key("passphrase_cmd"), "contains a NUL character")
	}
	if strings.ContainsRune(p.Command, 0) {
		v.add(key("command"), "contains a NUL character")
	}
	if strings.IndexFunc(p.Username, unicode.IsControl) >= 0 {
		v.add(key("username"), "contains a control character")
	}
	for _, k := range sortedKeys(p.Options) {
		if k == "" {
			v.add(key("options"), "empty option name")
		}
	}
}

func (v *validator) routes(c *Config) {
	seen := map[routeKey]int{}
	for i := range c.Routes {
		r := &c.Routes[i]
		path := []string{"routes", strconv.Itoa(i)}
		key := func(k string) []string { return appendPath(path, k) }
		switch r.URL {
		case "":
			v.add(path, "url is required (e.g. url = \"https://dcache.example.org:2880/data\")")
		default:
			cr, msg := compileRoute(r.URL)
			if msg != "" {
				v.add(key("url"), "%s", msg)
				break
			}
			if j, dup := seen[cr.key]; dup {
				where := ""
				if l := v.ix.line("routes", strconv.Itoa(j), "url"); l > 0 {
					where = fmt.Sprintf(" (line %d)", l)
				}
				v.add(key("url"), "same URL as routes[%d]%s: only one route may serve it", j, where)
			} else {
				seen[cr.key] = i
			}
		}
		switch r.Profile {
		case "":
			v.add(path, "profile is required%s", knownProfiles(c.ProfileNames()))
		default:
			if _, ok := c.Profiles[r.Profile]; !ok {
				v.add(key("profile"), "no profile %s%s", quoteValue(r.Profile), knownProfiles(c.ProfileNames()))
			}
		}
		v.list(key("scopes"), r.Scopes, "scope")
		v.list(key("audiences"), r.Audiences, "audience")
	}
}

func (v *validator) renew(c *Config) {
	files := map[string]int{}
	firstFile := map[string]string{}
	for i := range c.Renew {
		o := &c.Renew[i]
		path := []string{"renew", strconv.Itoa(i)}
		key := func(k string) []string { return appendPath(path, k) }
		switch o.Profile {
		case "":
			v.add(path, "profile is required%s", knownProfiles(c.ProfileNames()))
		default:
			if _, ok := c.Profiles[o.Profile]; !ok {
				v.add(key("profile"), "no profile %s%s", quoteValue(o.Profile), knownProfiles(c.ProfileNames()))
			}
		}
		v.list(key("scopes"), o.Scopes, "scope")
		v.list(key("audiences"), o.Audiences, "audience")
		v.nonNegative(key("min_valid"), o.MinValid)
		v.absPath(key("file"), o.File)
		f := filepath.Clean(o.File)
		if o.File == "" {
			f = ""
		}
		if j, dup := files[f]; dup {
			what := "the file " + quoteValue(firstFile[f])
			if f == "" {
				what = "the discovery location (file unset)"
			}
			v.add(key("file"), "renew[%d] already writes %s", j, what)
		} else {
			files[f] = i
			firstFile[f] = o.File
		}
	}
}

func (v *validator) list(path []string, items []string, what string) {
	for i, s := range items {
		p := appendPath(path, strconv.Itoa(i))
		switch {
		case s == "":
			v.add(p, "empty %s", what)
		case strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
			v.add(p, "%s %s contains whitespace (write one %s per list item)", what, quoteValue(s), what)
		}
	}
}

func (v *validator) word(path []string, s, what string) {
	if s != "" && strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		v.add(path, "%s %s contains whitespace or control characters", what, quoteValue(s))
	}
}

func (v *validator) absPath(path []string, p string) {
	switch {
	case p == "":
	case strings.ContainsRune(p, 0):
		v.add(path, "path contains a NUL character")
	case !filepath.IsAbs(p):
		v.add(path, "%s is not an absolute path (tokenhelper does not expand \"~\" or variables: write the full path)", quoteValue(p))
	}
}

func (v *validator) nonNegative(path []string, d Duration) {
	if d < 0 {
		v.add(path, "must not be negative (%s)", d.D())
	}
}

// checkIssuer returns what is wrong with an issuer URL, or "".
func checkIssuer(s string) string {
	q := quoteValue(s)
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return q + " contains whitespace or control characters"
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return q + " is not a URL like \"https://iam.example.org/\""
	}
	if u.User != nil {
		return "must not contain a user name or password"
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#") {
		return q + " must not have a query (?...) or fragment (#...)"
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return q + " must use https (http is only allowed for 127.0.0.1, localhost and [::1])"
		}
	default:
		return q + " must be an https URL"
	}
	if _, msg := parsePort(u.Port(), "https"); msg != "" {
		return msg
	}
	return ""
}

func isLoopback(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && (ip.Equal(net.IPv4(127, 0, 0, 1)) || ip.Equal(net.IPv6loopback))
}

func knownProfiles(names []string) string {
	if len(names) == 0 {
		return " (no profiles are defined)"
	}
	return " (profiles: " + strings.Join(names, ", ") + ")"
}

// ProfileNames returns the profile names, sorted.
func (c *Config) ProfileNames() []string {
	if c == nil {
		return nil
	}
	return sortedKeys(c.Profiles)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
