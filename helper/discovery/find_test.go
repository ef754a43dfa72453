package discovery

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
)

const (
	tokA = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnLWE" // JWT-shaped
	tokB = "tokB-opaque_1.2~3+4/5=="                      // every b64token character class
	tokC = "tokC"
	tokD = "tokD"
)

// A conformance case: environment variables and files (paths and values
// may use {root} {tmp} {xdg} {uid}), and the expected outcome: either a
// token from a source and path, or an error of a kind whose message
// contains some words.
type findCase struct {
	name  string
	vars  map[string]string
	files map[string]string // path → content, mode 0600
	setup func(t *testing.T, s *sandbox)
	root  bool // needs root (chown)
	// readOnce: the source can be read only once (a FIFO): no Locations check.
	readOnce bool

	token   string
	source  Source
	path    string
	warn    []WarningCode
	kind    helper.Kind
	errHas  []string
	secrets []string // must not appear in error messages
}

const (
	tmpF = "{tmp}/bt_u{uid}"
	xdgF = "{xdg}/bt_u{uid}"
)

func findCases() []findCase {
	var cs []findCase
	// Each C isspace character, around a token, in every step.
	ws := map[string]string{"space": " ", "tab": "\t", "newline": "\n", "vtab": "\v", "formfeed": "\f", "cr": "\r", "crlf": "\r\n", "all": " \t\n\v\f\r"}
	for _, name := range []string{"space", "tab", "newline", "vtab", "formfeed", "cr", "crlf", "all"} {
		w := ws[name]
		cs = append(cs,
			findCase{name: "env/trim-" + name, vars: map[string]string{VarBearerToken: w + tokA + w},
				token: tokA, source: SourceBearerToken, warn: []WarningCode{WarnWhitespace}},
			findCase{name: "file/trim-" + name, vars: map[string]string{VarBearerTokenFile: "{root}/tf"},
				files: map[string]string{"{root}/tf": w + tokB + w}, token: tokB, source: SourceBearerTokenFile, path: "{root}/tf"},
			findCase{name: "xdg/trim-" + name, vars: map[string]string{VarXDGRuntimeDir: "{xdg}"},
				files: map[string]string{xdgF: w + tokC + w}, token: tokC, source: SourceXDGRuntimeDir, path: xdgF},
			findCase{name: "tmp/trim-" + name, files: map[string]string{tmpF: w + tokD + w}, token: tokD, source: SourceTmp, path: tmpF},
			// Whitespace alone is empty: next step.
			findCase{name: "env/only-" + name, vars: map[string]string{VarBearerToken: w, VarBearerTokenFile: "{root}/tf"},
				files: map[string]string{"{root}/tf": tokB}, token: tokB, source: SourceBearerTokenFile, path: "{root}/tf"},
			findCase{name: "file/only-" + name, vars: map[string]string{VarBearerTokenFile: "{root}/tf"},
				files: map[string]string{"{root}/tf": w, tmpF: tokD}, token: tokD, source: SourceTmp, path: tmpF},
		)
	}
	// Whitespace inside, and characters that are spaces elsewhere but not
	// C isspace: not stripped, so the token is invalid.
	for name, v := range map[string]string{
		"nbsp-lead":     "\u00a0" + tokA,
		"emspace-trail": tokA + "\u2003",
		"nel-trail":     tokA + "\u0085",
		"nul-trail":     tokA + "\x00",
		"inner-space":   "tok SECRETpart",
		"two-lines":     "tokSECRET1\ntokSECRET2",
		"bearer-prefix": "Bearer tokSECRETxyz",
		"json":          `{"access_token":"tokSECRETxyz"}`,
		"padding-mid":   "tok=SECRETxyz",
		"quote":         `"tokSECRETxyz"`,
	} {
		cs = append(cs,
			findCase{name: "env/invalid-" + name, vars: map[string]string{VarBearerToken: v, VarBearerTokenFile: "{root}/tf"},
				files: map[string]string{"{root}/tf": tokB}, kind: helper.KindInvalidToken, errHas: []string{"BEARER_TOKEN does not hold"},
				secrets: []string{"SECRET", tokA}},
			findCase{name: "file/invalid-" + name, vars: map[string]string{VarBearerTokenFile: "{root}/tf"},
				files: map[string]string{"{root}/tf": v, tmpF: tokD}, kind: helper.KindInvalidToken,
				errHas: []string{"BEARER_TOKEN_FILE={root}/tf does not hold"}, secrets: []string{"SECRET", tokA}},
		)
	}
	cs = append(cs, []findCase{
		// Invalid token in each step stops discovery, even with a valid
		// token further down.
		{name: "xdg/invalid", vars: map[string]string{VarXDGRuntimeDir: "{xdg}"},
			files: map[string]string{xdgF: "a b", tmpF: tokD}, kind: helper.KindInvalidToken, errHas: []string{"XDG_RUNTIME_DIR file " + xdgF}},
		{name: "tmp/invalid", files: map[string]string{tmpF: "tok\x01SECRET"}, kind: helper.KindInvalidToken,
			errHas: []string{tmpF, "control character", "tokenhelper export"}, secrets: []string{"SECRET"}},
		{name: "bearer-prefix-hint", vars: map[string]string{VarBearerToken: "Bearer " + tokA}, kind: helper.KindInvalidToken,
			errHas: []string{`starts with "Bearer "`}, secrets: []string{tokA}},

		// Set-but-empty variables and unset variables: next step.
		{name: "env/empty-vs-unset", vars: map[string]string{VarBearerToken: "", VarBearerTokenFile: "{root}/tf"},
			files: map[string]string{"{root}/tf": tokB}, token: tokB, source: SourceBearerTokenFile, path: "{root}/tf"},
		{name: "env/unset", vars: map[string]string{VarBearerTokenFile: "{root}/tf"},
			files: map[string]string{"{root}/tf": tokB}, token: tokB, source: SourceBearerTokenFile, path: "{root}/tf"},
		{name: "file-var/empty", vars: map[string]string{VarBearerTokenFile: "", VarXDGRuntimeDir: "{xdg}"},
			files: map[string]string{xdgF: tokC}, token: tokC, source: SourceXDGRuntimeDir, path: xdgF},
		{name: "xdg-var/empty", vars: map[string]string{VarXDGRuntimeDir: ""},
			files: map[string]string{tmpF: tokD}, token: tokD, source: SourceTmp, path: tmpF},

		// Empty and missing files: next step.
		{name: "file/empty", vars: map[string]string{VarBearerTokenFile: "{root}/tf"},
			files: map[string]string{"{root}/tf": "", tmpF: tokD}, token: tokD, source: SourceTmp, path: tmpF},
		{name: "file/missing", vars: map[string]string{VarBearerTokenFile: "{root}/nope", VarXDGRuntimeDir: "{xdg}"},
			files: map[string]string{xdgF: tokC}, token: tokC, source: SourceXDGRuntimeDir, path: xdgF},
		{name: "file/dangling-symlink", vars: map[string]string{VarBearerTokenFile: "{root}/link"},
			files: map[string]string{tmpF: tokD}, token: tokD, source: SourceTmp, path: tmpF,
			setup: func(t *testing.T, s *sandbox) { symlink(t, s.expand("{root}/nowhere"), s.expand("{root}/link")) }},
		{name: "file/missing-dir", vars: map[string]string{VarBearerTokenFile: "{root}/no/such/dir/tf"},
			files: map[string]string{tmpF: tokD}, token: tokD, source: SourceTmp, path: tmpF},
		{name: "file/relative-path", vars: map[string]string{VarBearerTokenFile: "relative-token-file-that-does-not-exist"},
			files: map[string]string{tmpF: tokD}, token: tokD, source: SourceTmp, path: tmpF},

		// XDG_RUNTIME_DIR set vs unset.
		{name: "xdg/unset-uses-tmp", files: map[string]string{xdgF: tokC, tmpF: tokD}, token: tokD, source: SourceTmp, path: tmpF},
		{name: "xdg/set-wins-over-tmp", vars: map[string]string{VarXDGRuntimeDir: "{xdg}"},
			files: map[string]string{xdgF: tokC, tmpF: tokD}, token: tokC, source: SourceXDGRuntimeDir, path: xdgF},
		{name: "xdg/set-missing-falls-to-tmp", vars: map[string]string{VarXDGRuntimeDir: "{xdg}"},
			files: map[string]string{tmpF: tokD}, token: tokD, source: SourceTmp, path: tmpF},
		{name: "xdg/set-empty-file-falls-to-tmp", vars: map[string]string{VarXDGRuntimeDir: "{xdg}"},
			files: map[string]string{xdgF: "\n", tmpF: tokD}, token: tokD, source: SourceTmp, path: tmpF},
		{name: "xdg/dir-missing", vars: map[string]string{VarXDGRuntimeDir: "{root}/run/user/x"},
			files: map[string]string{tmpF: tokD}, token: tokD, source: SourceTmp, path: tmpF},

		// Step priority.
		{name: "priority/env-first", vars: map[string]string{VarBearerToken: tokA, VarBearerTokenFile: "{root}/tf", VarXDGRuntimeDir: "{xdg}"},
			files: map[string]string{"{root}/tf": tokB, xdgF: tokC, tmpF: tokD}, token: tokA, source: SourceBearerToken},
		{name: "priority/file-second", vars: map[string]string{VarBearerTokenFile: "{root}/tf", VarXDGRuntimeDir: "{xdg}"},
			files: map[string]string{"{root}/tf": tokB, xdgF: tokC, tmpF: tokD}, token: tokB, source: SourceBearerTokenFile, path: "{root}/tf"},
		{name: "priority/xdg-third", vars: map[string]string{VarXDGRuntimeDir: "{xdg}"},
			files: map[string]string{"{root}/tf": tokB, xdgF: tokC, tmpF: tokD}, token: tokC, source: SourceXDGRuntimeDir, path: xdgF},

		// Nothing anywhere.
		{name: "none", vars: map[string]string{VarBearerToken: " ", VarBearerTokenFile: "{root}/nope"},
			kind: helper.KindNoToken, errHas: []string{"BEARER_TOKEN empty", "BEARER_TOKEN_FILE={root}/nope missing", "XDG_RUNTIME_DIR unset", tmpF + " missing", "tokenhelper export"}},

		// Files that exist but cannot be read: an error naming the step
		// and the path (as xrootd does), not the next step.
		{name: "file/is-directory", vars: map[string]string{VarBearerTokenFile: "{root}"},
			files: map[string]string{tmpF: tokD}, kind: helper.KindNoToken, errHas: []string{"cannot read BEARER_TOKEN_FILE={root}: is a directory"}},
		{name: "tmp/is-directory", kind: helper.KindNoToken, errHas: []string{"cannot read " + tmpF + ": is a directory"},
			setup: func(t *testing.T, s *sandbox) { mkdir(t, s.tmpFile()) }},
		{name: "file/symlink-loop", vars: map[string]string{VarBearerTokenFile: "{root}/loop"},
			files: map[string]string{tmpF: tokD}, kind: helper.KindNoToken, errHas: []string{"cannot read BEARER_TOKEN_FILE={root}/loop", "symbolic links"},
			setup: func(t *testing.T, s *sandbox) { symlink(t, "loop", s.expand("{root}/loop")) }},
		{name: "file/not-a-directory", vars: map[string]string{VarBearerTokenFile: "{root}/plain/tf"},
			files: map[string]string{"{root}/plain": "x", tmpF: tokD}, kind: helper.KindNoToken,
			errHas: []string{"cannot read BEARER_TOKEN_FILE={root}/plain/tf: not a directory"}},

		// Limits.
		{name: "file/too-large", vars: map[string]string{VarBearerTokenFile: "{root}/tf"},
			files: map[string]string{"{root}/tf": strings.Repeat("a", DefaultMaxFileSize+1), tmpF: tokD}, kind: helper.KindInvalidToken,
			errHas: []string{"larger than 65536 bytes"}},
		{name: "file/at-limit-xrootd-warning", vars: map[string]string{VarBearerTokenFile: "{root}/tf"},
			files: map[string]string{"{root}/tf": strings.Repeat("a", DefaultMaxFileSize)}, token: strings.Repeat("a", DefaultMaxFileSize),
			source: SourceBearerTokenFile, path: "{root}/tf", warn: []WarningCode{WarnXrootdSize}},
		{name: "env/xrootd-size-warning", vars: map[string]string{VarBearerToken: strings.Repeat("b", XrootdMaxSize)},
			token: strings.Repeat("b", XrootdMaxSize), source: SourceBearerToken, warn: []WarningCode{WarnXrootdSize}},
		{name: "file/just-under-xrootd-limit", vars: map[string]string{VarBearerTokenFile: "{root}/tf"},
			files: map[string]string{"{root}/tf": strings.Repeat("c", XrootdMaxSize-1) + "\n"}, token: strings.Repeat("c", XrootdMaxSize-1),
			source: SourceBearerTokenFile, path: "{root}/tf"},

		// Permissions: found, with the warning xrootd users need.
		{name: "file/group-readable", vars: map[string]string{VarBearerTokenFile: "{root}/tf"},
			token: tokB, source: SourceBearerTokenFile, path: "{root}/tf", warn: []WarningCode{WarnPermissions},
			setup: func(t *testing.T, s *sandbox) { s.write("{root}/tf", tokB, 0o640) }},
		{name: "tmp/world-readable", token: tokD, source: SourceTmp, path: tmpF, warn: []WarningCode{WarnPermissions},
			setup: func(t *testing.T, s *sandbox) { s.write(tmpF, tokD, 0o604) }},
		{name: "file/empty-group-readable-is-just-empty", vars: map[string]string{VarBearerTokenFile: "{root}/tf"},
			files: map[string]string{tmpF: tokD}, token: tokD, source: SourceTmp, path: tmpF,
			setup: func(t *testing.T, s *sandbox) { s.write("{root}/tf", "", 0o644) }},

		// Symbolic links of our own are followed.
		{name: "tmp/own-symlink", token: tokB, source: SourceTmp, path: tmpF,
			setup: func(t *testing.T, s *sandbox) {
				s.write("{root}/real", tokB, 0o600)
				symlink(t, s.expand("{root}/real"), s.tmpFile())
			}},

		// FIFOs never hang: no writer is an empty file; a writer's token is read.
		{name: "file/fifo-no-writer", vars: map[string]string{VarBearerTokenFile: "{root}/fifo"},
			files: map[string]string{tmpF: tokD}, kind: helper.KindNoToken,
			errHas: []string{"cannot read BEARER_TOKEN_FILE={root}/fifo: nothing complete to read within"},
			setup:  func(t *testing.T, s *sandbox) { mkfifo(t, s.expand("{root}/fifo")) }},
		{name: "file/fifo-with-writer", vars: map[string]string{VarBearerTokenFile: "{root}/fifo"}, readOnce: true,
			token: tokB, source: SourceBearerTokenFile, path: "{root}/fifo",
			setup: func(t *testing.T, s *sandbox) {
				p := s.expand("{root}/fifo")
				mkfifo(t, p)
				fifoWriter(t, p, tokB+"\n", true)
			}},

		// A token pasted into BEARER_TOKEN_FILE: the spec says a missing
		// file is skipped, but the value never shows up in messages.
		{name: "file-var/holds-a-token", vars: map[string]string{VarBearerTokenFile: tokA},
			kind: helper.KindNoToken, errHas: []string{"looks like a token, not a file name"}, secrets: []string{tokA, "c2lnLWE"}},
		{name: "file-var/holds-a-token-then-found", vars: map[string]string{VarBearerTokenFile: tokA},
			files: map[string]string{tmpF: tokD}, token: tokD, source: SourceTmp, path: tmpF, warn: []WarningCode{WarnTokenInFileVar}},
		{name: "file-var/holds-a-long-token", vars: map[string]string{VarBearerTokenFile: strings.Repeat("SECRET", 50)},
			kind: helper.KindNoToken, errHas: []string{"file name too long"}, secrets: []string{"SECRET"}},

		// Another user's files: refused in the default locations, allowed
		// when BEARER_TOKEN_FILE names them explicitly.
		{name: "tmp/foreign-file", root: true, kind: helper.KindUnsafe,
			errHas: []string{"refusing " + tmpF, "owned by uid 65534", "BEARER_TOKEN_FILE"},
			setup:  func(t *testing.T, s *sandbox) { lchown(t, s.write(tmpF, tokD, 0o600), otherUID) }},
		{name: "tmp/foreign-empty-file", root: true, kind: helper.KindUnsafe, errHas: []string{"owned by uid 65534"},
			setup: func(t *testing.T, s *sandbox) { lchown(t, s.write(tmpF, "", 0o600), otherUID) }},
		{name: "tmp/foreign-symlink", root: true, kind: helper.KindUnsafe,
			errHas: []string{"a symbolic link owned by uid 65534"},
			setup: func(t *testing.T, s *sandbox) {
				s.write("{root}/mine", tokB, 0o600)
				symlink(t, s.expand("{root}/mine"), s.tmpFile())
				lchown(t, s.tmpFile(), otherUID)
			}},
		{name: "tmp/own-symlink-to-foreign-file", root: true, kind: helper.KindUnsafe,
			errHas: []string{"owned by uid 65534"},
			setup: func(t *testing.T, s *sandbox) {
				lchown(t, s.write("{root}/theirs", tokB, 0o600), otherUID)
				symlink(t, s.expand("{root}/theirs"), s.tmpFile())
			}},
		{name: "xdg/foreign-file", root: true, vars: map[string]string{VarXDGRuntimeDir: "{xdg}"},
			files: map[string]string{tmpF: tokD}, kind: helper.KindUnsafe, errHas: []string{"XDG_RUNTIME_DIR file " + xdgF},
			setup: func(t *testing.T, s *sandbox) { lchown(t, s.write(xdgF, tokC, 0o600), otherUID) }},
		{name: "file/foreign-allowed", root: true, vars: map[string]string{VarBearerTokenFile: "{root}/robot"},
			token: tokB, source: SourceBearerTokenFile, path: "{root}/robot",
			setup: func(t *testing.T, s *sandbox) { lchown(t, s.write("{root}/robot", tokB, 0o600), otherUID) }},
	}...)
	return cs
}

