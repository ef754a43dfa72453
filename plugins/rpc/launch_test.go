package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/plugins/rpc"
	"github.com/tokenhelper/tokenhelper/plugins/rpc/remote"
)

// The test binary doubles as a plugin: with RPC_TEST_PLUGIN=MODE it
// behaves as MODE says instead of running the tests.
const envMode = "RPC_TEST_PLUGIN"

// A token-looking string that must never reach a message.
const secretJWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXRoYXQtaXMtbG9uZw"

func TestMain(m *testing.M) {
	if mode := os.Getenv(envMode); mode != "" {
		testPlugin(mode)
		os.Exit(0)
	}
	hclog.DefaultOutput = io.Discard // go-plugin's test connections log here
	os.Exit(m.Run())
}

// fake is a backend whose behaviour the request's first scope selects.
type fake struct{ mode string }

func (f *fake) Token(ctx context.Context, req helper.Request) (*helper.Token, error) {
	switch f.mode {
	case "panic":
		panic("bad token " + secretJWT)
	case "hang":
		select {} // ignores ctx: the host must kill it
	case "exitcall":
		log.Fatal("fatal: lost connection to the vault")
	}
	return &helper.Token{AccessToken: "opaque-token-value", Expiry: time.Now().Add(time.Hour), Source: "fake"}, nil
}

func testPlugin(mode string) {
	switch mode {
	case "exit":
		fmt.Fprintln(os.Stderr, "site configuration /etc/site/token.conf is missing")
		os.Exit(3)
	case "garbage":
		fmt.Println("hello, I am not a plugin")
		time.Sleep(time.Minute)
		return
	case "sleep":
		time.Sleep(time.Minute)
		return
	case "v2":
		h := rpc.Handshake
		h.ProtocolVersion = 2
		plugin.Serve(&plugin.ServeConfig{HandshakeConfig: h, Plugins: rpc.PluginSet(&rpc.Server{Name: "v2"}), GRPCServer: plugin.DefaultGRPCServer})
		return
	}
	rpc.Serve(&rpc.Server{Name: "fake", Version: "1.2.3", New: func(ctx context.Context, c rpc.Config) (helper.Backend, error) {
		return &fake{mode: mode}, nil
	}})
}

func launch(t testing.TB, mode string, start time.Duration) (*rpc.Conn, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), envMode+"="+mode)
	return rpc.Launch(rpc.LaunchConfig{
		Target:       remote.Target{Name: "fake", Path: os.Args[0]},
		Cmd:          cmd,
		Stderr:       io.Discard,
		StartTimeout: start,
	})
}

// gone requires that the process no longer exists: not running, not a
// zombie waiting to be reaped.
func gone(t *testing.T, pid int) {
	t.Helper()
	if pid <= 0 {
		t.Fatal("no pid")
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
		state, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		t.Fatalf("plugin process %d still exists: %s", pid, state)
	}
}

func configure(t *testing.T, c *rpc.Conn) {
	t.Helper()
	if _, err := c.Backend.Configure(context.Background(), rpc.Config{Profile: &config.Profile{Name: "p", Backend: "fake"}}); err != nil {
		t.Fatal(err)
	}
}

func TestLaunchAndCall(t *testing.T) {
	c, err := launch(t, "ok", 0)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Backend.Info(context.Background())
	if err != nil || info.Name != "fake" || info.Version != "1.2.3" {
		t.Fatalf("Info = %+v, %v", info, err)
	}
	configure(t, c)
	tok, err := c.Backend.Token(context.Background(), helper.Request{Profile: "p"})
	if err != nil || tok.AccessToken != "opaque-token-value" {
		t.Fatalf("Token = %v, %v", tok, err)
	}
	pid := c.Pid()
	c.Close()
	c.Close() // idempotent
	gone(t, pid)
}

// Failures before the handshake: each names the plugin and its path and
// says what happened; nothing is left running.
func TestLaunchFailures(t *testing.T) {
	for _, tc := range []struct {
		mode  string
		start time.Duration
		kind  helper.Kind
		want  []string
	}{
		{"exit", 0, helper.KindUnavailable, []string{"exited before it was ready", "site configuration /etc/site/token.conf is missing"}},
		{"garbage", 0, helper.KindConfig, []string{"does not speak the tokenhelper plugin protocol"}},
		{"v2", 0, helper.KindConfig, []string{"another version of the plugin protocol", "version 1"}},
		{"sleep", 500 * time.Millisecond, helper.KindUnavailable, []string{"did not start within 500ms"}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			start := time.Now()
			c, err := launch(t, tc.mode, tc.start)
			if err == nil {
				c.Close()
				t.Fatal("Launch succeeded")
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("took %s", took)
			}
			if k := helper.KindOf(err); k != tc.kind {
				t.Errorf("kind %s, want %s (%v)", k, tc.kind, err)
			}
			msg := err.Error()
			for _, w := range append(tc.want, `plugin "fake" (`+os.Args[0]+")") {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
		})
	}
}

func TestLaunchNotExecutable(t *testing.T) {
	p := t.TempDir() + "/tokenhelper-plugin-x"
	if err := os.WriteFile(p, []byte("\x7fELF garbage"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := rpc.Launch(rpc.LaunchConfig{Target: remote.Target{Name: "x", Path: p}, Cmd: exec.Command(p)})
	if !helper.IsKind(err, helper.KindConfig) || !strings.Contains(err.Error(), "cannot run plugin \"x\"") {
		t.Fatalf("err = %v", err)
	}
}

// Failures during a call: a crash (panic, exit) is reported with the
// plugin's last stderr line, token-like words redacted; a plugin that
// ignores its deadline is killed at the deadline. None leaves a process.
func TestCallFailures(t *testing.T) {
	for _, tc := range []struct {
		mode    string
		timeout time.Duration
		want    []string
	}{
		{"panic", 10 * time.Second, []string{"crashed during token", "panic: bad token [redacted]"}},
		{"exitcall", 10 * time.Second, []string{"crashed during token", "fatal: lost connection to the vault"}},
		{"hang", time.Second, []string{"did not answer token within 1s; stopped it"}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			c, err := launch(t, tc.mode, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			configure(t, c)
			pid := c.Pid()
			ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
			defer cancel()
			start := time.Now()
			_, err = c.Backend.Token(ctx, helper.Request{Profile: "p"})
			err = c.Failure(ctx, "token", tc.timeout, err)
			if err == nil {
				t.Fatal("no error")
			}
			c.Close()
			if took := time.Since(start); took > tc.timeout+3*time.Second {
				t.Errorf("took %s", took)
			}
			if !helper.IsKind(err, helper.KindUnavailable) {
				t.Errorf("kind %s: %v", helper.KindOf(err), err)
			}
			msg := err.Error()
			if strings.Contains(msg, secretJWT) || strings.Contains(msg, "eyJ") {
				t.Errorf("error shows the token: %q", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			if !strings.Contains(msg, os.Args[0]) {
				t.Errorf("error %q does not name the plugin's path", msg)
			}
			gone(t, pid)
		})
	}
}

// A typed error passes Failure unchanged.
func TestFailureKeepsTypedErrors(t *testing.T) {
	c, err := launch(t, "ok", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	in := helper.LoginNeeded("p", "session expired")
	if out := c.Failure(context.Background(), "token", 0, in); !errors.Is(out, in) || out != error(in) {
		t.Fatalf("Failure changed a typed error: %v", out)
	}
}
