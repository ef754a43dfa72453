package rig

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// EnvBin names a directory holding prebuilt binaries (tokenhelper, and
// tokenhelper-testbed for the few tests that need it); unset, they are
// built once per test process.
const EnvBin = "TOKENHELPER_BIN"

var build struct {
	once sync.Once
	dir  string // holds the binaries
	tmp  string // removed by Main; empty when EnvBin was used
	err  error
}

// Main runs the tests of a package that uses the rig and removes the
// binaries it built. Call it from TestMain: os.Exit(rig.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if build.tmp != "" {
		os.RemoveAll(build.tmp)
	}
	return code
}

// Binaries returns the directory holding tokenhelper (with its
// git-credential-tokenhelper and docker-credential-tokenhelper links)
// and tokenhelper-testbed, building them on first use.
func Binaries(t testing.TB) string {
	t.Helper()
	build.once.Do(func() { build.dir, build.tmp, build.err = buildBinaries() })
	if build.err != nil {
		t.Fatalf("rig: %v", build.err)
	}
	return build.dir
}

func buildBinaries() (dir, tmp string, err error) {
	if d := os.Getenv(EnvBin); d != "" {
		d, err := filepath.Abs(d)
		if err != nil {
			return "", "", err
		}
		if _, err := os.Stat(filepath.Join(d, "tokenhelper")); err != nil {
			return "", "", fmt.Errorf("$%s=%s holds no tokenhelper: %v", EnvBin, d, err)
		}
		return d, "", ensureLinks(d)
	}
	root, err := moduleRoot()
	if err != nil {
		return "", "", err
	}
	tmp, err = os.MkdirTemp("", "tokenhelper-rig-")
	if err != nil {
		return "", "", err
	}
	// As `make build` does: what users run.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", tmp+"/",
		"./cmd/tokenhelper", "./cmd/tokenhelper-testbed")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // make build's default (BUILD_CGO=0)
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(tmp)
		return "", "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return tmp, tmp, ensureLinks(tmp)
}

func ensureLinks(dir string) error {
	for _, l := range []string{"git-credential-tokenhelper", "docker-credential-tokenhelper"} {
		p := filepath.Join(dir, l)
		if _, err := os.Lstat(p); err == nil {
			continue
		}
		if err := os.Symlink("tokenhelper", p); err != nil {
			return err
		}
	}
	return nil
}

// ModuleRoot is the directory of the go.mod of the module under test.
func ModuleRoot() (string, error) { return moduleRoot() }

func moduleRoot() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
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

// NeedTool returns the path of an external program. When it is missing
// the test fails under CI=true and is skipped otherwise, naming the Debian
// package to install.
func NeedTool(t testing.TB, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (CI=true): apt-get install %s", name, debianPackage)
	}
	t.Skipf("%s is not installed (Debian package %s)", name, debianPackage)
	return ""
}
