//go:build e2e && linux

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// serverDoc is the page whose recipe testDocServer follows; toolDocs are
// the pages whose "Try it on your machine" blocks run against that server,
// between its step 6 and its clean-up.
const serverDoc = "../../docs/xrootd-server.md"

var toolDocs = []string{"../../docs/xrootd.md", "../../docs/gfal.md", "../../docs/davix.md", "../../docs/htcondor.md"}

// testDocServer follows docs/xrootd-server.md as a new user would: its sh
// blocks, in order, in one bash — its own test bed started with
// `tokenhelper-testbed serve --https`, its CA installed and removed with
// update-ca-certificates, the documented xrootd configuration, tokenhelper
// register with the device flow, xrdcp and curl through tokenhelper — then
// the sh blocks of the xrootd, gfal, davix and HTCondor pages, then the
// server page's clean-up. Only where things go (directories, ports, the CA
// file name) is chosen by the test, through the variables the page lets
// you set.
func (s *suite) testDocServer(t *testing.T) {
	page, err := os.ReadFile(serverDoc)
	if err != nil {
		t.Fatal(err)
	}
	server := ShellBlocks(string(page))
	if len(server) < 6 {
		t.Fatalf("%s has %d sh blocks; the recipe has more", serverDoc, len(server))
	}
	blocks := append([]string{}, server[:len(server)-1]...)
	for _, doc := range toolDocs {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		tool := ShellBlocks(string(b))
		if len(tool) == 0 {
			t.Fatalf("%s has no sh block to try", doc)
		}
		blocks = append(blocks, fmt.Sprintf("echo '=== %s'\n", filepath.Base(doc)))
		blocks = append(blocks, tool...)
	}
	blocks = append(blocks, "echo '=== clean-up'\n", server[len(server)-1])
	script := "set -euo pipefail\n" + strings.Join(blocks, "\n")

	dir, err := s.run.Mkdir("doc")
	if err != nil {
		t.Fatal(err)
	}
	// The user xrootd must pass through to $XRD.
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"home", "runtime", "work", "tmp"} {
		if _, err := s.run.Mkdir("doc", d); err != nil {
			t.Fatal(err)
		}
	}
	tb, xrd := filepath.Join(dir, "testbed"), filepath.Join(dir, "xrootd")
	caFile, err := s.run.Trust.FileName("docs")
	if err != nil {
		t.Fatal(err)
	}
	// Recorded first, so that a failure anywhere below (or a killed run)
	// still removes the CA and stops what the page started.
	if err := s.run.RecordCA(caFile); err != nil {
		t.Fatal(err)
	}
	for _, f := range []PIDFile{{Path: tb + ".pid", Command: "tokenhelper-tes"}, {Path: filepath.Join(xrd, "xrootd.pid"), Command: "xrootd"}} {
		if err := s.run.WatchPIDFile(f); err != nil {
			t.Fatal(err)
		}
	}
	ports := make([]string, 3)
	for i := range ports {
		p, err := freePort(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = strconv.Itoa(p)
	}
	home := filepath.Join(dir, "home")
	env := []string{
		"PATH=" + filepath.Dir(s.bin) + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + home,
		"XDG_RUNTIME_DIR=" + filepath.Join(dir, "runtime"),
		"TMPDIR=" + filepath.Join(dir, "tmp"),
		"LANG=C",
		"TB=" + tb, "XRD=" + xrd, "CA_FILE=" + caFile,
		"ISSUER_PORT=" + ports[0], "ROOT_PORT=" + ports[1], "HTTPS_PORT=" + ports[2],
	}

	c := exec.Command("bash", "-c", script)
	c.Dir = filepath.Join(dir, "work")
	c.Env = env
	// A recorded process of the run, in its own process group: Close (a
	// failure, a signal, the timeout watchdog) stops the script and what it
	// started in the background.
	start := time.Now()
	p, err := s.run.Start("doc-recipe", c)
	if err != nil {
		t.Fatal(err)
	}
	timeout := time.NewTimer(3 * time.Minute)
	defer timeout.Stop()
	select {
	case <-p.Exited():
	case <-timeout.C:
		_ = p.Stop(5 * time.Second)
		t.Fatalf("following %s took more than 3 minutes; its output:\n%s", serverDoc, redact(p.Output()))
	}
	t.Logf("bash: the sh blocks of %s and %d tool pages: %.1fs", serverDoc, len(toolDocs), time.Since(start).Seconds())
	if err := p.ExitErr(); err != nil {
		t.Logf("xrootd log:\n%s", tailFile(filepath.Join(xrd, "xrootd.log"), 30))
		t.Fatalf("following %s failed (%v); its output:\n%s", serverDoc, err, redact(p.Output()))
	}
	output := p.Output()
	if jwtRE.MatchString(output) {
		t.Errorf("the recipe printed a token: %s", redact(output))
	}
	for _, want := range []string{
		"the system trusts https://127.0.0.1:" + ports[0],
		"without a token: HTTP 403",
		"hello from tokenhelper", // curl's GET of the uploaded file
		"refused, as it should be",
		"=== xrootd.md", "public data", // xrdfs cat with the /public token
		"=== htcondor.md", "  input.dat", // the job's checksum line, read back with tokenhelper curl
		"=== clean-up",
	} {
		if !strings.Contains(output, want) {
			t.Errorf("the output lacks %q:\n%s", want, redact(output))
		}
	}
	if b, err := os.ReadFile(filepath.Join(xrd, "ns", "data", "home", "alice", "hello.txt")); err != nil || string(b) != "hello from tokenhelper\n" {
		t.Errorf("on the server: %q (%v)", b, err)
	}
	if _, err := os.Stat(filepath.Join(xrd, "ns", "data", "home", "alice", "denied.txt")); err == nil {
		t.Error("the read-only token could write denied.txt")
	}
	// The page's clean-up left nothing running and the trust store as it was.
	for _, f := range []PIDFile{{Path: tb + ".pid", Command: "tokenhelper-tes"}, {Path: filepath.Join(xrd, "xrootd.pid"), Command: "xrootd"}} {
		if pid := f.pid(); pid != 0 {
			t.Errorf("%s (pid %d) still runs after the clean-up", f.Command, pid)
		}
	}
	if _, err := os.Stat(caFile); err == nil {
		t.Errorf("%s still exists after the clean-up", caFile)
	}
	if ca, err := os.ReadFile(filepath.Join(tb, "ca.pem")); err == nil {
		if in, err := s.run.Trust.Contains(ca); err != nil || in {
			t.Errorf("the test bed CA is still in the trust store after the clean-up (%v)", err)
		}
	}
	if links := s.run.Trust.removeLinks(caFile); links != 0 {
		t.Errorf("the clean-up left %d links to %s in %s", links, caFile, s.run.Trust.CertsDir)
	}
}

// tailFile returns the last n lines of a file (or why it cannot).
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return lastLines(string(b), n)
}
