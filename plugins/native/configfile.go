package native

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/helper/safefile"
)

var bareKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// tomlString quotes s as a TOML basic string. JSON's string escapes are
// all valid in TOML basic strings (\" \\ \b \f \n \r \t \uXXXX).
func tomlString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

func tomlKey(s string) string {
	if bareKey.MatchString(s) {
		return s
	}
	return tomlString(s)
}

func tomlList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = tomlString(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// ProfileSection renders the keys `register` sets for a native profile
// as a [profiles.NAME] table, preceded by comment lines (each prefixed
// with "# ").
func ProfileSection(p *config.Profile, comment string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(comment), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			b.WriteString("# " + line + "\n")
		}
	}
	fmt.Fprintf(&b, "[profiles.%s]\n", tomlKey(p.Name))
	kv := func(k, v string) { fmt.Fprintf(&b, "%s = %s\n", k, v) }
	kv("backend", tomlString(config.BackendNative))
	kv("issuer", tomlString(p.Issuer))
	if p.ClientID != "" {
		kv("client_id", tomlString(p.ClientID))
	}
	if len(p.Scopes) > 0 {
		kv("scopes", tomlList(p.Scopes))
	}
	if len(p.Audiences) > 0 {
		kv("audiences", tomlList(p.Audiences))
	}
	if p.CAFile != "" {
		kv("ca_file", tomlString(p.CAFile))
	}
	if p.Flow != "" && p.Flow != config.FlowDevice {
		kv("flow", tomlString(p.Flow))
	}
	if p.Exchange {
		kv("exchange", "true")
	}
	if p.PassphraseEnv != "" {
		kv("passphrase_env", tomlString(p.PassphraseEnv))
	}
	if p.PassphraseFile != "" {
		kv("passphrase_file", tomlString(p.PassphraseFile))
	}
	if p.PassphraseCmd != "" {
		kv("passphrase_cmd", tomlString(p.PassphraseCmd))
	}
	if p.Plaintext {
		kv("plaintext", "true")
	}
	return b.String()
}

// CheckSection reports whether section can be appended to the config file
// at path: the result must parse and validate. It writes nothing.
func CheckSection(path, section string) error {
	_, _, _, err := withSection(path, section)
	return err
}

// AppendSection adds section at the end of the config file at path,
// keeping the existing text byte for byte: the file is read, the section
// appended after a blank line, and the result — only if it still parses
// and validates — written atomically with the file's mode (0600 for a new
// file, in a 0700 directory). A config file that is a symbolic link (a
// dotfiles repository) is written at its target.
func AppendSection(path, section string) error {
	target, data, mode, err := withSection(path, section)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
		return helper.Wrap(helper.KindConfig, err, fmt.Sprintf("cannot create the directory of %s: %v", target, errnoText(err)))
	}
	if err := safefile.WriteFile(target, data, mode); err != nil {
		return helper.Wrap(helper.KindConfig, err, fmt.Sprintf("cannot write config file %s: %v", target, err))
	}
	return nil
}

// withSection returns the file to write, its new content and mode.
func withSection(path, section string) (target string, data []byte, mode os.FileMode, err error) {
	if path == "" {
		return "", nil, 0, helper.Errorf(helper.KindConfig, "no config file to add the profile to").WithFix("set HOME or pass --config FILE")
	}
	target = path
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		t, err := filepath.EvalSymlinks(path)
		if err != nil {
			return "", nil, 0, helper.Wrap(helper.KindConfig, err, fmt.Sprintf("config file %s is a symbolic link that cannot be followed", path)).
				WithFix("fix or remove the link")
		}
		target = t
	}
	mode = 0o600
	old, err := os.ReadFile(target)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		old = nil
	case err != nil:
		return "", nil, 0, helper.Wrap(helper.KindConfig, err, fmt.Sprintf("cannot read config file %s: %v", target, errnoText(err)))
	default:
		if fi, err := os.Stat(target); err == nil {
			mode = fi.Mode().Perm()
		}
	}
	var buf bytes.Buffer
	buf.Write(old)
	if len(old) > 0 {
		if !bytes.HasSuffix(old, []byte("\n")) {
			buf.WriteByte('\n')
		}
		buf.WriteByte('\n')
	}
	buf.WriteString(section)
	if _, err := config.Parse(path, buf.Bytes()); err != nil {
		return "", nil, 0, &helper.Error{Kind: helper.KindConfig, Err: err,
			Msg: "the new profile would make the config file invalid, so it was not added: " + oneLine(err),
			Fix: "check the options given, and the file with: tokenhelper config check"}
	}
	return target, buf.Bytes(), mode, nil
}
