package testbed

import (
	"fmt"
	"strings"
)

// DemoScopes are the scopes of the profile ProfileTOML writes by default:
// what alice may have, with a refresh token and her groups.
var DemoScopes = []string{"openid", "offline_access", "wlcg.groups", "storage.read:/", "storage.create:/", "storage.modify:/home/alice"}

// ProfileTOML returns a tokenhelper configuration snippet for this test
// bed: a native-backend profile named name (issuer, CA file, scopes; no
// client_id, so tokenhelper registers a client dynamically) and, when the
// storage runs, a route sending its URL to the profile. Nil scopes mean
// DemoScopes.
func (tb *Testbed) ProfileTOML(name string, scopes []string) string {
	if scopes == nil {
		scopes = DemoScopes
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[profiles.%s]\n", tomlKey(name))
	fmt.Fprintf(&b, "backend = %s\n", tomlString("native"))
	fmt.Fprintf(&b, "issuer = %s\n", tomlString(tb.IssuerURL))
	if tb.CAFile != "" {
		fmt.Fprintf(&b, "ca_file = %s\n", tomlString(tb.CAFile))
	}
	quoted := make([]string, len(scopes))
	for i, s := range scopes {
		quoted[i] = tomlString(s)
	}
	fmt.Fprintf(&b, "scopes = [%s]\n", strings.Join(quoted, ", "))
	if tb.StorageURL != "" {
		fmt.Fprintf(&b, "\n[[routes]]\nurl = %s\nprofile = %s\n", tomlString(tb.StorageURL), tomlString(name))
	}
	return b.String()
}

// tomlString writes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\u%04X", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// tomlKey writes a table key bare when TOML allows it, quoted otherwise.
func tomlKey(k string) string {
	if k == "" {
		return `""`
	}
	for _, r := range k {
		if !isBareKeyChar(r) {
			return tomlString(k)
		}
	}
	return k
}

// isBareKeyChar: TOML bare keys are A-Za-z0-9_-.
func isBareKeyChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
}
