// Package safefile writes private files the way a credential tool must:
// directories 0700, files 0600, atomic replacement (temp file in the same
// directory, fsync, rename, fsync of the directory), and checks that a file
// about to be read or replaced belongs to us and is not open to others.
package safefile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// ErrForeignOwner is returned when a path belongs to another user.
var ErrForeignOwner = errors.New("owned by another user")

// ErrSymlink is returned when a path that must be a regular file is a symlink.
var ErrSymlink = errors.New("is a symbolic link")

// ErrNotRegular is returned when a path is neither absent nor a regular file.
var ErrNotRegular = errors.New("is not a regular file")

// MkdirPrivate creates dir (and parents) and makes sure dir itself is a
// directory owned by us with mode 0700. Parents that exist are left alone;
// parents it creates get 0700 too.
func MkdirPrivate(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		// A symlinked config/cache dir is legitimate (home on another
		// volume), but it must resolve to a directory we own.
		fi, err = os.Stat(dir)
		if err != nil {
			return err
		}
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: not a directory", dir)
	}
	if uid, ok := ownerOf(fi); ok && uid != os.Geteuid() {
		return fmt.Errorf("%s: %w", dir, ErrForeignOwner)
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return err
		}
	}
	return nil
}

// WriteFile atomically replaces path with data and mode perm: it writes a
// temporary file in the same directory (created with O_EXCL and perm),
// fsyncs it, renames it over path and fsyncs the directory. A reader sees
// either the old or the new content, never a mix. If path exists and is
// owned by another user, or is not a regular file (a symlink planted in a
// shared directory, a FIFO, ...), nothing is written.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	if err := CheckReplaceable(path); err != nil {
		return err
	}
	dir := filepath.Dir(path)
	tmp, err := createTemp(dir, filepath.Base(path), perm)
	if err != nil {
		return err
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(name)
		}
	}()
	// Make sure the mode is exactly perm whatever the umask.
	if err := tmp.Chmod(perm); err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(name, path); err != nil {
		return err
	}
	ok = true
	return syncDir(dir)
}

// CheckReplaceable returns nil when path does not exist, or is a regular
// file owned by us.
func CheckReplaceable(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("%s: %w", path, ErrSymlink)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: %w", path, ErrNotRegular)
	}
	if uid, ok := ownerOf(fi); ok && uid != os.Geteuid() {
		return fmt.Errorf("%s: %w", path, ErrForeignOwner)
	}
	return nil
}

// Private reports whether fi has no group or other permission bits.
func Private(fi fs.FileInfo) bool { return fi.Mode().Perm()&0o077 == 0 }

// Owner returns the owning uid of fi, if the platform provides one.
func Owner(fi fs.FileInfo) (int, bool) { return ownerOf(fi) }

func ownerOf(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

func createTemp(dir, base string, perm os.FileMode) (*os.File, error) {
	for range 10 {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		name := filepath.Join(dir, "."+base+".tmp-"+hex.EncodeToString(b[:]))
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, perm&0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, fmt.Errorf("%s: cannot create a temporary file", dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}
