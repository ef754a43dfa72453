package cli

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/tokenhelper/tokenhelper/helper/jwtinfo"
)

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// withVerdict adds a "verification" member to a JSON object.
func withVerdict(obj []byte, v *jwtinfo.Verdict) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(obj, &m); err != nil {
		return nil, err
	}
	vb, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	m["verification"] = vb
	return json.MarshalIndent(m, "", "  ")
}

// shellQuote quotes s for POSIX sh.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:=@%+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
