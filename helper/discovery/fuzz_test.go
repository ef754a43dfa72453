package discovery

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenhelper/tokenhelper/helper"
)

// FuzzFind: arbitrary environment values and file contents never panic
// or hang, and Find agrees with a direct reading of the spec: the first
// step holding something non-blank decides, a trimmed b64token is
// returned from that step, anything else is an error. Error messages and
// warnings never contain the token material.
//
// bearerMode: 0 unset, 1 BEARER_TOKEN=bearer, 2 BEARER_TOKEN="".
// fileMode: 0 unset, 1 BEARER_TOKEN_FILE="", 2 a file with fileData,
// 3 a missing file. xdgMode: 0 unset, 1 XDG_RUNTIME_DIR="", 2 a file with
// xdgData, 3 no file there. tmp: whether /tmp/bt_u$ID holds tmpData.
func FuzzFind(f *testing.F) {
	f.Add("tok", uint8(1), []byte("tokF"), uint8(2), []byte("tokX"), uint8(2), []byte("tokT"), true)
	f.Add(" \t\n\v\f\r", uint8(1), []byte("\r\n"), uint8(2), []byte("a b"), uint8(2), []byte("tokT\n"), true)
	f.Add("\u00a0tok", uint8(1), []byte{}, uint8(0), []byte{}, uint8(0), []byte{}, false)
	f.Add("", uint8(2), []byte("Bearer x"), uint8(2), []byte{}, uint8(3), []byte("x=y"), true)
	f.Add("", uint8(0), []byte{}, uint8(3), []byte("\v\ftok==\f\v"), uint8(2), []byte{}, true)
	f.Fuzz(func(t *testing.T, bearer string, bearerMode uint8, fileData []byte, fileMode uint8,
		xdgData []byte, xdgMode uint8, tmpData []byte, tmp bool) {
		s := newSandbox(t)
		type step struct {
			src     Source
			present bool
			data    string
			path    string
			isFile  bool
		}
		var want []step
		switch bearerMode % 3 {
		case 1:
			s.vars[VarBearerToken] = bearer
			want = append(want, step{src: SourceBearerToken, present: true, data: bearer})
		case 2:
			s.vars[VarBearerToken] = ""
		}
		switch fileMode % 4 {
		case 1:
			s.vars[VarBearerTokenFile] = ""
		case 2:
			p := s.write("{root}/tf", string(fileData), 0o600)
			s.vars[VarBearerTokenFile] = p
			want = append(want, step{src: SourceBearerTokenFile, present: true, data: string(fileData), path: p, isFile: true})
		case 3:
			s.vars[VarBearerTokenFile] = filepath.Join(s.root, "missing")
		}
		switch xdgMode % 4 {
		case 1:
			s.vars[VarXDGRuntimeDir] = ""
		case 2:
			s.vars[VarXDGRuntimeDir] = s.xdg
			p := s.write(xdgF, string(xdgData), 0o600)
			want = append(want, step{src: SourceXDGRuntimeDir, present: true, data: string(xdgData), path: p, isFile: true})
		case 3:
			s.vars[VarXDGRuntimeDir] = s.xdg
		}
		if tmp {
			p := s.write(tmpF, string(tmpData), 0o600)
			want = append(want, step{src: SourceTmp, present: true, data: string(tmpData), path: p, isFile: true})
		}
		env := s.env()
		locs := Locations(env)
		res, err := Find(env)
		checkLocations(t, locs, res, err)

		// The reference: the first step with something non-blank decides.
		var decided *step
		for i := range want {
			if want[i].isFile && len(want[i].data) > DefaultMaxFileSize || Trim(want[i].data) != "" {
				decided = &want[i]
				break
			}
		}
		var secrets []string
		for _, w := range want {
			if tt := Trim(w.data); len(tt) >= 24 && !strings.Contains(s.root, tt) {
				secrets = append(secrets, tt)
			}
		}
		if err != nil {
			var he *helper.Error
			if !asHelperError(err, &he) {
				t.Fatalf("error is not a *helper.Error: %v", err)
			}
			for _, sec := range secrets {
				if strings.Contains(err.Error(), sec) {
					t.Fatalf("error leaks input: %v", err)
				}
			}
		}
		switch {
		case decided == nil:
			if !helper.IsKind(err, helper.KindNoToken) {
				t.Fatalf("nothing to find, got %+v, %v", res, err)
			}
		case helper.IsB64Token(Trim(decided.data)) && (!decided.isFile || len(decided.data) <= DefaultMaxFileSize):
			if err != nil {
				t.Fatalf("want %s, got %v", decided.src, err)
			}
			if res.Token != Trim(decided.data) || res.Source != decided.src || res.Path != decided.path {
				t.Fatalf("got (%q, %s, %s), want (%q, %s, %s)", res.Token, res.Source, res.Path, Trim(decided.data), decided.src, decided.path)
			}
		default:
			if !helper.IsKind(err, helper.KindInvalidToken) {
				t.Fatalf("step %s holds an invalid token: got %+v, %v", decided.src, res, err)
			}
		}
		if res != nil {
			if res.Token != Trim(res.Token) || !helper.IsB64Token(res.Token) {
				t.Fatalf("result %q is not a trimmed b64token", res.Token)
			}
			for _, w := range res.Warnings {
				if len(res.Token) >= 8 && strings.Contains(w.String(), res.Token) {
					t.Fatalf("warning leaks the token: %v", w)
				}
			}
		}
	})
}

// FuzzWriteFind: whatever Write accepts, Find reads back exactly (trimmed),
// from a 0600 file holding the token and one newline; whatever it refuses
// is not a token and leaves nothing behind.
func FuzzWriteFind(f *testing.F) {
	f.Add(tokA)
	f.Add(" tok\r\n")
	f.Add("a b")
	f.Add("tok==")
	f.Add("=")
	f.Fuzz(func(t *testing.T, token string) {
		s := newSandbox(t)
		env := s.env()
		p, err := Write(env, token, WriteOptions{})
		tok := Trim(token)
		if err != nil {
			if !helper.IsKind(err, helper.KindInvalidToken) {
				t.Fatalf("Write: %v", err)
			}
			if helper.IsB64Token(tok) && len(tok) < DefaultMaxFileSize {
				t.Fatalf("Write refused a valid token: %v", err)
			}
			if n := entries(t, s.tmp); len(n) != 0 {
				t.Fatalf("refused write left %v", n)
			}
			return
		}
		if !helper.IsB64Token(tok) {
			t.Fatalf("Write accepted %q", token)
		}
		if b, _ := os.ReadFile(p); string(b) != tok+"\n" {
			t.Fatalf("file holds %q, want %q", b, tok+"\n")
		}
		if m := mode(t, p); m != 0o600 {
			t.Fatalf("mode %v", m)
		}
		res, err := Find(env)
		if err != nil || res.Token != tok || res.Source != SourceTmp {
			t.Fatalf("Find = %+v, %v", res, err)
		}
	})
}

func asHelperError(err error, target **helper.Error) bool {
	e, ok := err.(*helper.Error)
	if ok {
		*target = e
	}
	return ok
}