func TestFindConformance(t *testing.T) {
	for _, tc := range findCases() {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root {
				needRoot(t)
			}
			s := newSandbox(t)
			for k, v := range tc.vars {
				s.vars[k] = s.expand(v)
			}
			for p, c := range tc.files {
				s.write(p, c, 0o600)
			}
			if tc.setup != nil {
				tc.setup(t, s)
			}
			env := s.env()
			env.ReadTimeout = 300 * time.Millisecond
			var locs []Location
			if !tc.readOnce {
				locs = Locations(env)
			}
			res, err := Find(env)
			if tc.kind != 0 {
				if err == nil {
					t.Fatalf("Find = %q from %s, want a %v error", res.Token, res.Source, tc.kind)
				}
				if !helper.IsKind(err, tc.kind) {
					t.Fatalf("err = %v (kind %v), want kind %v", err, helper.KindOf(err), tc.kind)
				}
				var he *helper.Error
				if !errors.As(err, &he) || he.Fix == "" {
					t.Errorf("error %q has no Fix", err)
				}
				for _, w := range tc.errHas {
					if !strings.Contains(err.Error(), s.expand(w)) {
						t.Errorf("error %q does not contain %q", err, s.expand(w))
					}
				}
				for _, sec := range tc.secrets {
					if strings.Contains(err.Error(), sec) {
						t.Errorf("error %q leaks %q", err, sec)
					}
				}
			} else {
				if err != nil {
					t.Fatalf("Find: %v", err)
				}
				if res.Token != tc.token || res.Source != tc.source || res.Path != s.expand(tc.path) {
					t.Errorf("Find = (%.20q, %s, %q), want (%.20q, %s, %q)", res.Token, res.Source, res.Path, tc.token, tc.source, s.expand(tc.path))
				}
				var codes []WarningCode
				for _, w := range res.Warnings {
					codes = append(codes, w.Code)
					for _, sec := range append(tc.secrets, tc.token) {
						if len(sec) > 5 && strings.Contains(w.String(), sec) {
							t.Errorf("warning %q leaks the token", w)
						}
					}
				}
				if !slices.Equal(codes, tc.warn) {
					t.Errorf("warnings = %v, want %v", res.Warnings, tc.warn)
				}
			}
			if !tc.readOnce {
				checkLocations(t, locs, res, err)
			}
		})
	}
}

