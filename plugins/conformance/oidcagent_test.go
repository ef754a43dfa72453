package conformance_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/integrations/testbed"
	"github.com/tokenhelper/tokenhelper/plugins/conformance"
	"github.com/tokenhelper/tokenhelper/plugins/oidcagent"
	"github.com/tokenhelper/tokenhelper/plugins/rpc"
)

// needTool returns the path of an external tool. Missing, the test fails
// under CI=true and is skipped otherwise.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (CI=true): install the Debian package oidc-agent-cli", name)
	}
	t.Skipf("%s is not installed (Debian package oidc-agent-cli)", name)
	return ""
}

// agent is a real oidc-agent (Debian oidc-agent-cli 4.2.6) run as our
// child with private directories and socket, holding account "wlcg" for
// alice at the test bed. Secrets reach its tools through the environment,
// never argv.
type agent struct {
	dir, sock, pw string
	cmd           *exec.Cmd
	env           []string
}

func startAgent(t *testing.T, tb *testbed.Testbed, scopes []string) *agent {
	t.Helper()
	bin := needTool(t, "oidc-agent")
	needTool(t, "oidc-gen")
	needTool(t, "oidc-add")
	needTool(t, "oidc-token")
	dir, err := os.MkdirTemp("", "oa") // short: a UNIX socket path has 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	a := &agent{dir: dir, sock: filepath.Join(dir, "agent.sock"), pw: hex.EncodeToString(b)}
	for _, d := range []string{"home", "conf", "bin"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// The autoload prompt of an unloaded account: the person closes it.
	write(t, filepath.Join(dir, "bin", "oidc-prompt"), "#!/bin/sh\nexit 1\n", 0o700)
	a.env = []string{"PATH=" + filepath.Join(dir, "bin") + ":/usr/local/bin:/usr/bin:/bin", "HOME=" + filepath.Join(dir, "home"),
		"OIDC_CONFIG_DIR=" + filepath.Join(dir, "conf"), "TMPDIR=" + dir, "LANG=C"}
	a.cmd = exec.Command(bin, "-d", "--socket-path="+a.sock)
	a.cmd.Env = a.env
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = a.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGCONT)
		_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	for deadline := time.Now().Add(15 * time.Second); ; {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := oidcagent.LoadedAccounts(ctx, oidcagent.Env{Getenv: func(k string) string {
			if k == oidcagent.EnvSock {
				return a.sock
			}
			return ""
		}})
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("oidc-agent did not come up: %v", err)
		}
		select {
		case <-exited:
			t.Fatal("oidc-agent exited")
		case <-time.After(20 * time.Millisecond): // readiness poll, bounded above
		}
	}
	spec, err := tb.RegisterClient(testbed.ClientSpec{Name: "oidc-agent wlcg", Grants: []string{"refresh"}})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := tb.RefreshTokenFor("alice", spec.ID, scopes)
	if err != nil {
		t.Fatal(err)
	}
	client, _ := json.Marshal(map[string]any{"name": "wlcg", "issuer_url": tb.IssuerURL, "client_id": spec.ID, "client_secret": spec.Secret,
		"scope": strings.Join(scopes, " "), "redirect_uris": []string{}})
	file := filepath.Join(dir, "client.json")
	write(t, file, string(client), 0o600)
	a.run(t, []string{"OIDC_ENCRYPTION_PW=" + a.pw, "OIDC_REFRESH_TOKEN=" + rt}, "oidc-gen", "wlcg", "--file="+file, "--rt-env", "--pw-env", "--prompt=none", "--confirm-default")
	return a
}

func (a *agent) run(t *testing.T, extra []string, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(append(append([]string{}, a.env...), "OIDC_SOCK="+a.sock), extra...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// unload removes the account from the agent: a person must oidc-add it.
func (a *agent) unload(t *testing.T) (helper.Kind, func()) {
	a.run(t, nil, "oidc-add", "-r", "wlcg")
	return helper.KindLoginNeeded, func() { a.run(t, []string{"OIDC_ENCRYPTION_PW=" + a.pw}, "oidc-add", "--pw-env", "wlcg") }
}

// stop freezes the agent: requests hang until it continues.
func (a *agent) stop(t *testing.T) func() {
	if err := syscall.Kill(-a.cmd.Process.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	return func() { _ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGCONT) }
}

var agentScopes = []string{"openid", "offline_access", "storage.read:/", "storage.create:/", "compute.read"}

// The oidc-agent backend against the real agent, in-process and isolated.
func TestOIDCAgent(t *testing.T) {
	tb := testbed.Start(t, testbed.Options{})
	a := startAgent(t, tb, agentScopes)
	conformance.RunBuiltin(t, config.BackendOIDCAgent, conformance.Harness{
		Profile:   config.Profile{Account: "wlcg"},
		Env:       map[string]string{oidcagent.EnvSock: a.sock},
		Scopes:    []string{"storage.read:/data", "compute.read"},
		Audiences: []string{"https://se.example.org:2880"},
		Lifetime:  tb.Lifetimes().Access,
		Renews:    true,
		Break:     a.unload,
		Stall:     a.stop,
		// The default concurrency (8): more than the agent queues (its
		// listen backlog is 5), so some calls find the queue full and
		// retry.
	})
}

// The command plugin bridging `oidc-token wlcg`: what a user with an
// oidc-agent account configures (docs/plugins.md).
func TestCommandPluginOIDCToken(t *testing.T) {
	tb := testbed.Start(t, testbed.Options{})
	a := startAgent(t, tb, agentScopes)
	conformance.RunPlugin(t, conformance.Binaries(t).Command, conformance.Harness{
		Profile:   config.Profile{Command: OIDCTokenCommand},
		Env:       map[string]string{"OIDC_SOCK": a.sock},
		Scopes:    []string{"storage.read:/data", "compute.read"},
		Audiences: []string{"https://se.example.org:2880"},
		Lifetime:  tb.Lifetimes().Access,
		Renews:    true,
		// oidc-token exits 1 for every failure, so the plugin cannot tell
		// "log in" from others: unavailable, with oidc-token's message.
		Break: func(t *testing.T) (helper.Kind, func()) {
			_, restore := a.unload(t)
			return helper.KindUnavailable, restore
		},
		Stall: a.stop,
	})
}

// OIDCTokenCommand is the command docs/plugins.md recommends for
// oidc-agent users: scopes, audiences, min-valid and force passed on.
const OIDCTokenCommand = `oidc-token ${TOKENHELPER_SCOPES:+--scope="$TOKENHELPER_SCOPES"} ${TOKENHELPER_AUDIENCES:+--aud="$TOKENHELPER_AUDIENCES"} --time="$TOKENHELPER_MIN_VALID" $( [ "$TOKENHELPER_FORCE" = 1 ] && echo --force-new ) wlcg`

// docs/plugins.md recommends the command tested here and names the
// handshake's magic cookie.
func TestDocsMatchCode(t *testing.T) {
	root, err := conformance.ModuleRoot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "plugins.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"command = '" + OIDCTokenCommand + "'",
		"`" + rpc.Handshake.MagicCookieKey + "=" + rpc.Handshake.MagicCookieValue + "`",
		fmt.Sprintf("protocol version **%d**", rpc.ProtocolVersion),
	} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("docs/plugins.md lacks %s", want)
		}
	}
}
