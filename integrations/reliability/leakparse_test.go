package reliability

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The leak scan's readers of strace output, on lines as strace 6.1
// prints them (strace -f -y -v).
func TestTraceParsing(t *testing.T) {
	jwt := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlc2lnbmF0dXJl"
	rt := "Xq3k9ZmT0pQWe7rLs2VbN4yHc8uJ1aFdGh5oKi6jPlM"
	ss := secretSet{jwt: "access_token", rt: "refresh_token"}

	call := `execve("/usr/bin/curl", ["curl", "-K", "-", "https://se/x"], ["HOME=/h", "BEARER_TOKEN=` + jwt + `", "A=\"]\""] /* 3 vars */) = 0`
	argv, env := execveArgs(call)
	if argv != `["curl", "-K", "-", "https://se/x"]` || !strings.Contains(env, "BEARER_TOKEN=") || !strings.HasSuffix(env, `"A=\"]\""]`) {
		t.Errorf("execveArgs: argv %q env %q", argv, env)
	}
	if got := splitArgv(argv); !slices.Equal(got, []string{"curl", "-K", "-", "https://se/x"}) {
		t.Errorf("splitArgv = %q", got)
	}
	if got := ss.find(env); !slices.Equal(got, []string{"access_token"}) {
		t.Errorf("find(env) = %v", got)
	}
	if got := ss.find("refresh_token=" + rt + "&x"); !slices.Equal(got, []string{"refresh_token"}) {
		t.Errorf("find(form) = %v", got)
	}
	if got := ss.find("prefix" + rt); len(got) != 0 {
		t.Errorf("find matched inside a longer run: %v", got)
	}
	if r := ss.redact(`Bearer ` + jwt + ` and eyJa.eyJb.` + strings.Repeat("c", 40)); r != "Bearer <ACCESS_TOKEN> and <JWT>" {
		t.Errorf("redact = %q", r)
	}
	if !jwtShaped(`level=DEBUG tok="`+jwt+`"`) || jwtShaped("eyJ short.a.b") || jwtShaped("no token here") {
		t.Error("jwtShaped")
	}

	fd, target := writeTarget(`write(2<pipe:[12345]>, "tokenhelper: x\n", 15) = 15`)
	if fd != 2 || target != "pipe:[12345]" {
		t.Errorf("writeTarget = %d %q", fd, target)
	}
	fd, target = writeTarget(`writev(7</home/u/.cache/tokenhelper/tokens/.x.tmp-1>, [{iov_base="{", iov_len=1}], 1) = 1`)
	if fd != 7 || target != "/home/u/.cache/tokenhelper/tokens/.x.tmp-1" {
		t.Errorf("writeTarget = %d %q", fd, target)
	}

	for _, tc := range []struct {
		call, path string
		mode       uint32
	}{
		{`chmod("/w/tokens/a", 0644) = 0`, "/w/tokens/a", 0o644},
		{`fchmodat(AT_FDCWD</w>, "/w/tokens/quirks", 0640) = 0`, "/w/tokens/quirks", 0o640},
		{`fchmodat(AT_FDCWD</w/tokens>, "quirks", 0640) = 0`, "/w/tokens/quirks", 0o640}, // relative to the cwd
		{`fchmodat(4</w/tokens>, "./quirks", 0604) = 0`, "/w/tokens/quirks", 0o604},      // relative to a directory descriptor
		{`fchmod(3</w/tokens/quirks>, 0644)  = 0`, "/w/tokens/quirks", 0o644},            // (*os.File).Chmod
		{`chmod("/w/x/ofsEvents", 010660 `, "/w/x/ofsEvents", 0o10660},                   // an unfinished call
		{`fchmodat(AT_FDCWD</w>, "/w/tokens/quirks", 0600 `, "/w/tokens/quirks", 0o600},  // idem
	} {
		if p, m, ok := chmodArgs(tc.call); !ok || p != tc.path || m != tc.mode {
			t.Errorf("chmodArgs(%s) = %q %o %v, want %q %o", tc.call, p, m, ok, tc.path, tc.mode)
		}
	}
	for _, bad := range []string{`fchmod(3<pipe:[7]>, 0644) = 0`, `fchmodat(4, "rel", 0644) = 0`, `chmod("/p", 0x) = 0`, `chmod(`} {
		if p, m, ok := chmodArgs(bad); ok {
			t.Errorf("chmodArgs(%s) = %q %o, want nothing", bad, p, m)
		}
	}
	if replaced("/d/.account.json.tmp-0a1b") != "/d/account.json" || replaced("/d/bt_u0") != "/d/bt_u0" {
		t.Error("replaced")
	}

	p := &process{argv: `["/tmp/x/bin/tokenhelper", "-p", "tb", "token"]`}
	if p.role() != "tokenhelper" || p.subcommand() != "token" {
		t.Errorf("role %s subcommand %s", p.role(), p.subcommand())
	}
	if (&process{argv: `["/x/native.test"]`, env: `["NATIVE_TEST_BE_TOKENHELPER=1"]`}).role() != "tokenhelper" {
		t.Error("a re-executed test binary is tokenhelper")
	}
	if (&process{argv: `["/usr/lib/git-core/git-credential-tokenhelper", "get"]`}).subcommand() != "credential-helper" {
		t.Error("credential helper")
	}
	if c := (&process{argv: `["/x/tokenhelper-pluginhost", "call"]`}); c.role() != "tokenhelper" || !c.companion() || p.companion() {
		t.Error("companion")
	}
}

