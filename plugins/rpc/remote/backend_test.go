package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
)

// A fake companion: a shell script in place of tokenhelper-pluginhost.
// It saves the call it gets in $dir/call and then runs body.
func fakeHost(t *testing.T, body string) (path, dir string) {
	t.Helper()
	dir = t.TempDir()
	path = filepath.Join(dir, HostCommand)
	script := fmt.Sprintf("#!/bin/sh\nd=%q\ncat > \"$d/call\"\necho $$ > \"$d/pid\"\n%s\n", dir, body)
	if err := os.WriteFile(path, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	return path, dir
}

func reply(r Reply) string {
	r.Wire = WireVersion
	b, _ := json.Marshal(r)
	return fmt.Sprintf("printf '%%s\\n' %q", string(b))
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var profile = &config.Profile{Name: "site", Backend: "command", Command: "get-token", Options: map[string]string{"vo": "cms"}}

func newBackend(host string, stderr io.Writer) *Backend {
	return New(profile, Target{Name: "command", Path: "/opt/tokenhelper-plugin-command", SHA256: "ab"}, Config{
		HostPath: host, Stderr: stderr, Grace: 300 * time.Millisecond,
		Host: Host{Dirs: config.Dirs{CacheDir: "/c"}, UID: 4242, TmpDir: "/t", Verbose: 1, Version: "v9"},
	})
}

func readCall(t *testing.T, dir string) Call {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "call"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := DecodeCall(data)
	if err != nil {
		t.Fatal(err)
	}
	return *c
}

func TestTokenThroughCompanion(t *testing.T) {
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	host, dir := fakeHost(t, "echo 'open https://iam.example.org/device' >&2\n"+
		reply(Reply{Token: &helper.Token{AccessToken: "abc.def", Expiry: exp, Source: "command get-token"}}))
	var stderr syncBuffer
	b := newBackend(host, &stderr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := helper.Request{Profile: "site", Scopes: []string{"storage.read:/"}, MinValid: time.Minute}
	tok, err := b.Token(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "abc.def" || !tok.Expiry.Equal(exp) || tok.Source != "command get-token" {
		t.Fatalf("token %+v", tok)
	}
	if !strings.Contains(stderr.String(), "open https://iam.example.org/device") {
		t.Errorf("the plugin's message did not reach stderr: %q", stderr.String())
	}
	c := readCall(t, dir)
	if c.Op != OpToken || c.Target != b.Target() || c.Profile.Name != "site" || c.Profile.Options["vo"] != "cms" ||
		c.Request.Scopes[0] != "storage.read:/" || c.Request.MinValid != time.Minute ||
		c.Host.UID != 4242 || c.Host.Dirs.CacheDir != "/c" || c.Host.Version != "v9" {
		t.Errorf("call %+v", c)
	}
	if c.Timeout <= 9*time.Second || c.Timeout > 10*time.Second {
		t.Errorf("call timeout %s, want the context's 10s", c.Timeout)
	}
}

func TestOtherOperations(t *testing.T) {
	host, dir := fakeHost(t, `case "$(cat "$d/call")" in
*'"op":"status"'*) `+reply(Reply{Status: &Status{Backend: "command", OK: true, Lines: []string{"runs get-token"}}})+` ;;
*'"op":"info"'*) `+reply(Reply{Info: &Info{Name: "command", Version: "1.0\n", Status: true}})+` ;;
*'"op":"logout"'*) `+reply(Reply{Status: &Status{OK: true}})+` ;;
*'"op":"login"'*) `+reply(Reply{Error: &Error{Kind: helper.KindUsage, Msg: "no login", Unsupported: true}})+` ;;
esac`)
	b := newBackend(host, nil)
	ctx := context.Background()
	st, err := b.Status(ctx)
	if err != nil || !st.OK || st.Lines[0] != "runs get-token" {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	info, err := b.Info(ctx)
	if err != nil || info.Name != "command" || info.Version != "1.0" || !info.Status {
		t.Fatalf("Info = %+v, %v", info, err)
	}
	if c := readCall(t, dir); c.Profile != nil || c.Timeout != 0 {
		t.Errorf("info call carries %+v", c)
	}
	if err := b.Logout(ctx, helper.LogoutRequest{Profile: "site", Forget: true}); err != nil {
		t.Fatal(err)
	}
	if c := readCall(t, dir); c.Logout == nil || !c.Logout.Forget {
		t.Errorf("logout call %+v", c)
	}
	_, err = b.Login(ctx, helper.LoginRequest{Flow: "device"})
	if !errors.Is(err, errors.ErrUnsupported) || !helper.IsKind(err, helper.KindUsage) {
		t.Fatalf("Login = %v", err)
	}
}

func TestTypedErrorFromCompanion(t *testing.T) {
	host, _ := fakeHost(t, reply(Reply{Error: &Error{Kind: helper.KindLoginNeeded, Msg: "session expired", Fix: "run: site-login"}}))
	_, err := newBackend(host, nil).Token(context.Background(), helper.Request{})
	if helper.ExitCode(err) != 4 || err.Error() != "session expired: run: site-login" {
		t.Fatalf("err = %v", err)
	}
}

func TestCompanionFailures(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       string
	}{
		{"exits without a reply", "echo 'boom' >&2; exit 3", "ended without an answer (exit status 3)"},
		{"prints garbage", "echo 'not json'", "ended without an answer"},
		{"answers too much", fmt.Sprintf("head -c %d /dev/zero", MaxMessage+10), "with an answer over"},
		{"empty reply object", "echo '{\"wire\":1}'", "ended without an answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host, _ := fakeHost(t, tc.body)
			_, err := newBackend(host, io.Discard).Token(context.Background(), helper.Request{})
			if !helper.IsKind(err, helper.KindInternal) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), host) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

// alive reports whether pid runs (a zombie left to an init that does not
// reap counts as dead).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}

func pidOf(t *testing.T, dir, name string) int {
	t.Helper()
	for range 100 {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err == nil && len(bytes.TrimSpace(b)) > 0 {
			n, err := strconv.Atoi(string(bytes.TrimSpace(b)))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s file", name)
	return 0
}

// A companion that neither answers nor stops: after the deadline and the
// grace period its whole process group (the plugin with it) is killed.
func TestCompanionHangs(t *testing.T) {
	host, dir := fakeHost(t, "trap '' TERM\nsleep 300 &\necho $! > \"$d/child\"\nwait")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := newBackend(host, io.Discard).Token(ctx, helper.Request{})
	took := time.Since(start)
	if !helper.IsKind(err, helper.KindUnavailable) || !strings.Contains(err.Error(), `plugin "command" (/opt/tokenhelper-plugin-command) did not answer within`) {
		t.Fatalf("err = %v", err)
	}
	if took > 3*time.Second {
		t.Errorf("took %s", took)
	}
	child := pidOf(t, dir, "child")
	for i := 0; alive(child) && i < 100; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if alive(child) {
		t.Errorf("the companion's child %d survived", child)
	}
}

// A cancelled call (Ctrl-C) asks the companion to stop at once.
func TestCancelAsksCompanionToStop(t *testing.T) {
	host, dir := fakeHost(t, "stop() {\n"+reply(Reply{Error: &Error{Kind: helper.KindUnavailable, Msg: "plugin stopped"}})+"\nexit 0\n}\ntrap stop TERM\nwhile :; do sleep 0.05; done")
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		pidOf(t, dir, "pid")
		cancel()
	}()
	start := time.Now()
	_, err := newBackend(host, io.Discard).Token(ctx, helper.Request{})
	if err == nil || !strings.Contains(err.Error(), "plugin stopped") {
		t.Fatalf("err = %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %s", took)
	}
}

func TestNoCompanionStartedWhenPointless(t *testing.T) {
	b := newBackend("/nonexistent/"+HostCommand, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Token(ctx, helper.Request{}); !helper.IsKind(err, helper.KindUnavailable) || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("cancelled: %v", err)
	}
	_, err := b.Login(context.Background(), helper.LoginRequest{Flow: config.FlowPassword})
	if !helper.IsKind(err, helper.KindConfig) || !strings.Contains(err.Error(), "cannot prompt for a password") {
		t.Fatalf("password login: %v", err)
	}
	if _, err := b.Token(context.Background(), helper.Request{}); !helper.IsKind(err, helper.KindConfig) || !strings.Contains(err.Error(), "is not installed at /nonexistent/") {
		t.Fatalf("missing companion: %v", err)
	}
}

func TestLocateHost(t *testing.T) {
	host, _ := fakeHost(t, "")
	env := func(v string) func(string) (string, bool) {
		return func(k string) (string, bool) { return v, k == EnvHost && v != "" }
	}
	if p, err := LocateHost(env(host)); err != nil || p != host {
		t.Fatalf("override: %s, %v", p, err)
	}
	if _, err := LocateHost(env("relative/path")); !helper.IsKind(err, helper.KindConfig) {
		t.Fatalf("relative override: %v", err)
	}
	if _, err := LocateHost(env("/nonexistent")); !helper.IsKind(err, helper.KindConfig) {
		t.Fatalf("missing override: %v", err)
	}
	// The test binary has no companion next to it.
	_, err := LocateHost(env(""))
	if !helper.IsKind(err, helper.KindConfig) || !strings.Contains(err.Error(), "make install") {
		t.Fatalf("next to the executable: %v", err)
	}
}
