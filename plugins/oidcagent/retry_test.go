package oidcagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
)

// queueListener listens on a new UNIX socket with listen(fd, 0), so that
// Linux queues a single connection, and accepts nothing until the test
// serves it. fill then takes that place, as a client the agent has not
// got to yet, until release.
func queueListener(t *testing.T) (ln net.Listener, path string, fill func() (release func())) {
	t.Helper()
	path = filepath.Join(socketDir(t), "agent.sock")
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), path)
	ln, err = net.FileListener(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	fill = func() func() {
		t.Helper()
		var queued []net.Conn
		release := func() {
			for _, c := range queued {
				c.Close()
			}
		}
		t.Cleanup(release)
		for range 8 {
			c, err := net.Dial("unix", path)
			if errors.Is(err, syscall.EAGAIN) {
				if len(queued) == 0 {
					t.Fatal("the queue was full before any connection")
				}
				return release
			}
			if err != nil {
				t.Fatal(err)
			}
			queued = append(queued, c)
		}
		t.Fatalf("%d connections queued with listen(fd, 0)", len(queued))
		return release
	}
	return ln, path, fill
}

// retryLog records the failures a client retried.
type retryLog struct {
	mu    sync.Mutex
	ops   []string
	errs  []error
	first chan struct{}
}

func newRetryLog() *retryLog { return &retryLog{first: make(chan struct{})} }

func (r *retryLog) observe(op string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, op)
	r.errs = append(r.errs, err)
	if len(r.ops) == 1 {
		close(r.first)
	}
}

func (r *retryLog) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ops)
}

func (r *retryLog) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprintf("%d retries %v", len(r.ops), r.errs)
}

// waitFirst waits for the first retry, bounded.
func (r *retryLog) waitFirst(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case <-r.first:
	case err := <-done:
		t.Fatalf("the call ended without retrying: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("no retry within 20s")
	}
}

func unixClient(path string, timeout time.Duration, log *retryLog) *Client {
	return &Client{Endpoint: Endpoint{Network: "unix", Address: path, Source: SourceSock}, Timeout: timeout, onRetry: log.observe}
}

// The agent's queue is full: the client retries until the agent gets to
// it, then is answered once.
func TestRetryQueueFullThenServed(t *testing.T) {
	ln, path, fill := queueListener(t)
	release := fill()
	log := newRetryLog()
	c := unixClient(path, 30*time.Second, log)
	done := make(chan error, 1)
	var tok *helper.Token
	go func() {
		var err error
		tok, err = c.Token(context.Background(), TokenRequest{Account: "wlcg"})
		done <- err
	}()
	log.waitFirst(t, done)
	// The agent gets going: it answers the queued connection (which sends
	// nothing and is closed) and then ours.
	release()
	jwt := makeJWT(map[string]any{"iss": "https://iam.example", "exp": time.Now().Add(time.Hour).Unix()})
	f := serveFake(t, ln, replyJSON(success(jwt, "https://iam.example", 0)))
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("after the queue drained: %v (%s)", err, log)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no answer 20s after the agent started serving (%s)", log)
	}
	if tok.AccessToken != jwt {
		t.Fatal("wrong token")
	}
	if n := len(f.requests()); n != 1 {
		t.Fatalf("the agent got %d requests, want 1", n)
	}
	for i, op := range log.ops {
		if op != "connect" || !errors.Is(log.errs[i], syscall.EAGAIN) {
			t.Fatalf("retried %s: %v", op, log.errs[i])
		}
	}
}

// The queue stays full: the call ends at its deadline with one line
// saying the agent is busy, and the fix.
func TestRetryQueueFullUntilDeadline(t *testing.T) {
	_, path, fill := queueListener(t)
	fill()
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		ctx     time.Duration // a context deadline earlier than the timeout
	}{
		{"profile timeout", 600 * time.Millisecond, 0},
		{"context deadline", 30 * time.Second, 500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := newRetryLog()
			c := unixClient(path, tc.timeout, log)
			ctx := context.Background()
			limit := tc.timeout
			if tc.ctx > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.ctx)
				defer cancel()
				limit = tc.ctx
			}
			start := time.Now()
			_, err := c.Token(ctx, TokenRequest{Account: "wlcg"})
			took := time.Since(start)
			if !errors.Is(err, ErrBusy) || !errors.Is(err, ErrTimeout) || helper.KindOf(err) != helper.KindUnavailable {
				t.Fatalf("got %v", err)
			}
			var he *helper.Error
			errors.As(err, &he)
			prefix := "oidc-agent at " + path + " (OIDC_SOCK) is busy/not answering: its queue of waiting requests stayed full for "
			rest, ok := strings.CutPrefix(he.Msg, prefix)
			if !ok || strings.Contains(he.Msg, "\n") || !strings.Contains(he.Fix, "raise timeout in the profile") {
				t.Fatalf("message %q fix %q", he.Msg, he.Fix)
			}
			// The time allowed: the timeout, or what was left of the
			// context's deadline when the call started.
			allowed, err := time.ParseDuration(strings.Fields(rest)[0])
			if err != nil || allowed > limit || allowed < limit-100*time.Millisecond {
				t.Fatalf("message %q: %v allowed, want about %v", he.Msg, allowed, limit)
			}
			// It gives up when the next try would start after the
			// deadline: at most retryMax early, never late.
			if took < limit-retryMax-10*time.Millisecond || took > limit+2*time.Second {
				t.Fatalf("gave up after %v with a %v deadline", took, limit)
			}
			if n := log.count(); n < 3 || !strings.Contains(he.Msg, fmt.Sprintf("(%d tries;", n)) {
				t.Fatalf("%s; message %q", log, he.Msg)
			}
		})
	}
}

