package secret

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
)

func writeFile(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pass")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSourcesOK(t *testing.T) {
	ctx := context.Background()
	good := writeFile(t, "  file-pw \r\nsecond line\n", 0o600)
	for _, tc := range []struct {
		name     string
		s        Sources
		want     string
		wantFrom string
	}{
		{"none", Sources{}, "", ""},
		{"env", Sources{Env: "P", Environ: []string{"P= env-pw "}}, "env-pw", "passphrase_env P"},
		{"env last wins", Sources{Env: "P", Environ: []string{"P=old", "P=new"}}, "new", "passphrase_env P"},
		{"env unset falls through", Sources{Env: "P", File: good, Environ: []string{"Q=x"}}, "file-pw", "passphrase_file " + good},
		{"env empty falls through", Sources{Env: "P", Cmd: "echo cmd-pw", Environ: []string{"P=  "}}, "cmd-pw", `passphrase_cmd "echo …"`},
		{"env before file and cmd", Sources{Env: "P", File: good, Cmd: "exit 1", Environ: []string{"P=env-pw"}}, "env-pw", "passphrase_env P"},
		{"file first line trimmed", Sources{File: good}, "file-pw", "passphrase_file " + good},
		{"file before cmd", Sources{File: good, Cmd: "exit 1"}, "file-pw", "passphrase_file " + good},
		{"cmd first line", Sources{Cmd: "printf '  cmd-pw\\nmore\\n'"}, "cmd-pw", `passphrase_cmd "printf …"`},
		{"cmd without newline", Sources{Cmd: "printf x"}, "x", `passphrase_cmd "printf …"`},
		{"cmd stdin is /dev/null", Sources{Cmd: "read x || echo eof"}, "eof", `passphrase_cmd "read …"`},
		{"cmd does not see the env source", Sources{Env: "P", Cmd: `if [ -n "${P+set}" ]; then echo leaked; else echo clean; fi`,
			Environ: []string{"P=", "OTHER=kept"}}, "clean", `passphrase_cmd "if …"`},
		{"cmd gets the environment", Sources{Cmd: `echo "$OTHER"`, Environ: []string{"OTHER=kept"}}, "kept", `passphrase_cmd "echo …"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.s.Stderr = &bytes.Buffer{}
			got, from, err := tc.s.Passphrase(ctx, "cms")
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want || from != tc.wantFrom {
				t.Errorf("got %q from %q, want %q from %q", got, from, tc.want, tc.wantFrom)
			}
		})
	}
}

func TestSourceErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		s       Sources
		kind    helper.Kind
		msg     string
		fix     string
		secrets []string
	}{
		{"file group readable", Sources{File: writeFile(t, "file-secret\n", 0o640)}, helper.KindUnsafe,
			"accessible by others (mode 0640)", "chmod 600 ", []string{"file-secret"}},
		{"file world readable", Sources{File: writeFile(t, "file-secret\n", 0o604)}, helper.KindUnsafe,
			"accessible by others (mode 0604)", "chmod 600 ", []string{"file-secret"}},
		{"file missing", Sources{File: filepath.Join(dir, "nope")}, helper.KindConfig,
			"no such file or directory", "remove passphrase_file from profile cms", nil},
		{"file relative", Sources{File: "pass.txt"}, helper.KindConfig, "not an absolute path", "absolute path", nil},
		{"file empty", Sources{File: writeFile(t, "\nfile-secret\n", 0o600)}, helper.KindConfig,
			"empty first line", "first line", []string{"file-secret"}},
		{"file is a directory", Sources{File: dir}, helper.KindConfig, "not a regular file", "", nil},
		{"cmd fails", Sources{Cmd: "echo cmd-secret; echo oops >&2; exit 3"}, helper.KindUnavailable,
			`passphrase_cmd "echo …" of profile cms failed (exit status 3)`, "run the command by hand", []string{"cmd-secret", "oops", "exit 3"}},
		{"cmd not found", Sources{Cmd: "/nonexistent/passphrase-tool --get"}, helper.KindUnavailable,
			`"/nonexistent/passphrase-tool …"`, "", nil},
		{"cmd empty output", Sources{Cmd: "true"}, helper.KindConfig, "printed an empty first line", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stderr := &bytes.Buffer{}
			tc.s.Stderr = stderr
			got, _, err := tc.s.Passphrase(ctx, "cms")
			if got != "" {
				t.Errorf("passphrase %q returned with an error", got)
			}
			he := helperErr(t, err, tc.kind)
			if !strings.Contains(he.Msg, tc.msg) || !strings.Contains(he.Fix, tc.fix) {
				t.Errorf("error = %q, want msg ~ %q, fix ~ %q", he, tc.msg, tc.fix)
			}
			noLeak(t, err, tc.secrets...)
			if tc.name == "cmd fails" && stderr.String() != "oops\n" {
				t.Errorf("stderr not passed through: %q", stderr)
			}
		})
	}
}

// gone reports whether pid has exited (or is a zombie) within a deadline.
func gone(t *testing.T, pid string) bool {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		stat, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			return true
		}
		if f := strings.Fields(string(stat)); len(f) > 2 && f[2] == "Z" {
			return true
		}
		time.Sleep(20 * time.Millisecond) // polling the kernel, not synchronising goroutines
	}
	return false
}

func TestSourceCmdDeadline(t *testing.T) {
	for _, tc := range []struct {
		name, cmd string
		timeout   bool
		want      string
	}{
		{"hangs", "sleep 60 & echo $! > PIDFILE; wait", true, ""},
		{"hangs after partial output", "echo partial-secret; sleep 60 & echo $! > PIDFILE; wait", true, ""},
		// sh exits at once; a background job keeping stdout open must not
		// keep us waiting beyond WaitDelay, and is killed.
		{"background job holds stdout", "sleep 60 & echo $! > PIDFILE; echo started", false, "started"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pidfile := filepath.Join(t.TempDir(), "pid")
			s := Sources{Cmd: strings.ReplaceAll(tc.cmd, "PIDFILE", pidfile), CmdTimeout: time.Second, Stderr: &bytes.Buffer{}}
			start := time.Now()
			got, _, err := s.Passphrase(context.Background(), "cms")
			elapsed := time.Since(start)
			if tc.timeout {
				he := helperErr(t, err, helper.KindUnavailable)
				if !strings.Contains(he.Msg, "did not finish within 1s and was killed") {
					t.Errorf("msg = %q", he.Msg)
				}
				noLeak(t, err, "partial-secret")
			} else if err != nil || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
			if elapsed > 5*time.Second {
				t.Errorf("took %v", elapsed)
			}
			pid, err := os.ReadFile(pidfile)
			if err != nil {
				t.Fatal(err)
			}
			if p := strings.TrimSpace(string(pid)); !gone(t, p) {
				t.Errorf("child %s of the passphrase command is still running", p)
			}
		})
	}
}

func TestSourceCmdParentCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := Sources{Cmd: "sleep 60"}.Passphrase(ctx, "cms")
	he := helperErr(t, err, helper.KindUnavailable)
	if !strings.Contains(he.Msg, "interrupted") {
		t.Errorf("msg = %q", he.Msg)
	}
}

func TestSourcesFromProfile(t *testing.T) {
	p := &config.Profile{PassphraseEnv: "E", PassphraseFile: "/f", PassphraseCmd: "c"}
	s := SourcesFromProfile(p)
	if s.Env != "E" || s.File != "/f" || s.Cmd != "c" || !s.Configured() {
		t.Errorf("SourcesFromProfile = %+v", s)
	}
	if SourcesFromProfile(nil).Configured() {
		t.Error("nil profile has sources")
	}
}

// End to end: each source unlocks a real key through the Unlocker.
func TestUnlockerWithSources(t *testing.T) {
	k := testKey(t)
	mustCreate(t, k, "s3cret pw")
	file := writeFile(t, "s3cret pw\n", 0o600)
	for name, s := range map[string]Sources{
		"env":  {Env: "TH", Environ: []string{"TH=s3cret pw"}},
		"file": {File: file},
		"cmd":  {Cmd: "echo 's3cret pw'"},
	} {
		t.Run(name, func(t *testing.T) {
			u := &Unlocker{Sources: s, Options: testOpts()}
			if _, err := u.Open(context.Background(), k); err != nil {
				t.Fatal(err)
			}
		})
	}
}
