package sdk

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/plugins/rpc"
	"github.com/tokenhelper/tokenhelper/plugins/rpc/remote"
)

// The test binary doubles as a plugin built with Serve.
func TestMain(m *testing.M) {
	if os.Getenv("SDK_TEST_PLUGIN") == "1" {
		Serve(&example{}, WithName("example"), WithVersion("2.0.1"))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// example is the backend of the package documentation, with status.
type example struct{ profile *config.Profile }

func (e *example) Configure(ctx context.Context, c Config) error {
	if c.Profile.Options["fail"] == "yes" {
		return helper.Errorf(helper.KindConfig, "options.fail is set").WithFix("unset it")
	}
	e.profile = c.Profile
	return nil
}

func (e *example) Token(ctx context.Context, req helper.Request) (*helper.Token, error) {
	if e.profile.Options["vo"] == "" {
		return nil, helper.LoginNeeded(req.Profile, "no session yet")
	}
	return &helper.Token{AccessToken: "tok-" + e.profile.Options["vo"], Expiry: time.Now().Add(time.Hour)}, nil
}

func (e *example) Status(ctx context.Context) (helper.Status, error) {
	return helper.Status{Backend: "example", OK: true, Lines: []string{"fine"}}, nil
}

func run(t *testing.T, args []string, env map[string]string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	o := resolve([]Option{WithVersion("2.0.1"), withIO(args, func(k string) string { return env[k] }, &out, &errOut)})
	code, done := o.standalone()
	if !done {
		code = -1
	}
	return code, out.String(), errOut.String()
}

func TestStandalone(t *testing.T) {
	code, out, _ := run(t, []string{"/usr/lib/tokenhelper-plugin-site", "--version"}, nil)
	if code != 0 || out != "tokenhelper-plugin-site 2.0.1 (tokenhelper plugin protocol 1)\n" {
		t.Errorf("--version: %d %q", code, out)
	}
	code, _, errOut := run(t, []string{"tokenhelper-plugin-site"}, nil)
	if code != 2 || !strings.Contains(errOut, `tokenhelper runs it for profiles with backend = "site"`) {
		t.Errorf("run by hand: %d %q", code, errOut)
	}
	code, _, _ = run(t, []string{"tokenhelper-plugin-site"}, map[string]string{rpc.Handshake.MagicCookieKey: rpc.Handshake.MagicCookieValue})
	if code != -1 {
		t.Errorf("started by tokenhelper: handled as standalone (%d)", code)
	}
}

func launch(t *testing.T) *rpc.Conn {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "SDK_TEST_PLUGIN=1")
	c, err := rpc.Launch(rpc.LaunchConfig{Target: remote.Target{Name: "example", Path: os.Args[0]}, Cmd: cmd})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// A plugin built with Serve, started as tokenhelper starts it.
func TestServe(t *testing.T) {
	ctx := context.Background()
	c := launch(t)
	info, err := c.Backend.Info(ctx)
	if err != nil || info.Name != "example" || info.Version != "2.0.1" || !info.Status || info.Login {
		t.Fatalf("Info = %+v, %v", info, err)
	}
	if _, err := c.Backend.Configure(ctx, rpc.Config{Profile: &config.Profile{Name: "p", Options: map[string]string{"vo": "cms"}}}); err != nil {
		t.Fatal(err)
	}
	tok, err := c.Backend.Token(ctx, helper.Request{Profile: "p"})
	if err != nil || tok.AccessToken != "tok-cms" {
		t.Fatalf("Token = %v, %v", tok, err)
	}
	if st, err := c.Backend.Status(ctx); err != nil || !st.OK {
		t.Fatalf("Status = %+v, %v", st, err)
	}

	c = launch(t)
	_, err = c.Backend.Configure(ctx, rpc.Config{Profile: &config.Profile{Name: "p", Options: map[string]string{"fail": "yes"}}})
	if !helper.IsKind(err, helper.KindConfig) || err.Error() != "options.fail is set: unset it" {
		t.Fatalf("Configure error: %v", err)
	}

	c = launch(t)
	if _, err := c.Backend.Configure(ctx, rpc.Config{Profile: &config.Profile{Name: "p"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Backend.Token(ctx, helper.Request{Profile: "p"}); helper.ExitCode(err) != 4 {
		t.Fatalf("login needed: %v", err)
	}
}
