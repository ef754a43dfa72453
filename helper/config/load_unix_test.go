//go:build unix

package config

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tokenhelper/tokenhelper/helper"
)

const goodDoc = "default_profile = \"x\"\n[profiles.x]\nissuer = \"https://iam.example.org/\"\n"

// writeFile writes data with mode (chmod after writing, so umask does not
// interfere).
func writeFile(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestLoadMissing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokenhelper", "config.toml")

	c, err := Load(path, false)
	if err != nil {
		t.Fatalf("missing default file: %v", err)
	}
	if c.Path != "" || len(c.Profiles) != 0 || c.Profiles == nil {
		t.Errorf("missing default file gave %+v", c)
	}
	p, err := c.Select("", "")
	if p != nil || err != nil {
		t.Errorf("Select on empty config = %v, %v", p, err)
	}
	_, err = c.Select("wlcg", "")
	if !helper.IsKind(err, helper.KindNoProfile) || !strings.Contains(err.Error(), "looked for "+path) {
		t.Errorf("Select names the missing file: %v", err)
	}

	_, err = Load(path, true)
	if !helper.IsKind(err, helper.KindConfig) || !strings.Contains(err.Error(), "config file "+path+" does not exist") {
		t.Errorf("missing explicit file: %v", err)
	}

	if err := os.Symlink(filepath.Join(dir, "gone.toml"), filepath.Join(dir, "dangling.toml")); err != nil {
		t.Fatal(err)
	}
	_, err = Load(filepath.Join(dir, "dangling.toml"), false)
	if !helper.IsKind(err, helper.KindConfig) || !strings.Contains(err.Error(), "symbolic link to a file that does not exist") {
		t.Errorf("dangling symlink at the default location: %v", err)
	}

	if c, err := Load("", false); err != nil || c == nil {
		t.Errorf("empty default path: %v", err)
	}
	if _, err := Load("", true); !helper.IsKind(err, helper.KindConfig) {
		t.Errorf("empty explicit path: %v", err)
	}
}

func TestLoadGood(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	writeFile(t, path, goodDoc, 0o644)
	c, err := Load(path, true)
	if err != nil {
		t.Fatal(err)
	}
	if c.Path != path || c.DefaultProfile != "x" {
		t.Errorf("loaded %+v", c)
	}
	// Errors carry the path as given.
	writeFile(t, path, goodDoc+"scope = []\n", 0o600)
	_, err = Load(path, false)
	if err == nil || !strings.HasPrefix(err.Error(), path+":4: unknown key \"scope\"") {
		t.Errorf("err = %v", err)
	}
}

func TestLoadNotRegular(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir, true); !helper.IsKind(err, helper.KindConfig) || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// Must return at once instead of waiting for a writer.
	if _, err := Load(fifo, true); !helper.IsKind(err, helper.KindConfig) || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("fifo: %v", err)
	}
}

func TestLoadTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	writeFile(t, path, "# "+strings.Repeat("x", MaxFileSize)+"\n", 0o600)
	if _, err := Load(path, false); !helper.IsKind(err, helper.KindConfig) || !strings.Contains(err.Error(), "larger than 1 MiB") {
		t.Errorf("err = %v", err)
	}
}

func TestLoadUnsafe(t *testing.T) {
	uid := os.Geteuid()
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the path to load
		want  string                                // substring of the error; "" = accepted
	}{
		{"private file", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "c.toml")
			writeFile(t, p, goodDoc, 0o600)
			return p
		}, ""},
		{"group-writable file", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "c.toml")
			writeFile(t, p, goodDoc, 0o664)
			return p
		}, "is writable by group or others (mode 0664): whoever can change it can redirect your tokens: run: chmod go-w "},
		{"other-writable file", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "c.toml")
			writeFile(t, p, goodDoc, 0o602)
			return p
		}, "is writable by group or others (mode 0602)"},
		{"world-writable directory", func(t *testing.T, dir string) string {
			d := filepath.Join(dir, "open")
			mkdir(t, d, 0o777)
			p := filepath.Join(d, "c.toml")
			writeFile(t, p, goodDoc, 0o600)
			return p
		}, "holding the config file is writable by group or others (mode 0777)"},
		{"sticky world-writable directory", func(t *testing.T, dir string) string {
			d := filepath.Join(dir, "tmp")
			mkdir(t, d, 0o777|os.ModeSticky)
			p := filepath.Join(d, "c.toml")
			writeFile(t, p, goodDoc, 0o600)
			return p
		}, ""},
		{"symlink into a writable directory", func(t *testing.T, dir string) string {
			d := filepath.Join(dir, "open")
			mkdir(t, d, 0o777)
			target := filepath.Join(d, "real.toml")
			writeFile(t, target, goodDoc, 0o600)
			link := filepath.Join(dir, "c.toml")
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			return link
		}, "/open holding the config file is writable"},
		{"symlink to a private file", func(t *testing.T, dir string) string {
			d := filepath.Join(dir, "dotfiles")
			mkdir(t, d, 0o700)
			target := filepath.Join(d, "real.toml")
			writeFile(t, target, goodDoc, 0o600)
			link := filepath.Join(dir, "c.toml")
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			return link
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.setup(t, t.TempDir())
			c, err := LoadOptions{Path: path, UID: uid}.Load()
			if tt.want == "" {
				if err != nil || c.DefaultProfile != "x" {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !helper.IsKind(err, helper.KindUnsafe) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v\nwant KindUnsafe containing %q", err, tt.want)
			}
		})
	}
}

func TestLoadForeignOwner(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.toml")
	writeFile(t, path, goodDoc, 0o644)
	me := os.Geteuid()
	if me == 0 {
		// As root: give the file to someone else and load as root.
		if err := os.Chown(path, 4242, -1); err != nil {
			t.Fatal(err)
		}
	} else {
		// As a user: the file is ours; load on behalf of someone else.
		me++
	}
	_, err := LoadOptions{Path: path, UID: me}.Load()
	if !helper.IsKind(err, helper.KindUnsafe) || !strings.Contains(err.Error(), "belongs to uid") {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadForeignDirectory(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a directory owned by another user")
	}
	d := filepath.Join(t.TempDir(), "theirs")
	mkdir(t, d, 0o755)
	path := filepath.Join(d, "c.toml")
	writeFile(t, path, goodDoc, 0o644)
	if err := os.Chown(d, 4242, -1); err != nil {
		t.Fatal(err)
	}
	_, err := LoadOptions{Path: path, UID: 0}.Load()
	if !helper.IsKind(err, helper.KindUnsafe) || !strings.Contains(err.Error(), "holding the config file belongs to uid 4242") {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadRootOwnedAccepted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a root-owned file")
	}
	path := filepath.Join(t.TempDir(), "site.toml")
	writeFile(t, path, goodDoc, 0o644)
	if _, err := (LoadOptions{Path: path, UID: 1000}).Load(); err != nil {
		t.Fatalf("a root-owned site config was refused: %v", err)
	}
}

func TestLoadUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads any file")
	}
	path := filepath.Join(t.TempDir(), "c.toml")
	writeFile(t, path, goodDoc, 0o200)
	if _, err := Load(path, false); !helper.IsKind(err, helper.KindConfig) || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("err = %v", err)
	}
}
