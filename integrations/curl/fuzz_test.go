package curl

import (
	"slices"
	"strings"
	"testing"
)

// FuzzParse: any command line (arguments separated by newlines) is parsed
// without panic; the URLs are arguments of it; Command keeps every
// argument in order and adds exactly "-K -".
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Split(line, "\n")
		a, err := Parse(args)
		if err != nil {
			return
		}
		for _, u := range a.URLs {
			if !slices.Contains(args, u) {
				t.Fatalf("URL %q is not an argument", u)
			}
		}
		if a.Lead < 0 || a.Lead > len(args) {
			t.Fatalf("Lead %d of %d arguments", a.Lead, len(args))
		}
		cmd := Command(args, a, "-")
		if len(cmd) != len(args)+2 || cmd[a.Lead] != "-K" || cmd[a.Lead+1] != "-" {
			t.Fatalf("Command = %q", cmd)
		}
		if !slices.Equal(append(slices.Clone(cmd[:a.Lead]), cmd[a.Lead+2:]...), args) {
			t.Fatalf("Command changed the arguments: %q", cmd)
		}
	})
}
