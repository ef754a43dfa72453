package helper

import (
	"errors"
	"fmt"
)

// Kind classifies an error by what the user (or a calling program) should
// do about it. Each kind has a documented exit code.
type Kind int

// The kinds, in the order of their exit codes. Keep docs/exit-codes in the
// README in step with this list.
const (
	KindInternal     Kind = iota + 1 // 1: a bug or an unexpected local failure
	KindUsage                        // 2: bad command line
	KindConfig                       // 3: bad or missing configuration
	KindLoginNeeded                  // 4: no usable token without a person: run tokenhelper login
	KindUnavailable                  // 5: provider, agent or plugin unreachable, timed out or failing
	KindNoToken                      // 6: no token found, or the token found is expired
	KindInvalidToken                 // 7: a token that is malformed or fails verification
	KindUnsafe                       // 8: refused for safety: file permissions, foreign owner, symlink
	KindDenied                       // 9: the provider refused (access_denied, invalid scope, ...)
	KindNoProfile                    // 10: no profile serves this URL or name
)

// ExitCode returns the process exit code for the kind.
func (k Kind) ExitCode() int {
	if k < KindInternal || k > KindNoProfile {
		return 1
	}
	return int(k)
}

// String names the kind (used in --json error output and docs).
func (k Kind) String() string {
	switch k {
	case KindInternal:
		return "internal"
	case KindUsage:
		return "usage"
	case KindConfig:
		return "config"
	case KindLoginNeeded:
		return "login-needed"
	case KindUnavailable:
		return "unavailable"
	case KindNoToken:
		return "no-token"
	case KindInvalidToken:
		return "invalid-token"
	case KindUnsafe:
		return "unsafe"
	case KindDenied:
		return "denied"
	case KindNoProfile:
		return "no-profile"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Error is the error type callers act on. Msg says what happened; Fix says
// what to do (a command to run or a config key to set). Neither ever
// contains token material.
type Error struct {
	Kind Kind
	Msg  string
	Fix  string
	Err  error // the underlying cause, for errors.Is/As; may be nil
}

func (e *Error) Error() string {
	s := e.Msg
	if e.Err != nil && e.Msg == "" {
		s = e.Err.Error()
	}
	if e.Fix != "" {
		s += ": " + e.Fix
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, &Error{Kind: K}) match any Error of kind K.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Msg == "" && t.Fix == "" && t.Err == nil && t.Kind == e.Kind
}

// Errorf builds an *Error of kind k with a formatted message.
func Errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}

// WithFix returns e with its Fix set.
func (e *Error) WithFix(format string, args ...any) *Error {
	e.Fix = fmt.Sprintf(format, args...)
	return e
}

// Wrap returns an *Error of kind k whose message is msg and whose cause is
// err. The cause's text is NOT part of Error(): causes from libraries may
// echo request or response bodies. Put safe detail into msg yourself.
func Wrap(k Kind, err error, msg string) *Error {
	return &Error{Kind: k, Msg: msg, Err: err}
}

// KindOf returns the kind of the first *Error in err's chain, or
// KindInternal when there is none.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// IsKind reports whether err has an *Error of kind k in its chain.
func IsKind(err error, k Kind) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == k
}

// ExitCode maps any error to the documented process exit code (0 for nil).
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	return KindOf(err).ExitCode()
}

// LoginNeeded builds the standard "run tokenhelper login" error for a profile.
func LoginNeeded(profile, why string) *Error {
	fix := "run: tokenhelper login"
	if profile != "" {
		fix += " -p " + profile
	}
	return &Error{Kind: KindLoginNeeded, Msg: why, Fix: fix}
}
