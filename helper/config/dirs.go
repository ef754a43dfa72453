package config

import (
	"os"
	"path/filepath"
	"slices"

	"github.com/tokenhelper/tokenhelper/helper"
)

// Env looks up an environment variable; "" means unset. Pass os.Getenv in
// main and a map lookup in tests: nothing in this package reads the real
// environment.
type Env func(string) string

// MapEnv returns an Env backed by a map (handy in tests and for callers
// that build a child environment).
func MapEnv(m map[string]string) Env {
	return func(k string) string { return m[k] }
}

// EnvConfig names the environment variable that points at the config file.
const EnvConfig = "TOKENHELPER_CONFIG"

// EnvProfile names the environment variable that selects a profile.
const EnvProfile = "TOKENHELPER_PROFILE"

// Dirs are the places tokenhelper reads and writes, resolved from the
// environment according to the XDG Base Directory Specification 0.8.
type Dirs struct {
	// Home is the user's home directory ("" when it could not be found
	// and no directory needed it).
	Home string
	// ConfigFile is $TOKENHELPER_CONFIG, else
	// $XDG_CONFIG_HOME/tokenhelper/config.toml.
	ConfigFile string
	// ConfigExplicit is true when ConfigFile came from $TOKENHELPER_CONFIG:
	// then a missing file is an error (pass it to Load).
	ConfigExplicit bool
	// CacheDir is $XDG_CACHE_HOME/tokenhelper (default ~/.cache/tokenhelper).
	CacheDir string
	// DataDir is $XDG_DATA_HOME/tokenhelper (default ~/.local/share/tokenhelper).
	DataDir string
	// StateDir is $XDG_STATE_HOME/tokenhelper (default ~/.local/state/tokenhelper).
	StateDir string
	// RuntimeDir is $XDG_RUNTIME_DIR itself ("" when unset or relative).
	RuntimeDir string
	// PluginDirs are searched in order for tokenhelper-plugin-NAME:
	// DataDir/plugins, then (after WithConfig) the config's plugin_dirs.
	PluginDirs []string
}

// ResolveDirs computes Dirs from env. HOME comes from env; only when HOME
// is unset does it fall back to os.UserHomeDir. Relative XDG_* values are
// ignored, as the XDG specification requires. It fails (KindConfig) only
// when a directory needs the home directory and none can be found.
func ResolveDirs(env Env) (Dirs, error) {
	return resolveDirs(env, os.UserHomeDir)
}

func resolveDirs(env Env, userHome func() (string, error)) (Dirs, error) {
	if env == nil {
		env = func(string) string { return "" }
	}
	var d Dirs
	home := env("HOME")
	if home == "" {
		if h, err := userHome(); err == nil {
			home = h
		}
	}
	if home != "" && filepath.IsAbs(home) {
		d.Home = filepath.Clean(home)
	}
	var missing []string
	base := func(xdgVar, def string) string {
		if v := env(xdgVar); v != "" && filepath.IsAbs(v) {
			return filepath.Clean(v)
		}
		if d.Home == "" {
			missing = append(missing, xdgVar)
			return ""
		}
		return filepath.Join(d.Home, def)
	}

	if p := env(EnvConfig); p != "" {
		d.ConfigFile = filepath.Clean(p)
		d.ConfigExplicit = true
	} else if cfg := base("XDG_CONFIG_HOME", ".config"); cfg != "" {
		d.ConfigFile = filepath.Join(cfg, "tokenhelper", "config.toml")
	}
	if b := base("XDG_CACHE_HOME", ".cache"); b != "" {
		d.CacheDir = filepath.Join(b, "tokenhelper")
	}
	if b := base("XDG_DATA_HOME", filepath.Join(".local", "share")); b != "" {
		d.DataDir = filepath.Join(b, "tokenhelper")
		d.PluginDirs = []string{filepath.Join(d.DataDir, "plugins")}
	}
	if b := base("XDG_STATE_HOME", filepath.Join(".local", "state")); b != "" {
		d.StateDir = filepath.Join(b, "tokenhelper")
	}
	if v := env("XDG_RUNTIME_DIR"); v != "" && filepath.IsAbs(v) {
		d.RuntimeDir = filepath.Clean(v)
	}
	if len(missing) > 0 {
		why := "HOME is not set"
		if home != "" {
			why = "HOME is not an absolute path"
		}
		return d, helper.Errorf(helper.KindConfig, "cannot find the home directory: %s", why).
			WithFix("set HOME, or set %s to absolute paths", joinList(missing))
	}
	return d, nil
}

// WithConfig returns a copy of d whose PluginDirs continue with the
// config's plugin_dirs (duplicates dropped, order kept).
func (d Dirs) WithConfig(c *Config) Dirs {
	dirs := slices.Clone(d.PluginDirs)
	if c != nil {
		for _, p := range c.PluginDirs {
			p = filepath.Clean(p)
			if !slices.Contains(dirs, p) {
				dirs = append(dirs, p)
			}
		}
	}
	d.PluginDirs = dirs
	return d
}

func joinList(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	out := ""
	for i, v := range s {
		switch {
		case i == 0:
		case i == len(s)-1:
			out += " and "
		default:
			out += ", "
		}
		out += v
	}
	return out
}
