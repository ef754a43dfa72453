package discovery

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/safefile"
)

// Source is the discovery step a token came from.
type Source string

// The four steps, in order. SourcePath is not a discovery step: it marks a
// Result of ReadFile.
const (
	SourceBearerToken     Source = "BEARER_TOKEN"
	SourceBearerTokenFile Source = "BEARER_TOKEN_FILE"
	SourceXDGRuntimeDir   Source = "XDG_RUNTIME_DIR"
	SourceTmp             Source = "TMP"
	SourcePath            Source = "PATH"
)

// State is what a discovery step found.
type State int

// States of a Location. Unset, Empty and Missing move on to the next step;
// Found, Invalid and Failed stop discovery.
const (
	StateUnset   State = iota // the variable is not set
	StateEmpty                // variable set to ""; value or file blank after trimming
	StateMissing              // the file does not exist
	StateFound                // a valid token
	StateInvalid              // something that is not a valid token (or too large)
	StateFailed               // the file exists but cannot be read, or is refused as unsafe
)

func (s State) String() string {
	switch s {
	case StateUnset:
		return "unset"
	case StateEmpty:
		return "empty"
	case StateMissing:
		return "missing"
	case StateFound:
		return "found"
	case StateInvalid:
		return "invalid"
	case StateFailed:
		return "failed"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// Stops reports whether discovery ends at a step in this state.
func (s State) Stops() bool { return s >= StateFound }

// WarningCode classifies a Warning.
type WarningCode string

// Warning codes.
const (
	// WarnPermissions: the file has group/other permission bits; xrootd
	// refuses it ("excessive permissions").
	WarnPermissions WarningCode = "permissions"
	// WarnXrootdSize: file over 4096 bytes or token of 4096 bytes or more;
	// the xrootd client refuses it.
	WarnXrootdSize WarningCode = "xrootd-size"
	// WarnWhitespace: BEARER_TOKEN has surrounding whitespace; gfal2's
	// HTTP plugin sends it untrimmed (HTTP 400).
	WarnWhitespace WarningCode = "whitespace"
	// WarnTokenInFileVar: BEARER_TOKEN_FILE holds what looks like a token
	// instead of a file name.
	WarnTokenInFileVar WarningCode = "token-in-file-var"
)

// Warning is a fact about a found token that makes some consumer fail.
// Msg and Fix never contain token material.
type Warning struct {
	Code WarningCode
	Msg  string // what is wrong, one line
	Fix  string // what to do
}

func (w Warning) String() string {
	if w.Fix == "" {
		return w.Msg
	}
	return w.Msg + ": " + w.Fix
}

// Result is a discovered token.
type Result struct {
	Token  string // trimmed, a valid RFC 6750 b64token
	Source Source
	// Path is the file the token was read from; "" for BEARER_TOKEN.
	Path string
	// Mode, Owner and ModTime describe Path (the file itself, after
	// symlinks). Owner is -1 when unknown or for BEARER_TOKEN.
	Mode    fs.FileMode
	Owner   int
	ModTime time.Time
	// Warnings about this token and about steps skipped before it.
	Warnings []Warning
}

// Label names where the token came from, for messages:
// "BEARER_TOKEN", "BEARER_TOKEN_FILE=/path", "XDG_RUNTIME_DIR file
// /run/user/1000/bt_u1000", "/tmp/bt_u1000".
func (r *Result) Label() string { return label(r.Source, r.Path) }

// Location is one discovery step and what it found, for `discover -v`.
type Location struct {
	Source Source
	// Path is the file the step reads; "" for BEARER_TOKEN and for a file
	// step whose variable is unset or empty.
	Path  string
	State State
	// Result is set when State is StateFound.
	Result *Result
	// Err is set when State is StateInvalid or StateFailed: the error Find
	// returns when it stops here.
	Err error
	// Warnings about this step (also when it was skipped).
	Warnings []Warning
	// Used is true for the step Find stops at (found or error).
	Used bool
}

// Label names the step: see Result.Label.
func (l Location) Label() string { return label(l.Source, l.Path) }

// String is a one-line description: "BEARER_TOKEN_FILE=/x: missing".
func (l Location) String() string {
	s := l.Label() + ": " + l.State.String()
	if l.Err != nil {
		s += " (" + l.Err.Error() + ")"
	}
	return s
}

// Trim strips leading and trailing C isspace characters (space, \t, \n,
// \v, \f, \r) and nothing else.
func Trim(s string) string { return strings.Trim(s, cSpace) }

const cSpace = " \t\n\v\f\r"

// Find runs the four discovery steps in order and returns the first valid
// token. It stops with an error at the first step that finds something
// unusable (KindInvalidToken, KindNoToken for an unreadable file, KindUnsafe
// for a foreign-owned file in a default location). When every step comes up
// empty the error is KindNoToken and names each step.
func Find(env Env) (*Result, error) {
	var skipped []Warning
	var tried []string
	for _, src := range steps {
		l := env.step(src)
		skipped = append(skipped, l.Warnings...)
		switch l.State {
		case StateFound:
			l.Result.Warnings = append(slices.Clip(skipped), l.Result.Warnings...)
			return l.Result, nil
		case StateInvalid, StateFailed:
			return nil, l.Err
		}
		tried = append(tried, l.Label()+" "+l.State.String())
	}
	msg := "no bearer token found (" + strings.Join(tried, ", ") + ")"
	for _, w := range skipped {
		msg += "; " + w.Msg
	}
	return nil, helper.Errorf(helper.KindNoToken, "%s", msg).
		WithFix("write one with: tokenhelper export (or point BEARER_TOKEN_FILE at a token file)")
}

// Locations runs every step, also those after the one Find stops at, and
// reports what each found. Exactly one Location has Used set when Find
// would succeed or fail at a step; none when nothing is found.
func Locations(env Env) []Location {
	out := make([]Location, 0, len(steps))
	used := false
	for _, src := range steps {
		l := env.step(src)
		if !used && l.State.Stops() {
			l.Used, used = true, true
		}
		out = append(out, l)
	}
	return out
}

// ReadFile reads a token file with the same rules as a discovery step
// (trimming, size limit, b64token check, warnings) for a path given
// outside discovery (a profile's token file, `inspect FILE`). The owner is
// not checked. A missing or blank file is a KindNoToken error.
func ReadFile(env Env, path string) (*Result, error) {
	l := env.fileStep(SourcePath, path, false)
	switch l.State {
	case StateFound:
		return l.Result, nil
	case StateMissing:
		return nil, helper.Errorf(helper.KindNoToken, "token file %s does not exist", displayPath(path)).
			WithFix("write it first (tokenhelper export --file %s) or fix the path", displayPath(path))
	case StateEmpty:
		return nil, helper.Errorf(helper.KindNoToken, "token file %s is empty", displayPath(path)).
			WithFix("write a token into it (tokenhelper export --file %s)", displayPath(path))
	}
	return nil, l.Err
}

var steps = []Source{SourceBearerToken, SourceBearerTokenFile, SourceXDGRuntimeDir, SourceTmp}

func (env Env) step(src Source) Location {
	switch src {
	case SourceBearerToken:
		return env.envStep()
	case SourceBearerTokenFile:
		v, set := env.Lookup(VarBearerTokenFile)
		if !set {
			return Location{Source: src, State: StateUnset}
		}
		if v == "" {
			return Location{Source: src, State: StateEmpty}
		}
		return env.fileStep(src, v, false)
	case SourceXDGRuntimeDir:
		v, set := env.Lookup(VarXDGRuntimeDir)
		if !set {
			return Location{Source: src, State: StateUnset}
		}
		if v == "" {
			return Location{Source: src, State: StateEmpty}
		}
		p, _ := XDGPath(env)
		return env.fileStep(src, p, true)
	default:
		return env.fileStep(SourceTmp, TmpPath(env), true)
	}
}

func (env Env) envStep() Location {
	l := Location{Source: SourceBearerToken}
	v, set := env.Lookup(VarBearerToken)
	if !set {
		l.State = StateUnset
		return l
	}
	tok := Trim(v)
	if tok == "" {
		l.State = StateEmpty
		return l
	}
	if err := checkToken(SourceBearerToken, "", tok); err != nil {
		l.State, l.Err = StateInvalid, err
		return l
	}
	r := &Result{Token: tok, Source: SourceBearerToken, Owner: -1}
	if tok != v {
		r.Warnings = append(r.Warnings, Warning{
			Code: WarnWhitespace,
			Msg:  "BEARER_TOKEN has leading or trailing whitespace, which gfal2's HTTP plugin sends as is (HTTP 400)",
			Fix:  "set BEARER_TOKEN to the token alone",
		})
	}
	if len(tok) >= XrootdMaxSize {
		r.Warnings = append(r.Warnings, Warning{
			Code: WarnXrootdSize,
			Msg:  fmt.Sprintf("the token is %d bytes; the xrootd client refuses tokens of %d bytes or more", len(tok), XrootdMaxSize),
			Fix:  "ask for a smaller token (fewer scopes or groups)",
		})
	}
	l.State, l.Result = StateFound, r
	return l
}

// fileStep reads path for step src. strict refuses files and symlinks
// owned by someone else (the default locations).
func (env Env) fileStep(src Source, path string, strict bool) Location {
	l := Location{Source: src, Path: path}
	if src == SourceBearerTokenFile && looksLikeToken(path) {
		l.Warnings = append(l.Warnings, Warning{
			Code: WarnTokenInFileVar,
			Msg:  "BEARER_TOKEN_FILE holds what looks like a token, not a file name",
			Fix:  "put the token in a file and set BEARER_TOKEN_FILE to its path (or use BEARER_TOKEN)",
		})
	}
	data, fi, err := env.readFile(path, strict)
	if errors.Is(err, errMissing) {
		l.State = StateMissing
		return l
	}
	if err != nil {
		l.State, l.Err = StateFailed, readError(src, path, err)
		var tl *tooLargeError
		if errors.As(err, &tl) {
			l.State = StateInvalid
		}
		return l
	}
	tok := Trim(string(data))
	if tok == "" {
		l.State = StateEmpty
		return l
	}
	if err := checkToken(src, path, tok); err != nil {
		l.State, l.Err = StateInvalid, err
		return l
	}
	r := &Result{Token: tok, Source: src, Path: path, Mode: fi.Mode(), Owner: -1, ModTime: fi.ModTime()}
	if uid, ok := safefile.Owner(fi); ok {
		r.Owner = uid
	}
	if !safefile.Private(fi) {
		r.Warnings = append(r.Warnings, Warning{
			Code: WarnPermissions,
			Msg:  fmt.Sprintf("xrootd will refuse this file: %s has mode %04o (group/other access)", displayPath(path), fi.Mode().Perm()),
			Fix:  "chmod 600 " + shellQuote(displayPath(path)),
		})
	}
	if len(data) > XrootdMaxSize || len(tok) >= XrootdMaxSize {
		r.Warnings = append(r.Warnings, Warning{
			Code: WarnXrootdSize,
			Msg:  fmt.Sprintf("%s is %d bytes; the xrootd client refuses token files over %d bytes", displayPath(path), len(data), XrootdMaxSize),
			Fix:  "ask for a smaller token (fewer scopes or groups)",
		})
	}
	l.State, l.Result = StateFound, r
	return l
}

var errMissing = errors.New("missing")

type tooLargeError struct{ limit int64 }

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("larger than %d bytes: not a token", e.limit)
}

type foreignError struct {
	uid     int
	symlink bool
}

func (e *foreignError) Error() string {
	what := "owned by"
	if e.symlink {
		what = "a symbolic link owned by"
	}
	return fmt.Sprintf("%s uid %d, not by you", what, e.uid)
}

type notRegularError struct{ what string }

func (e *notRegularError) Error() string { return "is " + e.what }

// readFile opens path without blocking (a FIFO must not hang us), checks
// it, and reads at most maxFileSize bytes (one more to detect a larger
// file).
func (env Env) readFile(path string, strict bool) ([]byte, fs.FileInfo, error) {
	if strict {
		lfi, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, errMissing
		}
		if err != nil {
			return nil, nil, err
		}
		if lfi.Mode()&fs.ModeSymlink != 0 {
			if uid, ok := safefile.Owner(lfi); ok && uid != env.UID {
				return nil, nil, &foreignError{uid: uid, symlink: true}
			}
		}
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, errMissing
	}
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if fi.IsDir() {
		return nil, nil, syscall.EISDIR
	}
	if strict {
		if uid, ok := safefile.Owner(fi); ok && uid != env.UID {
			return nil, nil, &foreignError{uid: uid}
		}
	}
	if fi.Mode().Type()&(fs.ModeSocket|fs.ModeDevice) != 0 && fi.Mode()&fs.ModeCharDevice == 0 {
		return nil, nil, &notRegularError{"a socket or block device"}
	}
	limit := env.maxFileSize()
	if fi.Mode().IsRegular() && fi.Size() > limit {
		return nil, nil, &tooLargeError{limit}
	}
	var data []byte
	if fi.Mode().IsRegular() {
		data, err = io.ReadAll(io.LimitReader(f, limit+1))
	} else {
		data, err = readPolled(f, limit, env.readTimeout())
	}
	if err != nil {
		return nil, nil, err
	}
	if int64(len(data)) > limit {
		return nil, nil, &tooLargeError{limit}
	}
	return data, fi, nil
}