// checkLocations: Locations agrees with Find, and reports every step.
func checkLocations(t *testing.T, locs []Location, res *Result, err error) {
	t.Helper()
	if len(locs) != 4 {
		t.Fatalf("Locations: %d steps, want 4", len(locs))
	}
	for i, src := range []Source{SourceBearerToken, SourceBearerTokenFile, SourceXDGRuntimeDir, SourceTmp} {
		if locs[i].Source != src {
			t.Errorf("Locations[%d].Source = %s, want %s", i, locs[i].Source, src)
		}
	}
	var used *Location
	for i := range locs {
		if locs[i].Used {
			if used != nil {
				t.Fatalf("two Locations used: %v and %v", used, locs[i])
			}
			used = &locs[i]
		}
	}
	switch {
	case res != nil:
		if used == nil || used.State != StateFound || used.Result.Token != res.Token || used.Source != res.Source {
			t.Errorf("Locations used %v, Find found %s", used, res.Label())
		}
	case helper.IsKind(err, helper.KindNoToken) && used == nil:
		// nothing found anywhere
	default:
		if used == nil || used.Err == nil || used.Err.Error() != err.Error() {
			t.Errorf("Locations used %v, Find failed with %v", used, err)
		}
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.Mkdir(p, 0o700); err != nil {
		t.Fatal(err)
	}
}

// fifoWriter writes content into the FIFO at p from a goroutine, closing
// it afterwards when closeAfter is set (else holding it open until the
// test ends).
func fifoWriter(t *testing.T, p, content string, closeAfter bool) {
	t.Helper()
	opened := make(chan *os.File, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f, err := os.OpenFile(p, os.O_WRONLY, 0) // blocks until a reader opens
		if err != nil {
			opened <- nil
			return
		}
		opened <- f
		_, _ = f.WriteString(content) // what the reader got is what the test checks
		if closeAfter {
			f.Close()
		}
	}()
	t.Cleanup(func() {
		// Unblock a writer still waiting for a reader, then reap it.
		if r, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			defer r.Close()
		}
		if f := <-opened; f != nil {
			f.Close()
		}
		<-done
	})
}

