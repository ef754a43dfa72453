package execenv

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/discovery"
	"github.com/tokenhelper/tokenhelper/integrations/renew"
)

// Exec removes the token file and its directory when the command ends. A
// directory it cannot remove (the command left a file in it) is reported
// as a warning naming it, and the command's exit status stays.
func TestExecRemovesTheTokenDir(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script string
		code   int
		stays  bool
	}{
		{"removed", "exit 0", 0, false},
		{"removed after a failure", "exit 3", 3, false},
		{"a file left next to the token", `touch "${BEARER_TOKEN_FILE%/*}/left-behind"; exit 3`, 3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				mu    sync.Mutex
				warns []string
			)
			r := &renew.Renewer{
				Env:  discovery.Env{UID: os.Geteuid(), TmpDir: t.TempDir()},
				Warn: func(s string) { mu.Lock(); warns = append(warns, s); mu.Unlock() },
			}
			var dir string
			code, err := Exec(Options{
				Child: shChild(t, tc.script),
				Base:  filepath.Join(t.TempDir(), "run"),
				Token: &helper.Token{AccessToken: "tok-exec-remove", Expiry: time.Now().Add(time.Hour)},
				Source: func(context.Context, time.Duration) (*helper.Token, error) {
					return nil, errors.New("no renewal in this test")
				},
				Renewer: r,
				Ready:   func(file string) { dir = filepath.Dir(file) },
			})
			if err != nil || code != tc.code {
				t.Fatalf("Exec = %d, %v; want %d", code, err, tc.code)
			}
			if _, err := os.Stat(filepath.Join(dir, TokenFileName)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the token file is still there (%v)", err)
			}
			_, err = os.Stat(dir)
			if stays := err == nil; stays != tc.stays {
				t.Errorf("directory left behind: %v, want %v", stays, tc.stays)
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case !tc.stays && len(warns) != 0:
				t.Errorf("warnings %q", warns)
			case tc.stays && (len(warns) != 1 || !strings.Contains(warns[0], "rm -r "+dir)):
				t.Errorf("warnings %q, want one naming rm -r %s", warns, dir)
			}
		})
	}
}
