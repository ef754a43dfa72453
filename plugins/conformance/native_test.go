package conformance_test

import (
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/integrations/testbed"
	"github.com/tokenhelper/tokenhelper/plugins"
	"github.com/tokenhelper/tokenhelper/plugins/conformance"
	"github.com/tokenhelper/tokenhelper/plugins/native"
)

// passwordUI answers the password prompt of a password-flow login.
type passwordUI struct{ password string }

func (passwordUI) Out() io.Writer                  { return io.Discard }
func (passwordUI) Terminal() bool                  { return true }
func (passwordUI) Now() time.Time                  { return time.Now() }
func (u passwordUI) Secret(string) (string, error) { return u.password, nil }

// The native backend against the loopback test bed, in-process and
// isolated (isolate = true): a robot-style profile (password grant,
// plaintext state) so that no person is needed, on the real clock since
// an isolated backend runs in another process.
func TestNative(t *testing.T) {
	tb := testbed.Start(t, testbed.Options{})
	spec, err := tb.RegisterClient(testbed.ClientSpec{Name: "conformance", Grants: []string{"password", "refresh"}, AllowPassword: true})
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	dirs := config.Dirs{
		Home:       root,
		ConfigFile: filepath.Join(root, "config", "tokenhelper", "config.toml"),
		CacheDir:   filepath.Join(root, "cache", "tokenhelper"),
		DataDir:    filepath.Join(root, "data", "tokenhelper"),
		StateDir:   filepath.Join(root, "state", "tokenhelper"),
	}
	p := config.Profile{
		Name: "robot", Backend: config.BackendNative, Issuer: tb.IssuerURL, Plaintext: true,
		Scopes: []string{"openid", "offline_access", "storage.read:/", "storage.create:/", "compute.read"},
	}
	login := func(t *testing.T, register bool) {
		t.Helper()
		be, err := native.New(&p, native.Options{Dirs: dirs, UI: passwordUI{"alice-password"}, Username: "alice", Headless: true})
		if err != nil {
			t.Fatal(err)
		}
		req := helper.Request{Profile: p.Name, Scopes: p.Scopes, MinValid: time.Minute}.Normalized()
		if register {
			_, err = be.Register(context.Background(), native.Registration{ClientID: spec.ID, ClientSecret: spec.Secret, Flow: config.FlowPassword, Plaintext: true}, req)
		} else {
			_, err = be.Login(context.Background(), helper.LoginRequest{Request: req, Flow: config.FlowPassword})
		}
		if err != nil {
			t.Fatalf("login: %v", err)
		}
	}
	login(t, true)
	conformance.RunBuiltin(t, config.BackendNative, conformance.Harness{
		Profile:   p,
		Deps:      plugins.Deps{Dirs: dirs},
		Scopes:    []string{"storage.read:/data", "compute.read"},
		Audiences: []string{"https://se.example.org:2880"},
		Lifetime:  tb.Lifetimes().Access,
		Renews:    true,
		// Reported to the native backend: it refreshes without comparing
		// the new token's lifetime with the request's min-valid.
		// The provider no longer honours the refresh token: a person
		// must log in again.
		Break: func(t *testing.T) (helper.Kind, func()) {
			if err := tb.Inject(testbed.EndpointToken, testbed.OAuthError("invalid_grant").ForGrant(testbed.GrantRefreshToken)); err != nil {
				t.Fatal(err)
			}
			return helper.KindLoginNeeded, func() {
				tb.ClearFaults(testbed.EndpointToken)
				login(t, false)
			}
		},
		Stall: func(t *testing.T) func() {
			if err := tb.Inject(testbed.EndpointToken, testbed.Hang()); err != nil {
				t.Fatal(err)
			}
			return func() { tb.ClearFaults(testbed.EndpointToken) }
		},
	})
}
