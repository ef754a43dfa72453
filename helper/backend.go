package helper

import (
	"context"
	"io"
	"time"
)

// Backend is a source of access tokens. Every built-in backend (file,
// native, oidc-agent) and every external plugin implements it.
//
// Token must honour ctx's deadline, must not prompt unless
// req.Interactive, and returns *Error values whose Kind tells the caller
// what to do. Backends do not cache access tokens themselves: the cache in
// helper/cache sits in front of them.
type Backend interface {
	Token(ctx context.Context, req Request) (*Token, error)
}

// Loginer is implemented by backends that can establish a session with a
// person (device flow, password, ...).
type Loginer interface {
	Login(ctx context.Context, req LoginRequest) (*Token, error)
}

// Logouter is implemented by backends that hold a session to end.
type Logouter interface {
	Logout(ctx context.Context, req LogoutRequest) error
}

// Statuser is implemented by backends that can describe their state
// (reachability, loaded accounts, session expiry) without handing out a
// token.
type Statuser interface {
	Status(ctx context.Context) (Status, error)
}

// LoginRequest carries what an interactive login needs.
type LoginRequest struct {
	Request
	// Flow selects the grant: "" (backend default), "device", "password",
	// "client-credentials".
	Flow string
	// UI is where the backend talks to the person. Nil when there is none.
	UI UI
}

// LogoutRequest carries what a logout needs.
type LogoutRequest struct {
	Profile string
	// Forget deletes local state without contacting the provider and
	// without needing the passphrase.
	Forget bool
	UI     UI
}

// Status is a backend's self-description for `tokenhelper status`.
type Status struct {
	Backend string
	// OK is true when the backend can hand out a token without a person.
	OK bool
	// Lines are human-readable facts ("agent reachable at ...",
	// "session expires in 29d").
	Lines []string
	// SessionExpiry is when the refresh token (or equivalent) expires;
	// zero when unknown or not applicable.
	SessionExpiry time.Time
}

// UI is how a backend talks to a person during login. Implementations
// write to stderr; stdout stays clean for protocol output.
type UI interface {
	// Out is where progress messages go (normally stderr).
	Out() io.Writer
	// Terminal reports whether a person can answer prompts.
	Terminal() bool
	// Secret reads a secret (passphrase) without echo. It fails with
	// KindLoginNeeded when there is no terminal.
	Secret(prompt string) (string, error)
	// Now is the clock (injected in tests).
	Now() time.Time
}

// Clock is an injectable source of time.
type Clock interface{ Now() time.Time }

// SystemClock is the real clock.
type SystemClock struct{}

func (SystemClock) Now() time.Time { return time.Now() }
