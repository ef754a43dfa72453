// Package config reads tokenhelper's TOML configuration (TOML 1.0, via
// github.com/pelletier/go-toml/v2): named profiles, the default profile,
// URL → profile routing rules, plugin pins and renew outputs. It also
// resolves the directories tokenhelper uses (XDG Base Directory
// Specification 0.8) from an injected environment.
//
// Loading refuses files others could change (they could redirect tokens),
// and every configuration error is a one-line *helper.Error of
// KindConfig naming the file, the line and the key. docs/config.md is the
// user reference; Example is a complete, valid file.
//
// Typical use:
//
//	dirs, err := config.ResolveDirs(os.Getenv)
//	cfg, err := config.Load(dirs.ConfigFile, dirs.ConfigExplicit)
//	prof, err := cfg.Select(flagProfile, os.Getenv(config.EnvProfile))
//	m, err := cfg.MatchURL("davs://dcache.example.org:2880/data/f")
package config
