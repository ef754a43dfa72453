package discovery

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// sandbox is a fake machine for one test: a shared /tmp (mode 1777), an
// XDG_RUNTIME_DIR (0700) and a scratch directory, all under t.TempDir().
type sandbox struct {
	t    *testing.T
	root string
	tmp  string
	xdg  string
	uid  int
	vars map[string]string
}

func newSandbox(t *testing.T) *sandbox {
	t.Helper()
	root := t.TempDir()
	s := &sandbox{t: t, root: root, tmp: filepath.Join(root, "tmp"), xdg: filepath.Join(root, "xdg"),
		uid: os.Geteuid(), vars: map[string]string{}}
	if err := os.Mkdir(s.tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(s.tmp, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(s.xdg, 0o700); err != nil {
		t.Fatal(err)
	}
	return s
}

// expand replaces {root}, {tmp}, {xdg} and {uid} in s.
func (s *sandbox) expand(v string) string {
	return strings.NewReplacer("{root}", s.root, "{tmp}", s.tmp, "{xdg}", s.xdg, "{uid}", strconv.Itoa(s.uid)).Replace(v)
}

func (s *sandbox) env() Env {
	vars := s.vars
	return Env{
		LookupEnv: func(k string) (string, bool) { v, ok := vars[k]; return v, ok },
		UID:       s.uid,
		TmpDir:    s.tmp,
	}
}

func (s *sandbox) tmpFile() string { return filepath.Join(s.tmp, FileName(s.uid)) }
func (s *sandbox) xdgFile() string { return filepath.Join(s.xdg, FileName(s.uid)) }

func (s *sandbox) write(path, content string, mode os.FileMode) string {
	s.t.Helper()
	path = s.expand(path)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		s.t.Fatal(err)
	}
	return path
}

func (s *sandbox) read(path string) string {
	s.t.Helper()
	b, err := os.ReadFile(s.expand(path))
	if err != nil {
		s.t.Fatal(err)
	}
	return string(b)
}

// otherUID is the uid that plays "another user" (nobody).
const otherUID = 65534

// isRoot reports whether tests can create files owned by another user.
func isRoot() bool { return os.Geteuid() == 0 }

// needRoot skips a test that needs to chown files, except in CI where it
// must run (CI runs as root).
func needRoot(t *testing.T) {
	t.Helper()
	if isRoot() {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this test needs root (to create files owned by another uid) and CI=true")
	}
	t.Skip("needs root to create files owned by another uid")
}

func lchown(t *testing.T, path string, uid int) {
	t.Helper()
	if err := os.Lchown(path, uid, uid); err != nil {
		t.Fatal(err)
	}
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