// analyzeTrace follows threads and children through clone, joins
// unfinished calls, and judges writes by who made them.
func TestAnalyzeTrace(t *testing.T) {
	jwt := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlc2lnbmF0dXJl"
	ss := secretSet{jwt: "access_token"}
	trace := strings.Join([]string{
		`100 execve("/b/tokenhelper", ["tokenhelper", "token"], ["HOME=/h"] /* 1 vars */) = 0`,
		// A thread's write printed before the clone that made it returns.
		`102 write(1<pipe:[1]>, "` + jwt + `\n", 70) = 70`,
		`100 clone(child_stack=0x1, flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM <unfinished ...>`,
		`100 <... clone resumed>, tls=0x2) = 102`,
		`102 write(2<pipe:[2]>, "tokenhelper: ` + jwt + `\n", 80) = 80`,
		// tokenhelper starts curl with the token in its argv.
		`100 clone(child_stack=NULL, flags=CLONE_VM|CLONE_VFORK|SIGCHLD) = 103`,
		`103 execve("/usr/bin/curl", ["curl", "-H", "Authorization: Bearer ` + jwt + `"], ["HOME=/h"] /* 1 vars */ <unfinished ...>`,
		`103 <... execve resumed>) = 0`,
		`103 write(1<pipe:[3]>, "` + jwt + `", 66) = 66`,
		`100 write(5<socket:[9]>, "POST /token refresh_token=` + jwt + `", 90) = 90`,
	}, "\n") + "\n"
	path := filepath.Join(t.TempDir(), "trace")
	if err := os.WriteFile(path, []byte(trace), 0o600); err != nil {
		t.Fatal(err)
	}
	rp := &leakReport{reviewed: map[string][]string{}, counts: map[string]int{}}
	analyzeTrace(t, path, ss, rp)
	if len(rp.violations) != 2 || !strings.HasPrefix(rp.violations[0], "stderr of tokenhelper") || !strings.HasPrefix(rp.violations[1], "argv of a process tokenhelper started") {
		t.Errorf("violations: %q", rp.violations)
	}
	for _, v := range rp.violations {
		if strings.Contains(v, jwt) {
			t.Error("the report holds the token")
		}
	}
	if rp.counts["network (requests to the provider, answers of the test bed, plugin RPC)"] != 1 || rp.counts["other programs' output (tests' shell snippets, curl, git, oidc-agent)"] != 1 {
		t.Errorf("counts: %v", rp.counts)
	}
	for k, n := range rp.counts {
		if strings.HasPrefix(k, "stdout of commands whose output is the token") && n != 1 {
			t.Errorf("%s: %d", k, n)
		}
	}
}

