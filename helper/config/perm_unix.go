//go:build unix

package config

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/tokenhelper/tokenhelper/helper"
)

// openNoBlock opens path for reading without blocking on a FIFO (which
// is then refused as not a regular file).
func openNoBlock(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
}

// checkSafe refuses a config file that someone other than uid (or root)
// could change: the file must not be group/other-writable nor owned by
// another user, and the same holds for the directory holding it (and, for
// a symlink, for the directory holding its target), unless that directory
// has the sticky bit.
func checkSafe(path string, fi fs.FileInfo, uid int) error {
	if fi.Mode().Perm()&0o022 != 0 {
		return helper.Errorf(helper.KindUnsafe,
			"config file %s is writable by group or others (mode %04o): whoever can change it can redirect your tokens",
			path, fi.Mode().Perm()).WithFix("run: chmod go-w %s", path)
	}
	if owner, ok := ownerOf(fi); ok && owner != uid && owner != 0 {
		return helper.Errorf(helper.KindUnsafe,
			"config file %s belongs to uid %d, not to you (uid %d) or root: its owner could redirect your tokens",
			path, owner, uid).WithFix("copy it to a file you own and use that one")
	}
	dirs := []string{filepath.Dir(path)}
	if real, err := filepath.EvalSymlinks(path); err == nil && filepath.Dir(real) != dirs[0] {
		dirs = append(dirs, filepath.Dir(real))
	}
	for _, dir := range dirs {
		di, err := os.Stat(dir)
		if err != nil {
			return helper.Wrap(helper.KindUnsafe, err, fmt.Sprintf("cannot check the directory %s holding the config file: %v", dir, errText(err)))
		}
		if di.Mode().Perm()&0o022 != 0 && di.Mode()&fs.ModeSticky == 0 {
			return helper.Errorf(helper.KindUnsafe,
				"directory %s holding the config file is writable by group or others (mode %04o): they could replace the file and redirect your tokens",
				dir, di.Mode().Perm()).WithFix("run: chmod go-w %s", dir)
		}
		if owner, ok := ownerOf(di); ok && owner != uid && owner != 0 {
			return helper.Errorf(helper.KindUnsafe,
				"directory %s holding the config file belongs to uid %d, not to you (uid %d) or root",
				dir, owner, uid).WithFix("keep the config file in a directory you own")
		}
	}
	return nil
}

func ownerOf(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}
