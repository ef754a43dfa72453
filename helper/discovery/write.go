package discovery

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/safefile"
)

// WriteOptions tunes Write.
type WriteOptions struct {
	// Path is the file to write. Empty means DefaultPath(env):
	// $XDG_RUNTIME_DIR/bt_u$ID when XDG_RUNTIME_DIR is set, else
	// /tmp/bt_u$ID. Write never picks the BEARER_TOKEN_FILE path by itself;
	// pass it here to write there. Missing parent directories of an
	// explicit Path are created with mode 0700.
	Path string
}

// maxSymlinks bounds the resolution of our own symbolic links.
const maxSymlinks = 40

// Write stores token (C isspace trimmed, then checked to be an RFC 6750
// b64token) followed by one newline at opts.Path or the default location,
// atomically and with mode 0600, and returns the path written (the path
// asked for, even when it is a symbolic link of ours that was followed).
//
// It refuses (KindUnsafe) a symbolic link or file owned by another user, a
// target that is not a regular file, and a world-writable directory
// without the sticky bit. The temporary file has an unpredictable name and
// is created with O_EXCL|O_NOFOLLOW. A later Find picks the file up unless
// a higher-priority source hides it: see Shadowed and Reachable.
func Write(env Env, token string, opts WriteOptions) (string, error) {
	tok := Trim(token)
	if tok == "" {
		return "", helper.Errorf(helper.KindInvalidToken, "refusing to write an empty token")
	}
	if !helper.IsB64Token(tok) {
		return "", helper.Errorf(helper.KindInvalidToken, "refusing to write something that is not a bearer token: %s", whyInvalid(tok))
	}
	if int64(len(tok))+1 > env.maxFileSize() {
		return "", helper.Errorf(helper.KindInvalidToken, "refusing to write a %d-byte token: discovery reads at most %d bytes", len(tok), env.maxFileSize())
	}
	path, explicit := opts.Path, opts.Path != ""
	if !explicit {
		path = DefaultPath(env)
		if xdg, ok := env.Lookup(VarXDGRuntimeDir); ok && xdg != "" {
			if err := env.checkXDGDir(xdg); err != nil {
				return "", err
			}
		}
	}
	target, err := env.resolveOwnLinks(path)
	if err != nil {
		return "", env.unsafeWriteError(path, explicit, err)
	}
	if err := prepareDir(filepath.Dir(target), explicit); err != nil {
		return "", err
	}
	if err := safefile.WriteFile(target, []byte(tok+"\n"), 0o600); err != nil {
		return "", env.writeError(path, target, explicit, err)
	}
	return path, nil
}

// Remove deletes the token file at path ("" means DefaultPath(env)) if it
// is a regular file owned by us. It reports whether a file was removed; a
// missing file is not an error. Anything else there (a symbolic link, a
// directory, a file of another user) is left alone with a KindUnsafe
// error.
func Remove(env Env, path string) (bool, error) {
	if path == "" {
		path = DefaultPath(env)
	}
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, helper.Wrap(helper.KindInternal, err, fmt.Sprintf("cannot remove %s: %s", displayPath(path), errText(err)))
	}
	if !fi.Mode().IsRegular() {
		return false, helper.Errorf(helper.KindUnsafe, "not removing %s: it %s, not a token file", displayPath(path), describeType(fi)).
			WithFix("inspect it and remove it yourself if it is yours")
	}
	if uid, ok := safefile.Owner(fi); ok && uid != env.UID {
		return false, helper.Errorf(helper.KindUnsafe, "not removing %s: owned by uid %d, not by you", displayPath(path), uid).
			WithFix("ask uid %d or an administrator to remove it", uid)
	}
	if err := os.Remove(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, helper.Wrap(helper.KindInternal, err, fmt.Sprintf("cannot remove %s: %s", displayPath(path), errText(err)))
	}
	return true, nil
}

// Shadowed lists the discovery steps that come before the file at path
// ("" means DefaultPath(env)) and currently stop Find before it reaches
// that file: BEARER_TOKEN (set and not blank), BEARER_TOKEN_FILE (naming
// another file that exists and is not blank), and XDG_RUNTIME_DIR when
// path is the /tmp location and $XDG_RUNTIME_DIR/bt_u$ID holds something.
// It says nothing about a path Find never looks at: see Reachable.
func Shadowed(env Env, path string) []Source {
	if path == "" {
		path = DefaultPath(env)
	}
	var out []Source
	if env.step(SourceBearerToken).State.Stops() {
		out = append(out, SourceBearerToken)
	}
	if v, _ := env.Lookup(VarBearerTokenFile); v != "" && !samePath(v, path) {
		if env.step(SourceBearerTokenFile).State.Stops() {
			out = append(out, SourceBearerTokenFile)
		}
	}
	if xp, ok := XDGPath(env); ok && !samePath(xp, path) && samePath(path, TmpPath(env)) {
		if env.step(SourceXDGRuntimeDir).State.Stops() {
			out = append(out, SourceXDGRuntimeDir)
		}
	}
	return out
}

