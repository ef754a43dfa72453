package discovery

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/tokenhelper/tokenhelper/helper"
)

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode()
}

func TestWriteDefaultLocations(t *testing.T) {
	s := newSandbox(t)
	// XDG_RUNTIME_DIR unset: /tmp/bt_u$ID.
	p, err := Write(s.env(), tokA, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p != s.tmpFile() {
		t.Errorf("path = %s, want %s", p, s.tmpFile())
	}
	if got := s.read(p); got != tokA+"\n" {
		t.Errorf("content = %q, want token and one newline", got)
	}
	if m := mode(t, p); m != 0o600 {
		t.Errorf("mode = %v, want -rw-------", m)
	}
	// XDG_RUNTIME_DIR set: there, and Find picks it up.
	s.vars[VarXDGRuntimeDir] = s.xdg
	p, err = Write(s.env(), " "+tokB+"\r\n", WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p != s.xdgFile() || s.read(p) != tokB+"\n" {
		t.Errorf("path = %s content %q, want %s with the trimmed token", p, s.read(p), s.xdgFile())
	}
	res, err := Find(s.env())
	if err != nil || res.Token != tokB || res.Source != SourceXDGRuntimeDir || len(res.Warnings) != 0 {
		t.Errorf("Find after Write = %+v, %v", res, err)
	}
	// BEARER_TOKEN_FILE is never the default target.
	s.vars[VarBearerTokenFile] = filepath.Join(s.root, "btf")
	if p, _ := Write(s.env(), tokC, WriteOptions{}); p != s.xdgFile() {
		t.Errorf("with BEARER_TOKEN_FILE set, default path = %s, want %s", p, s.xdgFile())
	}
	if _, err := os.Lstat(s.vars[VarBearerTokenFile]); !os.IsNotExist(err) {
		t.Errorf("BEARER_TOKEN_FILE path was written")
	}
	for _, d := range []string{s.tmp, s.xdg} {
		if n := entries(t, d); len(n) != 1 {
			t.Errorf("%s holds %v, want only the token file", d, n)
		}
	}
}

func TestWriteReplacesWith0600(t *testing.T) {
	s := newSandbox(t)
	p := s.write(tmpF, tokA, 0o644)
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	if _, err := Write(s.env(), tokB, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, p); m != 0o600 {
		t.Errorf("mode = %v after replacing a 0644 file with umask 0, want 0600", m)
	}
	if s.read(p) != tokB+"\n" {
		t.Errorf("content = %q", s.read(p))
	}
}

func TestWriteExplicitPath(t *testing.T) {
	s := newSandbox(t)
	p := filepath.Join(s.root, "new", "sub", "cms.token")
	rootMode := mode(t, s.root)
	got, err := Write(s.env(), tokA, WriteOptions{Path: p})
	if err != nil || got != p {
		t.Fatalf("Write = %q, %v", got, err)
	}
	for _, d := range []string{filepath.Join(s.root, "new"), filepath.Join(s.root, "new", "sub")} {
		if m := mode(t, d); m.Perm() != 0o700 {
			t.Errorf("created %s with %v, want 0700", d, m)
		}
	}
	if m := mode(t, s.root); m != rootMode {
		t.Errorf("existing parent changed to %v", m)
	}
	s.vars[VarBearerTokenFile] = p
	res, err := Find(s.env())
	if err != nil || res.Token != tokA || res.Source != SourceBearerTokenFile {
		t.Errorf("Find = %+v, %v", res, err)
	}
}

func TestWriteRefusesBadTokens(t *testing.T) {
	for name, tok := range map[string]string{
		"empty":      "",
		"blank":      " \n\t",
		"space":      "tok SECRET",
		"bearer":     "Bearer SECRETtok",
		"unicode":    "\u00a0SECRETtok",
		"too-large":  strings.Repeat("x", DefaultMaxFileSize),
		"nul":        "SECRETtok\x00",
		"two-tokens": "SECRETa\nSECRETb",
	} {
		t.Run(name, func(t *testing.T) {
			s := newSandbox(t)
			_, err := Write(s.env(), tok, WriteOptions{})
			if !helper.IsKind(err, helper.KindInvalidToken) {
				t.Fatalf("err = %v, want KindInvalidToken", err)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error leaks the token: %v", err)
			}
			if n := entries(t, s.tmp); len(n) != 0 {
				t.Errorf("files left: %v", n)
			}
		})
	}
}

func TestWriteRefusesUnsafeTargets(t *testing.T) {
	cases := []struct {
		name   string
		root   bool
		xdg    bool
		setup  func(t *testing.T, s *sandbox) string // returns a file that must stay unchanged ("" = none)
		kind   helper.Kind
		errHas []string
	}{
		{name: "foreign-symlink-in-tmp", root: true, kind: helper.KindUnsafe,
			errHas: []string{"{tmp}/bt_u{uid} is a symbolic link owned by uid 65534", "remove {tmp}/bt_u{uid}", "set XDG_RUNTIME_DIR", "--file"},
			setup: func(t *testing.T, s *sandbox) string {
				victim := s.write("{root}/victim", "precious", 0o600)
				symlink(t, victim, s.tmpFile())
				lchown(t, s.tmpFile(), otherUID)
				return victim
			}},
		{name: "foreign-file-in-tmp", root: true, kind: helper.KindUnsafe,
			errHas: []string{"refusing to replace {tmp}/bt_u{uid}: owned by uid 65534", "ask uid 65534 or an administrator to remove {tmp}/bt_u{uid}", "set XDG_RUNTIME_DIR"},
			setup: func(t *testing.T, s *sandbox) string {
				p := s.write(tmpF, "theirs", 0o644)
				lchown(t, p, otherUID)
				return p
			}},
		{name: "own-symlink-to-foreign-file", root: true, kind: helper.KindUnsafe, errHas: []string{"owned by uid 65534"},
			setup: func(t *testing.T, s *sandbox) string {
				p := s.write("{root}/theirs", "theirs", 0o600)
				lchown(t, p, otherUID)
				symlink(t, p, s.tmpFile())
				return p
			}},
		{name: "foreign-file-in-xdg", root: true, xdg: true, kind: helper.KindUnsafe,
			errHas: []string{"owned by uid 65534", "--file"},
			setup: func(t *testing.T, s *sandbox) string {
				p := s.write(xdgF, "theirs", 0o600)
				lchown(t, p, otherUID)
				return p
			}},
		{name: "xdg-dir-of-another-user", root: true, xdg: true, kind: helper.KindUnsafe,
			errHas: []string{"XDG_RUNTIME_DIR={xdg} belongs to uid 65534", "unset XDG_RUNTIME_DIR"},
			setup:  func(t *testing.T, s *sandbox) string { lchown(t, s.xdg, otherUID); return "" }},
		{name: "xdg-dir-missing", xdg: true, kind: helper.KindConfig, errHas: []string{"XDG_RUNTIME_DIR={xdg} does not exist"},
			setup: func(t *testing.T, s *sandbox) string {
				if err := os.Remove(s.xdg); err != nil {
					t.Fatal(err)
				}
				return ""
			}},
		{name: "directory-at-target", kind: helper.KindUnsafe, errHas: []string{"is a directory"},
			setup: func(t *testing.T, s *sandbox) string { mkdir(t, s.tmpFile()); return "" }},
		{name: "fifo-at-target", kind: helper.KindUnsafe, errHas: []string{"is a FIFO"},
			setup: func(t *testing.T, s *sandbox) string { mkfifo(t, s.tmpFile()); return "" }},
		{name: "world-writable-dir-without-sticky", kind: helper.KindUnsafe, errHas: []string{"anyone can write there", "sticky"},
			setup: func(t *testing.T, s *sandbox) string {
				if err := os.Chmod(s.tmp, 0o777); err != nil {
					t.Fatal(err)
				}
				return ""
			}},
		{name: "tmp-dir-missing", kind: helper.KindConfig, errHas: []string{"does not exist"},
			setup: func(t *testing.T, s *sandbox) string {
				if err := os.Remove(s.tmp); err != nil {
					t.Fatal(err)
				}
				return ""
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root {
				needRoot(t)
			}
			s := newSandbox(t)
			if tc.xdg {
				s.vars[VarXDGRuntimeDir] = s.xdg
			}
			keep := tc.setup(t, s)
			var before string
			if keep != "" {
				before = s.read(keep)
			}
			_, err := Write(s.env(), tokA, WriteOptions{})
			if !helper.IsKind(err, tc.kind) {
				t.Fatalf("err = %v (kind %v), want kind %v", err, helper.KindOf(err), tc.kind)
			}
			for _, w := range tc.errHas {
				if !strings.Contains(err.Error(), s.expand(w)) {
					t.Errorf("error %q does not contain %q", err, s.expand(w))
				}
			}
			if strings.Contains(err.Error(), tokA) {
				t.Errorf("error leaks the token")
			}
			if keep != "" && s.read(keep) != before {
				t.Errorf("%s was changed", keep)
			}
			for _, d := range []string{s.tmp, s.xdg} {
				ents, _ := os.ReadDir(d)
				for _, e := range ents {
					if strings.Contains(e.Name(), ".tmp-") {
						t.Errorf("temporary file left: %s", e.Name())
					}
				}
			}
		})
	}
}

// TestWriteFollowsOwnSymlink: a link we made ourselves (say /tmp/bt_u$ID →
// a file in our home) is written through, and stays a link.
func TestWriteFollowsOwnSymlink(t *testing.T) {
	s := newSandbox(t)
	real := s.write("{root}/home/token", "old", 0o600)
	symlink(t, real, s.tmpFile())
	p, err := Write(s.env(), tokA, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p != s.tmpFile() || mode(t, p)&os.ModeSymlink == 0 {
		t.Errorf("path %s is no longer the link", p)
	}
	if s.read(real) != tokA+"\n" || mode(t, real) != 0o600 {
		t.Errorf("link target = %q %v", s.read(real), mode(t, real))
	}
	// A relative link, and a dangling one (the target is created).
	rel := filepath.Join(s.root, "rel")
	symlink(t, "home/fresh", rel)
	if _, err := Write(s.env(), tokB, WriteOptions{Path: rel}); err != nil {
		t.Fatal(err)
	}
	if got := s.read("{root}/home/fresh"); got != tokB+"\n" {
		t.Errorf("dangling relative link target = %q", got)
	}
	// A loop is refused.
	loop := filepath.Join(s.root, "loop")
	symlink(t, "loop", loop)
	if _, err := Write(s.env(), tokB, WriteOptions{Path: loop}); !helper.IsKind(err, helper.KindUnsafe) {
		t.Errorf("symlink loop: err = %v, want KindUnsafe", err)
	}
}

func TestRemove(t *testing.T) {
	s := newSandbox(t)
	if ok, err := Remove(s.env(), ""); ok || err != nil {
		t.Fatalf("Remove(missing) = %v, %v", ok, err)
	}
	if _, err := Write(s.env(), tokA, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if ok, err := Remove(s.env(), ""); !ok || err != nil {
		t.Fatalf("Remove(default) = %v, %v", ok, err)
	}
	if _, err := os.Lstat(s.tmpFile()); !os.IsNotExist(err) {
		t.Errorf("file still there")
	}
	// A symlink (even ours) and a directory are left alone.
	target := s.write("{root}/target", "keep", 0o600)
	symlink(t, target, s.tmpFile())
	if ok, err := Remove(s.env(), ""); ok || !helper.IsKind(err, helper.KindUnsafe) {
		t.Errorf("Remove(symlink) = %v, %v; want KindUnsafe", ok, err)
	}
	if s.read(target) != "keep" || mode(t, s.tmpFile())&os.ModeSymlink == 0 {
		t.Errorf("symlink or its target touched")
	}
	if ok, err := Remove(s.env(), s.root); ok || !helper.IsKind(err, helper.KindUnsafe) {
		t.Errorf("Remove(dir) = %v, %v", ok, err)
	}
}

func TestRemoveForeign(t *testing.T) {
	needRoot(t)
	s := newSandbox(t)
	p := s.write(tmpF, "theirs", 0o600)
	lchown(t, p, otherUID)
	ok, err := Remove(s.env(), "")
	if ok || !helper.IsKind(err, helper.KindUnsafe) || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Fatalf("Remove(foreign) = %v, %v", ok, err)
	}
	if s.read(p) != "theirs" {
		t.Errorf("foreign file touched")
	}
}

func TestShadowedAndReachable(t *testing.T) {
	s := newSandbox(t)
	other := s.write("{root}/other", tokB, 0o600)
	cases := []struct {
		name string
		vars map[string]string
		xdgF string // content of the XDG file ("" = none)
		path string // "" = default
		want []Source
	}{
		{name: "nothing set", want: nil},
		{name: "BEARER_TOKEN", vars: map[string]string{VarBearerToken: tokA}, want: []Source{SourceBearerToken}},
		{name: "BEARER_TOKEN blank", vars: map[string]string{VarBearerToken: " \n"}, want: nil},
		{name: "BEARER_TOKEN invalid still stops", vars: map[string]string{VarBearerToken: "a b"}, want: []Source{SourceBearerToken}},
		{name: "BEARER_TOKEN_FILE other file", vars: map[string]string{VarBearerTokenFile: other}, want: []Source{SourceBearerTokenFile}},
		{name: "BEARER_TOKEN_FILE missing file", vars: map[string]string{VarBearerTokenFile: other + ".nope"}, want: nil},
		{name: "BEARER_TOKEN_FILE same file", vars: map[string]string{VarBearerTokenFile: other}, path: other, want: nil},
		{name: "both", vars: map[string]string{VarBearerToken: tokA, VarBearerTokenFile: other}, want: []Source{SourceBearerToken, SourceBearerTokenFile}},
		{name: "XDG file hides /tmp", vars: map[string]string{VarXDGRuntimeDir: s.xdg}, xdgF: tokC, path: s.tmpFile(), want: []Source{SourceXDGRuntimeDir}},
		{name: "empty XDG file does not", vars: map[string]string{VarXDGRuntimeDir: s.xdg}, xdgF: "\n", path: s.tmpFile(), want: nil},
		{name: "XDG path itself", vars: map[string]string{VarXDGRuntimeDir: s.xdg}, xdgF: tokC, want: nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s.vars = tc.vars
			os.Remove(s.xdgFile())
			if tc.xdgF != "" {
				s.write(xdgF, tc.xdgF, 0o600)
			}
			if got := Shadowed(s.env(), tc.path); !slices.Equal(got, tc.want) {
				t.Errorf("Shadowed = %v, want %v", got, tc.want)
			}
		})
	}
	s.vars = map[string]string{VarXDGRuntimeDir: s.xdg, VarBearerTokenFile: other}
	for p, want := range map[string]bool{
		"":                                  true,
		s.xdgFile():                         true,
		s.tmpFile():                         true,
		other:                               true,
		filepath.Join(s.root, ".", "other"): true,
		filepath.Join(s.root, "elsewhere"):  false,
	} {
		if got := Reachable(s.env(), p); got != want {
			t.Errorf("Reachable(%q) = %v, want %v", p, got, want)
		}
	}
}

// TestForeignOwnerWithoutRoot runs the owner checks on any machine: with
// Env.UID set to another uid, our own files in the default locations are
// "someone else's". (The root-only tests above use real foreign files.)
func TestForeignOwnerWithoutRoot(t *testing.T) {
	s := newSandbox(t)
	s.uid = os.Geteuid() + 1
	p := s.write(tmpF, tokD, 0o600)
	if _, err := Find(s.env()); !helper.IsKind(err, helper.KindUnsafe) || !strings.Contains(err.Error(), "not by you") {
		t.Errorf("Find: err = %v, want KindUnsafe", err)
	}
	_, err := Write(s.env(), tokA, WriteOptions{})
	if !helper.IsKind(err, helper.KindUnsafe) || !strings.Contains(err.Error(), "refusing to replace "+p) {
		t.Errorf("Write: err = %v, want KindUnsafe", err)
	}
	if s.read(p) != tokD {
		t.Errorf("file replaced")
	}
	if ok, err := Remove(s.env(), ""); ok || !helper.IsKind(err, helper.KindUnsafe) {
		t.Errorf("Remove = %v, %v", ok, err)
	}
	// A symlink that is "not ours" in /tmp is neither followed nor replaced.
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	victim := s.write("{root}/victim", "precious", 0o600)
	symlink(t, victim, p)
	if _, err := Find(s.env()); !helper.IsKind(err, helper.KindUnsafe) {
		t.Errorf("Find through foreign symlink: %v", err)
	}
	if _, err := Write(s.env(), tokA, WriteOptions{}); !helper.IsKind(err, helper.KindUnsafe) || s.read(victim) != "precious" {
		t.Errorf("Write through foreign symlink: %v", err)
	}
}
