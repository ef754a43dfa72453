package oidcagent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
)

const testIssuer = "https://iam.example.org/"

// A JWT whose exp disagrees with the agent's expires_at, as for scoped
// tokens: the token's own exp wins.
func TestTokenExpiryFromJWT(t *testing.T) {
	exp := time.Now().Add(10 * time.Minute).Truncate(time.Second)
	jwt := makeJWT(map[string]any{"iss": "https://iam.example.org/", "exp": exp.Unix(), "sub": "u"})
	f := startFake(t, "unix", replyJSON(success(jwt, testIssuer, exp.Add(50*time.Minute).Unix())))
	c, err := NewClient(f.env(t))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.Token(context.Background(), TokenRequest{Account: "wlcg", Scopes: []string{"storage.read:/"}})
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != jwt || !tok.Expiry.Equal(exp) || tok.Issuer != testIssuer || tok.Source != "oidc-agent" {
		t.Fatalf("got %v expiry %v issuer %q source %q; want expiry %v", tok, tok.Expiry, tok.Issuer, tok.Source, exp)
	}
}

func TestTokenOpaqueKeepsExpiresAt(t *testing.T) {
	for _, tc := range []struct {
		name      string
		expiresAt any
		want      time.Time
	}{
		{"integer", int64(1900000000), time.Unix(1900000000, 0)},
		{"float", 1900000000.5, time.Unix(1900000000, 0)},
		{"missing", nil, time.Time{}},
		{"zero", 0, time.Time{}},
		{"negative", -5, time.Time{}},
		{"absurd", 1e300, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := map[string]any{"status": "success", "access_token": "opaque-token-value_123", "issuer": testIssuer}
			if tc.expiresAt != nil {
				rep["expires_at"] = tc.expiresAt
			}
			f := startFake(t, "unix", replyJSON(rep))
			c, _ := NewClient(f.env(t))
			tok, err := c.Token(context.Background(), TokenRequest{Account: "a"})
			if err != nil {
				t.Fatal(err)
			}
			if !tok.Expiry.Equal(tc.want) {
				t.Fatalf("expiry %v, want %v", tok.Expiry, tc.want)
			}
		})
	}
}

// The token's own iss wins over the agent's slash-normalised issuer URL
// when they name the same issuer; a different iss does not replace it.
func TestTokenIssuerForm(t *testing.T) {
	for _, tc := range []struct{ agent, iss, want string }{
		{"https://a.example/", "https://a.example", "https://a.example"},
		{"https://a.example/", "https://other.example", "https://a.example/"},
		{"", "https://a.example", "https://a.example"},
		{"https://a.example/\x1b[2J", "", ""},
	} {
		claims := map[string]any{"exp": 1900000000}
		if tc.iss != "" {
			claims["iss"] = tc.iss
		}
		f := startFake(t, "unix", replyJSON(success(makeJWT(claims), tc.agent, 1900000000)))
		c, _ := NewClient(f.env(t))
		tok, err := c.Token(context.Background(), TokenRequest{Account: "a"})
		if err != nil {
			t.Fatal(err)
		}
		if tok.Issuer != tc.want {
			t.Errorf("agent %q iss %q: issuer %q, want %q", tc.agent, tc.iss, tok.Issuer, tc.want)
		}
	}
}

// What goes over the wire: one JSON object per connection with the
// fields oidc-agent documents.
func TestRequestWire(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  TokenRequest
		want map[string]any
	}{
		{"account", TokenRequest{Account: "wlcg"},
			map[string]any{"request": "access_token", "account": "wlcg", "min_valid_period": 0.0, "application_hint": "tokenhelper"}},
		{"issuer", TokenRequest{Issuer: "https://wlcg.cloud.cnaf.infn.it/"},
			map[string]any{"request": "access_token", "issuer": "https://wlcg.cloud.cnaf.infn.it/", "min_valid_period": 0.0, "application_hint": "tokenhelper"}},
		{"account wins over issuer", TokenRequest{Account: "wlcg", Issuer: "https://x/"},
			map[string]any{"request": "access_token", "account": "wlcg", "min_valid_period": 0.0, "application_hint": "tokenhelper"}},
		{"scopes audiences min-valid", TokenRequest{Account: "wlcg", Scopes: []string{"storage.read:/", "openid storage.read:/", " "},
			Audiences: []string{"https://se.example:1094", "any"}, MinValid: 90*time.Second + time.Millisecond},
			map[string]any{"request": "access_token", "account": "wlcg", "scope": "storage.read:/ openid", "audience": "https://se.example:1094 any",
				"min_valid_period": 91.0, "application_hint": "tokenhelper"}},
		{"force", TokenRequest{Account: "wlcg", Force: true, MinValid: time.Hour},
			map[string]any{"request": "access_token", "account": "wlcg", "min_valid_period": -1.0, "application_hint": "tokenhelper"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFake(t, "unix", replyJSON(success("tok", testIssuer, 1900000000)))
			c, _ := NewClient(f.env(t))
			if _, err := c.Token(context.Background(), tc.req); err != nil {
				t.Fatal(err)
			}
			reqs := f.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests", len(reqs))
			}
			if got, want := mustJSON(reqs[0]), mustJSON(tc.want); got != want {
				t.Fatalf("sent %s\nwant %s", got, want)
			}
		})
	}
}