// readError turns a read failure at step src into the *helper.Error Find
// returns. The cause's text is reduced to the errno description: a
// *PathError would repeat the path, which may be a token by mistake.
func readError(src Source, path string, err error) error {
	where := label(src, path)
	var fe *foreignError
	if errors.As(err, &fe) {
		return &helper.Error{
			Kind: helper.KindUnsafe,
			Msg:  fmt.Sprintf("refusing %s: %s (someone may have planted it)", where, fe),
			Fix:  fmt.Sprintf("ask uid %d or an administrator to remove %s, or set BEARER_TOKEN_FILE to your own token file", fe.uid, displayPath(path)),
			Err:  err,
		}
	}
	var tl *tooLargeError
	if errors.As(err, &tl) {
		return &helper.Error{
			Kind: helper.KindInvalidToken,
			Msg:  fmt.Sprintf("%s is %s", where, tl),
			Fix:  fixFor(src, path),
			Err:  err,
		}
	}
	return &helper.Error{
		Kind: helper.KindNoToken,
		Msg:  fmt.Sprintf("cannot read %s: %s", where, errText(err)),
		Fix:  readFix(src, path, err),
		Err:  err,
	}
}

func readFix(src Source, path string, err error) string {
	p := shellQuote(displayPath(path))
	switch {
	case errors.Is(err, fs.ErrPermission):
		if src == SourceBearerTokenFile {
			return "make it readable by you (chmod u+r " + p + ") or unset BEARER_TOKEN_FILE"
		}
		return "make it readable by you (chmod u+r " + p + ") or remove it"
	case errors.Is(err, syscall.EISDIR):
		if src == SourceBearerTokenFile {
			return "set BEARER_TOKEN_FILE to a file, not a directory"
		}
		return "remove the directory " + p + " (tokenhelper export writes the token there)"
	}
	if src == SourceBearerTokenFile {
		return "fix or unset BEARER_TOKEN_FILE"
	}
	return "remove " + p + " or set BEARER_TOKEN_FILE to a token file"
}