// Reachable reports whether Find looks at path at all under env: path is
// the BEARER_TOKEN_FILE value, $XDG_RUNTIME_DIR/bt_u$ID or /tmp/bt_u$ID.
// A token written anywhere else is found only once BEARER_TOKEN_FILE
// names it (`export BEARER_TOKEN_FILE=PATH`).
func Reachable(env Env, path string) bool {
	if path == "" {
		return true
	}
	if v, _ := env.Lookup(VarBearerTokenFile); v != "" && samePath(v, path) {
		return true
	}
	if xp, ok := XDGPath(env); ok && samePath(xp, path) {
		return true
	}
	return samePath(TmpPath(env), path)
}

func samePath(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	if err1 == nil && err2 == nil && aa == bb {
		return true
	}
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}

// checkXDGDir makes sure $XDG_RUNTIME_DIR exists and is ours: a variable
// inherited across su/sudo points at another user's directory, where that
// user could replace our token.
func (env Env) checkXDGDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return helper.Errorf(helper.KindConfig, "XDG_RUNTIME_DIR=%s does not exist", dir).
			WithFix("unset XDG_RUNTIME_DIR (the token then goes to %s) or use --file PATH", TmpPath(env))
	}
	if err != nil {
		return helper.Wrap(helper.KindInternal, err, fmt.Sprintf("cannot use XDG_RUNTIME_DIR=%s: %s", dir, errText(err)))
	}
	if !fi.IsDir() {
		return helper.Errorf(helper.KindConfig, "XDG_RUNTIME_DIR=%s is not a directory", dir).
			WithFix("unset XDG_RUNTIME_DIR or use --file PATH")
	}
	if uid, ok := safefile.Owner(fi); ok && uid != env.UID {
		return helper.Errorf(helper.KindUnsafe, "XDG_RUNTIME_DIR=%s belongs to uid %d, not to you (inherited through su or sudo?)", dir, uid).
			WithFix("unset XDG_RUNTIME_DIR (the token then goes to %s) or use --file PATH", TmpPath(env))
	}
	return nil
}

type linkError struct {
	path string
	uid  int
}

func (e *linkError) Error() string {
	return fmt.Sprintf("%s is a symbolic link owned by uid %d", e.path, e.uid)
}

type foreignFileError struct {
	path string
	uid  int
}

func (e *foreignFileError) Error() string {
	return fmt.Sprintf("%s is owned by uid %d", e.path, e.uid)
}

type typeError struct {
	path, what string
}

func (e *typeError) Error() string { return e.path + " " + e.what }

// resolveOwnLinks follows symbolic links that belong to us, and only
// those, to the file that will be replaced. It returns that file's path,
// which either does not exist or is a regular file owned by us.
func (env Env) resolveOwnLinks(path string) (string, error) {
	p := path
	for range maxSymlinks {
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return p, nil
		}
		if err != nil {
			return "", err
		}
		uid, known := safefile.Owner(fi)
		foreign := known && uid != env.UID
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			if foreign {
				return "", &linkError{p, uid}
			}
			dest, err := os.Readlink(p)
			if err != nil {
				return "", err
			}
			if !filepath.IsAbs(dest) {
				dest = filepath.Join(filepath.Dir(p), dest)
			}
			p = dest
		case fi.Mode().IsRegular():
			if foreign {
				return "", &foreignFileError{p, uid}
			}
			return p, nil
		default:
			return "", &typeError{p, describeType(fi)}
		}
	}
	return "", &typeError{path, "is a chain of more than 40 symbolic links"}
}

func describeType(fi fs.FileInfo) string {
	m := fi.Mode()
	switch {
	case m&fs.ModeSymlink != 0:
		return "is a symbolic link"
	case m.IsDir():
		return "is a directory"
	case m&fs.ModeNamedPipe != 0:
		return "is a FIFO"
	case m&fs.ModeSocket != 0:
		return "is a socket"
	case m&fs.ModeDevice != 0:
		return "is a device"
	}
	return "is not a regular file"
}

