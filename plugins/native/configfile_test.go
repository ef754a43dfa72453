package native_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/plugins/native"
)

func TestProfileSection(t *testing.T) {
	p := &config.Profile{Name: "iam.example.org", Issuer: "https://iam.example.org/", Scopes: []string{"openid", `we"ird`},
		CAFile: "/etc/ca.pem", Flow: config.FlowDevice, PassphraseCmd: `pass show "iam"`, Exchange: true}
	got := native.ProfileSection(p, "Added by register.\nsecond line")
	want := `# Added by register.
# second line
[profiles."iam.example.org"]
backend = "native"
issuer = "https://iam.example.org/"
scopes = ["openid", "we\"ird"]
ca_file = "/etc/ca.pem"
exchange = true
passphrase_cmd = "pass show \"iam\""
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	cfg, err := config.Parse("x.toml", []byte(got))
	if err != nil {
		t.Fatal(err)
	}
	q := cfg.Profiles["iam.example.org"]
	if q == nil || q.Scopes[1] != `we"ird` || q.PassphraseCmd != `pass show "iam"` || !q.Exchange {
		t.Errorf("round trip: %+v", q)
	}
}

func TestAppendSection(t *testing.T) {
	section := native.ProfileSection(&config.Profile{Name: "wlcg", Issuer: "https://wlcg.cloud.cnaf.infn.it/"}, "added")

	t.Run("creates the file 0600 in a 0700 directory", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "tokenhelper", "config.toml")
		if err := native.AppendSection(path, section); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(path)
		fi, _ := os.Stat(path)
		di, _ := os.Stat(filepath.Dir(path))
		if string(b) != section || fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
			t.Errorf("%q %v %v", b, fi.Mode(), di.Mode())
		}
	})
	t.Run("keeps the user's text and mode", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "config.toml")
		old := "# my settings\ndefault_profile = \"robot\"   # keep this comment\n\n[profiles.robot]\ntoken_file = \"/tmp/x\""
		if err := os.WriteFile(path, []byte(old), 0o640); err != nil {
			t.Fatal(err)
		}
		if err := native.AppendSection(path, section); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(path)
		if string(b) != old+"\n\n"+section {
			t.Errorf("got %q", b)
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
			t.Errorf("mode %v", fi.Mode())
		}
	})
	t.Run("writes through a symlink to its target", func(t *testing.T) {
		dir := t.TempDir()
		target := filepath.Join(dir, "dotfiles", "tokenhelper.toml")
		if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(target, []byte("# dotfiles\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(dir, "config.toml")
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		if err := native.AppendSection(link, section); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Error("the link was replaced")
		}
		if b, _ := os.ReadFile(target); !strings.HasSuffix(string(b), section) {
			t.Errorf("target %q", b)
		}
	})
	t.Run("refuses a result that would not load, writing nothing", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "config.toml")
		old := "[profiles.wlcg]\nissuer = \"https://wlcg.cloud.cnaf.infn.it/\"\n"
		if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
			t.Fatal(err)
		}
		err := native.AppendSection(path, section) // a second [profiles.wlcg]
		if helper.KindOf(err) != helper.KindConfig {
			t.Fatalf("err %v", err)
		}
		if b, _ := os.ReadFile(path); string(b) != old {
			t.Errorf("file changed: %q", b)
		}
		if native.CheckSection(path, section) == nil {
			t.Error("CheckSection accepted it")
		}
	})
}