func TestFindFIFOWriterNeverCloses(t *testing.T) {
	s := newSandbox(t)
	p := filepath.Join(s.root, "fifo")
	mkfifo(t, p)
	fifoWriter(t, p, tokB, false)
	s.vars[VarBearerTokenFile] = p
	env := s.env()
	env.ReadTimeout = 50 * time.Millisecond
	start := time.Now()
	_, err := Find(env)
	if !helper.IsKind(err, helper.KindNoToken) || !strings.Contains(err.Error(), "cannot read BEARER_TOKEN_FILE="+p) {
		t.Fatalf("err = %v, want a read error naming the FIFO", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Find took %v with ReadTimeout 50ms", d)
	}
}

// TestFindCharDevice: /dev/null reads as empty (next step), like xrootd.
func TestFindCharDevice(t *testing.T) {
	s := newSandbox(t)
	s.vars[VarBearerTokenFile] = "/dev/null"
	s.write(tmpF, tokD, 0o600)
	res, err := Find(s.env())
	if err != nil || res.Source != SourceTmp {
		t.Fatalf("Find = %+v, %v; want the /tmp token", res, err)
	}
	s.vars[VarBearerTokenFile] = "/dev/zero"
	if _, err := Find(s.env()); !helper.IsKind(err, helper.KindInvalidToken) {
		t.Fatalf("/dev/zero: err = %v, want too large", err)
	}
}

// TestFindUnreadable: a file we may not read is an error naming the path
// and the source. As root (who reads anything) the check runs in a child
// process switched to uid 65534.
func TestFindUnreadable(t *testing.T) {
	s := newSandbox(t)
	p := s.write("{root}/locked", tokB, 0o000)
	s.write(tmpF, tokD, 0o600)
	if !isRoot() {
		s.vars[VarBearerTokenFile] = p
		_, err := Find(s.env())
		if !helper.IsKind(err, helper.KindNoToken) || !strings.Contains(err.Error(), "cannot read BEARER_TOKEN_FILE="+p+": permission denied") {
			t.Fatalf("err = %v, want permission denied naming BEARER_TOKEN_FILE=%s", err, p)
		}
		return
	}
	out := runAsOther(t, s, map[string]string{VarBearerTokenFile: p})
	want := "kind=no-token msg=cannot read BEARER_TOKEN_FILE=" + p + ": permission denied"
	if !strings.HasPrefix(out, want) {
		t.Fatalf("child as uid %d: %q, want prefix %q", otherUID, out, want)
	}
}

func TestReadFile(t *testing.T) {
	s := newSandbox(t)
	p := s.write("{root}/tf", "\r\n"+tokA+"\r\n", 0o644)
	res, err := ReadFile(s.env(), p)
	if err != nil || res.Token != tokA || res.Source != SourcePath || res.Path != p {
		t.Fatalf("ReadFile = %+v, %v", res, err)
	}
	if len(res.Warnings) != 1 || res.Warnings[0].Code != WarnPermissions || !strings.Contains(res.Warnings[0].String(), "chmod 600 "+p) {
		t.Errorf("warnings = %v, want the xrootd permission warning with chmod 600", res.Warnings)
	}
	if res.Mode.Perm() != 0o644 || res.Owner != os.Geteuid() || res.ModTime.IsZero() {
		t.Errorf("file facts = %v %d %v", res.Mode, res.Owner, res.ModTime)
	}
	for name, tc := range map[string]struct {
		content string
		kind    helper.Kind
		has     string
	}{
		"empty":   {"\n\n", helper.KindNoToken, "is empty"},
		"invalid": {"a b", helper.KindInvalidToken, "does not hold a valid bearer token"},
	} {
		p := s.write("{root}/"+name, tc.content, 0o600)
		if _, err := ReadFile(s.env(), p); !helper.IsKind(err, tc.kind) || !strings.Contains(err.Error(), tc.has) {
			t.Errorf("%s: err = %v, want %v containing %q", name, err, tc.kind, tc.has)
		}
	}
	if _, err := ReadFile(s.env(), filepath.Join(s.root, "nope")); !helper.IsKind(err, helper.KindNoToken) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing: err = %v", err)
	}
}

