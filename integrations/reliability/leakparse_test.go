package reliability

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
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

	if p, m, ok := chmodArgs(`fchmodat(AT_FDCWD</w>, "/w/tokens/quirks", 0640) = 0`); !ok || p != "/w/tokens/quirks" || m != 0o640 {
		t.Errorf("chmodArgs = %q %o %v", p, m, ok)
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
