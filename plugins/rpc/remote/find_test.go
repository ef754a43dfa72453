package remote

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
)

func mkdir(t *testing.T, mode os.FileMode) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), "plugins")
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, mode); err != nil {
		t.Fatal(err)
	}
	return d
}

func mkplugin(t *testing.T, dir, name, body string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, ExecPrefix+name)
	if err := os.WriteFile(p, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFind(t *testing.T) {
	d1, d2 := mkdir(t, 0o700), mkdir(t, 0o700)
	p2 := mkplugin(t, d2, "site", "#!/bin/sh\n", 0o700)
	got, err := Find("site", []string{d1, d2}, nil)
	if err != nil || got.Path != p2 || got.Name != "site" || got.SHA256 != "" {
		t.Fatalf("Find = %+v, %v", got, err)
	}
	p1 := mkplugin(t, d1, "site", "#!/bin/sh\n", 0o700)
	if got, _ := Find("site", []string{d1, d2}, nil); got.Path != p1 {
		t.Fatalf("first directory does not win: %s", got.Path)
	}
	pins := map[string]config.PluginPin{"site": {SHA256: strings.Repeat("AB", 32)}}
	if got, _ := Find("site", []string{d1, d2}, pins); got.Path != p1 || got.SHA256 != strings.Repeat("ab", 32) {
		t.Fatalf("pinned sum not carried: %+v", got)
	}
	pins["site"] = config.PluginPin{Path: p2}
	if got, _ := Find("site", []string{d1}, pins); got.Path != p2 {
		t.Fatalf("pinned path not used: %+v", got)
	}
	pins["site"] = config.PluginPin{Path: filepath.Join(d1, "gone")}
	if _, err := Find("site", []string{d1}, pins); !helper.IsKind(err, helper.KindConfig) || !strings.Contains(err.Error(), "[plugins.site]") {
		t.Fatalf("missing pinned path: %v", err)
	}
	_, err = Find("other", []string{d1, d2}, nil)
	if !helper.IsKind(err, helper.KindConfig) {
		t.Fatalf("not found: %v", err)
	}
	for _, w := range []string{`"other"`, "tokenhelper-plugin-other", d1, d2, "install tokenhelper-plugin-other into " + d1} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("not-found error %q lacks %q", err, w)
		}
	}
	for _, bad := range []string{"", "../x", "Upper", "-x", "a/b", "a b"} {
		if _, err := Find(bad, []string{d1}, nil); !helper.IsKind(err, helper.KindConfig) {
			t.Errorf("Find(%q): %v", bad, err)
		}
	}
}

func TestList(t *testing.T) {
	d1, d2 := mkdir(t, 0o700), mkdir(t, 0o700)
	a1 := mkplugin(t, d1, "alpha", "", 0o700)
	a2 := mkplugin(t, d2, "alpha", "", 0o700)
	b2 := mkplugin(t, d2, "beta", "", 0o700)
	mkplugin(t, d2, "Bad_Name", "", 0o700)
	if err := os.Mkdir(filepath.Join(d2, ExecPrefix+"dir"), 0o700); err != nil {
		t.Fatal(err)
	}
	elsewhere := mkplugin(t, mkdir(t, 0o700), "gamma", "", 0o700)
	pins := map[string]config.PluginPin{"gamma": {Path: elsewhere}, "beta": {SHA256: strings.Repeat("0", 64)}}
	got := List([]string{d1, d2, "/nonexistent"}, pins)
	if len(got) != 3 {
		t.Fatalf("List = %+v", got)
	}
	if got[0].Name != "alpha" || got[0].Path != a1 || len(got[0].Shadowed) != 1 || got[0].Shadowed[0] != a2 || got[0].Pinned {
		t.Errorf("alpha: %+v", got[0])
	}
	if got[1].Name != "beta" || got[1].Path != b2 || !got[1].Pinned || got[1].Target().SHA256 != strings.Repeat("0", 64) {
		t.Errorf("beta: %+v", got[1])
	}
	if got[2].Name != "gamma" || got[2].Path != elsewhere || !got[2].Pinned {
		t.Errorf("gamma: %+v", got[2])
	}
}

