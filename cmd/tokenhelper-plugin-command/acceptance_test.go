package main

// Acceptance tests of issue 6, tried as a new user would: the built
// tokenhelper, tokenhelper-pluginhost and tokenhelper-plugin-command, a
// private HOME, the plugin dropped into the plugin directory.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/plugins/conformance"
	"github.com/tokenhelper/tokenhelper/plugins/rpc"
	"github.com/tokenhelper/tokenhelper/plugins/rpc/remote"
	"github.com/tokenhelper/tokenhelper/plugins/sdk"
)

func TestMain(m *testing.M) {
	// The test binary doubles as two misbehaving plugins, by name.
	switch filepath.Base(os.Args[0]) {
	case "tokenhelper-plugin-hang":
		sdk.Serve(hang{})
		os.Exit(0)
	case "tokenhelper-plugin-reader":
		sdk.Serve(reader{})
		os.Exit(0)
	}
	os.Exit(conformance.Main(m))
}

// hang never answers and ignores its context.
type hang struct{}

func (hang) Token(ctx context.Context, req helper.Request) (*helper.Token, error) { select {} }

// reader tells, in the token's source, how much of its stdin it read.
type reader struct{}

func (reader) Token(ctx context.Context, req helper.Request) (*helper.Token, error) {
	n, _ := io.Copy(io.Discard, os.Stdin)
	return &helper.Token{AccessToken: "opaque-reader-token", Source: fmt.Sprintf("read %d bytes of stdin", n)}, nil
}

type world struct {
	t         *testing.T
	bins      conformance.Bins
	home, bin string
	plugins   string
	env       []string
}

func fakeJWT(life time.Duration) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	now := time.Now()
	return enc(map[string]string{"alg": "RS256", "kid": "k"}) + "." +
		enc(map[string]any{"iss": "https://wlcg.cloud.cnaf.infn.it/", "sub": "alice", "exp": now.Add(life).Unix(), "iat": now.Unix(), "scope": "storage.read:/ openid", "aud": "https://wlcg.cern.ch/jwt/v1/any"}) +
		"." + base64.RawURLEncoding.EncodeToString([]byte("sig"))
}

func newWorld(t *testing.T) *world {
	w := &world{t: t, bins: conformance.Binaries(t), home: t.TempDir()}
	w.bin = filepath.Join(w.home, "bin")
	w.plugins = filepath.Join(w.home, ".local", "share", "tokenhelper", "plugins")
	for _, d := range []string{w.bin, w.plugins, filepath.Join(w.home, ".config", "tokenhelper")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// A stand-in for oidc-agent's oidc-token: prints a JWT and counts its runs.
	w.write(filepath.Join(w.bin, "oidc-token"), 0o700, fmt.Sprintf("#!/bin/sh\necho run >> %s/oidc-token.runs\n[ \"$1\" = wlcg ] || { echo \"Error: No account configured with that short name\" >&2; exit 1; }\necho %s\n", w.home, fakeJWT(time.Hour)))
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "XDG_") || strings.HasPrefix(k, "TOKENHELPER_") || strings.HasPrefix(k, "BEARER_TOKEN") || k == "HOME" || k == "PATH" {
			continue
		}
		w.env = append(w.env, kv)
	}
	w.env = append(w.env, "HOME="+w.home, "PATH="+w.bin+":"+os.Getenv("PATH"))
	return w
}

func (w *world) write(path string, mode os.FileMode, data string) {
	w.t.Helper()
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) config(toml string) {
	w.write(filepath.Join(w.home, ".config", "tokenhelper", "config.toml"), 0o600, toml)
}

// install copies a plugin executable into the plugin directory, as a
// user would.
func (w *world) install(src, name string) string {
	w.t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		w.t.Fatal(err)
	}
	dst := filepath.Join(w.plugins, "tokenhelper-plugin-"+name)
	w.write(dst, 0o755, string(data))
	return dst
}

type result struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

func (w *world) run(stdin string, args ...string) result {
	w.t.Helper()
	cmd := exec.Command(w.bins.Tokenhelper, args...)
	cmd.Env = w.env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errOut.String(), took: time.Since(start)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		w.t.Fatal(err)
	}
	return r
}

func (w *world) runs() int {
	data, _ := os.ReadFile(filepath.Join(w.home, "oidc-token.runs"))
	return strings.Count(string(data), "run")
}

