package cli_test

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/tokenhelper/tokenhelper/integrations/testbed"
)

// TestNativeScripts runs the scripts in testdata/native: register, login,
// token, logout of native profiles, as a user types them, against a
// loopback test bed (https, private CA, storage) started for each script.
// Scripts see $ISSUER, $CAFILE and $ORIGIN (the storage's audience), and
// drive the device flow with approve-next and deny-next.
func TestNativeScripts(t *testing.T) {
	slog.SetDefault(slog.New(slog.DiscardHandler)) // the provider library logs each request
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/native",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			home := env.WorkDir + "/home"
			if err := os.MkdirAll(home, 0o700); err != nil {
				return err
			}
			env.Setenv("HOME", home)
			env.Setenv("XDG_RUNTIME_DIR", "")
			env.Setenv("TZ", "UTC")
			env.Setenv("GORACE", "atexit_sleep_ms=0") // race-enabled children exit at once
			tb, err := testbed.New(testbed.Options{
				HTTPS: true, Storage: true, Dir: env.WorkDir + "/testbed",
				Lifetimes: testbed.Lifetimes{PollInterval: time.Second},
			})
			if err != nil {
				return err
			}
			env.Defer(func() { tb.Close() })
			env.Values["testbed"] = tb
			env.Setenv("ISSUER", tb.IssuerURL)
			env.Setenv("CAFILE", tb.CAFile)
			env.Setenv("ORIGIN", tb.StorageOrigin())
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"approve-next": cmdDecideNext(true),
			"deny-next":    cmdDecideNext(false),
			"code":         cmdCode,
			"perm":         cmdPerm,
		},
	})
}

// approve-next [USER] / deny-next: in the background, approve (as USER,
// default alice) or deny the next device request the test bed receives,
// as a person in a browser would.
func cmdDecideNext(approve bool) func(ts *testscript.TestScript, neg bool, args []string) {
	return func(ts *testscript.TestScript, neg bool, args []string) {
		tb := ts.Value("testbed").(*testbed.Testbed)
		user := "alice"
		if len(args) > 0 {
			user = args[0]
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		go func() {
			defer cancel()
			if approve {
				_, _ = tb.ApproveNext(ctx, user) // a failure shows as the login waiting for it failing
			} else {
				_, _ = tb.DenyNext(ctx)
			}
		}()
		ts.Defer(cancel)
	}
}
