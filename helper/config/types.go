package config

import (
	"time"
)

// Config is the whole configuration file.
type Config struct {
	// DefaultProfile is used when neither -p nor TOKENHELPER_PROFILE names one.
	DefaultProfile string `toml:"default_profile"`
	// PluginDirs are searched for tokenhelper-plugin-NAME executables after
	// $XDG_DATA_HOME/tokenhelper/plugins.
	PluginDirs []string `toml:"plugin_dirs"`
	// Profiles by name.
	Profiles map[string]*Profile `toml:"profiles"`
	// Routes map URL prefixes to profiles; the longest matching prefix wins.
	Routes []Route `toml:"routes"`
	// Plugins pins external plugin binaries by checksum.
	Plugins map[string]PluginPin `toml:"plugins"`
	// Renew lists the outputs `tokenhelper renew` keeps fresh.
	Renew []RenewOutput `toml:"renew"`

	// Path is the file this was read from ("" when no file exists).
	Path string `toml:"-"`

	// searched is the file Load looked for when none existed (for messages).
	searched string
}

// Profile is one named way of getting tokens.
type Profile struct {
	Name string `toml:"-"`

	// Backend: "native", "oidc-agent", "file", or the NAME of an external
	// plugin tokenhelper-plugin-NAME. Default: "file" when token_file is
	// set, "oidc-agent" when account is set, else "native".
	Backend string `toml:"backend"`
	// Isolate runs a built-in backend in its own process over go-plugin.
	Isolate bool `toml:"isolate"`

	// Issuer is the OIDC issuer URL (native; oidc-agent when no account).
	Issuer string `toml:"issuer"`
	// Account is the oidc-agent account short name.
	Account string `toml:"account"`
	// ClientID of a pre-registered client (native). The client secret is
	// never in the config file: it lives encrypted in the state directory.
	ClientID string `toml:"client_id"`
	// CAFile is a PEM bundle to trust for the issuer (private CAs, tests).
	CAFile string `toml:"ca_file"`

	// Scopes and Audiences are the defaults for a token of this profile.
	Scopes    []string `toml:"scopes"`
	Audiences []string `toml:"audiences"`
	// MinValid is how long a handed-out token must at least stay valid.
	MinValid Duration `toml:"min_valid"`

	// Flow is the login grant: "device" (default), "password",
	// "client-credentials".
	Flow string `toml:"flow"`
	// Exchange makes down-scoping use RFC 8693 token exchange instead of a
	// refresh with scope/audience parameters.
	Exchange bool `toml:"exchange"`

	// Passphrase sources for secrets at rest (native), tried in this order:
	// the environment variable, the file, the command; else the unlock
	// cache; else a prompt when there is a terminal.
	PassphraseEnv  string `toml:"passphrase_env"`
	PassphraseFile string `toml:"passphrase_file"`
	PassphraseCmd  string `toml:"passphrase_cmd"`
	// Plaintext stores refresh tokens and client secrets unencrypted. Only
	// for robot accounts on locked-down hosts; tokenhelper warns.
	Plaintext bool `toml:"plaintext"`
	// UnlockFor is how long an entered passphrase stays usable (kernel
	// keyring); 0 uses the default, a negative value disables it.
	UnlockFor Duration `toml:"unlock_for"`

	// TokenFile is the file the file backend serves ("" = discovery).
	TokenFile string `toml:"token_file"`

	// Command is run by the command plugin; it must print a token.
	Command string `toml:"command"`
	// Timeout bounds one backend call (network, agent, plugin, command).
	Timeout Duration `toml:"timeout"`

	// Username is what the git credential helper sends as user name on
	// git < 2.46 (default "oauth2").
	Username string `toml:"username"`

	// Options are backend-specific settings passed through to external
	// plugins verbatim.
	Options map[string]string `toml:"options"`
}

// Route maps a URL prefix to a profile.
type Route struct {
	// URL prefix: scheme://host[:port][/path]. A missing port matches the
	// scheme's default port.
	URL     string `toml:"url"`
	Profile string `toml:"profile"`
	// Scopes and Audiences override the profile's defaults for this URL.
	Scopes    []string `toml:"scopes"`
	Audiences []string `toml:"audiences"`
}

// PluginPin pins an external plugin binary.
type PluginPin struct {
	// SHA256 of the executable, hex.
	SHA256 string `toml:"sha256"`
	// Path overrides the plugin search.
	Path string `toml:"path"`
}

// RenewOutput is one file `tokenhelper renew` keeps fresh.
type RenewOutput struct {
	Profile   string   `toml:"profile"`
	Scopes    []string `toml:"scopes"`
	Audiences []string `toml:"audiences"`
	// File is the output path; "" means the discovery location.
	File string `toml:"file"`
	// MinValid: refresh when the file's token has less than this left;
	// default: a fraction of the token's lifetime.
	MinValid Duration `toml:"min_valid"`
}

// Duration is a time.Duration written as a Go duration string ("5m", "1h30m").
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalText parses a duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration string.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(time.Duration(d).String()), nil
}
