package storage

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// requireTool returns the path of an external tool. Without it the test
// fails under CI=true and is skipped otherwise.
func requireTool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found (CI=true): install the Debian package %s", name, debianPackage)
		}
		t.Skipf("%s not found: install the Debian package %s to run this test", name, debianPackage)
	}
	return p
}

// toolEnv is a minimal environment for external tools: no proxies, no
// user configuration.
func toolEnv(home string) []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_CACHE_HOME=" + filepath.Join(home, ".cache"),
		"NO_PROXY=*",
		"LC_ALL=C",
	}
}

// run runs a tool with stdin and a deadline; the token must never be in args.
func run(t *testing.T, token, stdin string, name string, args ...string) (string, error) {
	t.Helper()
	for _, a := range args {
		if strings.Contains(a, token) {
			t.Fatalf("token in the argv of %s", name)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = toolEnv(t.TempDir())
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %q did not finish within 60 s", name, args)
	}
	return out.String(), err
}

// TestCurl drives the storage with the real curl (Debian package curl),
// keeping the token out of argv with "-K -" and a config on stdin.
func TestCurl(t *testing.T) {
	curl := requireTool(t, "curl", "curl")
	f := newFixture(t, nil)
	tok := f.token("storage.read:/data storage.create:/data")
	dir := t.TempDir()
	src := filepath.Join(dir, "src.txt")
	if err := os.WriteFile(src, []byte("hello from curl\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := func(lines ...string) string {
		return strings.Join(append([]string{"silent", "show-error", "fail", "max-time = 30"}, lines...), "\n") + "\n"
	}
	auth := fmt.Sprintf(`header = "Authorization: Bearer %s"`, tok)

	out, err := run(t, tok, conf(auth, `upload-file = "`+src+`"`, `url = "`+f.url+`/vo/data/curl/put.txt"`), curl, "-q", "-K", "-")
	if err != nil {
		t.Fatalf("curl PUT: %v\n%s", err, out)
	}
	if got, _ := f.read("vo/data/curl/put.txt"); got != "hello from curl\n" {
		t.Fatalf("stored %q", got)
	}

	dst := filepath.Join(dir, "got.txt")
	out, err = run(t, tok, conf(auth, `output = "`+dst+`"`, `url = "`+f.url+`/vo/data/curl/put.txt"`), curl, "-q", "-K", "-")
	if err != nil {
		t.Fatalf("curl GET: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(dst); string(b) != "hello from curl\n" {
		t.Fatalf("curl GET returned %q", b)
	}

	// The authz query parameter, as davix and XrdClHttp send it.
	out, err = run(t, tok, conf(`url = "`+f.url+`/vo/data/existing.txt?authz=Bearer%20`+tok+`"`), curl, "-q", "-K", "-")
	if err != nil || out != "old" {
		t.Fatalf("curl GET with authz: %v %q", err, out)
	}

	// create may not overwrite: curl --fail exits 22 on the 403.
	out, err = run(t, tok, conf(auth, `upload-file = "`+src+`"`, `url = "`+f.url+`/vo/data/existing.txt"`), curl, "-q", "-K", "-")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 22 || !strings.Contains(out, "403") {
		t.Fatalf("curl overwrite with create: %v %q, want exit 22 with 403", err, out)
	}
	// No token at all: 401.
	out, err = run(t, tok, conf(`url = "`+f.url+`/vo/data/existing.txt"`), curl, "-q", "-K", "-")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 22 || !strings.Contains(out, "401") {
		t.Fatalf("curl without token: %v %q, want exit 22 with 401", err, out)
	}
}

// TestRclone drives the storage with the real rclone 1.60 (Debian package
// rclone) as a webdav remote with vendor other and bearer_token_command,
// the way tokenhelper's rclone integration configures it.
func TestRclone(t *testing.T) {
	rclone := requireTool(t, "rclone", "rclone")
	f := newFixture(t, nil)
	dir := t.TempDir()
	if strings.ContainsAny(dir, " \t") {
		t.Fatalf("temporary directory %q has spaces: rclone splits bearer_token_command on spaces", dir)
	}
	tokenFile := filepath.Join(dir, "token")
	script := filepath.Join(dir, "token.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexec cat \"$1\"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeToken := func(scope string) string {
		tok := f.token(scope)
		if err := os.WriteFile(tokenFile, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tok := writeToken("storage.read:/data storage.modify:/data")
	conf := filepath.Join(dir, "rclone.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(
		"[tb]\ntype = webdav\nurl = %s/vo/data\nvendor = other\nbearer_token_command = %s %s\n",
		f.url, script, tokenFile)), 0o600); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(filepath.Join(src, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"a.txt": "aaaaa", "sub/b.txt": "bb"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rc := func(args ...string) (string, error) {
		base := []string{"--config", conf, "--retries", "1", "--low-level-retries", "1",
			"--contimeout", "10s", "--timeout", "30s"}
		return run(t, tok, "", rclone, append(base, args...)...)
	}

	if out, err := rc("copy", src, "tb:rc"); err != nil {
		t.Fatalf("rclone copy: %v\n%s", err, out)
	}
	if got, _ := f.read("vo/data/rc/sub/b.txt"); got != "bb" {
		t.Fatalf("sub/b.txt = %q", got)
	}
	out, err := rc("ls", "tb:rc")
	if err != nil {
		t.Fatalf("rclone ls: %v\n%s", err, out)
	}
	if !strings.Contains(out, "5 a.txt") || !strings.Contains(out, "2 sub/b.txt") {
		t.Fatalf("rclone ls:\n%s", out)
	}
	if out, err := rc("delete", "tb:rc/a.txt"); err != nil {
		t.Fatalf("rclone delete: %v\n%s", err, out)
	}
	if _, ok := f.read("vo/data/rc/a.txt"); ok {
		t.Fatal("a.txt still there after rclone delete")
	}
	out, err = rc("ls", "tb:rc")
	if err != nil || strings.Contains(out, "a.txt") || !strings.Contains(out, "sub/b.txt") {
		t.Fatalf("rclone ls after delete: %v\n%s", err, out)
	}

	// A read-only token: rclone copy fails on the 403 and writes nothing.
	tok = writeToken("storage.read:/data")
	if out, err := rc("copy", src, "tb:ro"); err == nil {
		t.Fatalf("rclone copy with a read-only token succeeded:\n%s", out)
	}
	if _, ok := f.read("vo/data/ro/a.txt"); ok {
		t.Fatal("a read-only token wrote a file")
	}
	for _, l := range f.logged() {
		if l.sub != "alice-sub" {
			t.Errorf("rclone request without a valid token: %+v", l)
		}
	}
}