func TestLoadedAccounts(t *testing.T) {
	for _, tc := range []struct {
		name string
		info any
		want []string
	}{
		{"list", []string{"wlcg", "egi", "wlcg"}, []string{"egi", "wlcg"}},
		{"empty", []string{}, []string{}},
		{"null", nil, []string{}},
		{"string holding a list", `["b","a"]`, []string{"a", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFake(t, "unix", replyJSON(map[string]any{"status": "success", "info": tc.info}))
			got, err := LoadedAccounts(context.Background(), f.env(t))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") || got == nil {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			if r := f.requests(); len(r) != 1 || mustJSON(r[0]) != `{"request":"loaded_accounts"}` {
				t.Fatalf("sent %v", r)
			}
		})
	}
	f := startFake(t, "unix", replyJSON(map[string]any{"status": "success", "info": 42}))
	_, err := LoadedAccounts(context.Background(), f.env(t))
	if !errors.Is(err, ErrBadReply) {
		t.Fatalf("info 42: %v", err)
	}
}

// Replies that are not what the agent sends: each is KindUnavailable with
// a message saying what was wrong, and never the reply's content.
func TestBadReplies(t *testing.T) {
	secret := makeJWT(map[string]any{"sub": "secret-subject", "exp": 1900000000, "jti": "0123456789abcdef0123456789abcdef"})
	full := mustJSON(success(secret, testIssuer, 1900000000))
	big := append([]byte(`{"status":"success","access_token":"`+secret), bytes.Repeat([]byte("A"), MaxReply+10)...)
	for _, tc := range []struct {
		name    string
		network string
		handle  func(net.Conn, map[string]any)
		cause   error
		msg     string
	}{
		{"garbage", "unix", replyRaw([]byte("HTTP/1.0 400 Bad Request\r\n\r\n" + secret)), ErrBadReply, "malformed reply"},
		{"not an object", "unix", replyRaw([]byte(`["` + secret + `"]`)), ErrBadReply, "malformed reply"},
		{"trailing data", "unix", replyRaw([]byte(full + `{"x":1}`)), ErrBadReply, "data after the JSON object"},
		{"truncated", "unix", replyRaw([]byte(full[:len(full)/2])), ErrBadReply, "truncated reply"},
		{"oversized", "unix", replyRaw(big), ErrBadReply, "larger than 1024 KiB"},
		{"empty", "unix", replyRaw(nil), ErrBadReply, "closed the connection without answering"},
		{"unknown status", "unix", replyJSON(map[string]any{"status": "maybe", "access_token": secret}), ErrBadReply, "unknown status"},
		{"null", "unix", replyRaw([]byte("null")), ErrBadReply, "unknown status"},
		{"success without token", "unix", replyJSON(map[string]any{"status": "success", "issuer": testIssuer}), ErrBadReply, "without a usable access token"},
		{"token not b64token", "unix", replyJSON(success("Bearer "+secret, testIssuer, 1)), ErrBadReply, "without a usable access token"},
		{"expires_at not a number", "unix", replyRaw([]byte(`{"status":"success","access_token":"` + secret + `","expires_at":"soon"}`)), ErrBadReply, "malformed reply"},
		{"reset mid-reply", "tcp", func(c net.Conn, _ map[string]any) {
			_, _ = c.Write([]byte(full[:len(full)/2]))
			_ = c.(*net.TCPConn).SetLinger(0) // close with RST
		}, ErrBadReply, "closed the connection"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFake(t, tc.network, tc.handle)
			c, err := NewClient(f.env(t))
			if err != nil {
				t.Fatal(err)
			}
			c.Timeout = 5 * time.Second
			tok, err := c.Token(context.Background(), TokenRequest{Account: "wlcg"})
			if err == nil {
				t.Fatalf("no error, token %v", tok)
			}
			if helper.KindOf(err) != helper.KindUnavailable || !errors.Is(err, tc.cause) {
				t.Fatalf("kind %v, cause chain %v: %v", helper.KindOf(err), errors.Unwrap(err), err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("message %q does not say %q", err, tc.msg)
			}
			var he *helper.Error
			if !errors.As(err, &he) || he.Fix == "" {
				t.Fatalf("no fix: %v", err)
			}
			assertNoLeak(t, err, secret)
		})
	}
}