func fixFor(src Source, path string) string {
	p := shellQuote(displayPath(path))
	switch src {
	case SourceBearerToken:
		return "set BEARER_TOKEN to the token alone, or unset it"
	case SourceBearerTokenFile:
		return "put only the token in " + p + ", or unset BEARER_TOKEN_FILE"
	case SourcePath:
		return "put only the token in " + p
	}
	return "rewrite it with: tokenhelper export (or remove " + p + ")"
}

// errText is the description of err without any path in it.
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		err = le.Err
	}
	var se *os.SyscallError
	if errors.As(err, &se) {
		err = se.Err
	}
	return err.Error()
}

// checkToken returns a KindInvalidToken error when tok (already trimmed)
// is not a b64token. The message describes the problem without quoting
// the token.
func checkToken(src Source, path, tok string) error {
	if helper.IsB64Token(tok) {
		return nil
	}
	return &helper.Error{
		Kind: helper.KindInvalidToken,
		Msg:  fmt.Sprintf("%s does not hold a valid bearer token: %s", label(src, path), whyInvalid(tok)),
		Fix:  fixFor(src, path),
	}
}

// whyInvalid explains why tok is not a b64token, quoting at most one
// character, and only one that cannot be part of a token.
func whyInvalid(tok string) string {
	lower := strings.ToLower(tok)
	switch {
	case strings.HasPrefix(lower, "bearer ") || strings.HasPrefix(lower, "bearer\t"):
		return `it starts with "Bearer " (store the token alone)`
	case strings.HasPrefix(lower, "authorization:"):
		return "it is an HTTP header line (store the token alone)"
	case strings.HasPrefix(tok, "{"):
		return "it looks like JSON (store the access_token value alone)"
	}
	i := 0
	for i < len(tok) && isTokenChar(tok[i]) {
		i++
	}
	for i < len(tok) && tok[i] == '=' {
		i++
	}
	if i >= len(tok) {
		return "not an RFC 6750 b64token" // unreachable for an invalid token
	}
	c := tok[i]
	pos := fmt.Sprintf("byte %d of %d", i+1, len(tok))
	switch {
	case isTokenChar(c):
		return "'=' padding is followed by more characters at " + pos
	case c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r':
		return "whitespace inside the token at " + pos + " (more than one line or word?)"
	case c >= 0x80:
		return "a non-ASCII byte at " + pos + " (Unicode spaces are not stripped)"
	case c < 0x20 || c == 0x7f:
		return "a control character at " + pos
	}
	return fmt.Sprintf("the character %q at %s is not allowed (RFC 6750 b64token)", rune(c), pos)
}

func isTokenChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
}

func label(src Source, path string) string {
	switch src {
	case SourceBearerToken:
		return "BEARER_TOKEN"
	case SourceBearerTokenFile:
		if path == "" {
			return "BEARER_TOKEN_FILE"
		}
		return "BEARER_TOKEN_FILE=" + displayPath(path)
	case SourceXDGRuntimeDir:
		if path == "" {
			return "XDG_RUNTIME_DIR"
		}
		return "XDG_RUNTIME_DIR file " + displayPath(path)
	}
	return displayPath(path)
}

// looksLikeToken reports whether a value meant to be a file name looks
// like a token (a JWT, or a long b64token without a slash).
func looksLikeToken(p string) bool {
	if strings.HasPrefix(p, "eyJ") && strings.Count(p, ".") >= 2 && helper.IsB64Token(Trim(p)) {
		return true
	}
	return len(p) > 128 && !strings.Contains(p, "/") && helper.IsB64Token(Trim(p))
}

// displayPath is path for messages, unless it looks like a token.
func displayPath(p string) string {
	if looksLikeToken(p) {
		return "(a value that looks like a token, not a file name)"
	}
	return p
}

// shellQuote quotes p for a command line shown to the user, when needed.
func shellQuote(p string) string {
	if p != "" && strings.Trim(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+=:,@%") == "" {
		return p
	}
	return "'" + strings.ReplaceAll(p, "'", `'\''`) + "'"
}

