package oidcagent

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAgent is a stand-in oidc-agent on a real socket: it reads one
// request per connection, as the agent does, records it and lets handle
// answer (or misbehave).
type fakeAgent struct {
	ln     net.Listener
	addr   string
	done   chan struct{} // closed at cleanup: releases blocked handlers
	mu     sync.Mutex
	reqs   []map[string]any
	wg     sync.WaitGroup
	handle func(c net.Conn, req map[string]any)
}

// socketDir returns a private directory whose socket paths fit in
// sun_path (108 bytes), in t.TempDir() when its name is short enough.
func socketDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	if len(d) < 80 {
		return d
	}
	d, err := os.MkdirTemp("", "oa")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func startFake(t *testing.T, network string, handle func(c net.Conn, req map[string]any)) *fakeAgent {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(socketDir(t), "agent.sock")
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	return serveFake(t, ln, handle)
}

// serveFake runs a fake agent on ln until the test ends.
func serveFake(t *testing.T, ln net.Listener, handle func(c net.Conn, req map[string]any)) *fakeAgent {
	t.Helper()
	f := &fakeAgent{ln: ln, addr: ln.Addr().String(), done: make(chan struct{}), handle: handle}
	f.wg.Add(1)
	go f.serve()
	t.Cleanup(func() {
		close(f.done)
		ln.Close()
		f.wg.Wait()
	})
	return f
}

func (f *fakeAgent) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer c.Close()
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 64<<10)
			n, err := c.Read(buf) // one read, like oidc-agent
			if err != nil {
				return
			}
			var req map[string]any
			if err := json.Unmarshal(buf[:n], &req); err != nil {
				req = map[string]any{"unparsable": string(buf[:n])}
			}
			f.mu.Lock()
			f.reqs = append(f.reqs, req)
			f.mu.Unlock()
			_ = c.SetReadDeadline(time.Time{})
			f.handle(c, req)
		}()
	}
}

func (f *fakeAgent) requests() []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]any(nil), f.reqs...)
}

// env returns an Env that points OIDC_SOCK (unix) or OIDC_REMOTE_SOCK
// (tcp) at the fake, with TMPDIR somewhere empty.
func (f *fakeAgent) env(t *testing.T) Env {
	if f.ln.Addr().Network() == "unix" {
		return testEnv(t, map[string]string{EnvSock: f.addr})
	}
	return testEnv(t, map[string]string{EnvRemoteSock: f.addr})
}

// testEnv is an Env with exactly vars set (TMPDIR defaults to a fresh
// empty directory so the machine's real default socket is never seen).
func testEnv(t *testing.T, vars map[string]string) Env {
	m := map[string]string{EnvTmpdir: t.TempDir()}
	for k, v := range vars {
		m[k] = v
	}
	return Env{Getenv: func(k string) string { return m[k] }, UID: 4242}
}

// reply writes v as JSON and returns, closing the connection.
func replyJSON(v any) func(net.Conn, map[string]any) {
	return func(c net.Conn, _ map[string]any) {
		b, _ := json.Marshal(v)
		_, _ = c.Write(b)
	}
}

func replyRaw(b []byte) func(net.Conn, map[string]any) {
	return func(c net.Conn, _ map[string]any) { _, _ = c.Write(b) }
}

// makeJWT builds an unsigned-looking JWS with the given claims.
func makeJWT(claims map[string]any) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]any{"alg": "RS256", "typ": "JWT", "kid": "k1"}) + "." + enc(claims) + ".c2lnbmF0dXJlLW5vdC1jaGVja2Vk"
}

func success(tok string, iss string, expiresAt int64) map[string]any {
	return map[string]any{"status": "success", "access_token": tok, "issuer": iss, "expires_at": expiresAt}
}

// assertNoLeak fails if any secret shows in err's text, its formatted
// forms, or any error in its chain.
func assertNoLeak(t *testing.T, err error, secrets ...string) {
	t.Helper()
	var texts []string
	var walk func(e error)
	walk = func(e error) {
		if e == nil {
			return
		}
		texts = append(texts, e.Error(), fmt.Sprintf("%v|%+v|%#v|%s", e, e, e, e))
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		}
	}
	walk(err)
	for _, s := range secrets {
		if s == "" {
			continue
		}
		probe := s
		if len(probe) > 24 {
			probe = probe[len(probe)/2 : len(probe)/2+16] // any fragment is a leak
		}
		for _, txt := range texts {
			if strings.Contains(txt, probe) {
				t.Fatalf("error text leaks secret material: %q", txt)
			}
		}
	}
}
