package reliability

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/integrations/bench/rig"
	"github.com/tokenhelper/tokenhelper/integrations/testbed"
)

// timeout is the profile's bound on one call to the provider in the fault
// matrix (a hanging provider must cost no more).
const timeout = 3 * time.Second

// faultCase is one fault and what every command must do about it.
type faultCase struct {
	name  string
	fault testbed.Fault
	// want lists the acceptable exit codes of token, curl and exec (the
	// first is the documented one); 0 means the command must succeed.
	want []int
	// dropsSession: the stored refresh token is (rightly) removed, the
	// one change to the state a failure may make.
	dropsSession bool
}

func oauth(code string) testbed.Fault { return testbed.OAuthError(code) }

// refreshFaults are injected on the token endpoint while a command needs
// a refresh. Exit codes are README's: 3 configuration, 4 login needed,
// 5 provider unavailable, 9 denied by the provider.
func refreshFaults() []faultCase {
	return []faultCase{
		{"HTTP 500", testbed.Status(500), []int{5}, false},
		{"HTTP 502", testbed.Status(502), []int{5}, false},
		{"HTTP 503", testbed.Status(503), []int{5}, false},
		{"HTTP 504", testbed.Status(504), []int{5}, false},
		{"HTTP 429", testbed.Status(429), []int{5}, false},
		{"HTTP 404", testbed.Status(404), []int{5, 3}, false},
		{"no answer (hangs past the timeout)", testbed.Hang(), []int{5}, false},
		{"slow answer (1 s, within the timeout)", testbed.Delay(time.Second), []int{0}, false},
		{"truncated JSON", testbed.MalformedJSON(), []int{5}, false},
		{"HTML error page (502)", testbed.HTMLError(), []int{5}, false},
		{"16 MiB answer", testbed.Oversized(0), []int{5}, false},
		{"invalid_grant", oauth("invalid_grant"), []int{4}, true},
		{"invalid_client", oauth("invalid_client"), []int{3}, false},
		{"unauthorized_client", oauth("unauthorized_client"), []int{3}, false},
		{"access_denied", oauth("access_denied"), []int{9}, false},
		{"invalid_scope", oauth("invalid_scope"), []int{9}, false},
		{"invalid_request", oauth("invalid_request"), []int{9, 5}, false},
		{"unsupported_grant_type", oauth("unsupported_grant_type"), []int{9, 3}, false},
		{"server_error", oauth("server_error"), []int{5}, false},
		{"temporarily_unavailable", oauth("temporarily_unavailable"), []int{5}, false},
		{"slow_down (a device-flow code)", oauth("slow_down"), []int{5, 9}, false},
		{"authorization_pending (a device-flow code)", oauth("authorization_pending"), []int{5, 9}, false},
		{"expired_token (a device-flow code)", oauth("expired_token"), []int{9, 4, 5}, false},
	}
}

// command is one way users and tools run tokenhelper.
type command struct {
	name string
	run  func(r *rig.Rig) rig.Result
	// git: the helper's line is on git's stderr, git exits 128.
	viaGit bool
}

func storageFile(t *testing.T, r *rig.Rig) string {
	p := filepath.Join(r.TB.Dir, "storage", "home", "alice", "hello.txt")
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return r.TB.StorageURL + "home/alice/hello.txt"
}

func commands(t *testing.T, r *rig.Rig) []command {
	host := strings.TrimPrefix(r.TB.StorageOrigin(), "https://")
	file := storageFile(t, r)
	ctx := context.Background()
	return []command{
		{"token", func(r *rig.Rig) rig.Result { return r.Run1("", "token", "-p", rig.Profile) }, false},
		{"git credential fill", func(r *rig.Rig) rig.Result {
			return r.Run(r.Program(ctx, "git", "credential", "fill"), "protocol=https\nhost="+host+"\n\n")
		}, true},
		{"tokenhelper curl", func(r *rig.Rig) rig.Result {
			return r.Run1("", "curl", "-sS", "--cacert", r.TB.CAFile, "-o", "/dev/null", "-w", "%{http_code}", file)
		}, false},
		{"tokenhelper exec", func(r *rig.Rig) rig.Result {
			return r.Run1("", "exec", "-p", rig.Profile, "--", "sh", "-c", `test -s "$BEARER_TOKEN_FILE"`)
		}, false},
	}
}

// providerEndpoints are the test bed's provider endpoints (not the
// storage).
func providerEndpoints() []testbed.Endpoint {
	var out []testbed.Endpoint
	for _, e := range testbed.Endpoints {
		if e != testbed.EndpointStorage && e != testbed.EndpointOther {
			out = append(out, e)
		}
	}
	return out
}

