package cli_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/tokenhelper/tokenhelper/cmd/tokenhelper/cli"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"tokenhelper": func() { os.Exit(cli.Main(context.Background(), os.Args, cli.OSSystem())) },
	})
}

// TestScripts runs the end-to-end CLI scripts in testdata/script: the real
// tokenhelper binary (this test binary re-executed) with a private HOME,
// XDG directories and /tmp stand-in per script.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			home := env.WorkDir + "/home"
			if err := os.MkdirAll(home, 0o700); err != nil {
				return err
			}
			env.Setenv("HOME", home)
			env.Setenv("XDG_RUNTIME_DIR", "")
			env.Setenv("TZ", "UTC")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"mktoken":   cmdMkToken,
			"code":      cmdCode,
			"perm":      cmdPerm,
			"expand":    cmdExpand,
			"fakeagent": cmdFakeAgent,
		},
	})
}

var signingKey = func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}()

// mktoken FILE [claim=value...]: write a signed WLCG-style JWT to FILE.
// exp, iat and nbf take durations relative to now ("exp=-5m"); aud and
// scope take space-separated lists; wlcg.groups is comma-separated.
func cmdMkToken(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 1 {
		ts.Fatalf("usage: mktoken FILE [claim=value...]")
	}
	now := time.Now()
	claims := jwt.MapClaims{
		"iss": "https://iam.example.org", "sub": "alice", "wlcg.ver": "1.0",
		"aud": "https://wlcg.cern.ch/jwt/v1/any", "scope": "storage.read:/ openid",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"jti": "test-jti", "client_id": "test-client",
	}
	for _, kv := range args[1:] {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "exp", "iat", "nbf":
			d, err := time.ParseDuration(v)
			ts.Check(err)
			claims[k] = now.Add(d).Unix()
		case "aud":
			if f := strings.Fields(v); len(f) > 1 {
				claims[k] = f
			} else {
				claims[k] = v
			}
		case "wlcg.groups":
			claims[k] = strings.Split(v, ",")
		case "-":
			delete(claims, v)
		default:
			claims[k] = v
		}
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = "test-key"
	s, err := tok.SignedString(signingKey)
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(s+"\n"), 0o600))
}

// code N COMMAND ARGS...: run COMMAND and require exit status N.
func cmdCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: code N command [args...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		got = ee.ExitCode()
	} else if err != nil {
		ts.Fatalf("%v", err)
	}
	if got != want {
		ts.Fatalf("exit status %d, want %d", got, want)
	}
}

// perm MODE FILE: require FILE's permission bits to be MODE (octal).
func cmdPerm(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: perm MODE FILE")
	}
	want, err := strconv.ParseUint(args[0], 8, 32)
	ts.Check(err)
	fi, err := os.Stat(ts.MkAbs(args[1]))
	ts.Check(err)
	if got := uint64(fi.Mode().Perm()); (got == want) == neg {
		ts.Fatalf("mode of %s is %04o (want %s%04o)", args[1], got, map[bool]string{true: "not ", false: ""}[neg], want)
	}
}

// expand FILE...: replace $WORK and $HOME in FILE with their values.
func cmdExpand(ts *testscript.TestScript, neg bool, args []string) {
	for _, f := range args {
		p := ts.MkAbs(f)
		b, err := os.ReadFile(p)
		ts.Check(err)
		s := strings.NewReplacer("$WORK", ts.Getenv("WORK"), "$HOME", ts.Getenv("HOME")).Replace(string(b))
		ts.Check(os.WriteFile(p, []byte(s), 0o600))
	}
}

// fakeagent SOCKET TOKENFILE ACCOUNT...: serve an oidc-agent look-alike on
// the unix socket SOCKET for the rest of the script: loaded_accounts lists
// the ACCOUNTs, access_token answers with the token in TOKENFILE. Every
// access_token request is appended to SOCKET.log as one line
// "access_token ACCOUNT scope=SCOPE audience=AUD", so a script can count
// what reached the agent.
func cmdFakeAgent(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: fakeagent SOCKET TOKENFILE [ACCOUNT...]")
	}
	tok, err := os.ReadFile(ts.MkAbs(args[1]))
	ts.Check(err)
	accounts := args[2:]
	if accounts == nil {
		accounts = []string{}
	}
	l, err := net.Listen("unix", ts.MkAbs(args[0]))
	ts.Check(err)
	ts.Defer(func() { l.Close() })
	var logMu sync.Mutex
	logPath := ts.MkAbs(args[0]) + ".log"
	record := func(req map[string]any) {
		logMu.Lock()
		defer logMu.Unlock()
		f, err := os.OpenFile(logPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return
		}
		defer f.Close()
		fmt.Fprintf(f, "access_token %v scope=%v audience=%v\n", req["account"], req["scope"], req["audience"])
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 64<<10)
				n, _ := c.Read(buf)
				var req map[string]any
				if json.Unmarshal(buf[:n], &req) != nil {
					return
				}
				var rep any
				switch req["request"] {
				case "loaded_accounts":
					rep = map[string]any{"status": "success", "info": accounts}
				case "access_token":
					record(req)
					acc, _ := req["account"].(string)
					if !slices.Contains(accounts, acc) {
						rep = map[string]any{"status": "failure", "error": "No account configured with that short name"}
						break
					}
					rep = map[string]any{"status": "success", "access_token": strings.TrimSpace(string(tok)),
						"issuer": "https://iam.example.org/", "expires_at": time.Now().Add(time.Hour).Unix()}
				}
				b, _ := json.Marshal(rep)
				_, _ = c.Write(b)
			}()
		}
	}()
}