// prepareDir checks the directory a token goes into: it must exist
// (created 0700 when the caller named the path) and must not be writable
// by everyone without the sticky bit (anyone could swap the file).
func prepareDir(dir string, create bool) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) && create {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return helper.Wrap(helper.KindInternal, err, fmt.Sprintf("cannot create directory %s: %s", displayPath(dir), errText(err)))
		}
		fi, err = os.Stat(dir)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return helper.Errorf(helper.KindConfig, "directory %s does not exist", displayPath(dir)).
			WithFix("create it, or use --file PATH")
	}
	if err != nil {
		return helper.Wrap(helper.KindInternal, err, fmt.Sprintf("cannot use directory %s: %s", displayPath(dir), errText(err)))
	}
	if !fi.IsDir() {
		return helper.Errorf(helper.KindConfig, "%s is not a directory", displayPath(dir)).
			WithFix("use --file PATH with a path in a directory")
	}
	if fi.Mode().Perm()&0o002 != 0 && fi.Mode()&fs.ModeSticky == 0 {
		return helper.Errorf(helper.KindUnsafe, "refusing to write a token into %s: anyone can write there and it has no sticky bit, so anyone could replace the token", displayPath(dir)).
			WithFix("use a private directory (--file PATH) or have an administrator run: chmod +t %s", shellQuote(displayPath(dir)))
	}
	return nil
}

// unsafeWriteError explains a refused target and what to do about it.
func (env Env) unsafeWriteError(path string, explicit bool, err error) error {
	alt := "or set XDG_RUNTIME_DIR to a private directory, or use --file PATH (and point BEARER_TOKEN_FILE at it)"
	if explicit {
		alt = "or choose another --file PATH"
	} else if _, ok := XDGPath(env); ok {
		alt = "or use --file PATH (and point BEARER_TOKEN_FILE at it)"
	}
	var le *linkError
	var fe *foreignFileError
	var te *typeError
	switch {
	case errors.As(err, &le):
		return &helper.Error{Kind: helper.KindUnsafe, Err: err,
			Msg: fmt.Sprintf("refusing to write %s: %s is a symbolic link owned by uid %d, not by you (someone may have planted it)", displayPath(path), displayPath(le.path), le.uid),
			Fix: fmt.Sprintf("ask uid %d or an administrator to remove %s, %s", le.uid, shellQuote(displayPath(le.path)), alt)}
	case errors.As(err, &fe):
		return &helper.Error{Kind: helper.KindUnsafe, Err: err,
			Msg: fmt.Sprintf("refusing to replace %s: owned by uid %d, not by you", displayPath(fe.path), fe.uid),
			Fix: fmt.Sprintf("ask uid %d or an administrator to remove %s, %s", fe.uid, shellQuote(displayPath(fe.path)), alt)}
	case errors.As(err, &te):
		return &helper.Error{Kind: helper.KindUnsafe, Err: err,
			Msg: fmt.Sprintf("refusing to write %s: %s %s", displayPath(path), displayPath(te.path), te.what),
			Fix: fmt.Sprintf("remove %s if it is yours, %s", shellQuote(displayPath(te.path)), alt)}
	}
	return helper.Wrap(helper.KindInternal, err, fmt.Sprintf("cannot write %s: %s", displayPath(path), errText(err)))
}

// writeError maps a safefile failure. A foreign file or symlink that
// appeared after our checks lands here too (safefile checks again, and the
// sticky bit makes the rename fail with EPERM).
func (env Env) writeError(path, target string, explicit bool, err error) error {
	switch {
	case errors.Is(err, safefile.ErrSymlink), errors.Is(err, safefile.ErrForeignOwner), errors.Is(err, safefile.ErrNotRegular):
		fi, lerr := os.Lstat(target)
		if lerr == nil {
			uid, _ := safefile.Owner(fi)
			if fi.Mode()&fs.ModeSymlink != 0 {
				return env.unsafeWriteError(path, explicit, &linkError{target, uid})
			}
			if fi.Mode().IsRegular() {
				return env.unsafeWriteError(path, explicit, &foreignFileError{target, uid})
			}
			return env.unsafeWriteError(path, explicit, &typeError{target, describeType(fi)})
		}
		return env.unsafeWriteError(path, explicit, &typeError{target, "changed while writing"})
	case errors.Is(err, syscall.EPERM):
		fi, lerr := os.Lstat(target)
		if lerr == nil {
			if uid, ok := safefile.Owner(fi); ok && uid != env.UID {
				return env.unsafeWriteError(path, explicit, &foreignFileError{target, uid})
			}
		}
	}
	return helper.Wrap(helper.KindInternal, err, fmt.Sprintf("cannot write %s: %s", displayPath(path), errText(err)))
}
