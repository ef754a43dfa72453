package rclone

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
)

func TestCommand(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		want string
		kind helper.Kind
	}{
		{[]string{"/usr/bin/tokenhelper", "token", "-p", "wlcg"}, "/usr/bin/tokenhelper token -p wlcg", 0},
		{[]string{"/opt/th/tokenhelper", "token", "-s", "storage.read:/", "--aud", "https://se.example.org:2880"}, "/opt/th/tokenhelper token -s storage.read:/ --aud https://se.example.org:2880", 0},
		{[]string{"/my dir/tokenhelper", "token"}, "", helper.KindConfig},
		{[]string{"/t", "token", ""}, "", helper.KindConfig},
		{[]string{"/t", "-p", "a\tb"}, "", helper.KindConfig},
		{[]string{"/t", "$HOME"}, "", helper.KindConfig},
		{[]string{"~/t"}, "~/t", 0},
		{nil, "", helper.KindUsage},
	} {
		got, err := Command(tc.argv)
		if tc.kind != 0 {
			if !helper.IsKind(err, tc.kind) {
				t.Errorf("Command(%q) = %q, %v; want kind %v", tc.argv, got, err, tc.kind)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Command(%q) = %q, %v; want %q", tc.argv, got, err, tc.want)
		}
		if !slices.Equal(SplitCommand(got), tc.argv) {
			t.Errorf("rclone would split %q into %q", got, SplitCommand(got))
		}
	}
}

func TestWebDAVURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://se.example.org:2880/data":   "https://se.example.org:2880/data",
		"davs://se.example.org:2880/pnfs/x":  "https://se.example.org:2880/pnfs/x",
		"DAV://127.0.0.1:8080/":              "http://127.0.0.1:8080/",
		"https://se/a dir/f":                 "https://se/a%20dir/f",
		"root://se.example.org//data":        "",
		"https://se/x?authz=Bearer%20secret": "",
		"https://user@se/x":                  "",
		"se.example.org/data":                "",
		"https://se/x#frag":                  "",
	} {
		got, err := WebDAVURL(in)
		if want == "" {
			if err == nil || strings.Contains(err.Error(), "secret") {
				t.Errorf("WebDAVURL(%q) = %q, %v; want an error without the URL", in, got, err)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("WebDAVURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestSection(t *testing.T) {
	got, err := Section(Remote{Name: "dcache", URL: "davs://se.example.org:2880/pnfs/data", Command: []string{"/usr/bin/tokenhelper", "token", "-p", "wlcg"}})
	want := "[dcache]\ntype = webdav\nurl = https://se.example.org:2880/pnfs/data\nvendor = other\nbearer_token_command = /usr/bin/tokenhelper token -p wlcg\n"
	if err != nil || got != want {
		t.Fatalf("Section = %q, %v", got, err)
	}
	for _, name := range []string{"", "-x", "a b", "a]b", "a\nb", "a:b"} {
		if _, err := Section(Remote{Name: name, URL: "https://se/", Command: []string{"/t"}}); !helper.IsKind(err, helper.KindUsage) {
			t.Errorf("remote name %q accepted: %v", name, err)
		}
	}
}

// TestRcloneReadsSection: the real rclone (Debian package rclone) parses
// the section into the fields we meant.
func TestRcloneReadsSection(t *testing.T) {
	rclone, err := exec.LookPath("rclone")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("rclone not found (CI=true): install the Debian package rclone")
		}
		t.Skip("rclone not found: install the Debian package rclone to run this test")
	}
	sec, err := Section(Remote{Name: "se_1", URL: "davs://127.0.0.1:2880/data/a dir", Command: []string{"/opt/tokenhelper", "token", "-p", "wlcg", "-s", "storage.read:/", "--aud", "https://127.0.0.1:2880"}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "rclone.conf")
	if err := os.WriteFile(conf, []byte("[other]\ntype = local\n\n"+sec), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, rclone, "--config", conf, "config", "dump")
	cmd.Env = []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH")}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("rclone config dump: %v", err)
	}
	var dump map[string]map[string]string
	if err := json.Unmarshal(out, &dump); err != nil {
		t.Fatalf("rclone config dump: %v\n%s", err, out)
	}
	want := map[string]string{
		"type": "webdav", "url": "https://127.0.0.1:2880/data/a%20dir", "vendor": "other",
		"bearer_token_command": "/opt/tokenhelper token -p wlcg -s storage.read:/ --aud https://127.0.0.1:2880",
	}
	for k, v := range want {
		if dump["se_1"][k] != v {
			t.Errorf("rclone read %s = %q, want %q", k, dump["se_1"][k], v)
		}
	}
}
