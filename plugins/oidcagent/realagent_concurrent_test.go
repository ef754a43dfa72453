package oidcagent

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/integrations/testbed"
)

// burst makes n Token calls at once, each through its own Backend as n
// tokenhelper processes would, and returns their tokens and errors and
// how many connection failures were retried.
func burst(t *testing.T, a *realAgent, n int, req helper.Request, timeout time.Duration) ([]*helper.Token, []error, int64) {
	t.Helper()
	toks := make([]*helper.Token, n)
	errs := make([]error, n)
	var retries atomic.Int64
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		b, err := New(&config.Profile{Name: "wlcg", Account: "wlcg", Timeout: config.Duration(timeout)}, a.env(t))
		if err != nil {
			t.Fatal(err)
		}
		b.client.onRetry = func(string, error) { retries.Add(1) }
		wg.Go(func() {
			<-start
			toks[i], errs[i] = b.Token(context.Background(), req)
		})
	}
	close(start)
	wg.Wait()
	return toks, errs, retries.Load()
}

// failures fails the test listing the distinct errors of a burst.
func failures(t *testing.T, what string, errs []error) {
	t.Helper()
	seen := map[string]int{}
	n := 0
	for _, err := range errs {
		if err != nil {
			n++
			seen[err.Error()]++
		}
	}
	if n == 0 {
		return
	}
	var lines []string
	for msg, c := range seen {
		lines = append(lines, strings.Repeat(" ", 4)+strconv.Itoa(c)+"× "+msg)
	}
	t.Fatalf("%s: %d of %d calls failed:\n%s", what, n, len(errs), strings.Join(lines, "\n"))
}

// Many jobs ask the real agent at once. oidc-agent 4.2.6 listens with a
// backlog of 5 and serves one request at a time: without retries 11% of 8,
// 77% of 32 and 87% of 100 simultaneous calls failed with EAGAIN at
// connect. Every call must now succeed, and none may reach the agent
// twice.
func TestRealAgentConcurrent(t *testing.T) {
	a := startRealAgent(t, promptCancel)
	tb := testbed.Start(t, testbed.Options{HTTPS: true})
	a.addAccount(t, tb, "wlcg", "alice", aliceScopes)
	warm, errs, _ := burst(t, a, 1, helper.Request{}, 30*time.Second)
	failures(t, "first token", errs)

	for _, n := range []int{8, 32, 100} {
		t.Run("cached x"+strconv.Itoa(n), func(t *testing.T) {
			tb.ResetCounters()
			start := time.Now()
			toks, errs, retries := burst(t, a, n, helper.Request{}, 30*time.Second)
			failures(t, "cached tokens", errs)
			for _, tok := range toks {
				if tok.AccessToken != warm[0].AccessToken {
					t.Fatal("a call got another token than the agent's cached one")
				}
			}
			if r := tb.Counters().Grant("refresh"); r != 0 {
				t.Fatalf("%d refreshes for cached tokens", r)
			}
			t.Logf("%d simultaneous calls answered in %v (%d retries)", n, time.Since(start).Round(time.Millisecond), retries)
		})
	}

	// Forced: each request makes the agent refresh at the provider, one
	// after the other, for a good part of a second. 16 is more than the
	// agent queues, so calls must retry (cached ones may be served faster
	// than the race detector lets them arrive); the provider must see
	// exactly one refresh per call.
	t.Run("forced x16", func(t *testing.T) {
		const n = 16
		tb.ResetCounters()
		start := time.Now()
		toks, errs, retries := burst(t, a, n, helper.Request{Force: true}, 2*time.Minute)
		failures(t, "forced tokens", errs)
		if retries == 0 {
			t.Fatal("no call found the queue full: the retry path was not exercised")
		}
		if r := tb.Counters().Grant("refresh"); r != n {
			t.Fatalf("%d refreshes for %d forced calls", r, n)
		}
		jtis := map[any]bool{}
		for _, tok := range toks {
			jtis[claims(t, tok.AccessToken)["jti"]] = true
		}
		if len(jtis) != n {
			t.Fatalf("%d distinct tokens for %d forced calls", len(jtis), n)
		}
		t.Logf("%d simultaneous forced calls answered in %v (%d retries)", n, time.Since(start).Round(time.Millisecond), retries)
	})
}

// The agent is stopped (as when it waits on a popup, or hangs): of many
// calls, those that got into its queue time out waiting for the reply and
// the others find the queue full until their deadline. All end at the
// deadline with one line and the fix; the agent, continued, answers again.
func TestRealAgentConcurrentStalled(t *testing.T) {
	a := startRealAgent(t, promptCancel)
	tb := testbed.Start(t, testbed.Options{HTTPS: true})
	a.addAccount(t, tb, "wlcg", "alice", aliceScopes)
	if err := syscall.Kill(-a.cmd.Process.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	cont := func() { _ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGCONT) }
	defer cont()
	const n, timeout = 16, time.Second
	start := time.Now()
	_, errs, _ := burst(t, a, n, helper.Request{}, timeout)
	took := time.Since(start)
	busy, waited := 0, 0
	for _, err := range errs {
		var he *helper.Error
		if !errors.As(err, &he) || he.Kind != helper.KindUnavailable || he.Fix == "" || !errors.Is(err, ErrTimeout) {
			t.Fatalf("stalled agent: %v", err)
		}
		switch {
		case errors.Is(err, ErrBusy):
			busy++
			if !strings.Contains(he.Msg, "is busy/not answering: its queue of waiting requests stayed full for 1s") {
				t.Fatalf("busy message %q", he.Msg)
			}
		case strings.Contains(he.Msg, "did not answer within 1s"):
			waited++
		default:
			t.Fatalf("stalled agent: %v", err)
		}
	}
	// Linux queues backlog+1 = 6 connections for the agent.
	if busy == 0 || waited == 0 || took > timeout+3*time.Second {
		t.Fatalf("%d busy, %d waited for a reply, after %v", busy, waited, took)
	}
	cont()
	// The agent answers the queued requests of callers that gave up, then
	// ours.
	_, errs, _ = burst(t, a, 8, helper.Request{}, 30*time.Second)
	failures(t, "after the agent continued", errs)
}