// strace pads pids to five columns: a process with a pid under 10000 has
// its calls printed after blanks ("3623  fchmodat(..."). The scan used to
// read those as no call at all: neither the chmod of a test (the
// end-to-end suite's 0640 token file of xrdcp/quirks, reported as a
// leak), nor any write, execve or clone of such a process was seen.
func TestAnalyzeTracePaddedPids(t *testing.T) {
	jwt := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlc2lnbmF0dXJl"
	ss := secretSet{jwt: "access_token"}
	const run = "/tmp/thr2719122991/tmp/tokenhelper-e2e-run-4100738047"
	trace := strings.Join([]string{
		// The line shapes of a real trace of the end-to-end suite
		// (strace 6.1, -f -y -v), pids as they came.
		`3623  execve("/tmp/thr2719122991/bin/integrations_e2e_tags_e2e.test", ["/tmp/thr2719122991/bin/integrations_e2e_tags_e2e.test", "-test.v"], ["HOME=/root"] /* 1 vars */) = 0`,
		`3623  clone(child_stack=NULL, flags=CLONE_VM|CLONE_VFORK|SIGCHLD <unfinished ...>`,
		`3701  execve("` + run + `/bin/tokenhelper", ["` + run + `/bin/tokenhelper", "-p", "alice", "export", "--file", "` + run + `/tokens/quirks"], ["HOME=/root"] /* 1 vars */ <unfinished ...>`,
		`3623  <... clone resumed>) = 3701`,
		`3701  <... execve resumed>) = 0`,
		`3701  write(5<` + run + `/tokens/.quirks.tmp-b14d9e5ef15849e6>, "` + jwt + `", 68) = 68`,
		`3701  write(2<pipe:[1929173]>, "tokenhelper: ` + jwt + `\n", 80) = 80`,
		`3701  +++ exited with 0 +++`,
		`3623  fchmodat(AT_FDCWD</work/main/integrations/e2e>, "` + run + `/tokens/quirks", 0640) = 0`,
		`3623  fchmodat(AT_FDCWD</work/main/integrations/e2e>, "` + run + `/tokens/quirks", 0600) = 0`,
	}, "\n") + "\n"
	path := filepath.Join(t.TempDir(), "trace")
	if err := os.WriteFile(path, []byte(trace), 0o600); err != nil {
		t.Fatal(err)
	}
	rp := &leakReport{reviewed: map[string][]string{}, counts: map[string]int{}}
	analyzeTrace(t, path, ss, rp)
	if w := rp.opened[run+"/tokens/quirks"]; !strings.Contains(w, "integrations_e2e_tags_e2e.test") {
		t.Errorf("the test's chmod 0640 was not seen (opened by %q): %v", w, rp.opened)
	}
	if rp.writers[run+"/tokens/quirks"] != "tokenhelper" {
		t.Errorf("writers: %v", rp.writers)
	}
	if len(rp.violations) != 1 || !strings.HasPrefix(rp.violations[0], "stderr of tokenhelper") {
		t.Errorf("violations: %q", rp.violations)
	}
}

// A pid is reused once strace said it ended: the new thread or process
// is not the old one. Here pid 211 is first tokenhelper, then a thread of
// the test binary that opens a file to others.
func TestAnalyzeTracePidReuse(t *testing.T) {
	jwt := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlc2lnbmF0dXJl"
	ss := secretSet{jwt: "access_token"}
	trace := strings.Join([]string{
		`100   execve("/b/x.test", ["/b/x.test", "-test.v"], ["HOME=/h"] /* 1 vars */) = 0`,
		`100   clone(child_stack=NULL, flags=CLONE_VM|CLONE_VFORK|SIGCHLD) = 211`,
		`211   execve("/b/tokenhelper", ["tokenhelper", "token"], ["HOME=/h"] /* 1 vars */) = 0`,
		`211   write(1<pipe:[5]>, "` + jwt + `\n", 70) = 70`,
		`211   +++ exited with 0 +++`,
		// The thread's first call is printed before its clone returns.
		`211   fchmodat(AT_FDCWD</w>, "/w/t/shared", 0644) = 0`,
		`100   clone(child_stack=0x1, flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM <unfinished ...>`,
		`100   <... clone resumed>, tls=0x2) = 211`,
		`211   write(2<pipe:[6]>, "` + jwt + `\n", 70) = 70`,
	}, "\n") + "\n"
	path := filepath.Join(t.TempDir(), "trace")
	if err := os.WriteFile(path, []byte(trace), 0o600); err != nil {
		t.Fatal(err)
	}
	rp := &leakReport{reviewed: map[string][]string{}, counts: map[string]int{}}
	analyzeTrace(t, path, ss, rp)
	if w := rp.opened["/w/t/shared"]; !strings.Contains(w, "x.test") {
		t.Errorf("chmod by the reused pid attributed to %q", w)
	}
	if len(rp.violations) != 0 {
		t.Errorf("the test binary's stderr taken for tokenhelper's: %q", rp.violations)
	}
	for k, n := range rp.counts {
		if strings.HasPrefix(k, "stdout of commands whose output is the token") && n != 1 {
			t.Errorf("%s: %d", k, n)
		}
	}
}

