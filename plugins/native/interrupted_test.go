package native_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/integrations/testbed"
)

// interruptedRefresh refreshes, then puts the state back as a process
// killed while storing the rotated token leaves it: account.json with the
// redeemed (dead) refresh token and, when leftover is set, the new state
// in the temporary file the write had completed before its rename.
func interruptedRefresh(t *testing.T, e *env, leftover []byte) (deadRT, liveRT string) {
	t.Helper()
	before, err := os.ReadFile(e.accountPath())
	if err != nil {
		t.Fatal(err)
	}
	deadRT = e.secretOf("refresh_token")
	if _, err := e.backend().Token(context.Background(), e.request()); err != nil {
		t.Fatal(err)
	}
	liveRT = e.secretOf("refresh_token")
	after, err := os.ReadFile(e.accountPath())
	if err != nil {
		t.Fatal(err)
	}
	if leftover == nil {
		leftover = after
	}
	tmp := filepath.Join(filepath.Dir(e.accountPath()), ".account.json.tmp-0123456789abcdef")
	if err := os.WriteFile(tmp, leftover, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.accountPath(), before, 0o600); err != nil {
		t.Fatal(err)
	}
	return deadRT, liveRT
}

func leftovers(t *testing.T, e *env) []string {
	t.Helper()
	l, _ := filepath.Glob(filepath.Join(filepath.Dir(e.accountPath()), ".account.json.tmp-*"))
	return l
}

// A process killed between writing the rotated refresh token to the
// temporary file and renaming it over account.json: the next refresh
// gets invalid_grant for the stored token, finds the live one in the
// leftover, uses it, stores its successor, and removes the leftover.
func TestInterruptedWriteRecovered(t *testing.T) {
	e := newEnv(t, testbed.Options{})
	e.register()
	clientID := e.account()["client_id"].(string)
	dead, live := interruptedRefresh(t, e, nil)
	if introspect(t, e.tb, clientID, dead) || !introspect(t, e.tb, clientID, live) {
		t.Fatal("setup: the stored token should be redeemed and the leftover one live")
	}
	e.tb.ResetCounters()
	tok, err := e.backend().Token(context.Background(), e.request())
	if err != nil {
		t.Fatalf("refresh after an interrupted write: %v", err)
	}
	if tok.AccessToken == "" {
		t.Fatal("no access token")
	}
	now := e.secretOf("refresh_token")
	if now == dead || now == live || !introspect(t, e.tb, clientID, now) {
		t.Error("the successor of the recovered refresh token was not stored")
	}
	if n := e.tb.Counters().Grant(testbed.GrantRefreshToken); n != 2 {
		t.Errorf("%d refreshes, want 2 (the dead token, then the recovered one)", n)
	}
	if l := leftovers(t, e); len(l) != 0 {
		t.Errorf("leftovers kept: %v", l)
	}
	if _, err := e.backend().Token(context.Background(), helper.Request{Profile: "tb", Scopes: e.p.Scopes, Force: true}.Normalized()); err != nil {
		t.Errorf("next refresh: %v", err)
	}
}

// A leftover cut short by the kill (or of another client, or holding the
// dead token) recovers nothing: "session expired" as before, and the
// leftovers go.
func TestInterruptedWriteUnusable(t *testing.T) {
	for name, leftover := range map[string]func(after []byte) []byte{
		"cut short": func(b []byte) []byte { return b[:len(b)/2] },
		"other client": func(b []byte) []byte {
			return []byte(strings.Replace(string(b), `"client_id": "`, `"client_id": "x`, 1))
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, testbed.Options{})
			e.register()
			before, err := os.ReadFile(e.accountPath())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.backend().Token(context.Background(), e.request()); err != nil {
				t.Fatal(err)
			}
			after, err := os.ReadFile(e.accountPath())
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(e.accountPath(), before, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(filepath.Dir(e.accountPath()), ".account.json.tmp-0123456789abcdef"), leftover(after), 0o600); err != nil {
				t.Fatal(err)
			}

			_, err = e.backend().Token(context.Background(), e.request())
			he := wantKind(t, err, helper.KindLoginNeeded)
			if !strings.HasPrefix(he.Error(), "session expired") {
				t.Errorf("error %q", he.Error())
			}
			if e.secretOf("refresh_token") != "" {
				t.Error("the dead refresh token was kept")
			}
			if l := leftovers(t, e); len(l) != 0 {
				t.Errorf("leftovers kept: %v", l)
			}
		})
	}
}

// Leftovers older than a minute are removed by a successful refresh (a
// provider that does not rotate refresh tokens leaves a live copy in
// them); a recent one is not touched (it could be a write in progress).
func TestStaleLeftoversRemoved(t *testing.T) {
	e := newEnv(t, testbed.Options{})
	e.register()
	dir := filepath.Dir(e.accountPath())
	old := filepath.Join(dir, ".account.json.tmp-00000000000000aa")
	recent := filepath.Join(dir, ".account.json.tmp-00000000000000bb")
	for _, p := range []string{old, recent} {
		if err := os.WriteFile(p, []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	long := time.Now().Add(-2 * time.Minute)
	if err := os.Chtimes(old, long, long); err != nil {
		t.Fatal(err)
	}
	if _, err := e.backend().Token(context.Background(), e.request()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Error("a leftover of two minutes ago was kept")
	}
	if _, err := os.Stat(recent); err != nil {
		t.Error("a recent temporary file was removed")
	}
}
