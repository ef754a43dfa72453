//go:build linux

package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These tests exercise the harness without root: a trust store in a
// temporary directory with a stand-in for update-ca-certificates, and
// processes of the test's own.

// fakeTrustStore is a TrustStore in dir whose update command does what
// Debian's does to local CAs: link NAME.pem and HASH.0 in CertsDir, rebuild
// the bundle, and leave the links of removed CAs behind. It counts its
// runs in dir/updates.
func fakeTrustStore(t *testing.T) TrustStore {
	t.Helper()
	dir := t.TempDir()
	s := TrustStore{
		LocalDir: filepath.Join(dir, "local"),
		CertsDir: filepath.Join(dir, "certs"),
		Bundle:   filepath.Join(dir, "certs", "ca-certificates.crt"),
		Update:   filepath.Join(dir, "update-ca-certificates"),
		LockFile: filepath.Join(dir, "lock"),
	}
	for _, d := range []string{s.LocalDir, s.CertsDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script := `#!/bin/sh
set -e
[ "$1" = --hooksdir ] && [ -d "$2" ] || { echo "usage: --hooksdir DIR" >&2; exit 2; }
echo run >> '` + dir + `/updates'
: > '` + s.Bundle + `.tmp'
for crt in '` + s.LocalDir + `'/*.crt; do
  [ -e "$crt" ] || continue
  name=$(basename "$crt" .crt).pem
  ln -sf "$crt" '` + s.CertsDir + `'/"$name"
  ln -sf "$name" '` + s.CertsDir + `'/$(printf %s "$name" | cksum | cut -c1-8).0
  cat "$crt" >> '` + s.Bundle + `.tmp'
done
mv '` + s.Bundle + `.tmp' '` + s.Bundle + `'
`
	if err := os.WriteFile(s.Update, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	return s
}

func updates(t *testing.T, s TrustStore) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(filepath.Dir(s.LocalDir), "updates"))
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "run\n")
}