// A suite that failed under strace and again without it did not run to
// completion: the report says the scan is incomplete, naming it and its
// log; one that passed without strace only is named apart.
func TestLeakMarkdownIncomplete(t *testing.T) {
	sc := &scan{results: []suiteResult{
		{name: "plugins_file", log: "/e/plugins_file.log", traced: true, complete: true},
		{name: "integrations_execenv", log: "/e/integrations_execenv.log", complete: true, underStrace: "signal: interrupt"},
		{name: "plugins_oidcagent", log: "/e/plugins_oidcagent.log", underStrace: "exit status 1", withoutStrace: "exit status 1"},
	}}
	rp := &leakReport{reviewed: map[string][]string{}, counts: map[string]int{}}
	md := rp.markdown(3, 10, sc)
	for _, want := range []string{
		"| plugins_file | ok |",
		"| integrations_execenv | failed under strace (signal: interrupt); without strace: ok",
		"| plugins_oidcagent | **did not run to completion**: failed under strace (exit status 1) and without it (exit status 1): see plugins_oidcagent.log |",
		"**Scan incomplete: 1 suite did not run to completion, under strace or without it: plugins_oidcagent (plugins_oidcagent.log).**",
		"Ran to completion only without strace (argv, environments, files and output scanned; writes not attributed to processes): integrations_execenv.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if md := rp.markdown(1, 10, &scan{results: sc.results[:1]}); strings.Contains(md, "incomplete") || strings.Contains(md, "only without strace") {
		t.Errorf("a complete scan reported incomplete:\n%s", md)
	}
}

// What a suite leaves running in its session once its test binary ended
// is killed and named; processes of other sessions are left alone.
func TestLeftoversKilled(t *testing.T) {
	other := exec.Command("sleep", "60") // this test's own session
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Process.Kill(); _ = other.Wait() })
	suite := exec.Command("sh", "-c", "sleep 61 </dev/null >/dev/null 2>&1 & echo $!")
	suite.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	out, err := suite.Output()
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(child, syscall.SIGKILL) })
	done := make(chan struct{})
	var l leftovers
	go func() {
		for l.list() == nil { // the watcher kills it once it sees the leader gone
			time.Sleep(10 * time.Millisecond)
		}
		close(done)
	}()
	finished := make(chan struct{})
	go func() { l.watch(func() int { return suite.Process.Pid }, done); close(finished) }()
	select {
	case <-finished:
	case <-time.After(10 * time.Second):
		t.Fatal("the leftover was not killed within 10 s")
	}
	if got := l.list(); len(got) != 1 || !strings.HasPrefix(got[0], "sleep 61 (pid "+strconv.Itoa(child)+")") {
		t.Errorf("leftovers %q", got)
	}
	for i := 0; i < 200; i++ {
		if _, alive := sessionOf(child); !alive {
			break
		}
		time.Sleep(10 * time.Millisecond) // SIGKILL is asynchronous
	}
	if _, alive := sessionOf(child); alive {
		t.Error("the leftover still runs")
	}
	if _, alive := sessionOf(other.Process.Pid); !alive {
		t.Error("a process of another session was killed")
	}
}
