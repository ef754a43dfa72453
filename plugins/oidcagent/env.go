package oidcagent

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
)

// Environment variables read through Env.Getenv.
const (
	EnvSock       = "OIDC_SOCK"        // path of the agent's UNIX socket
	EnvRemoteSock = "OIDC_REMOTE_SOCK" // host[:port] of an oidc-agent-server
	EnvTmpdir     = "TMPDIR"           // base of the 5.x service socket path
)

// DefaultRemotePort is the oidc-agent-server port used when
// OIDC_REMOTE_SOCK names no port.
const DefaultRemotePort = "42424"

// Where an Endpoint was found (Endpoint.Source).
const (
	SourceSock       = EnvSock
	SourceRemoteSock = EnvRemoteSock
	SourceDefault    = "default"
)

// startFix is what to do when no agent answers.
const startFix = "start it with eval $(oidc-agent-service use) or eval $(oidc-agent)"

// Env is the part of the process environment the backend reads. It is
// injected so tests never see the machine's real agent.
type Env struct {
	// Getenv returns an environment variable; nil means an empty
	// environment.
	Getenv func(key string) string
	// UID is the user id in the default socket path.
	UID int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// OSEnv returns the environment of the current process.
func OSEnv() Env {
	return Env{Getenv: os.Getenv, UID: os.Getuid(), Now: time.Now}
}

func (e Env) get(key string) string {
	if e.Getenv == nil {
		return ""
	}
	return strings.TrimSpace(e.Getenv(key))
}

// Endpoint is where an agent listens.
type Endpoint struct {
	// Network is "unix" or "tcp".
	Network string
	// Address is the socket path or host:port.
	Address string
	// Source says how it was found: SourceSock, SourceRemoteSock or
	// SourceDefault.
	Source string
}

// String describes the endpoint for people: "/run/x/agent.sock
// (OIDC_SOCK)", "host:42424 (OIDC_REMOTE_SOCK)".
func (e Endpoint) String() string {
	src := e.Source
	if src == SourceDefault {
		src = "oidc-agent-service default"
	}
	return e.Address + " (" + src + ")"
}

// DefaultSocketPath is the socket oidc-agent-service (oidc-agent 5.x)
// creates: $TMPDIR/oidc-agent-service-$UID/oidc-agent.sock.
func DefaultSocketPath(env Env) string {
	tmp := env.get(EnvTmpdir)
	if tmp == "" {
		tmp = "/tmp"
	}
	return filepath.Join(tmp, "oidc-agent-service-"+strconv.Itoa(env.UID), "oidc-agent.sock")
}

// Locate finds the agent the way oidc-agent's clients do: OIDC_SOCK, else
// OIDC_REMOTE_SOCK, else the oidc-agent-service default socket if it
// exists. It does not connect. With none of them it fails with
// KindUnavailable (cause ErrNoAgent).
func Locate(env Env) (Endpoint, error) {
	if p := env.get(EnvSock); p != "" {
		return Endpoint{Network: "unix", Address: p, Source: SourceSock}, nil
	}
	if r := env.get(EnvRemoteSock); r != "" {
		return remoteEndpoint(r), nil
	}
	def := DefaultSocketPath(env)
	fi, err := os.Stat(def)
	if err == nil && fi.Mode().Type() == fs.ModeSocket {
		return Endpoint{Network: "unix", Address: def, Source: SourceDefault}, nil
	}
	return Endpoint{}, &helper.Error{
		Kind: helper.KindUnavailable,
		Msg:  "oidc-agent is not running (OIDC_SOCK is not set and there is no socket at " + def + ")",
		Fix:  startFix + ", or set OIDC_SOCK to a running agent's socket",
		Err:  ErrNoAgent,
	}
}

// remoteEndpoint turns OIDC_REMOTE_SOCK's host[:port] into a TCP address.
func remoteEndpoint(v string) Endpoint {
	addr := v
	if _, _, err := net.SplitHostPort(v); err != nil {
		host := strings.TrimSuffix(strings.TrimPrefix(v, "["), "]")
		addr = net.JoinHostPort(host, DefaultRemotePort)
	}
	return Endpoint{Network: "tcp", Address: addr, Source: SourceRemoteSock}
}

// Causes in the chain of the *helper.Error values this package returns,
// for callers that act on the precise reason (errors.Is).
var (
	// ErrNoAgent: no agent answers (socket unset, missing, stale,
	// refused, not a socket, permission denied).
	ErrNoAgent = errors.New("oidc-agent not reachable")
	// ErrTimeout: the agent did not answer before the deadline (often a
	// password popup waiting for the user).
	ErrTimeout = errors.New("oidc-agent did not answer in time")
	// ErrBusy: the agent's queue of waiting connections stayed full (or
	// it dropped the request unread) until the deadline; ErrTimeout is in
	// the chain too.
	ErrBusy = errors.New("oidc-agent busy")
	// ErrBadReply: the reply was malformed, truncated, oversized or cut
	// off by the agent closing the connection.
	ErrBadReply = errors.New("bad reply from oidc-agent")
	// ErrNotLoaded: the account exists but is not loaded (oidc-add).
	ErrNotLoaded = errors.New("account not loaded in oidc-agent")
	// ErrUnknownAccount: the agent has no account of that short name
	// (oidc-gen).
	ErrUnknownAccount = errors.New("no such oidc-agent account")
	// ErrAgentFailure: any other failure reply of the agent.
	ErrAgentFailure = errors.New("oidc-agent failure reply")
)
