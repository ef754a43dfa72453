// Package systemd holds tokenhelper's systemd user units (this directory's
// *.service and *.timer files, see docs/renew.md): the renew daemon
// (tokenhelper-renew.service) and the cron-style alternative
// (tokenhelper-renew-once.timer starting tokenhelper-renew-once.service).
// The test checks them with systemd-analyze verify (systemd.unit(5),
// systemd.service(5), systemd.timer(5)).
package systemd

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var units = []string{"tokenhelper-renew.service", "tokenhelper-renew-once.service", "tokenhelper-renew-once.timer"}

// TestVerify: systemd-analyze (Debian package systemd) accepts the units
// as user units without a single warning.
func TestVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-analyze not found (CI=true): install the Debian package systemd")
		}
		t.Skip("systemd-analyze not found: install the Debian package systemd to run this test")
	}
	var paths []string
	for _, u := range units {
		p, err := filepath.Abs(u)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sa, append([]string{"verify", "--user"}, paths...)...)
	// A user manager needs a runtime directory; an empty one will do.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "XDG_RUNTIME_DIR=" + t.TempDir(), "SYSTEMD_LOG_LEVEL=warning"}
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify --user: %v\n%s", err, out)
	}
}

// ExecStart returns the ExecStart= value of a unit file.
func execStart(t *testing.T, name string) string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "ExecStart="); ok {
			return v
		}
	}
	t.Fatalf("%s has no ExecStart=", name)
	return ""
}

// TestCommands: the services run the documented commands, and the timer's
// interval (5 min + 30 s random delay) is covered by --every.
func TestCommands(t *testing.T) {
	if got := execStart(t, "tokenhelper-renew.service"); got != "/usr/bin/env tokenhelper renew --daemon" {
		t.Errorf("daemon ExecStart=%s", got)
	}
	if got := execStart(t, "tokenhelper-renew-once.service"); got != "/usr/bin/env tokenhelper renew --once --every 6m" {
		t.Errorf("oneshot ExecStart=%s", got)
	}
	timer, err := os.ReadFile("tokenhelper-renew-once.timer")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"OnUnitActiveSec=5min", "RandomizedDelaySec=30s", "WantedBy=timers.target"} {
		if !strings.Contains(string(timer), "\n"+line+"\n") {
			t.Errorf("the timer lacks %s", line)
		}
	}
}
