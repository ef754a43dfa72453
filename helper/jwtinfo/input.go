package jwtinfo

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"github.com/tokenhelper/tokenhelper/helper"
)

// MaxTokenInput is the most ReadArg reads from a file or stdin. Real
// tokens are a few KiB (XRootD accepts at most 4096 bytes).
const MaxTokenInput = 64 << 10

// minOpaque is the shortest argument ReadArg takes for an opaque token
// rather than a missing file name.
const minOpaque = 32

// Input is a token read by ReadArg.
type Input struct {
	Raw string // the token; a secret, never print it
	// Source says where it came from: "stdin", "file <path>" or
	// "command line".
	Source string
	// FromArgv is true when the token was given as a command-line
	// argument, where shell history and `ps` can see it.
	FromArgv bool
	// Notes are advice for the user about how the token was given (on the
	// command line; in a file others can read). Print them on stderr.
	Notes []string
}

const argvNote = "the token was given on the command line, where shell history and ps can see it; prefer a file or - (stdin)"

// String keeps the token out of fmt output.
func (in Input) String() string { return "jwtinfo.Input(" + in.Source + ")" }

// GoString keeps %#v from printing the token.
func (in Input) GoString() string { return in.String() }

// ReadArg resolves the argument of `tokenhelper inspect [TOKEN|FILE|-]`:
//
//   - "-": the token is read from stdin.
//   - a string that is a JWT: the token itself (FromArgv).
//   - otherwise the name of a file holding the token; a name that does
//     not exist but is a syntactically valid bearer token of 32 or more
//     characters without "/" is taken as an opaque token (FromArgv).
//
// At most MaxTokenInput bytes are read; surrounding whitespace is left for
// Parse to strip. Errors are *helper.Error (KindNoToken for a missing or
// unreadable file, KindInvalidToken for oversized input) and never contain
// the argument when it may be a token.
func ReadArg(arg string, stdin io.Reader) (Input, error) {
	if arg == "-" {
		if stdin == nil {
			return Input{}, &helper.Error{Kind: helper.KindUsage, Msg: "no stdin to read the token from"}
		}
		raw, err := readBounded(stdin, "stdin")
		return Input{Raw: raw, Source: "stdin"}, err
	}
	if looksLikeJWT(arg) {
		return Input{Raw: arg, Source: "command line", FromArgv: true, Notes: []string{argvNote}}, nil
	}
	f, err := os.Open(arg)
	if err != nil {
		notFile := errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENAMETOOLONG)
		tokenish := len(arg) >= minOpaque && helper.IsB64Token(strings.TrimFunc(arg, isCSpace)) && !strings.Contains(arg, "/")
		if notFile && tokenish {
			return Input{Raw: arg, Source: "command line", FromArgv: true, Notes: []string{argvNote}}, nil
		}
		name := fmt.Sprintf("%q", arg) // a path, not a token: safe to show
		if tokenish {
			name = fmt.Sprintf("(an argument of %d characters)", len(arg))
		}
		if notFile {
			return Input{}, &helper.Error{Kind: helper.KindNoToken, Err: err,
				Msg: fmt.Sprintf("no such token file: %s", name),
				Fix: "give a token file, - for stdin, or no argument to use WLCG bearer token discovery"}
		}
		return Input{}, &helper.Error{Kind: helper.KindNoToken, Err: err,
			Msg: fmt.Sprintf("cannot read the token file %s: %s", name, errText(err)),
			Fix: "check the file's permissions"}
	}
	defer f.Close()
	in := Input{Source: "file " + arg}
	if st, err := f.Stat(); err == nil {
		if st.IsDir() {
			return Input{}, &helper.Error{Kind: helper.KindNoToken,
				Msg: fmt.Sprintf("%q is a directory, not a token file", arg),
				Fix: "give the token file inside it"}
		}
		if perm := st.Mode().Perm(); st.Mode().IsRegular() && perm&0o077 != 0 {
			in.Notes = append(in.Notes, fmt.Sprintf("%q is readable or writable by other users (mode %04o): run chmod 600 %q (XRootD refuses such token files)", arg, perm, arg))
		}
	}
	var err2 error
	in.Raw, err2 = readBounded(f, fmt.Sprintf("%q", arg))
	if err2 != nil {
		return Input{}, err2
	}
	return in, nil
}

func readBounded(r io.Reader, what string) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxTokenInput+1))
	if err != nil {
		return "", &helper.Error{Kind: helper.KindNoToken, Err: err,
			Msg: fmt.Sprintf("cannot read the token from %s: %s", what, errText(err))}
	}
	if len(b) > MaxTokenInput {
		return "", &helper.Error{Kind: helper.KindInvalidToken,
			Msg: fmt.Sprintf("%s holds more than %d KiB: that is not a bearer token", what, MaxTokenInput>>10),
			Fix: "give the file that holds only the token"}
	}
	return string(b), nil
}

// errText is the OS reason of a file error without the path (which the
// caller already shows).
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// looksLikeJWT: three dot-separated parts, the first a base64url JSON
// object (what no file name looks like).
func looksLikeJWT(s string) bool {
	s = strings.TrimFunc(s, isCSpace)
	parts := strings.Split(s, ".")
	if len(parts) != 3 && len(parts) != 5 {
		return false
	}
	_, ok := decodeObject(parts[0])
	return ok
}
