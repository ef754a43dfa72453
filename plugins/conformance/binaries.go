package conformance

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Bins are the executables out-of-process tests run, built from this
// module's source.
type Bins struct {
	Dir string
	// Tokenhelper is cmd/tokenhelper.
	Tokenhelper string
	// Host is cmd/tokenhelper-pluginhost.
	Host string
	// Command is cmd/tokenhelper-plugin-command.
	Command string
}

var (
	binMu   sync.Mutex
	binDir  string // set by Main: one build per test process
	binOnce sync.Once
	bins    Bins
	binErr  error
)

// Main runs a test binary's tests (call it from TestMain) and removes
// the executables Binaries built. Without it, Binaries builds into each
// calling test's temporary directory.
func Main(m *testing.M) int {
	dir, err := os.MkdirTemp("", "tokenhelper-conformance-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	binMu.Lock()
	binDir = dir
	binMu.Unlock()
	code := m.Run()
	os.RemoveAll(dir)
	return code
}

// Binaries builds tokenhelper, tokenhelper-pluginhost and
// tokenhelper-plugin-command (once per test process under Main).
func Binaries(t testing.TB) Bins {
	t.Helper()
	binMu.Lock()
	dir := binDir
	binMu.Unlock()
	if dir == "" {
		b, err := build(t.Context(), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	binOnce.Do(func() { bins, binErr = build(t.Context(), dir) })
	if binErr != nil {
		t.Fatal(binErr)
	}
	return bins
}

// ModuleRoot is the directory of this module's go.mod.
func ModuleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %v", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the tokenhelper module")
	}
	return filepath.Dir(mod), nil
}

func build(ctx context.Context, dir string) (Bins, error) {
	root, err := ModuleRoot(ctx)
	if err != nil {
		return Bins{}, err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator),
		"./cmd/tokenhelper", "./cmd/tokenhelper-pluginhost", "./cmd/tokenhelper-plugin-command")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return Bins{}, fmt.Errorf("building the executables: %v\n%s", err, out)
	}
	return Bins{
		Dir:         dir,
		Tokenhelper: filepath.Join(dir, "tokenhelper"),
		Host:        filepath.Join(dir, "tokenhelper-pluginhost"),
		Command:     filepath.Join(dir, "tokenhelper-plugin-command"),
	}, nil
}