// A caller that gives up while the client waits to retry is told so at
// once.
func TestRetryCancelled(t *testing.T) {
	_, path, fill := queueListener(t)
	fill()
	log := newRetryLog()
	c := unixClient(path, 30*time.Second, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Token(ctx, TokenRequest{Account: "wlcg"})
		done <- err
	}()
	log.waitFirst(t, done)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "cancelled") {
			t.Fatalf("got %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancellation did not end the call")
	}
}

// resetAgent accepts connections; the first drop of them are closed as
// soon as the request has arrived, unread (what a dying or restarting
// agent does to the connections in its queue), the others are answered.
type resetAgent struct {
	ln     net.Listener
	drop   int
	reply  []byte
	before []byte // written to a dropped connection before it is closed
	mu     sync.Mutex
	conns  int
	reqs   int
	wg     sync.WaitGroup
}

func startResetAgent(t *testing.T, network string, drop int, reply, before []byte) *resetAgent {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(socketDir(t), "agent.sock")
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	r := &resetAgent{ln: ln, drop: drop, reply: reply, before: before}
	r.wg.Add(1)
	go r.serve()
	t.Cleanup(func() { ln.Close(); r.wg.Wait() })
	return r
}

func (r *resetAgent) serve() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		r.conns++
		n := r.conns
		r.mu.Unlock()
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if n <= r.drop {
				waitReadable(c)
				if r.before != nil {
					_, _ = c.Write(r.before)
				}
				return // closed with the request unread: a reset
			}
			buf := make([]byte, 4096)
			if _, err := c.Read(buf); err != nil {
				return
			}
			r.mu.Lock()
			r.reqs++
			r.mu.Unlock()
			_, _ = c.Write(r.reply)
		}()
	}
}

// waitReadable waits until the peer's request has arrived, without
// reading it.
func waitReadable(c net.Conn) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	b := make([]byte, 1)
	_ = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), b, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return n > 0 || !errors.Is(err, syscall.EAGAIN)
	})
}

func (r *resetAgent) counts() (conns, reqs int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns, r.reqs
}

// On the UNIX socket, a reset before any reply byte means the agent never
// read the request: asked again. On TCP a server may reset after reading
// it: not asked again.
func TestRetryReset(t *testing.T) {
	jwt := makeJWT(map[string]any{"iss": "https://iam.example", "exp": time.Now().Add(time.Hour).Unix()})
	ok, _ := json.Marshal(success(jwt, "https://iam.example", 0))
	t.Run("unix: retried", func(t *testing.T) {
		r := startResetAgent(t, "unix", 2, ok, nil)
		log := newRetryLog()
		c := unixClient(r.ln.Addr().String(), 10*time.Second, log)
		tok, err := c.Token(context.Background(), TokenRequest{Account: "wlcg"})
		if err != nil || tok.AccessToken != jwt {
			t.Fatalf("got %v (%s)", err, log)
		}
		if conns, reqs := r.counts(); conns != 3 || reqs != 1 {
			t.Fatalf("%d connections, %d requests read; want 3 and 1", conns, reqs)
		}
		for i, op := range log.ops {
			if op != "read" && op != "write" || !errors.Is(log.errs[i], syscall.ECONNRESET) && !errors.Is(log.errs[i], syscall.EPIPE) {
				t.Fatalf("retried %s: %v", op, log.errs[i])
			}
		}
	})
	t.Run("tcp: not retried", func(t *testing.T) {
		r := startResetAgent(t, "tcp", 1, ok, nil)
		log := newRetryLog()
		c := &Client{Endpoint: Endpoint{Network: "tcp", Address: r.ln.Addr().String(), Source: SourceRemoteSock}, Timeout: 10 * time.Second, onRetry: log.observe}
		_, err := c.Token(context.Background(), TokenRequest{Account: "wlcg"})
		if !errors.Is(err, ErrBadReply) || !strings.Contains(err.Error(), "closed the connection without answering") {
			t.Fatalf("got %v", err)
		}
		if conns, _ := r.counts(); conns != 1 || log.count() != 0 {
			t.Fatalf("%d connections, %s", conns, log)
		}
	})
}

