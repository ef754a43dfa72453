package oidcagent

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"syscall"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
)

// Retries of connection failures that left the agent untouched.
//
// What counts as such a failure was decided from what oidc-agent 4.2.6
// (Debian oidc-agent-cli) and Linux did when many clients asked at once,
// seen with strace on both sides:
//
//   - The agent listens with a backlog of 5 (listen(fd, 5)) and serves
//     one request at a time; Linux then queues at most 6 connections.
//     Go's sockets are non-blocking, so a connect to a full queue fails at
//     once with EAGAIN ("resource temporarily unavailable"), where
//     oidc-token's blocking connect sleeps in the kernel until there is
//     room. EAGAIN at connect was every failure of 8, 32 and 100
//     simultaneous requests (11%, 77% and 87% of them failed without
//     retries); the agent answered every connection it accepted.
//   - Connections waiting in that queue with the request written, when
//     the agent dies or restarts: the read fails with ECONNRESET before
//     any reply byte. Linux resets a UNIX stream peer only when it closes
//     with the peer's data unread (or never accepted it), so the agent
//     never saw the request.
//   - A queued connection whose agent died before the request was
//     written: the write fails with EPIPE, nothing delivered.
//
// Not retried, so that a request is never made twice and a real answer or
// a dead agent is reported at once:
//
//   - ECONNREFUSED or ENOENT on the UNIX socket: nothing listens (the
//     stale socket of a dead agent, or none). The queue being full is
//     never reported this way.
//   - EOF before any reply byte: the agent read the request and closed
//     (seen only when it died inside a request). It may have refreshed at
//     the provider; asking again could refresh twice.
//   - Anything once a reply byte arrived, and every reply of the agent
//     (a failure reply such as "account not loaded" is its answer).
//   - ECONNRESET on TCP (OIDC_REMOTE_SOCK): a TCP server may reset after
//     reading the request. On TCP a full queue delays the connect instead
//     of failing it, so only EAGAIN at connect and a write that delivered
//     nothing are retried there.
//
// Retries wait retryFirst, doubling up to retryMax, jittered, and stop
// when the next one would start after the request's deadline.
const (
	retryFirst = 2 * time.Millisecond
	retryMax   = 50 * time.Millisecond
)

// untouched is a failure that left the agent untouched: the request did
// not reach it, so asking again cannot make it act twice.
type untouched struct {
	op  string // "connect", "write" or "read"
	err error
}

func (u *untouched) Error() string { return u.op + ": " + u.err.Error() }
func (u *untouched) Unwrap() error { return u.err }

// dialUntouched classifies a failed connect.
func dialUntouched(err error) *untouched {
	if errors.Is(err, syscall.EAGAIN) {
		return &untouched{op: "connect", err: err}
	}
	return nil
}

// writeUntouched classifies a failed write of the request; n bytes went
// out.
func writeUntouched(n int, err error) *untouched {
	if n == 0 && (errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)) {
		return &untouched{op: "write", err: err}
	}
	return nil
}

// readUntouched classifies a failed read after the request was written;
// got reply bytes had arrived.
func readUntouched(ep Endpoint, got int, err error) *untouched {
	if got == 0 && ep.Network == "unix" && errors.Is(err, syscall.ECONNRESET) {
		return &untouched{op: "read", err: err}
	}
	return nil
}

// retryDelay is the pause after the n-th failed try (n >= 1): retryFirst
// doubling up to retryMax, the upper half random so that clients that
// failed together do not come back together.
func retryDelay(n int) time.Duration {
	d := retryMax
	if n <= 16 {
		d = min(retryFirst<<(n-1), retryMax)
	}
	return d/2 + rand.N(d/2+1)
}

// busyError reports an agent that kept refusing or dropping the request
// untouched until the deadline.
func busyError(ep Endpoint, budget time.Duration, tries int, last *untouched) *helper.Error {
	what := "its queue of waiting requests stayed full"
	if last.op != "connect" {
		what = "it kept dropping the request unread"
	}
	return &helper.Error{Kind: helper.KindUnavailable,
		Msg: fmt.Sprintf("oidc-agent at %s is busy/not answering: %s for %s (%d tries; it serves one request at a time)",
			ep, what, roundDuration(budget), tries),
		Fix: "answer the oidc-agent popup if one is open; if many jobs ask at once, raise timeout in the profile or start them spread out",
		Err: fmt.Errorf("%w: %w: %w", ErrBusy, ErrTimeout, last.err)}
}
