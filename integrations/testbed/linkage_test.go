package testbed_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNotLinkedIntoTokenhelper guards issue 3's rule: the test bed (and
// the OpenID provider library under it) never ends up in the tokenhelper
// binary.
func TestNotLinkedIntoTokenhelper(t *testing.T) {
	t.Parallel()
	requireTools(t, "golang-go", "go")
	out, err := exec.Command("go", "list", "-e", "-deps", "-f", "{{.ImportPath}}", "github.com/tokenhelper/tokenhelper/cmd/tokenhelper").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.Contains(pkg, "/integrations/testbed") || strings.HasPrefix(pkg, "github.com/zitadel/") {
			t.Errorf("cmd/tokenhelper depends on %s", pkg)
		}
	}
	if !strings.Contains(string(out), "github.com/tokenhelper/tokenhelper/helper") {
		t.Errorf("go list found no dependencies of cmd/tokenhelper; the check proves nothing:\n%s", out)
	}
}
