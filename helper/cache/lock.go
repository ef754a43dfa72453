package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/safefile"
)

// DefaultLockTimeout bounds the wait for a lock when Cache.LockTimeout is
// zero, and always for LockProfile. The context's deadline, when sooner,
// wins.
const DefaultLockTimeout = time.Minute

// Backoff between attempts to take a busy lock: starts at minBackoff,
// doubles, never exceeds maxBackoff.
const (
	minBackoff = time.Millisecond
	maxBackoff = 50 * time.Millisecond
)

// LockProfile takes the per-profile lock in dir (created 0700 if needed)
// and returns the function that releases it. Backends hold it around
// "read the refresh token → refresh → persist the rotated refresh token",
// so that two requests for different scopes of one profile, in one process
// or many, never use the same (rotated, hence single-use) refresh token
// twice.
//
// The lock is flock(2) on "<profile>-<hash>.profile.lock": a process that
// dies holding it releases it. The wait honours ctx and gives up after
// DefaultLockTimeout with a KindUnavailable error naming the lock file.
//
// Lock order: a caller may take the profile lock while holding an entry
// lock (Cache.Get calls acquire with the entry lock held, and acquire takes
// the profile lock), never the other way round. So, while holding the
// profile lock, do not call Cache.Get, Put, Delete or DeleteProfile.
// flock locks belong to an open file, not a process: taking a lock the
// same process already holds waits (until the timeout) rather than
// succeeding.
func LockProfile(ctx context.Context, dir, profile string) (unlock func(), err error) {
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	if err := mkdirPrivate(dir); err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte("profile\x00" + profile))
	path := filepath.Join(dir, sanitizeProfile(profile)+"-"+hex.EncodeToString(sum[:])[:16]+".profile.lock")
	return lockFile(ctx, path, DefaultLockTimeout, nil)
}

// lockFile takes an exclusive flock(2) on path, creating the file (0600)
// if needed. flock cannot be interrupted, so a busy lock is polled with
// LOCK_NB and an exponential backoff capped at maxBackoff, until ctx is
// done or timeout has passed. onWait, if not nil, is called once when the
// lock is found busy (tests use it to know a caller is waiting).
func lockFile(ctx context.Context, path string, timeout time.Duration, onWait func()) (func(), error) {
	if timeout <= 0 {
		timeout = DefaultLockTimeout
	}
	start := time.Now()
	deadline := start.Add(timeout)
	backoff := minBackoff
	waited := false
	for {
		f, err := openLockFile(path)
		if err != nil {
			return nil, err
		}
		for {
			err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
			if err == nil {
				break
			}
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if !errors.Is(err, unix.EWOULDBLOCK) {
				f.Close()
				return nil, helper.Wrap(helper.KindInternal, err, "cannot lock "+path+": "+errnoText(err)).
					WithFix("make sure %s is on a local file system that supports flock(2)", filepath.Dir(path))
			}
			if !waited {
				waited = true
				if onWait != nil {
					onWait()
				}
			}
			left := time.Until(deadline)
			if left <= 0 {
				f.Close()
				return nil, helper.Errorf(helper.KindUnavailable,
					"timed out after %s waiting for the lock %s: another tokenhelper is fetching a token",
					time.Since(start).Round(time.Millisecond), path).
					WithFix("if that process is stuck, find it with: fuser -v %s", path)
			}
			t := time.NewTimer(min(backoff, left))
			select {
			case <-ctx.Done():
				t.Stop()
				f.Close()
				why := "interrupted"
				if errors.Is(ctx.Err(), context.DeadlineExceeded) {
					why = "deadline reached"
				}
				return nil, &helper.Error{
					Kind: helper.KindUnavailable,
					Msg: "gave up after " + time.Since(start).Round(time.Millisecond).String() +
						" waiting for the lock " + path + " (" + why + "): another tokenhelper is fetching a token",
					Fix: "if that process is stuck, find it with: fuser -v " + path,
					Err: ctx.Err(),
				}
			case <-t.C:
			}
			backoff = min(2*backoff, maxBackoff)
		}
		// The file may have been unlinked (DeleteProfile, a user cleaning
		// up) between our open and our lock: a lock on a file no longer
		// at path excludes nobody. Start again with the current file.
		if sameFile(f, path) {
			var once sync.Once
			return func() {
				once.Do(func() {
					// Close releases the lock too: the unlock only makes
					// it explicit, and its error changes nothing.
					_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
					f.Close()
				})
			}, nil
		}
		f.Close()
	}
}

func openLockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, helper.Errorf(helper.KindUnsafe, "refusing to use the lock file %s: it is a symbolic link", path).
				WithFix("remove it: rm %s", path)
		}
		return nil, fsError(err, "cannot open the lock file "+path, filepath.Dir(path))
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fsError(err, "cannot stat the lock file "+path, filepath.Dir(path))
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, helper.Errorf(helper.KindUnsafe, "refusing to use the lock file %s: not a regular file", path).
			WithFix("remove it: rm -r %s", path)
	}
	if uid, ok := safefile.Owner(fi); ok && uid != os.Geteuid() {
		f.Close()
		return nil, helper.Errorf(helper.KindUnsafe, "refusing to use the lock file %s: it belongs to uid %d", path, uid).
			WithFix("remove it (it holds no data): rm %s", path)
	}
	return f, nil
}

// sameFile reports whether path still names the open file f.
func sameFile(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Lstat(path)
	if err != nil {
		return false
	}
	return os.SameFile(a, b)
}

// mkdirPrivate creates dir 0700 (see safefile.MkdirPrivate) and turns a
// failure into a typed error.
func mkdirPrivate(dir string) error {
	if err := safefile.MkdirPrivate(dir); err != nil {
		if errors.Is(err, safefile.ErrForeignOwner) {
			return helper.Wrap(helper.KindUnsafe, err, "refusing to use the token cache directory "+dir+": it belongs to another user").
				WithFix("remove it (it holds only cached access tokens) or chown it to yourself")
		}
		return fsError(err, "cannot create the token cache directory "+dir, dir)
	}
	return nil
}

// fsError turns a file-system error into a typed error whose message is
// msg plus the errno text (never file content).
func fsError(err error, msg, dir string) *helper.Error {
	e := helper.Wrap(helper.KindInternal, err, msg+": "+errnoText(err))
	switch {
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		return e.WithFix("make %s writable by you, or remove it (it holds only cached access tokens)", dir)
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return e.WithFix("free some space (or quota) on the file system of %s", dir)
	}
	return e
}

// errnoText is the bare system error text ("permission denied"), without
// the path decoration of *fs.PathError (the caller names the path).
func errnoText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
