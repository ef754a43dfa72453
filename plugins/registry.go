// Package plugins holds tokenhelper's token backends and their registry:
// one explicit name → factory map of built-in backends, run in-process
// (the Vault pattern: no init() registration).
package plugins

import (
	"log/slog"
	"sort"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/plugins/file"
	"github.com/tokenhelper/tokenhelper/plugins/native"
	"github.com/tokenhelper/tokenhelper/plugins/oidcagent"
	"github.com/tokenhelper/tokenhelper/plugins/rpc/remote"
)

// Deps is what a backend may take from the process. Everything is
// injected so backends run inside tests without touching the machine.
type Deps struct {
	// LookupEnv reads the environment.
	LookupEnv func(string) (string, bool)
	Dirs      config.Dirs
	Now       func() time.Time
	UID       int
	TmpDir    string
	Log       *slog.Logger
	// UI talks to a person during login; nil when there is none.
	UI helper.UI

	// For backends in their own process (isolate = true, external
	// plugins; see plugins/rpc/remote):
	// Environ is their environment (nil: this process's).
	Environ func() []string
	// Plugins are the [plugins.NAME] checksum pins.
	Plugins map[string]config.PluginPin
	// Verbose is the -v count, passed on to them.
	Verbose int
}

// Getenv returns an environment variable or "".
func (d Deps) Getenv(k string) string {
	if d.LookupEnv == nil {
		return ""
	}
	v, _ := d.LookupEnv(k)
	return v
}

// Builtin describes a backend compiled into tokenhelper.
type Builtin struct {
	Name    string
	Summary string
	// Cached says access tokens from this backend go through the token
	// cache (helper/cache). Backends that are themselves a cache (a token
	// file, oidc-agent) say false.
	Cached bool
	// CacheDownscoped says requests with scopes or audiences go through
	// the token cache even though Cached is false: the backend keeps its
	// default token itself but asks the provider for every down-scoped one
	// (oidc-agent 4.2 refreshes at the IAM for each such request, one at a
	// time: a hundred jobs asking for storage.read:/ would be a hundred
	// refreshes). The cache makes it one, and the warm path a file read.
	CacheDownscoped bool
	New             func(p *config.Profile, d Deps) (helper.Backend, error)
}

var builtins = map[string]Builtin{
	config.BackendFile: {
		Name:    config.BackendFile,
		Summary: "a token kept in a file (written by cron, HTCondor, export) or found by WLCG discovery",
		Cached:  false,
		New: func(p *config.Profile, d Deps) (helper.Backend, error) {
			return file.New(p, file.Env{LookupEnv: d.LookupEnv, UID: d.UID, TmpDir: d.TmpDir, Now: d.Now}), nil
		},
	},
	config.BackendNative: {
		Name:    config.BackendNative,
		Summary: "tokenhelper's own OAuth client: device-flow login, encrypted refresh tokens, down-scoping",
		Cached:  true,
		New: func(p *config.Profile, d Deps) (helper.Backend, error) {
			b, err := native.New(p, native.Options{Dirs: d.Dirs, Now: d.Now, LookupEnv: d.LookupEnv, Log: d.Log, UI: d.UI})
			if err != nil {
				return nil, err
			}
			return b, nil
		},
	},
	config.BackendOIDCAgent: {
		Name:            config.BackendOIDCAgent,
		Summary:         "tokens from a running oidc-agent (OIDC_SOCK), by account short name or issuer",
		Cached:          false,
		CacheDownscoped: true,
		New: func(p *config.Profile, d Deps) (helper.Backend, error) {
			return oidcagent.New(p, d.OIDCAgentEnv())
		},
	},
}

// OIDCAgentEnv is the environment the oidc-agent client reads.
func (d Deps) OIDCAgentEnv() oidcagent.Env {
	return oidcagent.Env{Getenv: d.Getenv, UID: d.UID, Now: d.Now}
}

// Lookup returns the built-in backend called name.
func Lookup(name string) (Builtin, bool) {
	b, ok := builtins[name]
	return b, ok
}

// Builtins lists the built-in backends by name.
func Builtins() []Builtin {
	out := make([]Builtin, 0, len(builtins))
	for _, b := range builtins {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Open returns the backend a profile names.
func Open(p *config.Profile, d Deps) (helper.Backend, Builtin, error) {
	b, err := Resolve(p)
	if err != nil {
		return nil, b, err
	}
	be, err := b.New(p, d)
	if err != nil {
		return nil, b, err
	}
	return be, b, nil
}

// Resolve says how profile p's backend runs, without starting or reading
// anything (the warm path calls it): a built-in in-process; a built-in in
// its own process when p.Isolate; else the external plugin
// tokenhelper-plugin-NAME, found in the plugin directories when a call
// needs it. Out-of-process backends run through plugins/rpc/remote and
// tokenhelper-pluginhost, so this binary links no gRPC.
func Resolve(p *config.Profile) (Builtin, error) {
	b, ok := Lookup(p.Backend)
	switch {
	case ok && !p.Isolate:
		return b, nil
	case ok:
		return Builtin{Name: b.Name, Summary: b.Summary, Cached: b.Cached,
			New: func(p *config.Profile, d Deps) (helper.Backend, error) {
				return remote.New(p, remote.Target{Name: b.Name, Builtin: true}, d.remote()), nil
			}}, nil
	case !remote.ValidName(p.Backend):
		return Builtin{}, helper.Errorf(helper.KindConfig, "profile %q: unknown backend %q", p.Name, p.Backend).
			WithFix("use one of %s, or install tokenhelper-plugin-NAME and set backend = \"NAME\"", names())
	}
	name := p.Backend
	// Tokens from external plugins go through the token cache.
	return Builtin{Name: name, Summary: "external plugin " + remote.ExecPrefix + name, Cached: true,
		New: func(p *config.Profile, d Deps) (helper.Backend, error) {
			t, err := remote.Find(name, d.Dirs.PluginDirs, d.Plugins)
			if err != nil {
				return nil, err
			}
			return remote.New(p, t, d.remote()), nil
		}}, nil
}

func (d Deps) remote() remote.Config {
	c := remote.Config{LookupEnv: d.LookupEnv, Host: remote.Host{Dirs: d.Dirs, UID: d.UID, TmpDir: d.TmpDir, Verbose: d.Verbose}}
	if d.Environ != nil {
		c.Env = d.Environ()
	}
	if d.UI != nil {
		c.Stderr = d.UI.Out()
	}
	return c
}

func names() string {
	s := ""
	for i, b := range Builtins() {
		if i > 0 {
			s += ", "
		}
		s += b.Name
	}
	return s
}
