//go:build linux

package e2e

import (
	"os"
	"strings"
	"testing"
)

func TestShellBlocks(t *testing.T) {
	page := "# T\n\n```sh\necho one\n  indented\n```\n\ntext\n\n```console\n# apt-get install x\n```\n" +
		"```toml\n[a]\n```\n  ```sh\necho two\n  ```\n```shell\nnot run\n```\n```sh\nunterminated\n"
	got := ShellBlocks(page)
	want := []string{"echo one\n  indented\n", "echo two\n"}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("block %d: %q, want %q", i, got[i], want[i])
		}
	}
}

// TestServerDocMatchesTemplates: docs/xrootd-server.md shows the same
// configuration the harness runs. Every directive of the templates,
// rendered with the page's shell variables, must appear on a line of the
// page.
func TestServerDocMatchesTemplates(t *testing.T) {
	page, err := os.ReadFile("../../docs/xrootd-server.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(page), "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	xc, sc, err := RenderConfig(ConfigValues{
		BasePath: "/data", LocalRoot: "$XRD/ns", AdminPath: "$XRD/admin",
		RootPort: "$ROOT_PORT", HTTPPort: "$HTTPS_PORT",
		CertFile: "$XRD/etc/hostcert.pem", KeyFile: "$XRD/etc/hostkey.pem", CADir: "/etc/ssl/certs",
		SciTokensConfig: "$XRD/etc/scitokens.cfg",
		Audience:        "$AUDIENCE", IssuerName: "testbed", Issuer: "$ISSUER", User: "xrootd",
	})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(xc+"\n"+sc, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		n++
		if !lines[l] {
			t.Errorf("docs/xrootd-server.md lacks the line %q of the harness's configuration", l)
		}
	}
	if n < 15 {
		t.Errorf("only %d directives rendered", n)
	}
}
