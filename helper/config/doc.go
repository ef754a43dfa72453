// Package config reads tokenhelper's TOML configuration: named profiles,
// the default profile, URL → profile routing rules, plugin pins and renew
// outputs. It also knows the XDG directories tokenhelper uses.
package config