// A reply that ends with NUL or a newline is still a reply.
func TestReplyTrailingNUL(t *testing.T) {
	f := startFake(t, "unix", replyRaw([]byte(mustJSON(success("tok", testIssuer, 1900000000))+"\n\x00")))
	c, _ := NewClient(f.env(t))
	if _, err := c.Token(context.Background(), TokenRequest{Account: "a"}); err != nil {
		t.Fatal(err)
	}
}

// An agent that never answers (a password popup nobody answers): the
// call returns at the deadline with the fix, not later.
func TestSlowAgentTimesOut(t *testing.T) {
	var f *fakeAgent
	f = startFake(t, "unix", func(c net.Conn, _ map[string]any) {
		_, _ = c.Write([]byte(`{"status":"succ`)) // a partial reply, then silence
		<-f.done
	})
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		ctx     time.Duration
		msg     string
	}{
		{"client timeout", 200 * time.Millisecond, 0, `did not answer within 200ms`},
		{"context deadline", time.Minute, 200 * time.Millisecond, `did not answer within (19\d|200)ms`}, // what was left of the context
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := NewClient(f.env(t))
			c.Timeout = tc.timeout
			ctx := context.Background()
			if tc.ctx > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.ctx)
				defer cancel()
			}
			start := time.Now()
			_, err := c.Token(ctx, TokenRequest{Account: "wlcg"})
			if el := time.Since(start); el > 5*time.Second {
				t.Fatalf("took %v", el)
			}
			if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) || helper.KindOf(err) != helper.KindUnavailable {
				t.Fatalf("got %v", err)
			}
			if !regexp.MustCompile(tc.msg).MatchString(err.Error()) || !strings.Contains(err.Error(), "oidc-add NAME") {
				t.Fatalf("message %q", err)
			}
		})
	}
}

func TestCancelInterruptsWaiting(t *testing.T) {
	got := make(chan struct{})
	var f *fakeAgent
	f = startFake(t, "unix", func(c net.Conn, _ map[string]any) {
		close(got)
		<-f.done
	})
	c, _ := NewClient(f.env(t))
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-got; cancel() }()
	start := time.Now()
	_, err := c.Token(ctx, TokenRequest{Account: "wlcg"})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "cancelled") {
		t.Fatalf("got %v", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("took %v", el)
	}
}

// No agent at all, in all the ways a user meets it.
func TestNoAgent(t *testing.T) {
	dir := socketDir(t)
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // the socket file stays, nobody listens: a dead agent's socket
	regular := filepath.Join(dir, "file")
	if err := os.WriteFile(regular, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tcpLn, _ := net.Listen("tcp", "127.0.0.1:0")
	closedPort := tcpLn.Addr().String()
	tcpLn.Close()

	for _, tc := range []struct {
		name string
		vars map[string]string
		msg  string
	}{
		{"nothing set, no default socket", nil, "OIDC_SOCK is not set and there is no socket at "},
		{"socket missing", map[string]string{EnvSock: filepath.Join(dir, "gone", "agent.sock")}, "oidc-agent is not running (no socket at " + dir},
		{"stale socket", map[string]string{EnvSock: stale}, "oidc-agent is not running (stale socket at " + stale + ": nothing listens on it)"},
		{"not a socket", map[string]string{EnvSock: regular}, "is not a socket"},
		{"remote refused", map[string]string{EnvRemoteSock: closedPort}, "no oidc-agent-server is listening at " + closedPort},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := testEnv(t, tc.vars)
			_, err := LoadedAccounts(context.Background(), env)
			if !errors.Is(err, ErrNoAgent) || helper.KindOf(err) != helper.KindUnavailable {
				t.Fatalf("got %v", err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("message %q does not say %q", err, tc.msg)
			}
			if !strings.Contains(err.Error(), "oidc-agent-service use") {
				t.Fatalf("message %q does not say how to start the agent", err)
			}
			// The backend is built anyway (for status) and reports it.
			b, err := New(profile("p", "wlcg"), env)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.Token(context.Background(), helper.Request{}); !errors.Is(err, ErrNoAgent) {
				t.Fatalf("Token: %v", err)
			}
			st, err := b.Status(context.Background())
			if !errors.Is(err, ErrNoAgent) || st.OK || len(st.Lines) == 0 || !strings.Contains(st.Lines[0], tc.msg) {
				t.Fatalf("Status: %+v, %v", st, err)
			}
		})
	}
}

