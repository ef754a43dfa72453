//go:build e2e && linux

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestE2E runs every flow against one set of servers. Its cleanup (run
// also when a subtest panics) stops every process and restores the trust
// store.
func TestE2E(t *testing.T) {
	begin := time.Now()
	t.Cleanup(func() {
		if err := shutdown(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		t.Logf("end-to-end run: %.1fs in all", time.Since(begin).Seconds())
	})
	s := setup(t)
	t.Logf("setup: %.1fs", time.Since(begin).Seconds())

	t.Run("xrdcp/BEARER_TOKEN_FILE", s.testXrdcpTokenFile)
	t.Run("xrdcp/XDG_RUNTIME_DIR", s.testXrdcpDiscovery)
	t.Run("xrdcp/quirks", s.testXrdcpQuirks)
	t.Run("rclone/bearer_token_command", s.testRclone)
	t.Run("curl/tokenhelper-curl", s.testCurl)
	t.Run("gfal/tokenhelper-exec", s.testGfal)
	t.Run("davix/tokenhelper-exec", s.testDavix)
	t.Run("denied", s.testDenied)
	t.Run("file-profile/expired", s.testFileExpired)
	t.Run("expired/then-fresh", s.testExpiredThenFresh)
	t.Run("docs/xrootd-server.md", s.testDocServer)
}

// tokenhelper returns the argv of a tokenhelper command.
func (s *suite) tokenhelper(args ...string) []string {
	return append([]string{s.bin}, args...)
}

// export writes a token of profile with extra token flags to a private
// file with `tokenhelper export --file` and returns the file.
func (s *suite) export(t *testing.T, name, profile string, flags ...string) string {
	t.Helper()
	path := filepath.Join(s.tokens, name)
	args := append([]string{"-p", profile, "export", "--file", path}, flags...)
	r := s.ok(t, cmd{args: s.tokenhelper(args...)})
	if got := strings.TrimSpace(r.stdout); got != path {
		t.Fatalf("export printed %q, want %q", got, path)
	}
	readToken(t, path)
	return path
}

// xrdcp copies src to dst with the given token file (empty: leave the
// environment alone, so discovery finds the token).
func (s *suite) xrdcp(t *testing.T, tokenFile, src, dst string) result {
	t.Helper()
	c := cmd{args: []string{"xrdcp", "--nopbar", "--force", src, dst}}
	if tokenFile != "" {
		c.env = []string{"BEARER_TOKEN_FILE=" + tokenFile}
	}
	return s.exec(t, c)
}

// upDown uploads content with xrdcp over upScheme, checks it on the
// server's disk, downloads it over downScheme and compares.
func (s *suite) upDown(t *testing.T, tokenFile, upScheme, downScheme, remote, content string) {
	t.Helper()
	local := s.writeFile(t, "up/"+strings.ReplaceAll(remote, "/", "_"), content)
	if r := s.xrdcp(t, tokenFile, local, s.xrd.URL(upScheme, remote)); r.code != 0 {
		t.Fatalf("upload over %s: %s", upScheme, r)
	}
	if got := s.stored(t, remote); got != content {
		t.Fatalf("server has %q, want %q", got, content)
	}
	back := local + ".back"
	if r := s.xrdcp(t, tokenFile, s.xrd.URL(downScheme, remote), back); r.code != 0 {
		t.Fatalf("download over %s: %s", downScheme, r)
	}
	if b, err := os.ReadFile(back); err != nil || string(b) != content {
		t.Fatalf("downloaded %q (%v), want %q", b, err, content)
	}
}

// testXrdcpTokenFile: `tokenhelper export --file F` then xrdcp with
// BEARER_TOKEN_FILE=F, for each backend: native, oidc-agent, token file; up over roots://, down over root:// (which the server upgrades
// to TLS, as ztn requires) and the other way round.
func (s *suite) testXrdcpTokenFile(t *testing.T) {
	for _, profile := range []string{profileNative, profileAgent, profileFile} {
		t.Run(profile, func(t *testing.T) {
			tf := s.export(t, "xrdcp-"+profile, profile)
			s.upDown(t, tf, "roots", "root", "home/alice/xrdcp-"+profile+".txt", "uploaded with the "+profile+" profile\n")
			s.upDown(t, tf, "root", "roots", "home/alice/xrdcp-"+profile+"-2.txt", "and over root://\n")
		})
	}
}

// testXrdcpQuirks: what docs/quirks.md says of the xrootd client. A token
// file others can read is ignored (a failed login, not a clear message),
// and without X509_CERT_DIR neither roots:// nor root:// (upgraded to TLS
// for ztn) can check the server.
func (s *suite) testXrdcpQuirks(t *testing.T) {
	tf := s.export(t, "quirks", profileNative)
	pub := s.xrd.URL("roots", "public/readme.txt")
	if err := os.Chmod(tf, 0o640); err != nil {
		t.Fatal(err)
	}
	rejected(t, "xrdcp with a group-readable token file", s.xrdcp(t, tf, pub, filepath.Join(s.work, "q1")))
	if err := os.Chmod(tf, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, scheme := range []string{"roots", "root"} {
		r := s.exec(t, cmd{args: []string{"xrdcp", "--nopbar", "--force", s.xrd.URL(scheme, "public/readme.txt"), filepath.Join(s.work, "q2")},
			env: []string{"BEARER_TOKEN_FILE=" + tf}, unset: []string{"X509_CERT_DIR"}})
		if r.code == 0 || !strings.Contains(r.stderr, "/etc/grid-security/certificates") {
			t.Errorf("%s:// without X509_CERT_DIR: want the TLS error docs/quirks.md quotes: %s", scheme, r)
		}
	}
}

// testXrdcpDiscovery: `tokenhelper export` writes $XDG_RUNTIME_DIR/bt_u$UID
// and xrdcp finds it there by WLCG discovery, with no variable pointing at
// it.
func (s *suite) testXrdcpDiscovery(t *testing.T) {
	want := filepath.Join(s.runtime, "bt_u"+strconv.Itoa(os.Geteuid()))
	r := s.ok(t, cmd{args: s.tokenhelper("export")})
	if got := strings.TrimSpace(r.stdout); got != want {
		t.Fatalf("export wrote %q, want the discovery file %q", got, want)
	}
	readToken(t, want)
	s.ok(t, cmd{args: s.tokenhelper("discover")})
	s.upDown(t, "", "roots", "roots", "home/alice/discovered.txt", "found through XDG_RUNTIME_DIR\n")
}

// testRclone: an rclone webdav remote on XrdHttp made by `tokenhelper
// rclone-config` (the route's profile; its bearer_token_command is
// tokenhelper token, which rclone splits on single spaces and runs without
// a shell).
func (s *suite) testRclone(t *testing.T) {
	conf := filepath.Join(s.home, ".config", "rclone", "rclone.conf")
	if err := os.MkdirAll(filepath.Dir(conf), 0o700); err != nil {
		t.Fatal(err)
	}
	r := s.ok(t, cmd{args: s.tokenhelper("rclone-config", "xrd", s.xrd.URL("https", "home/alice"))})
	if !strings.Contains(r.stdout, "bearer_token_command = "+s.bin+" token -p "+profileNative) || !strings.Contains(r.stdout, "vendor = other") {
		t.Fatalf("rclone-config printed:\n%s", r.stdout)
	}
	if err := os.WriteFile(conf, []byte(r.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	local := s.writeFile(t, "rclone/one.txt", "copied by rclone\n")
	s.ok(t, cmd{args: []string{"rclone", "copyto", local, "xrd:rclone/one.txt"}})
	if got := s.stored(t, "home/alice/rclone/one.txt"); got != "copied by rclone\n" {
		t.Fatalf("server has %q", got)
	}
	r = s.ok(t, cmd{args: []string{"rclone", "lsf", "xrd:rclone"}})
	if strings.TrimSpace(r.stdout) != "one.txt" {
		t.Errorf("rclone lsf: %q", r.stdout)
	}
	r = s.ok(t, cmd{args: []string{"rclone", "cat", "xrd:rclone/one.txt"}})
	if r.stdout != "copied by rclone\n" {
		t.Errorf("rclone cat: %q", r.stdout)
	}
	s.ok(t, cmd{args: []string{"rclone", "deletefile", "xrd:rclone/one.txt"}})
	if _, err := os.Stat(s.xrd.LocalPath("home/alice/rclone/one.txt")); err == nil {
		t.Error("rclone deletefile left the file")
	}
}

// needCommand fails the test when this tokenhelper lacks a command.
func (s *suite) needCommand(t *testing.T, name string) {
	t.Helper()
	if r := s.exec(t, cmd{args: s.tokenhelper(name, "--help")}); r.code != 0 {
		t.Fatalf("this tokenhelper has no %q command: %s", name, r)
	}
}

// testCurl: `tokenhelper curl` picks the profile from the URL (a
// [[routes]] entry) and hands curl the header on a pipe.
func (s *suite) testCurl(t *testing.T) {
	s.needCommand(t, "curl")
	content := "uploaded by tokenhelper curl\n"
	local := s.writeFile(t, "curl/up.txt", content)
	url := s.xrd.URL("https", "home/alice/curl.txt")
	s.ok(t, cmd{args: s.tokenhelper("curl", "-sSf", "-T", local, url)})
	if got := s.stored(t, "home/alice/curl.txt"); got != content {
		t.Fatalf("server has %q", got)
	}
	if r := s.ok(t, cmd{args: s.tokenhelper("curl", "-sSf", url)}); r.stdout != content {
		t.Errorf("GET returned %q", r.stdout)
	}
	// tokenhelper's own --scope comes before curl's arguments: a read
	// token cannot write.
	r := s.ok(t, cmd{args: s.tokenhelper("curl", "--scope", "storage.read:/", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
		"-T", local, s.xrd.URL("https", "home/alice/curl-ro.txt"))})
	if code := strings.TrimSpace(r.stdout); code != "403" {
		t.Errorf("PUT with a read-only token: HTTP %s, want 403", code)
	}
	s.notStored(t, "home/alice/curl-ro.txt")
}

// testGfal: gfal-copy and gfal-ls through `tokenhelper exec`. Over davs://
// with --env-token: gfal2 2.21's HTTP plugin reads only BEARER_TOKEN. Over
// root:// the token file is enough: gfal's xrootd plugin goes through ztn,
// which follows WLCG discovery.
func (s *suite) testGfal(t *testing.T) {
	s.needCommand(t, "exec")
	for _, c := range []struct {
		scheme string
		flags  []string
	}{
		{"davs", []string{"--env-token"}},
		{"root", nil},
	} {
		t.Run(c.scheme, func(t *testing.T) {
			gfal := func(args ...string) []string {
				return s.tokenhelper(append(append(append([]string{"exec"}, c.flags...), "--"), args...)...)
			}
			content := "copied by gfal over " + c.scheme + "\n"
			local := s.writeFile(t, "gfal/"+c.scheme+".txt", content)
			remote := "home/alice/gfal-" + c.scheme + ".txt"
			s.ok(t, cmd{args: gfal("gfal-copy", "-f", local, s.xrd.URL(c.scheme, remote))})
			if got := s.stored(t, remote); got != content {
				t.Fatalf("server has %q", got)
			}
			r := s.ok(t, cmd{args: gfal("gfal-ls", s.xrd.URL(c.scheme, "home/alice"))})
			if !strings.Contains(r.stdout, "gfal-"+c.scheme+".txt") {
				t.Errorf("gfal-ls does not list the file: %q", r.stdout)
			}
			back := filepath.Join(s.work, "gfal", c.scheme+".back")
			s.ok(t, cmd{args: gfal("gfal-copy", "-f", s.xrd.URL(c.scheme, remote), back)})
			if b, err := os.ReadFile(back); err != nil || string(b) != content {
				t.Errorf("downloaded %q (%v)", b, err)
			}
		})
	}
	// Debian's gfal scripts with a python3 of one's own first on the PATH
	// (one without the gfal2 module; here one that fails) fall back to
	// /usr/bin/python, which bookworm lacks: GFAL_PYTHONBIN fixes it.
	fakeBin, err := s.run.Mkdir("fakepython")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fakeBin, "python3"), []byte("#!/bin/sh\nexit 1\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	pathWithFake := "PATH=" + fakeBin + ":" + strings.TrimPrefix(s.envValue("PATH"), "PATH=")
	r := s.exec(t, cmd{args: s.tokenhelper("exec", "--", "gfal-ls", s.xrd.URL("root", "home/alice")), env: []string{pathWithFake}, unset: []string{"GFAL_PYTHONBIN"}})
	if r.code == 0 || !strings.Contains(r.stderr, "/usr/bin/python") {
		t.Errorf("gfal-ls with a foreign python3 first on the PATH and no GFAL_PYTHONBIN: want the /usr/bin/python failure docs/quirks.md describes: %s", r)
	}
	s.ok(t, cmd{args: s.tokenhelper("exec", "--", "gfal-ls", s.xrd.URL("root", "home/alice")), env: []string{pathWithFake}})

	// The quirk docs/quirks.md describes: without --env-token, gfal2's
	// HTTP plugin sends no token at all, although BEARER_TOKEN_FILE is set.
	r = s.exec(t, cmd{args: s.tokenhelper("exec", "--", "gfal-ls", s.xrd.URL("davs", "home/alice"))})
	if r.code == 0 {
		t.Errorf("gfal-ls over davs:// worked with BEARER_TOKEN_FILE alone: gfal2 reads it now; update docs/gfal.md and docs/quirks.md")
	}
	// ... and it sends BEARER_TOKEN as is: a trailing newline is a 400.
	tok := readToken(t, s.export(t, "gfal-newline", profileNative))
	r = s.exec(t, cmd{args: []string{"gfal-ls", s.xrd.URL("davs", "home/alice")}, env: []string{"BEARER_TOKEN=" + tok + "\n"}})
	if r.code == 0 || !strings.Contains(r.stderr, "400") {
		t.Errorf("gfal-ls with a BEARER_TOKEN ending in a newline: want the HTTP 400 docs/quirks.md describes: %s", r)
	}
}

// davixScript runs a davix command with the token of BEARER_TOKEN_FILE in
// an Authorization header. davix has no token discovery: the header (or
// ?authz=) is the only way in, and it is on davix's command line — see
// docs/davix.md for what that exposes.
const davixScript = `exec "$0" -H "Authorization: Bearer $(cat "$BEARER_TOKEN_FILE")" "$@"`

// testDavix: davix-put and davix-get through `tokenhelper exec` and the
// wrapper line of docs/davix.md.
func (s *suite) testDavix(t *testing.T) {
	s.needCommand(t, "exec")
	content := "copied by davix\n"
	local := s.writeFile(t, "davix/up.txt", content)
	url := s.xrd.URL("https", "home/alice/davix.txt")
	s.ok(t, cmd{args: s.tokenhelper("exec", "--", "sh", "-c", davixScript, "davix-put", local, url)})
	if got := s.stored(t, "home/alice/davix.txt"); got != content {
		t.Fatalf("server has %q", got)
	}
	back := filepath.Join(s.work, "davix", "back.txt")
	s.ok(t, cmd{args: s.tokenhelper("exec", "--", "sh", "-c", davixScript, "davix-get", url, back)})
	if b, err := os.ReadFile(back); err != nil || string(b) != content {
		t.Errorf("downloaded %q (%v)", b, err)
	}
	// davix has no token discovery: under exec alone it sends no token.
	if r := s.exec(t, cmd{args: s.tokenhelper("exec", "--", "davix-get", url, back+".2")}); r.code == 0 {
		t.Error("davix-get found a token by itself: davix learnt token discovery; update docs/davix.md and docs/quirks.md")
	}
	// A read-only token: davix-put is refused.
	r := s.exec(t, cmd{args: s.tokenhelper("exec", "-s", "storage.read:/", "--", "sh", "-c", davixScript, "davix-put", local,
		s.xrd.URL("https", "home/alice/davix-ro.txt"))})
	if r.code == 0 {
		t.Error("davix-put with a read-only token succeeded")
	}
	s.notStored(t, "home/alice/davix-ro.txt")
}

// curlStatus makes an HTTP request to the XRootD server with curl, the
// token from tokenFile given in a config on stdin (never in argv), and
// returns the HTTP status.
func (s *suite) curlStatus(t *testing.T, tokenFile, method, remote, upload string) int {
	t.Helper()
	tok := readToken(t, tokenFile)
	args := []string{"curl", "--silent", "--show-error", "--output", "/dev/null", "--write-out", "%{http_code}", "--config", "-"}
	if upload != "" {
		args = append(args, "--upload-file", s.writeFile(t, "curl/"+filepath.Base(remote), upload))
	} else {
		args = append(args, "--request", method)
	}
	args = append(args, s.xrd.URL("https", remote))
	r := s.exec(t, cmd{args: args, stdin: fmt.Sprintf("header = \"Authorization: Bearer %s\"\n", tok)})
	if r.code != 0 {
		t.Fatalf("curl: %s", r)
	}
	code, err := strconv.Atoi(strings.TrimSpace(r.stdout))
	if err != nil {
		t.Fatalf("curl printed %q", r.stdout)
	}
	return code
}

// denied checks that xrdcp was refused by the server's authorization:
// a valid token that does not allow the operation (scope, path, audience)
// gets kXR_NotAuthorized (3010, "permission denied", exit 54).
func denied(t *testing.T, what string, r result) {
	t.Helper()
	if r.code == 0 {
		t.Errorf("%s succeeded; want it denied", what)
		return
	}
	if r.code != 54 || !strings.Contains(r.stderr, "[3010]") || !strings.Contains(r.stderr, "permission denied") {
		t.Errorf("%s failed, but not as a denial (exit 54, [3010] permission denied): %s", what, r)
	}
}

// rejected checks that xrdcp was refused at authentication: the ztn
// protocol validates the token when the client logs in, and an expired
// one leaves no protocol to try (exit 52, "Auth failed").
func rejected(t *testing.T, what string, r result) {
	t.Helper()
	if r.code == 0 {
		t.Errorf("%s succeeded; want it rejected", what)
		return
	}
	if r.code != 52 || !strings.Contains(r.stderr, "Auth failed") {
		t.Errorf("%s failed, but not as a rejected login (exit 52, Auth failed): %s", what, r)
	}
}

// testDenied: tokens tokenhelper hands out that the server must refuse
// for what is asked, over root:// (xrdcp) and https (curl); each time the
// same token is shown to work for what it does allow, so the refusal is
// about scope or audience, not a broken token.
func (s *suite) testDenied(t *testing.T) {
	pub := "public/readme.txt"
	aliceFile := "home/alice/private.txt"
	s.upDown(t, s.export(t, "setup", profileNative), "roots", "roots", aliceFile, "alice's\n")

	t.Run("read-only token cannot write", func(t *testing.T) {
		tf := s.export(t, "read-only", profileNative, "-s", "storage.read:/")
		if r := s.xrdcp(t, tf, s.xrd.URL("roots", pub), filepath.Join(s.work, "ro-pub")); r.code != 0 {
			t.Fatalf("a read-only token cannot read: %s", r)
		}
		local := s.writeFile(t, "ro.txt", "nope\n")
		denied(t, "upload with a read-only token", s.xrdcp(t, tf, local, s.xrd.URL("roots", "home/alice/ro.txt")))
		if code := s.curlStatus(t, tf, "PUT", "home/alice/ro-https.txt", "nope\n"); code != 403 && code != 401 {
			t.Errorf("https PUT with a read-only token: HTTP %d, want 403", code)
		}
		s.notStored(t, "home/alice/ro.txt")
		s.notStored(t, "home/alice/ro-https.txt")
	})

	t.Run("write outside the scope path", func(t *testing.T) {
		tf := s.export(t, "alice-default", profileNative)
		local := s.writeFile(t, "bob.txt", "not alice's to write\n")
		denied(t, "upload to bob's home", s.xrdcp(t, tf, local, s.xrd.URL("roots", "home/bob/from-alice.txt")))
		denied(t, "upload to the base path", s.xrdcp(t, tf, local, s.xrd.URL("roots", "top.txt")))
		if code := s.curlStatus(t, tf, "PUT", "home/bob/from-alice-https.txt", "x\n"); code != 403 && code != 401 {
			t.Errorf("https PUT outside the scope: HTTP %d, want 403", code)
		}
		s.notStored(t, "home/bob/from-alice.txt")
		s.notStored(t, "top.txt")
		s.notStored(t, "home/bob/from-alice-https.txt")
	})

	t.Run("read outside the scope path", func(t *testing.T) {
		tf := s.export(t, "public-only", profileNative, "-s", "storage.read:/public")
		if r := s.xrdcp(t, tf, s.xrd.URL("roots", pub), filepath.Join(s.work, "pub")); r.code != 0 {
			t.Fatalf("storage.read:/public cannot read /public: %s", r)
		}
		denied(t, "download of alice's file", s.xrdcp(t, tf, s.xrd.URL("roots", aliceFile), filepath.Join(s.work, "stolen")))
		if code := s.curlStatus(t, tf, "GET", aliceFile, ""); code != 403 && code != 401 {
			t.Errorf("https GET outside the scope: HTTP %d, want 403", code)
		}
		if code := s.curlStatus(t, tf, "GET", pub, ""); code != 200 {
			t.Errorf("https GET inside the scope: HTTP %d, want 200", code)
		}
	})

	t.Run("wrong audience", func(t *testing.T) {
		tf := s.export(t, "other-aud", profileNative, "--aud", "https://other-storage.example.org")
		if aud := claims(t, readToken(t, tf))["aud"]; aud != "https://other-storage.example.org" {
			t.Fatalf("token audience %v", aud)
		}
		denied(t, "download with a token for another storage", s.xrdcp(t, tf, s.xrd.URL("roots", pub), filepath.Join(s.work, "aud")))
		if code := s.curlStatus(t, tf, "GET", pub, ""); code != 403 && code != 401 {
			t.Errorf("https GET with a token for another storage: HTTP %d, want 403", code)
		}
	})
}

// testFileExpired: a token file whose token has expired is refused by
// tokenhelper itself (exit 6, "no token"), never handed to a tool.
func (s *suite) testFileExpired(t *testing.T) {
	path := filepath.Join(s.tokens, "expired.jwt")
	tok, err := s.tb.IssueToken("alice", aliceScopes, []string{s.xrd.Audience}, -time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(s.tokens, "expired.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("[profiles.old]\nbackend = \"file\"\ntoken_file = %q\n", path)), 0o600); err != nil {
		t.Fatal(err)
	}
	r := s.exec(t, cmd{args: s.tokenhelper("--config", cfg, "-p", "old", "token")})
	if r.code != 6 || r.stdout != "" {
		t.Fatalf("tokenhelper token with an expired token file: want exit 6 and nothing on stdout: %s", r)
	}
	if !strings.Contains(r.stderr, "expired") {
		t.Errorf("the message does not say the token expired: %s", r.stderr)
	}
	// The storage agrees, over root:// and https.
	rejected(t, "xrdcp with an expired token", s.xrdcp(t, path, s.xrd.URL("roots", "public/readme.txt"), filepath.Join(s.work, "exp")))
	if code := s.curlStatus(t, path, "GET", "public/readme.txt", ""); code != 403 && code != 401 {
		t.Errorf("https GET with an expired token: HTTP %d, want 403", code)
	}
}

// testExpiredThenFresh: the provider now issues 15-second tokens (short,
// yet long enough for two commands on a loaded CI machine). For the
// native profile (through the discovery file) and the oidc-agent profile
// (through BEARER_TOKEN_FILE): a token works, expires, and the storage
// rejects it; then `tokenhelper export` — stdin empty, no terminal, nobody
// there — brings a fresh one by refreshing, and it works again.
func (s *suite) testExpiredThenFresh(t *testing.T) {
	old := s.tb.Lifetimes()
	short := old
	short.Access = 15 * time.Second
	s.tb.SetLifetimes(short)
	defer s.tb.SetLifetimes(old)

	type leg struct {
		profile  string
		file     string   // the token file xrdcp reads
		export   []string // tokenhelper arguments that write it
		tokenEnv string   // "" (discovery) or the BEARER_TOKEN_FILE
		first    string
		exp      time.Time
		firstUse time.Time
	}
	bt := filepath.Join(s.runtime, "bt_u"+strconv.Itoa(os.Geteuid()))
	agentFile := filepath.Join(s.tokens, "agent-short")
	legs := []*leg{
		{profile: profileNative, file: bt, export: []string{"export", "--min-valid", "2s"}},
		{profile: profileAgent, file: agentFile, tokenEnv: agentFile,
			export: []string{"-p", profileAgent, "export", "--file", agentFile, "--min-valid", "2s"}},
	}
	pub := s.xrd.URL("roots", "public/readme.txt")
	var last time.Time
	for _, l := range legs {
		// --force: the cache still holds a long-lived token of this
		// profile; get one of the new, short lifetime.
		s.ok(t, cmd{args: s.tokenhelper(append(l.export, "--force")...)})
		l.first = readToken(t, l.file)
		l.exp = expiry(t, l.first)
		if left := time.Until(l.exp); left > short.Access {
			t.Fatalf("%s: the token lives %v; the test bed was told %v", l.profile, left, short.Access)
		}
		l.firstUse = time.Now()
		if r := s.xrdcp(t, l.tokenEnv, pub, filepath.Join(s.work, "short-"+l.profile)); r.code != 0 {
			if time.Now().After(l.exp) {
				t.Fatalf("%s: the machine is so slow that the %v token expired before xrdcp used it: %s", l.profile, short.Access, r)
			}
			t.Fatalf("%s: the short-lived token does not work while valid: %s", l.profile, r)
		}
		if l.exp.After(last) {
			last = l.exp
		}
	}

	// The storage checks exp against the real clock: let it pass (exp has
	// whole seconds). This waits for time, not for a process.
	wait := time.Until(last.Add(time.Second))
	t.Logf("waiting %.1fs for the tokens to expire", wait.Seconds())
	time.Sleep(wait)

	for _, l := range legs {
		t.Run(l.profile, func(t *testing.T) {
			rejected(t, "xrdcp with the expired token", s.xrdcp(t, l.tokenEnv, pub, filepath.Join(s.work, "expired-"+l.profile)))
			// Over https, XRootD 5.5.3's SciTokens plugin still serves this
			// token from its authorization cache, which keeps an accepted
			// token 60 s whatever its exp (XrdSciTokensAccess.cc:
			// max(monotonic_time() - exp, 60)); ztn above checks exp at
			// every login. docs/quirks.md has it.
			code := s.curlStatus(t, l.file, "GET", "public/readme.txt", "")
			if since := time.Since(l.firstUse); since < 50*time.Second && code != 200 {
				t.Errorf("https GET with the expired token, accepted %.0fs ago: HTTP %d; XRootD no longer serves it from its 60 s cache: update docs/quirks.md", since.Seconds(), code)
			}

			// Nobody at the keyboard: stdin is empty, not a terminal.
			s.ok(t, cmd{args: s.tokenhelper(l.export...)})
			fresh := readToken(t, l.file)
			if fresh == l.first {
				t.Fatal("tokenhelper wrote the expired token again")
			}
			if !expiry(t, fresh).After(time.Now()) {
				t.Fatal("the new token is expired too")
			}
			s.upDown(t, l.tokenEnv, "roots", "roots", "home/alice/after-expiry-"+l.profile+".txt", "written with a fresh token\n")
			remote := "home/alice/after-expiry-" + l.profile + "-https.txt"
			if code := s.curlStatus(t, l.file, "PUT", remote, "over https too\n"); code != 201 && code != 200 {
				t.Errorf("https PUT with the fresh token: HTTP %d", code)
			}
			if got := s.stored(t, remote); got != "over https too\n" {
				t.Errorf("server has %q", got)
			}
		})
	}
}