type timeoutError struct{ d time.Duration }

func (e *timeoutError) Error() string {
	return fmt.Sprintf("nothing complete to read within %v (a FIFO with no writer, or a terminal?)", e.d)
}

// readPolled reads a FIFO or character device: it waits (at most timeout
// in all) for a writer to provide data and finish, and stops after limit+1
// bytes. A FIFO whose writer has not connected yet is waited for, not read
// as empty.
func readPolled(f *os.File, limit int64, timeout time.Duration) ([]byte, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var data []byte
	var rerr error
	deadline := time.Now().Add(timeout)
	cerr := rc.Control(func(fd uintptr) {
		buf := make([]byte, 4096)
		for int64(len(data)) <= limit {
			left := time.Until(deadline)
			if left <= 0 {
				rerr = &timeoutError{timeout}
				return
			}
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			n, err := unix.Poll(fds, int(left/time.Millisecond)+1)
			if err == unix.EINTR || n == 0 {
				continue
			}
			if err != nil {
				rerr = err
				return
			}
			if fds[0].Revents&(unix.POLLIN|unix.POLLHUP) == 0 {
				rerr = syscall.EIO
				return
			}
			m, err := unix.Read(int(fd), buf)
			if err == unix.EAGAIN || err == unix.EINTR {
				continue
			}
			if err != nil {
				rerr = err
				return
			}
			if m == 0 {
				return // EOF: the writer is done
			}
			data = append(data, buf[:m]...)
		}
	})
	if cerr != nil {
		return nil, cerr
	}
	return data, rerr
}
