package secret

import (
	"fmt"
	"io/fs"
	"syscall"
)

// fileStamp identifies one version of a file without reading it: device,
// inode, and modification and change times (nanoseconds). Writing the file
// in place changes the times, replacing it changes the inode; the change
// time cannot be set back by the file's owner.
func fileStamp(fi fs.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Sprintf("mtime=%d", fi.ModTime().UnixNano())
	}
	return fmt.Sprintf("dev=%d ino=%d mtime=%d.%09d ctime=%d.%09d",
		st.Dev, st.Ino, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
}