func TestLocate(t *testing.T) {
	tmp := socketDir(t)
	def := filepath.Join(tmp, "oidc-agent-service-4242", "oidc-agent.sock")
	if err := os.MkdirAll(filepath.Dir(def), 0o700); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", def)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tc := range []struct {
		name string
		vars map[string]string
		want Endpoint
	}{
		{"OIDC_SOCK", map[string]string{EnvSock: "/run/a.sock", EnvRemoteSock: "h", EnvTmpdir: tmp},
			Endpoint{"unix", "/run/a.sock", SourceSock}},
		{"remote without port", map[string]string{EnvRemoteSock: "agent.example.org"},
			Endpoint{"tcp", "agent.example.org:42424", SourceRemoteSock}},
		{"remote with port", map[string]string{EnvRemoteSock: "agent.example.org:5000", EnvTmpdir: tmp},
			Endpoint{"tcp", "agent.example.org:5000", SourceRemoteSock}},
		{"remote ipv6", map[string]string{EnvRemoteSock: "[::1]"}, Endpoint{"tcp", "[::1]:42424", SourceRemoteSock}},
		{"remote bare ipv6", map[string]string{EnvRemoteSock: "::1"}, Endpoint{"tcp", "[::1]:42424", SourceRemoteSock}},
		{"default service socket", map[string]string{EnvTmpdir: tmp}, Endpoint{"unix", def, SourceDefault}},
		{"blank OIDC_SOCK is unset", map[string]string{EnvSock: "  ", EnvTmpdir: tmp}, Endpoint{"unix", def, SourceDefault}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.vars
			got, err := Locate(Env{Getenv: func(k string) string { return m[k] }, UID: 4242})
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	if got := DefaultSocketPath(Env{UID: 7}); got != "/tmp/oidc-agent-service-7/oidc-agent.sock" {
		t.Fatalf("default path without TMPDIR: %s", got)
	}
	// The default socket actually answers through the whole stack.
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Read(make([]byte, 4096))
		_, _ = c.Write([]byte(`{"status":"success","info":["x"]}`))
	}()
	got, err := LoadedAccounts(context.Background(), Env{Getenv: func(k string) string { return map[string]string{EnvTmpdir: tmp}[k] }, UID: 4242})
	if err != nil || len(got) != 1 || got[0] != "x" {
		t.Fatalf("via default socket: %q %v", got, err)
	}
}

// With OIDC_SOCK and OIDC_REMOTE_SOCK both set, an account the local
// agent does not know is asked of the remote one, as liboidc-agent does.
func TestRemoteFallback(t *testing.T) {
	local := startFake(t, "unix", replyJSON(map[string]any{"status": "failure", "error": "No account configured with that short name"}))
	remote := startFake(t, "tcp", replyJSON(success("remote-token", testIssuer, 1900000000)))
	env := testEnv(t, map[string]string{EnvSock: local.addr, EnvRemoteSock: remote.addr})
	c, err := NewClient(env)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.Token(context.Background(), TokenRequest{Account: "central"})
	if err != nil || tok.AccessToken != "remote-token" {
		t.Fatalf("%v %v", tok, err)
	}
	if len(local.requests()) != 1 || len(remote.requests()) != 1 {
		t.Fatal("expected one request to each agent")
	}
	// When the remote is down, the local answer stands.
	down := testEnv(t, map[string]string{EnvSock: local.addr, EnvRemoteSock: "127.0.0.1:1"})
	c, _ = NewClient(down)
	_, err = c.Token(context.Background(), TokenRequest{Account: "central"})
	if !errors.Is(err, ErrUnknownAccount) {
		t.Fatalf("got %v", err)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
