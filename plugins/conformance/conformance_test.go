package conformance_test

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/plugins/command"
	"github.com/tokenhelper/tokenhelper/plugins/conformance"
)

func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler)) // the test bed's provider logs its routes
	os.Exit(conformance.Main(m))
}

var key = func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}()

// mint signs a WLCG-style JWT valid for life.
func mint(t testing.TB, scope string, aud []string, life time.Duration) string {
	t.Helper()
	now := time.Now()
	var a any = "https://wlcg.cern.ch/jwt/v1/any"
	if len(aud) > 0 {
		a = aud
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": "https://iam.example.org", "sub": "alice", "wlcg.ver": "1.0", "aud": a,
		"scope": scope, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(life).Unix(),
		"jti": fmt.Sprintf("%x", b),
	})
	tok.Header["kid"] = "k1"
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func write(t testing.TB, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}

// The file backend, in-process and isolated over go-plugin.
func TestFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	write(t, path, mint(t, "storage.read:/ storage.create:/data openid", nil, time.Hour)+"\n", 0o600)
	conformance.RunBuiltin(t, config.BackendFile, conformance.Harness{
		Profile:   config.Profile{TokenFile: path},
		Scopes:    []string{"storage.read:/data/run1", "storage.create:/data"},
		Audiences: []string{"https://se.example.org:2880"},
		Lifetime:  time.Hour,
		Break: func(t *testing.T) (helper.Kind, func()) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			return helper.KindNoToken, func() { write(t, path, string(data), 0o600) }
		},
	})
}

// commandWorld is a site script for the command backend: it prints a
// token matching TOKENHELPER_SCOPES, TOKENHELPER_AUDIENCES and
// TOKENHELPER_FORCE, exits 4 ("log in first") while the file "break"
// exists and sleeps while "stall" exists.
type commandWorld struct {
	dir, script string
}

func newCommandWorld(t *testing.T, scopes, auds []string, life time.Duration) *commandWorld {
	w := &commandWorld{dir: t.TempDir()}
	var cases strings.Builder
	add := func(key, scope string, aud []string) {
		name := fmt.Sprintf("tok%d", strings.Count(cases.String(), "\n"))
		write(t, filepath.Join(w.dir, name), mint(t, scope, aud, life)+"\n", 0o600)
		fmt.Fprintf(&cases, "  %q) cat \"$d/%s\" ;;\n", key, name)
	}
	base := "storage.read:/ openid"
	add("||0", base, nil)
	add("||1", base, nil)
	for _, s := range scopes {
		add(s+"||0", s, nil)
	}
	for _, a := range auds {
		add("|"+a+"|0", base, []string{a})
	}
	w.script = filepath.Join(w.dir, "get-token")
	write(t, w.script, fmt.Sprintf(`#!/bin/sh
d=%q
if [ -e "$d/break" ]; then echo "no valid session for alice: run site-login" >&2; exit 4; fi
if [ -e "$d/stall" ]; then sleep 600; fi
case "$TOKENHELPER_SCOPES|$TOKENHELPER_AUDIENCES|$TOKENHELPER_FORCE" in
%s  *) echo "unexpected request" >&2; exit 1 ;;
esac
`, w.dir, cases.String()), 0o700)
	return w
}

func (w *commandWorld) flag(t *testing.T, name string) func() {
	p := filepath.Join(w.dir, name)
	write(t, p, "", 0o600)
	return func() { os.Remove(p) }
}

func (w *commandWorld) harness() conformance.Harness {
	return conformance.Harness{
		Profile: config.Profile{Backend: command.Name, Command: w.script,
			Options: map[string]string{command.OptionLoginExitCodes: "4", command.OptionLoginHint: "run: site-login"}},
		Scopes:    []string{"storage.modify:/data", "compute.read"},
		Audiences: []string{"https://se.example.org:2880"},
		Lifetime:  time.Hour,
		Renews:    true,
		Break: func(t *testing.T) (helper.Kind, func()) {
			return helper.KindLoginNeeded, w.flag(t, "break")
		},
		Stall: func(t *testing.T) func() { return w.flag(t, "stall") },
	}
}

func commandHarness(t *testing.T) conformance.Harness {
	h := conformance.Harness{Scopes: []string{"storage.modify:/data", "compute.read"}, Audiences: []string{"https://se.example.org:2880"}}
	return newCommandWorld(t, h.Scopes, h.Audiences, time.Hour).harness()
}

// The command backend in-process, as a library.
func TestCommandInProcess(t *testing.T) {
	h := commandHarness(t)
	h.New = func(t *testing.T, p *config.Profile) helper.Backend {
		b, err := command.New(p, command.OSEnv())
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	conformance.Run(t, h)
}

// The command plugin as users run it: the built tokenhelper-plugin-command
// through the built tokenhelper-pluginhost.
func TestCommandPlugin(t *testing.T) {
	conformance.RunPlugin(t, conformance.Binaries(t).Command, commandHarness(t))
}