func TestCheckPinned(t *testing.T) {
	d := mkdir(t, 0o777) // permissions do not matter for a pinned plugin
	p := mkplugin(t, d, "site", "#!/bin/sh\necho hi\n", 0o777)
	sum, err := SHA256File(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Check(Target{Name: "site", Path: p, SHA256: strings.ToUpper(sum)}, os.Geteuid()); err != nil {
		t.Fatalf("matching pin: %v", err)
	}
	want := strings.Repeat("0", 64)
	_, err = Check(Target{Name: "site", Path: p, SHA256: want}, os.Geteuid())
	if !helper.IsKind(err, helper.KindUnsafe) {
		t.Fatalf("mismatch: %v", err)
	}
	for _, w := range []string{"expected sha256 " + want, "actual " + sum, p, `sha256 = "` + sum + `" in [plugins.site]`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("mismatch error %q lacks %q", err, w)
		}
	}
}

func TestCheckUnpinned(t *testing.T) {
	uid := os.Geteuid()
	ok := mkplugin(t, mkdir(t, 0o755), "ok", "", 0o755)
	if _, err := Check(Target{Name: "ok", Path: ok}, uid); err != nil {
		t.Fatalf("safe plugin: %v", err)
	}
	if _, err := Check(Target{Name: "file", Builtin: true}, uid); err != nil {
		t.Fatalf("builtin: %v", err)
	}
	open := mkdir(t, 0o777)
	linked := filepath.Join(mkdir(t, 0o700), ExecPrefix+"linked")
	if err := os.Symlink(mkplugin(t, open, "target", "", 0o755), linked); err != nil {
		t.Fatal(err)
	}
	notExec := mkplugin(t, mkdir(t, 0o700), "noexec", "", 0o600)
	for _, tc := range []struct {
		name string
		path string
		kind helper.Kind
		want string
	}{
		{"group-writable file", mkplugin(t, mkdir(t, 0o700), "gw", "", 0o775), helper.KindUnsafe, "its file is writable by other users (mode 0775)"},
		{"world-writable directory", mkplugin(t, mkdir(t, 0o777), "ww", "", 0o755), helper.KindUnsafe, "is writable by other users (mode 0777)"},
		{"symlink into an open directory", linked, helper.KindUnsafe, "writable by other users"},
		{"not executable", notExec, helper.KindConfig, "is not executable"},
		{"directory", t.TempDir(), helper.KindConfig, "is not a regular file"},
		{"missing", "/nonexistent/tokenhelper-plugin-x", helper.KindConfig, "cannot open it"},
	} {
		_, err := Check(Target{Name: "x", Path: tc.path}, uid)
		if !helper.IsKind(err, tc.kind) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v (want kind %s, %q)", tc.name, err, tc.kind, tc.want)
		}
	}
	// A plugin owned by someone other than the user and root.
	other := mkplugin(t, mkdir(t, 0o755), "other", "", 0o755)
	checkAs := uid + 1
	if uid == 0 {
		if err := os.Chown(other, 4242, -1); err != nil {
			t.Fatal(err)
		}
		checkAs = 1000
	}
	if _, err := Check(Target{Name: "other", Path: other}, checkAs); !helper.IsKind(err, helper.KindUnsafe) || !strings.Contains(err.Error(), "belongs to another user") {
		t.Errorf("foreign owner: %v", err)
	}
}

func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{"command": true, "oidc-agent": true, "x1": true, "": false, "-x": false, "A": false, "a_b": false, "a.b": false} {
		if ValidName(name) != want {
			t.Errorf("ValidName(%q) = %v", name, !want)
		}
	}
}
