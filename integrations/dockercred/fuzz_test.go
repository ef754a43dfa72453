package dockercred

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/tokenhelper/tokenhelper/helper"
)

// FuzzParse feeds arbitrary stdin to every action: no panic, input errors
// are usage errors, nothing is written before an error, and a get answer
// is the protocol's JSON object.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"harbor.example.org\n",
		"https://registry.example.org",
		`{"ServerURL":"harbor.example.org","Username":"u","Secret":"s"}`,
		"",
		"\x00",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if s, err := ParseServerURL(bytes.NewReader(in)); err == nil {
			if s == "" || s != strings.TrimSpace(s) || strings.ContainsAny(s, " \n\r\t\x00") {
				t.Fatalf("ParseServerURL accepted %q", s)
			}
		} else if !helper.IsKind(err, helper.KindUsage) {
			t.Fatalf("ParseServerURL error of kind %v", helper.KindOf(err))
		}
		if _, err := ParseStore(bytes.NewReader(in)); err != nil && !helper.IsKind(err, helper.KindUsage) {
			t.Fatalf("ParseStore error of kind %v", helper.KindOf(err))
		}
		for _, action := range []string{"get", "store", "erase"} {
			var out bytes.Buffer
			err := Handle(context.Background(), newFake(), action, bytes.NewReader(in), &out)
			if err != nil {
				if out.Len() != 0 {
					t.Fatalf("%s: output before error: %q", action, out.String())
				}
				WriteError(&out, err)
				if strings.Count(out.String(), "\n") != 1 {
					t.Fatalf("%s: error is not one line: %q", action, out.String())
				}
				continue
			}
			if action == "get" {
				var c Credentials
				if err := json.Unmarshal(out.Bytes(), &c); err != nil || c.Secret == "" || c.ServerURL == "" {
					t.Fatalf("get answer %q: %v", out.String(), err)
				}
			} else if out.Len() != 0 {
				t.Fatalf("%s wrote %q", action, out.String())
			}
		}
	})
}