// What the agent answered, or may have acted on, is never asked again:
// exactly one request reaches it, and the call fails at once.
func TestRetryNever(t *testing.T) {
	jwt := makeJWT(map[string]any{"iss": "https://iam.example", "exp": time.Now().Add(time.Hour).Unix()})
	full, _ := json.Marshal(success(jwt, "https://iam.example", 0))
	for _, tc := range []struct {
		name   string
		handle func(net.Conn, map[string]any)
		is     error
		msg    string
	}{
		{"failure reply: account not loaded", replyJSON(map[string]any{"status": "failure", "error": "account not loaded"}), ErrNotLoaded, "oidc-add wlcg"},
		{"failure reply: no such account", replyJSON(map[string]any{"status": "failure", "error": "No account configured with that short name"}), ErrUnknownAccount, "oidc-gen wlcg"},
		{"request read, closed without a reply", func(net.Conn, map[string]any) {}, ErrBadReply, "closed the connection without answering"},
		{"reply cut off", replyRaw(full[:len(full)/2]), ErrBadReply, "sent a truncated reply"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFake(t, "unix", tc.handle)
			log := newRetryLog()
			c := unixClient(f.addr, 10*time.Second, log)
			start := time.Now()
			_, err := c.Token(context.Background(), TokenRequest{Account: "wlcg"})
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v", err)
			}
			if n := len(f.requests()); n != 1 || log.count() != 0 || time.Since(start) > 5*time.Second {
				t.Fatalf("%d requests, %s, after %v", n, log, time.Since(start))
			}
		})
	}

	t.Run("reply started, then reset", func(t *testing.T) {
		r := startResetAgent(t, "unix", 1, full, full[:10])
		log := newRetryLog()
		_, err := unixClient(r.ln.Addr().String(), 10*time.Second, log).Token(context.Background(), TokenRequest{Account: "wlcg"})
		if !errors.Is(err, ErrBadReply) || !strings.Contains(err.Error(), "closed the connection in the middle of its reply") {
			t.Fatalf("got %v", err)
		}
		if conns, _ := r.counts(); conns != 1 || log.count() != 0 {
			t.Fatalf("%d connections, %s", conns, log)
		}
	})

	t.Run("stale socket", func(t *testing.T) {
		stale := filepath.Join(socketDir(t), "stale.sock")
		ln, err := net.Listen("unix", stale)
		if err != nil {
			t.Fatal(err)
		}
		ln.(*net.UnixListener).SetUnlinkOnClose(false)
		ln.Close()
		log := newRetryLog()
		start := time.Now()
		_, err = unixClient(stale, 30*time.Second, log).Token(context.Background(), TokenRequest{Account: "wlcg"})
		if !errors.Is(err, ErrNoAgent) || !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "stale socket") {
			t.Fatalf("got %v", err)
		}
		if log.count() != 0 || time.Since(start) > 2*time.Second {
			t.Fatalf("%s after %v", log, time.Since(start))
		}
	})
}

// Which failures left the agent untouched.
func TestUntouched(t *testing.T) {
	op := func(o string, errno syscall.Errno) error {
		return &net.OpError{Op: o, Net: "unix", Err: os.NewSyscallError(o, errno)}
	}
	unix := Endpoint{Network: "unix"}
	tcp := Endpoint{Network: "tcp"}
	for _, tc := range []struct {
		name string
		got  *untouched
		want bool
	}{
		{"connect EAGAIN", dialUntouched(op("dial", syscall.EAGAIN)), true},
		{"connect ECONNREFUSED", dialUntouched(op("dial", syscall.ECONNREFUSED)), false},
		{"connect ENOENT", dialUntouched(op("dial", syscall.ENOENT)), false},
		{"connect EACCES", dialUntouched(op("dial", syscall.EACCES)), false},
		{"write EPIPE, nothing written", writeUntouched(0, op("write", syscall.EPIPE)), true},
		{"write ECONNRESET, nothing written", writeUntouched(0, op("write", syscall.ECONNRESET)), true},
		{"write EPIPE after part of the request", writeUntouched(5, op("write", syscall.EPIPE)), false},
		{"write EIO", writeUntouched(0, op("write", syscall.EIO)), false},
		{"unix read ECONNRESET, no reply byte", readUntouched(unix, 0, op("read", syscall.ECONNRESET)), true},
		{"unix read ECONNRESET after reply bytes", readUntouched(unix, 1, op("read", syscall.ECONNRESET)), false},
		{"unix EOF, no reply byte", readUntouched(unix, 0, io.EOF), false},
		{"tcp read ECONNRESET, no reply byte", readUntouched(tcp, 0, op("read", syscall.ECONNRESET)), false},
	} {
		if (tc.got != nil) != tc.want {
			t.Errorf("%s: untouched %v, want %v", tc.name, tc.got != nil, tc.want)
		}
	}
}

func TestRetryDelay(t *testing.T) {
	for n := 1; n <= 40; n++ {
		top := retryMax
		if n < 6 {
			top = min(retryFirst<<(n-1), retryMax)
		}
		for range 50 {
			if d := retryDelay(n); d < top/2 || d > top {
				t.Fatalf("try %d: delay %v outside [%v, %v]", n, d, top/2, top)
			}
		}
	}
}