func TestAcceptance(t *testing.T) {
	w := newWorld(t)
	plugin := w.install(w.bins.Command, "command")
	w.config(`
[profiles.wlcg]
backend = "command"
command = "oidc-token wlcg"

[profiles.unknown-account]
backend = "command"
command = "oidc-token nope"

[profiles.slow]
backend = "command"
command = "sleep 1000"
timeout = "2s"
`)

	r := w.run("", "token", "-p", "wlcg")
	if r.code != 0 || !helper.IsB64Token(strings.TrimSpace(r.stdout)) || !strings.HasSuffix(r.stdout, "\n") || r.stderr != "" {
		t.Fatalf("token -p wlcg: %+v", r)
	}
	// The warm path: answered from the cache, no plugin, no command.
	r = w.run("", "token", "-p", "wlcg", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"source": "cache"`) || w.runs() != 1 {
		t.Fatalf("second token: %+v (oidc-token ran %d times)", r, w.runs())
	}
	r = w.run("", "token", "-p", "wlcg", "--force", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"source": "command oidc-token"`) || w.runs() != 2 {
		t.Fatalf("token --force: %+v (oidc-token ran %d times)", r, w.runs())
	}

	r = w.run("", "plugin", "list")
	for _, want := range []string{"command", plugin, "serves token, status", "used by slow, unknown-account, wlcg", "checksum not pinned"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("plugin list lacks %q:\n%s%s", want, r.stdout, r.stderr)
		}
	}
	r = w.run("", "plugin", "list", "--json")
	var rep struct {
		Plugins []struct{ Name, Path, Version, Pin string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || len(rep.Plugins) != 1 || rep.Plugins[0].Path != plugin || rep.Plugins[0].Version == "" {
		t.Errorf("plugin list --json: %v %s", err, r.stdout)
	}

	r = w.run("", "token", "-p", "unknown-account")
	if r.code != 5 || !strings.Contains(r.stderr, `command "oidc-token …" failed (exit status 1): Error: No account configured with that short name`) {
		t.Errorf("failing command: %+v", r)
	}

	// A command that hangs is cut off at the profile's timeout.
	r = w.run("", "token", "-p", "slow")
	if r.code != 5 || !strings.Contains(r.stderr, `command "sleep …" did not finish in time`) || !strings.Contains(r.stderr, "timeout 2s") || r.took > 5*time.Second {
		t.Errorf("slow command: %+v", r)
	}
	if out, _ := exec.Command("pgrep", "-f", "^sleep 1000$").Output(); len(out) > 0 {
		for _, pid := range strings.Fields(string(out)) {
			if stat, _ := os.ReadFile("/proc/" + pid + "/stat"); !bytes.Contains(stat, []byte(") Z ")) {
				t.Errorf("sleep 1000 still runs (pid %s)", pid)
			}
		}
	}

	// Pinning: tokenhelper plugin pin prints the lines; a changed plugin is refused.
	pin := w.run("", "plugin", "pin", "command")
	if pin.code != 0 || !strings.HasPrefix(pin.stdout, "[plugins.command]\nsha256 = \"") {
		t.Fatalf("plugin pin: %+v", pin)
	}
	cfg, _ := os.ReadFile(filepath.Join(w.home, ".config", "tokenhelper", "config.toml"))
	w.config(string(cfg) + "\n" + pin.stdout)
	if r = w.run("", "token", "-p", "wlcg", "--force"); r.code != 0 {
		t.Fatalf("pinned plugin: %+v", r)
	}
	f, err := os.OpenFile(plugin, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("tampered"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	r = w.run("", "token", "-p", "wlcg", "--force")
	if r.code != 8 || !strings.Contains(r.stderr, "does not match its pinned checksum: expected sha256 ") || !strings.Contains(r.stderr, ", actual ") {
		t.Errorf("tampered plugin: %+v", r)
	}
	if r = w.run("", "plugin", "list"); !strings.Contains(r.stdout, "DOES NOT MATCH") || !strings.Contains(r.stdout, "(not run)") {
		t.Errorf("plugin list with a tampered plugin:\n%s", r.stdout)
	}
}

// A plugin that itself hangs (ignores its deadline) is killed at the
// deadline; the message names it and its path.
func TestHangingPlugin(t *testing.T) {
	w := newWorld(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(w.plugins, "tokenhelper-plugin-hang")
	if err := os.Symlink(self, p); err != nil {
		t.Fatal(err)
	}
	w.config("[profiles.h]\nbackend = \"hang\"\ntimeout = \"1500ms\"\n")
	r := w.run("", "token", "-p", "h")
	if r.code != 5 || !strings.Contains(r.stderr, `plugin "hang" (`+p+`) did not answer token within`) || !strings.Contains(r.stderr, "stopped it") {
		t.Fatalf("hanging plugin: %+v", r)
	}
	if r.took > 5*time.Second {
		t.Errorf("took %s", r.took)
	}
}

// No plugin reads tokenhelper's stdin.
func TestPluginsNeverReadStdin(t *testing.T) {
	w := newWorld(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(self, filepath.Join(w.plugins, "tokenhelper-plugin-reader")); err != nil {
		t.Fatal(err)
	}
	w.config("[profiles.r]\nbackend = \"reader\"\n")
	r := w.run("protocol=https\nhost=git.example.org\n\n", "token", "-p", "r", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"source": "read 0 bytes of stdin"`) {
		t.Fatalf("reader plugin: %+v", r)
	}
}

func TestIsolatedAndMissing(t *testing.T) {
	w := newWorld(t)
	tok := filepath.Join(w.home, "token")
	w.write(tok, 0o600, fakeJWT(time.Hour)+"\n")
	w.config(fmt.Sprintf("[profiles.iso]\nbackend = \"file\"\nisolate = true\ntoken_file = %q\n\n[profiles.nope]\nbackend = \"nope\"\n", tok))
	if r := w.run("", "token", "-p", "iso"); r.code != 0 || !helper.IsB64Token(strings.TrimSpace(r.stdout)) {
		t.Fatalf("isolated file profile: %+v", r)
	}
	if r := w.run("", "status", "-p", "iso"); r.code != 0 || !strings.Contains(r.stdout, "token from "+tok) {
		t.Errorf("status of an isolated profile: %+v", r)
	}
	r := w.run("", "token", "-p", "nope")
	if r.code != 3 || !strings.Contains(r.stderr, `backend "nope" is not built in and no tokenhelper-plugin-nope was found`) || !strings.Contains(r.stderr, w.plugins) {
		t.Errorf("missing plugin: %+v", r)
	}
	if r := w.run("", "plugin", "list"); !strings.Contains(r.stdout, `Profile nope uses backend "nope", which is neither built in nor installed`) {
		t.Errorf("plugin list with a missing plugin:\n%s", r.stdout)
	}
	w.env = append(w.env, "TOKENHELPER_PLUGINHOST=/nonexistent/tokenhelper-pluginhost")
	r = w.run("", "token", "-p", "iso")
	if r.code != 3 || !strings.Contains(r.stderr, "tokenhelper-pluginhost is not installed at /nonexistent/tokenhelper-pluginhost") {
		t.Errorf("missing companion: %+v", r)
	}
}

// The hidden `tokenhelper plugin serve NAME` serves a built-in over
// go-plugin, as Packer's re-executed binary does.
func TestPluginServe(t *testing.T) {
	w := newWorld(t)
	tok := filepath.Join(w.home, "token")
	w.write(tok, 0o600, fakeJWT(time.Hour)+"\n")
	cmd := exec.Command(w.bins.Tokenhelper, "plugin", "serve", "file")
	cmd.Env = w.env
	c, err := rpc.Launch(rpc.LaunchConfig{Target: remote.Target{Name: "file", Builtin: true}, Cmd: cmd})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if _, err := c.Backend.Configure(ctx, rpc.Config{Profile: &config.Profile{Name: "f", Backend: "file", TokenFile: tok}}); err != nil {
		t.Fatal(err)
	}
	got, err := c.Backend.Token(ctx, helper.Request{Profile: "f", MinValid: time.Minute})
	if err != nil || got.Source != tok {
		t.Fatalf("Token = %v, %v", got, err)
	}
	if r := w.run("", "plugin", "serve", "file"); r.code != 1 || !strings.Contains(r.stderr, "This binary is a plugin") {
		t.Errorf("serve run by hand: %+v", r)
	}
	if r := w.run("", "plugin", "serve", "nope"); r.code != 2 || !strings.Contains(r.stderr, `no built-in backend "nope"`) {
		t.Errorf("serve nope: %+v", r)
	}
}