func providerRequests(c testbed.Counters) int {
	n := 0
	for _, e := range providerEndpoints() {
		n += c.Endpoint(e)
	}
	return n
}

// snapshot fingerprints what tokenhelper stores: state and cache (lock
// files, which hold nothing, left out).
func snapshot(t *testing.T, r *rig.Rig) rig.Snapshot {
	s := rig.TakeSnapshot(t, r.StateDir, rig.SkipLocks)
	for k, v := range rig.TakeSnapshot(t, r.CacheDir, rig.SkipLocks) {
		s["cache/"+k] = v
	}
	return s
}

// stderrLines are the non-empty lines of s.
func stderrLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// checkFailure checks a failed command: documented exit code, nothing on
// stdout, one line on stderr, no secret anywhere. It returns the line.
func checkFailure(t *testing.T, r *rig.Rig, c command, res rig.Result, want []int) (code int, line string) {
	t.Helper()
	lines := stderrLines(res.Stderr)
	var ours []string
	for _, l := range lines {
		if strings.HasPrefix(l, "tokenhelper: ") {
			ours = append(ours, l)
		}
	}
	if len(ours) != 1 {
		t.Errorf("%s: %d tokenhelper lines on stderr, want 1:\n%s", c.name, len(ours), res.Stderr)
	} else {
		line = ours[0]
	}
	if leaks := r.Leaks(res.Stdout + res.Stderr); len(leaks) > 0 {
		t.Errorf("%s: output holds secrets %v", c.name, leaks)
	}
	if c.viaGit {
		// git ignores a helper's exit status; it must fail (no terminal
		// to ask) and must not have received a password.
		if res.Code != 128 || strings.Contains(res.Stdout, "password=") || len(lines) != 2 {
			t.Errorf("%s: exit %d, stdout %q, stderr:\n%s", c.name, res.Code, res.Stdout, res.Stderr)
		}
		return -1, line
	}
	if !slices.Contains(want, res.Code) {
		t.Errorf("%s: exit %d, want %v: %s", c.name, res.Code, want, res.Stderr)
	}
	if res.Stdout != "" || len(lines) != 1 {
		t.Errorf("%s: stdout %q, %d lines on stderr (want none and one)", c.name, res.Stdout, len(lines))
	}
	return res.Code, line
}

// checkSuccess checks a command that must work.
func checkSuccess(t *testing.T, r *rig.Rig, c command, res rig.Result, token string) {
	t.Helper()
	ok := res.Code == 0
	switch c.name {
	case "token":
		ok = ok && strings.TrimSpace(res.Stdout) != "" && (token == "" || strings.TrimSpace(res.Stdout) == token)
	case "git credential fill":
		ok = ok && strings.Contains(res.Stdout, "password=") && (token == "" || strings.Contains(res.Stdout, "password="+token+"\n"))
	case "tokenhelper curl":
		ok = ok && res.Stdout == "200"
	}
	if !ok {
		t.Errorf("%s: exit %d, stdout %.80q, stderr:\n%s", c.name, res.Code, res.Stdout, res.Stderr)
	}
	if leaks := r.Leaks(res.Stderr); len(leaks) > 0 {
		t.Errorf("%s: stderr holds secrets %v", c.name, leaks)
	}
}

