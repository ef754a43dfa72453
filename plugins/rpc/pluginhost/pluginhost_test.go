package pluginhost

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/plugins/rpc/remote"
	"github.com/tokenhelper/tokenhelper/plugins/sdk"
)

// The test binary doubles as tokenhelper-pluginhost (`serve NAME`) and as
// an external plugin (PLUGINHOST_TEST_PLUGIN=1).
func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == "serve" {
		os.Exit(Main(context.Background(), os.Args, os.Stdin, os.Stdout, os.Stderr))
	}
	if os.Getenv("PLUGINHOST_TEST_PLUGIN") == "1" {
		sdk.Serve(stdinReader{}, sdk.WithName("reader"), sdk.WithVersion("3.1"))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// stdinReader reports in the token's source how many bytes it could read
// from its stdin.
type stdinReader struct{}

func (stdinReader) Token(ctx context.Context, req helper.Request) (*helper.Token, error) {
	n, _ := io.Copy(io.Discard, os.Stdin)
	return &helper.Token{AccessToken: "opaque", Source: "stdin-bytes-" + strings.Repeat("x", int(n))}, nil
}

func writeToken(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte("opaque-file-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func call(op string, t remote.Target, p *config.Profile) *remote.Call {
	c := &remote.Call{Wire: remote.WireVersion, Op: op, Target: t, Profile: p, Host: remote.Host{UID: os.Geteuid(), TmpDir: "/tmp", Version: "v-test"}, Timeout: 20 * time.Second}
	if op == remote.OpToken {
		c.Request = &helper.Request{Profile: p.Name, MinValid: time.Minute}
	}
	return c
}

func TestRunIsolatedBuiltin(t *testing.T) {
	p := &config.Profile{Name: "site", Backend: config.BackendFile, TokenFile: writeToken(t), Isolate: true}
	target := remote.Target{Name: config.BackendFile, Builtin: true}
	r := Run(context.Background(), call(remote.OpToken, target, p), Options{Self: os.Args[0], Stderr: io.Discard})
	if r.Error != nil || r.Token == nil || r.Token.AccessToken != "opaque-file-token" {
		t.Fatalf("reply %+v %+v", r.Error, r.Token)
	}
	r = Run(context.Background(), call(remote.OpStatus, target, p), Options{Self: os.Args[0], Stderr: io.Discard})
	if r.Error != nil || r.Status == nil || !r.Status.OK {
		t.Fatalf("status reply %+v %+v", r.Error, r.Status)
	}
	r = Run(context.Background(), call(remote.OpLogin, target, p), Options{Self: os.Args[0], Stderr: io.Discard})
	if r.Error == nil || !r.Error.Unsupported {
		t.Fatalf("login on the file backend: %+v", r.Error)
	}
	os.Remove(p.TokenFile)
	r = Run(context.Background(), call(remote.OpToken, target, p), Options{Self: os.Args[0], Stderr: io.Discard})
	if r.Error == nil || r.Error.Kind != helper.KindNoToken || !strings.Contains(r.Error.Msg, "does not exist") {
		t.Fatalf("missing file: %+v", r.Error)
	}
	r = Run(context.Background(), call(remote.OpToken, remote.Target{Name: "nope", Builtin: true}, p), Options{Self: os.Args[0]})
	if r.Error == nil || r.Error.Kind != helper.KindConfig {
		t.Fatalf("unknown builtin: %+v", r.Error)
	}
}

// The plugin never sees the companion's stdin: it gets /dev/null.
func TestStdinRule(t *testing.T) {
	t.Setenv("PLUGINHOST_TEST_PLUGIN", "1")
	c := call(remote.OpToken, remote.Target{Name: "reader", Path: os.Args[0]}, &config.Profile{Name: "r", Backend: "reader"})
	data, _ := json.Marshal(c)
	old := os.Stdin
	defer func() { os.Stdin = old }()
	// Bytes on the process's stdin that a plugin inheriting it would read.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteString("protocol=https\nhost=example.org\n\n"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	defer r.Close()
	os.Stdin = r
	var out bytes.Buffer
	if code := Main(context.Background(), []string{"tokenhelper-pluginhost", "call"}, bytes.NewReader(data), &out, io.Discard); code != 0 {
		t.Fatalf("exit %d", code)
	}
	var rep remote.Reply
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Error != nil || rep.Token == nil || rep.Token.Source != "stdin-bytes-" {
		t.Fatalf("reply %+v %+v", rep.Error, rep.Token)
	}
	if os.Stdin.Name() != os.DevNull {
		t.Errorf("os.Stdin is %s after the call was read", os.Stdin.Name())
	}
}

func TestRunExternalChecksFirst(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "tokenhelper-plugin-x")
	if err := os.WriteFile(p, []byte("#!/bin/sh\necho ran > "+dir+"/ran\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	c := call(remote.OpToken, remote.Target{Name: "x", Path: p, SHA256: strings.Repeat("0", 64)}, &config.Profile{Name: "x", Backend: "x"})
	r := Run(context.Background(), c, Options{Self: os.Args[0], Stderr: io.Discard})
	if r.Error == nil || r.Error.Kind != helper.KindUnsafe || !strings.Contains(r.Error.Msg, "expected sha256 "+strings.Repeat("0", 64)) {
		t.Fatalf("mismatch: %+v", r.Error)
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Fatal("a plugin whose checksum does not match was run")
	}
}

func TestMainBadInput(t *testing.T) {
	old := os.Stdin
	defer func() { os.Stdin = old }()
	for name, in := range map[string]string{
		"not json":      "{",
		"wrong version": `{"wire":99,"op":"token"}`,
		"too large":     strings.Repeat(" ", remote.MaxMessage+1),
	} {
		var out bytes.Buffer
		if code := Main(context.Background(), []string{"tokenhelper-pluginhost", "call"}, strings.NewReader(in), &out, io.Discard); code != 0 {
			t.Fatalf("%s: exit %d", name, code)
		}
		var r remote.Reply
		if err := json.Unmarshal(out.Bytes(), &r); err != nil || r.Error == nil || r.Error.Kind != helper.KindInternal {
			t.Errorf("%s: reply %s", name, out.String())
		}
	}
	var out, errOut bytes.Buffer
	if code := Main(context.Background(), []string{"tokenhelper-pluginhost"}, nil, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "tokenhelper starts it") {
		t.Errorf("no arguments: %d %q", code, errOut.String())
	}
	out.Reset()
	if code := Main(context.Background(), []string{"tokenhelper-pluginhost", "--version"}, nil, &out, &errOut); code != 0 || !strings.Contains(out.String(), "plugin protocol 1") {
		t.Errorf("--version: %d %q", code, out.String())
	}
	if code := Main(context.Background(), []string{"tokenhelper-pluginhost", "serve", "nope"}, nil, &out, &errOut); code != 2 {
		t.Errorf("serve nope: %d", code)
	}
}