func TestTrimIsExactlyCIsspace(t *testing.T) {
	for c := rune(0); c < 0x3000; c++ {
		s := string(c) + "x" + string(c)
		want := s
		switch c {
		case ' ', '\t', '\n', '\v', '\f', '\r':
			want = "x"
		}
		if got := Trim(s); got != want {
			t.Fatalf("Trim(%q) = %q, want %q", s, got, want)
		}
	}
}

func TestZeroEnvIsEmpty(t *testing.T) {
	var e Env
	if v, ok := e.Lookup("PATH"); ok || v != "" {
		t.Errorf("zero Env sees PATH=%q", v)
	}
	if TmpPath(e) != "/tmp/bt_u0" {
		t.Errorf("TmpPath(zero) = %s", TmpPath(e))
	}
	g := Env{Getenv: func(k string) string {
		if k == VarXDGRuntimeDir {
			return "/run/user/7"
		}
		return ""
	}, UID: 7}
	if p := DefaultPath(g); p != "/run/user/7/bt_u7" {
		t.Errorf("DefaultPath with Getenv = %s", p)
	}
	o := OSEnv()
	if o.UID != os.Geteuid() || o.TmpDir != "/tmp" || o.LookupEnv == nil {
		t.Errorf("OSEnv = %+v", o)
	}
}

func TestLocationStrings(t *testing.T) {
	s := newSandbox(t)
	s.vars[VarBearerToken] = ""
	s.vars[VarBearerTokenFile] = s.expand("{root}/tf")
	s.vars[VarXDGRuntimeDir] = s.xdg
	s.write("{root}/tf", tokB, 0o600)
	s.write(xdgF, "bad token", 0o600)
	var got []string
	for _, l := range Locations(s.env()) {
		got = append(got, l.String())
	}
	want := []string{
		"BEARER_TOKEN: empty",
		"BEARER_TOKEN_FILE=" + s.expand("{root}/tf") + ": found",
		"XDG_RUNTIME_DIR file " + s.expand(xdgF) + ": invalid (",
		s.expand(tmpF) + ": missing",
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("Locations[%d] = %q, want prefix %q", i, got[i], want[i])
		}
	}
}
