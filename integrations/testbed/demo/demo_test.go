package demo_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/tokenhelper/tokenhelper/cmd/tokenhelper/cli"
	"github.com/tokenhelper/tokenhelper/integrations/testbed/demo"
)

const envBeTokenhelper = "DEMO_TEST_BE_TOKENHELPER"

func TestMain(m *testing.M) {
	if os.Getenv(envBeTokenhelper) == "1" {
		os.Exit(cli.Main(context.Background(), append([]string{"tokenhelper"}, os.Args[1:]...), cli.OSSystem()))
	}
	slog.SetDefault(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}

// The tour runs green with this test binary standing in for tokenhelper,
// once with curl and once with Go's HTTP client.
func TestTour(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, withCurl := range []bool{true, false} {
		name := map[bool]string{true: "curl", false: "go-http"}[withCurl]
		t.Run(name, func(t *testing.T) {
			o := demo.Options{
				Tokenhelper: exe,
				Dir:         t.TempDir(),
				Env:         []string{envBeTokenhelper + "=1", "GORACE=atexit_sleep_ms=0"},
				Curl:        "-",
			}
			if withCurl {
				p, err := exec.LookPath("curl")
				if err != nil {
					if os.Getenv("CI") == "true" {
						t.Fatal("curl is missing (Debian package curl)")
					}
					t.Skip("curl is not installed")
				}
				o.Curl = p
			}
			var out bytes.Buffer
			o.Out = &out
			if err := demo.Run(context.Background(), o); err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			s := out.String()
			for _, want := range []string{
				"$ tokenhelper register -p demo --issuer https://127.0.0.1:",
				"[test bed: alice opens the page, signs in and approves code ",
				"Approved.",
				"Everything is set up",
				"still valid for",
				"Scope        : storage.read:/",
				"$DEMO/run/bt_u",
				"Hello from the tokenhelper demo",
				"Revoked the refresh token",
				"Done: every step worked.",
			} {
				if !strings.Contains(s, want) {
					t.Errorf("tour output lacks %q", want)
				}
			}
			if regexp.MustCompile(`eyJ[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{20,}`).MatchString(s) {
				t.Error("the tour shows a whole token")
			}
			if withCurl == false && !strings.Contains(s, "Go's HTTP client") {
				t.Error("no note that Go's HTTP client stood in for curl")
			}
		})
	}
}