// newCAPEM returns a self-signed CA certificate in PEM.
func newCAPEM(t *testing.T, cn string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// links lists the symbolic links in dir.
func links(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.Type()&os.ModeSymlink != 0 {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestTrustStoreInstallRemove(t *testing.T) {
	s := fakeTrustStore(t)
	other := newCAPEM(t, "someone else's CA")
	if err := os.WriteFile(filepath.Join(s.LocalDir, "site.crt"), other, 0o644); err != nil {
		t.Fatal(err)
	}
	ca := newCAPEM(t, "test bed CA")

	if _, err := s.Install("bad", []byte("not a certificate")); err == nil {
		t.Error("Install accepted something that is not a PEM certificate")
	}
	path, err := s.Install("testbed", ca)
	if err != nil {
		t.Fatal(err)
	}
	if dir, base := filepath.Split(path); filepath.Clean(dir) != s.LocalDir || !strings.HasPrefix(base, caPrefix+strconv.Itoa(os.Getpid())+"-") {
		t.Errorf("installed as %s", path)
	}
	if in, err := s.Contains(ca); err != nil || !in {
		t.Fatalf("after Install the bundle holds the CA: %v, %v", in, err)
	}
	if n := len(links(t, s.CertsDir)); n != 4 {
		t.Errorf("%d links in the hashed directory, want 4 (2 per CA)", n)
	}
	got, err := s.Installed()
	if err != nil || len(got) != 1 || got[0].Path != path || got[0].PID != os.Getpid() || got[0].Stale() {
		t.Fatalf("Installed: %+v, %v", got, err)
	}

	if err := s.Remove(filepath.Join(s.LocalDir, "site.crt")); err == nil {
		t.Error("Remove took a CA that is not the harness's")
	}
	if err := s.Remove(path); err != nil {
		t.Fatal(err)
	}
	if in, err := s.Contains(ca); err != nil || in {
		t.Errorf("after Remove the bundle still holds the CA: %v, %v", in, err)
	}
	if in, _ := s.Contains(other); !in {
		t.Error("Remove took the other CA out of the bundle")
	}
	if l := links(t, s.CertsDir); len(l) != 2 {
		t.Errorf("links left after Remove: %v (want only the other CA's two)", l)
	}
	before := updates(t, s)
	if err := s.Remove(path); err != nil {
		t.Errorf("removing again: %v", err)
	}
	if updates(t, s) != before {
		t.Error("removing a CA that is gone ran update-ca-certificates")
	}
}

func TestTrustStoreFailedUpdateLeavesNothing(t *testing.T) {
	s := fakeTrustStore(t)
	s.Update = "/bin/false"
	if _, err := s.Install("testbed", newCAPEM(t, "x")); err == nil {
		t.Fatal("Install succeeded although update-ca-certificates failed")
	}
	if got, _ := s.Installed(); len(got) != 0 {
		t.Errorf("a failed Install left %v", got)
	}
}

func TestInstalledCAStale(t *testing.T) {
	gone := deadPID(t)
	start, err := processStart(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		stale bool
	}{
		{caPrefix + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatUint(start, 10) + "-testbed.crt", false},
		{caPrefix + strconv.Itoa(os.Getpid()) + "-1-testbed.crt", true}, // same pid, another process
		{caPrefix + strconv.Itoa(gone) + "-0-testbed.crt", true},
		{caPrefix + "explore.crt", true},
	} {
		s := fakeTrustStore(t)
		if err := os.WriteFile(filepath.Join(s.LocalDir, c.name), newCAPEM(t, "x"), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := s.Installed()
		if err != nil || len(got) != 1 {
			t.Fatalf("%s: %v %v", c.name, got, err)
		}
		if got[0].Stale() != c.stale {
			t.Errorf("%s: stale = %v, want %v", c.name, got[0].Stale(), c.stale)
		}
	}
}

// deadPID returns the pid of a process that has exited and been reaped.
func deadPID(t *testing.T) int {
	t.Helper()
	c := exec.Command("true")
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	return c.Process.Pid
}

func TestProcessStopEscalates(t *testing.T) {
	dir := t.TempDir()
	// A process that ignores SIGTERM, with a child in its group.
	c := exec.Command("sh", "-c", `trap "" TERM; sleep 300 & echo ready; wait`)
	p, err := startProcess("stubborn", c, filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	if err := waitOutput(p, "ready"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := p.Stop(200 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < 200*time.Millisecond {
		t.Error("Stop did not give the process its grace period")
	}
	if alive(p.PID(), p.start) {
		t.Error("the process survived Stop")
	}
	if groupAlive(p.PID()) {
		t.Error("a process of the group survived Stop")
	}
	if err := p.Stop(time.Second); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "log"))
	if err != nil || !strings.Contains(string(b), "ready") {
		t.Errorf("log file: %q, %v", b, err)
	}
}

// waitOutput waits until the process has printed s (or exited).
func waitOutput(p *Process, s string) error {
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.Output(), s) {
		select {
		case <-p.Exited():
			return os.ErrProcessDone
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return os.ErrDeadlineExceeded
		}
	}
	return nil
}

func TestTailKeepsTheEnd(t *testing.T) {
	tl := &tail{max: 8}
	for _, s := range []string{"abc", "defgh", "ijklmnop", "q"} {
		_, _ = tl.Write([]byte(s))
	}
	if got := tl.String(); got != "jklmnopq" {
		t.Errorf("tail = %q, want %q", got, "jklmnopq")
	}
}

func TestAlive(t *testing.T) {
	start, err := processStart(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !alive(os.Getpid(), start) || !alive(os.Getpid(), 0) {
		t.Error("this process is not alive")
	}
	if alive(os.Getpid(), start+1) {
		t.Error("a different start time still counts as the same process")
	}
	if alive(deadPID(t), 0) || alive(0, 0) || alive(-1, 0) {
		t.Error("a gone process is alive")
	}
}

// TestRecoverStale: a run whose test process died is undone — its
// processes killed, its pid-file processes stopped, its CA taken out of the
// trust store, its directory removed — while a run in progress is left
// alone.
func TestRecoverStale(t *testing.T) {
	tmp := t.TempDir()
	trust := fakeTrustStore(t)

	// A live run: this process.
	live, err := NewRun(tmp, trust)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = live.Close() }()

	// A dead run, written by hand as a killed run leaves it.
	deadDir := filepath.Join(tmp, runPrefix+"dead")
	if err := os.Mkdir(deadDir, 0o700); err != nil {
		t.Fatal(err)
	}
	orphan := exec.Command("sleep", "300")
	orphan.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = orphan.Wait(); close(done) }()
	defer func() { _ = orphan.Process.Kill() }()
	orphanStart, _ := processStart(orphan.Process.Pid)

	pidFileProc := exec.Command("sleep", "300")
	if err := pidFileProc.Start(); err != nil {
		t.Fatal(err)
	}
	pidDone := make(chan struct{})
	go func() { _ = pidFileProc.Wait(); close(pidDone) }()
	defer func() { _ = pidFileProc.Process.Kill() }()
	pidFile := filepath.Join(deadDir, "sleep.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(pidFileProc.Process.Pid)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A pid file naming a process of another name is never signalled.
	if err := os.WriteFile(filepath.Join(deadDir, "self.pid"), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		t.Fatal(err)
	}

	ca := newCAPEM(t, "left behind")
	caPath := filepath.Join(trust.LocalDir, caPrefix+strconv.Itoa(deadPID(t))+"-7-testbed.crt")
	if err := os.WriteFile(caPath, ca, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := trust.update(); err != nil {
		t.Fatal(err)
	}
	rec := record{
		OwnerPID: deadPID(t), OwnerStart: 1,
		Processes: []recordProc{{Name: "sleep", PID: orphan.Process.Pid, Start: orphanStart}},
		CAFiles:   []string{caPath},
		PIDFiles:  []PIDFile{{Path: pidFile, Command: "sleep"}, {Path: filepath.Join(deadDir, "self.pid"), Command: "sleep"}},
	}
	b, _ := json.Marshal(rec)
	if err := os.WriteFile(filepath.Join(deadDir, recordFile), b, 0o600); err != nil {
		t.Fatal(err)
	}

	cleaned, err := RecoverStale(tmp, trust)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cleaned: %q", cleaned)
	for _, c := range []struct {
		ch   chan struct{}
		what string
	}{{done, "the recorded process"}, {pidDone, "the pid file's process"}} {
		select {
		case <-c.ch:
		case <-time.After(10 * time.Second):
			t.Errorf("%s still runs", c.what)
		}
	}
	if _, err := os.Stat(deadDir); err == nil {
		t.Error("the dead run's directory is still there")
	}
	if _, err := os.Stat(caPath); err == nil {
		t.Error("the dead run's CA is still installed")
	}
	if in, _ := trust.Contains(ca); in {
		t.Error("the dead run's CA is still in the bundle")
	}
	if _, err := os.Stat(live.Dir); err != nil {
		t.Errorf("the live run's directory was touched: %v", err)
	}
	if len(cleaned) < 4 {
		t.Errorf("RecoverStale reported %q", cleaned)
	}
}

func TestRunCloseStopsAndRemoves(t *testing.T) {
	trust := fakeTrustStore(t)
	r, err := NewRun(t.TempDir(), trust)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(r.Dir)
	if err != nil || fi.Mode().Perm() != 0o711 {
		t.Fatalf("run directory mode %v, %v", fi.Mode().Perm(), err)
	}
	sub, err := r.Mkdir("private")
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(sub); fi.Mode().Perm() != 0o700 {
		t.Errorf("Mkdir made %v", fi.Mode().Perm())
	}
	p, err := r.Start("sleeper", exec.Command("sleep", "300"))
	if err != nil {
		t.Fatal(err)
	}
	ca := newCAPEM(t, "run CA")
	if _, err := r.TrustCA("testbed", ca); err != nil {
		t.Fatal(err)
	}
	var rec record
	b, _ := os.ReadFile(filepath.Join(r.Dir, recordFile))
	if err := json.Unmarshal(b, &rec); err != nil || len(rec.Processes) != 1 || rec.Processes[0].PID != p.PID() || len(rec.CAFiles) != 1 {
		t.Fatalf("run.json: %s (%v)", b, err)
	}
	closed := false
	r.OnClose(func() error { closed = true; return nil })

	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Exited():
	default:
		t.Error("Close returned while the process still runs")
	}
	if !closed {
		t.Error("OnClose did not run")
	}
	if in, _ := trust.Contains(ca); in {
		t.Error("Close left the CA in the trust store")
	}
	if _, err := os.Stat(r.Dir); err == nil {
		t.Error("Close left the run directory")
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := r.Start("late", exec.Command("true")); err == nil {
		t.Error("Start after Close succeeded")
	}
	// Nothing recreates state after Close (tests that go on after a
	// signal or the timeout watchdog closed the run).
	if _, err := r.Mkdir("late"); err == nil {
		t.Error("Mkdir after Close succeeded")
	}
	if err := r.RecordCA(filepath.Join(trust.LocalDir, caPrefix+"1-1-late.crt")); err == nil {
		t.Error("RecordCA after Close succeeded")
	}
	if err := r.WatchPIDFile(PIDFile{Path: "/nonexistent", Command: "x"}); err == nil {
		t.Error("WatchPIDFile after Close succeeded")
	}
	if _, err := os.Stat(r.Dir); err == nil {
		t.Error("the run directory came back after Close")
	}
	ran := false
	r.OnClose(func() error { ran = true; return nil })
	if !ran {
		t.Error("OnClose after Close did not run its function")
	}
}

func TestReachable(t *testing.T) {
	// Not t.TempDir(): its parent is 0700.
	dir, err := os.MkdirTemp("", "tokenhelper-reachable-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	open := filepath.Join(dir, "open")
	closed := filepath.Join(dir, "closed")
	for _, d := range []string{open, closed} {
		if err := os.Mkdir(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	other := os.Getuid() + 12345
	if err := reachable(filepath.Dir(dir), other); err != nil {
		t.Skipf("the temporary directory itself is closed to others (%v): nothing to compare with", err)
	}
	if err := reachable(open, other); err != nil {
		t.Errorf("a 0711 directory: %v", err)
	}
	if err := reachable(closed, other); err == nil {
		t.Error("a 0700 directory of another user counted as reachable")
	}
	if err := reachable(closed, os.Getuid()); err != nil {
		t.Errorf("the owner cannot pass through its 0700 directory: %v", err)
	}
}