// TestFaultMatrix injects every fault on the token endpoint while each
// command needs a refresh, then on every provider endpoint while a valid
// token is cached, then stops the provider.
func TestFaultMatrix(t *testing.T) {
	gate(t)
	rig.NeedTool(t, "git", "git")
	rig.NeedTool(t, "curl", "curl")
	r := rig.New(t, rig.Options{
		ProfileTOML: fmt.Sprintf("timeout = %q", timeout),
		Testbed:     testbed.Options{Lifetimes: testbed.Lifetimes{DeviceCode: 30 * time.Second}},
	})
	r.Login()
	cmds := commands(t, r)

	var md strings.Builder
	md.WriteString("### Refresh needed, the token endpoint failing\n\n")
	var rows [][]string
	for _, fc := range refreshFaults() {
		row := []string{fc.name}
		var msg string
		for _, c := range cmds {
			r.ExpireCache()
			before := snapshot(t, r)
			if err := r.TB.Inject(testbed.EndpointToken, fc.fault.ForGrant(testbed.GrantRefreshToken)); err != nil {
				t.Fatal(err)
			}
			res := c.run(r)
			r.TB.ClearFaults()
			if res.Wall > timeout+10*time.Second {
				t.Errorf("%s / %s: took %s", fc.name, c.name, res.Wall)
			}
			if fc.want[0] == 0 {
				checkSuccess(t, r, c, res, "")
				row = append(row, "0")
				continue
			}
			code, line := checkFailure(t, r, c, res, fc.want)
			if msg == "" {
				msg = line
			}
			cell := strconv.Itoa(code)
			if c.viaGit {
				cell = "helper line, git 128"
			}
			diff := before.Diff(snapshot(t, r))
			switch {
			case fc.dropsSession && diff == "":
				t.Errorf("%s / %s: the dead refresh token was kept", fc.name, c.name)
			case fc.dropsSession:
				cell += ", session dropped"
				r.Relogin()
			case diff != "":
				t.Errorf("%s / %s: the stored state changed: %s", fc.name, c.name, diff)
				cell += ", STATE CHANGED"
			}
			row = append(row, cell)
		}
		rows = append(rows, append(row, "`"+strings.ReplaceAll(msg, "|", "\\|")+"`"))
	}
	md.WriteString(table([]string{"fault (token endpoint, refresh grant)", "token", "git credential fill", "tokenhelper curl", "tokenhelper exec", "message"}, rows))

	// A valid token in the cache: whatever the provider does, it is
	// served and the provider is not asked.
	md.WriteString("\n### A valid token cached, every provider endpoint failing\n\n")
	rows = nil
	for _, fc := range refreshFaults() {
		if fc.want[0] == 0 {
			continue
		}
		if res := r.Run1("", "token", "-p", rig.Profile); res.Code != 0 {
			t.Fatalf("token: %s", res.Stderr)
		}
		cached := strings.TrimSpace(r.Run1("", "token", "-p", rig.Profile).Stdout)
		for _, e := range providerEndpoints() {
			if err := r.TB.Inject(e, fc.fault); err != nil {
				t.Fatal(err)
			}
		}
		r.TB.ResetCounters()
		before := snapshot(t, r)
		for _, c := range cmds {
			checkSuccess(t, r, c, c.run(r), cached)
		}
		login := r.Run1("", "login", "-p", rig.Profile)
		if login.Code != 0 || !strings.Contains(login.Stderr, "still valid") {
			t.Errorf("%s: login with a valid cached token: exit %d: %s", fc.name, login.Code, login.Stderr)
		}
		n := providerRequests(r.TB.Counters())
		if n != 0 {
			t.Errorf("%s: %d requests reached the provider", fc.name, n)
		}
		if diff := before.Diff(snapshot(t, r)); diff != "" {
			t.Errorf("%s: the stored state changed: %s", fc.name, diff)
		}
		r.TB.ClearFaults()
		rows = append(rows, []string{fc.name, "served (token, git, curl, exec, login)", strconv.Itoa(n)})
	}
	md.WriteString(table([]string{"fault on every provider endpoint", "cached token", "requests at the provider"}, rows))

	md.WriteString("\n### Login (device flow) with the provider failing\n\n")
	md.WriteString(loginMatrix(t, r))

	md.WriteString("\n### The provider stopped (connection refused)\n\n")
	md.WriteString(providerStopped(t, r, cmds))
	writeReport(t, "faults.md", md.String())
}

// loginFaults are injected on the device authorization endpoint or on the
// token endpoint's device-code polls during `tokenhelper login`.
func loginFaults() []struct {
	endpoint testbed.Endpoint
	faultCase
} {
	type lf = struct {
		endpoint testbed.Endpoint
		faultCase
	}
	var out []lf
	da := testbed.EndpointDeviceAuthorization
	for _, fc := range []faultCase{
		{"HTTP 500", testbed.Status(500), []int{5}, false},
		{"HTTP 503", testbed.Status(503), []int{5}, false},
		{"HTTP 404", testbed.Status(404), []int{5, 3}, false},
		{"no answer", testbed.Hang(), []int{5}, false},
		{"truncated JSON", testbed.MalformedJSON(), []int{5}, false},
		{"HTML error page", testbed.HTMLError(), []int{5}, false},
		{"16 MiB answer", testbed.Oversized(0), []int{5}, false},
		{"invalid_client", oauth("invalid_client"), []int{3}, false},
		{"unauthorized_client", oauth("unauthorized_client"), []int{3}, false},
		{"access_denied", oauth("access_denied"), []int{9}, false},
		{"invalid_scope", oauth("invalid_scope"), []int{9}, false},
		{"server_error", oauth("server_error"), []int{5}, false},
		{"temporarily_unavailable", oauth("temporarily_unavailable"), []int{5}, false},
	} {
		out = append(out, lf{da, fc})
	}
	tok := testbed.EndpointToken
	for _, fc := range []faultCase{
		{"HTTP 503 (every poll)", testbed.Status(503), []int{5}, false},
		{"HTTP 503 (one poll)", testbed.Status(503).Once(), []int{0, 5}, false},
		{"no answer", testbed.Hang(), []int{5}, false},
		{"truncated JSON", testbed.MalformedJSON(), []int{5}, false},
		{"HTML error page", testbed.HTMLError(), []int{5}, false},
		{"16 MiB answer", testbed.Oversized(0), []int{5}, false},
		{"slow_down once", oauth("slow_down").Once(), []int{0}, false},
		{"authorization_pending once", oauth("authorization_pending").Once(), []int{0}, false},
		{"access_denied", oauth("access_denied"), []int{9}, false},
		{"expired_token", oauth("expired_token"), []int{4}, false},
		{"invalid_grant", oauth("invalid_grant"), []int{4, 9}, false},
		{"invalid_client", oauth("invalid_client"), []int{3}, false},
		{"server_error", oauth("server_error"), []int{5}, false},
	} {
		fc.fault = fc.fault.ForGrant(testbed.GrantDeviceCode)
		out = append(out, lf{tok, fc})
	}
	return out
}

