package jwtinfo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenhelper/tokenhelper/helper"
)

func TestReadArg(t *testing.T) {
	dir := t.TempDir()
	jwtTok := unsigned(`{"alg":"RS256","kid":"k"}`, `{"sub":"x"}`)
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte(jwtTok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, []byte(strings.Repeat("a", MaxTokenInput+1)), 0o600); err != nil {
		t.Fatal(err)
	}
	shared := filepath.Join(dir, "shared")
	if err := os.WriteFile(shared, []byte(jwtTok), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	opaque := "4f1e7c2a9b8d4e6fa0b1c2d3e4f5a6b7c8d9"
	for _, c := range []struct {
		name, arg, stdin string
		raw, source      string
		argv             bool
		note             string // substring of the only note; "" for no notes
		kind             helper.Kind
		msg              string
	}{
		{name: "stdin", arg: "-", stdin: jwtTok + "\n", raw: jwtTok + "\n", source: "stdin"},
		{name: "jwt argument", arg: jwtTok, raw: jwtTok, source: "command line", argv: true, note: "shell history"},
		{name: "file readable by others", arg: shared, raw: jwtTok, source: "file " + shared, note: "(mode 0644): run chmod 600"},
		{name: "file", arg: file, raw: jwtTok + "\n", source: "file " + file},
		{name: "opaque argument", arg: opaque, raw: opaque, source: "command line", argv: true, note: "shell history"},
		{name: "missing short file", arg: "token.txt", kind: helper.KindNoToken, msg: `no such token file: "token.txt"`},
		{name: "missing path", arg: filepath.Join(dir, "nope"), kind: helper.KindNoToken, msg: "no such token file: \"" + dir},
		{name: "directory", arg: dir, kind: helper.KindNoToken, msg: "is a directory"},
		{name: "oversized file", arg: big, kind: helper.KindInvalidToken, msg: "holds more than 64 KiB"},
		{name: "oversized stdin", arg: "-", stdin: strings.Repeat("a", MaxTokenInput+1), kind: helper.KindInvalidToken, msg: "stdin holds more than 64 KiB"},
	} {
		t.Run(c.name, func(t *testing.T) {
			in, err := ReadArg(c.arg, strings.NewReader(c.stdin))
			if c.kind != 0 {
				if helper.KindOf(err) != c.kind || !strings.Contains(err.Error(), c.msg) {
					t.Fatalf("err %v (kind %v), want kind %v with %q", err, helper.KindOf(err), c.kind, c.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if in.Raw != c.raw || in.Source != c.source || in.FromArgv != c.argv {
				t.Errorf("got %v argv=%v", in, in.FromArgv)
			}
			if c.note == "" && len(in.Notes) != 0 || c.note != "" && (len(in.Notes) != 1 || !strings.Contains(in.Notes[0], c.note)) {
				t.Errorf("notes %q, want one containing %q", in.Notes, c.note)
			}
			if s := in.String() + in.GoString(); strings.Contains(s, strings.TrimSpace(c.raw)) {
				t.Errorf("String leaks the token: %s", s)
			}
		})
	}
}

func TestReadArgUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads any file")
	}
	f := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(f, []byte("x"), 0o000); err != nil {
		t.Fatal(err)
	}
	_, err := ReadArg(f, nil)
	if helper.KindOf(err) != helper.KindNoToken || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("got %v", err)
	}
}