func loginMatrix(t *testing.T, r *rig.Rig) string {
	var rows [][]string
	for _, lf := range loginFaults() {
		r.ExpireCache()
		before := snapshot(t, r)
		if err := r.TB.Inject(lf.endpoint, lf.fault); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() { _, _ = r.TB.ApproveNext(ctx, "alice") }() // the person approves whatever reaches the page
		res := r.Run1("", "login", "-p", rig.Profile, "--flow", "device", "--headless")
		cancel()
		r.TB.ClearFaults()
		name := fmt.Sprintf("%s: %s", lf.endpoint, lf.name)
		if res.Wall > timeout+40*time.Second {
			t.Errorf("login, %s: took %s", name, res.Wall)
		}
		if res.Code == 0 && slices.Contains(lf.want, 0) {
			if tok := r.Run1("", "token", "-p", rig.Profile); tok.Code != 0 {
				t.Errorf("login, %s: succeeded but token fails: %s", name, tok.Stderr)
			}
			rows = append(rows, []string{string(lf.endpoint), lf.name, "0 (logged in)", ""})
			continue
		}
		// login prints progress (the URL and code to open) before the
		// error: only the last line is the error.
		lines := stderrLines(res.Stderr)
		last := ""
		if len(lines) > 0 {
			last = lines[len(lines)-1]
		}
		if !slices.Contains(lf.want, res.Code) || !strings.HasPrefix(last, "tokenhelper: ") || res.Stdout != "" {
			t.Errorf("login, %s: exit %d (want %v), stdout %q, stderr:\n%s", name, res.Code, lf.want, res.Stdout, res.Stderr)
		}
		if leaks := r.Leaks(res.Stdout + res.Stderr); len(leaks) > 0 {
			t.Errorf("login, %s: output holds secrets %v", name, leaks)
		}
		if diff := before.Diff(snapshot(t, r)); diff != "" {
			t.Errorf("login, %s: the stored state changed: %s", name, diff)
		}
		rows = append(rows, []string{string(lf.endpoint), lf.name, strconv.Itoa(res.Code), "`" + strings.ReplaceAll(last, "|", "\\|") + "`"})
	}
	return table([]string{"endpoint", "fault", "exit", "last line"}, rows)
}

// providerStopped closes the test bed: a cached token is served; with an
// expired one, every command fails at once with exit 5.
func providerStopped(t *testing.T, r *rig.Rig, cmds []command) string {
	if res := r.Run1("", "token", "-p", rig.Profile); res.Code != 0 {
		t.Fatalf("token: %s", res.Stderr)
	}
	cached := strings.TrimSpace(r.Run1("", "token", "-p", rig.Profile).Stdout)
	r.TB.Close()
	var rows [][]string
	for _, c := range cmds {
		if c.name == "tokenhelper curl" {
			continue // the storage stopped with it
		}
		checkSuccess(t, r, c, c.run(r), cached)
	}
	rows = append(rows, []string{"valid token cached", "served by token, git, exec", ""})
	r.ExpireCache()
	before := snapshot(t, r)
	var msg string
	for _, c := range cmds {
		if c.name == "tokenhelper curl" {
			continue
		}
		res := c.run(r)
		_, line := checkFailure(t, r, c, res, []int{5})
		if msg == "" {
			msg = line
		}
		if res.Wall > 10*time.Second {
			t.Errorf("%s with the provider stopped: took %s", c.name, res.Wall)
		}
	}
	if diff := before.Diff(snapshot(t, r)); diff != "" {
		t.Errorf("provider stopped: the stored state changed: %s", diff)
	}
	rows = append(rows, []string{"expired token", "exit 5 (token, exec; git gets no password)", "`" + msg + "`"})
	return table([]string{"cache", "outcome", "message"}, rows)
}
