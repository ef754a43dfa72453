//go:build !unix

package config

import (
	"io/fs"
	"os"
)

func openNoBlock(path string) (*os.File, error) { return os.Open(path) }

// checkSafe has no portable owner or mode bits to look at outside Unix:
// tokenhelper's supported platforms are Linux and macOS; elsewhere the file
// is trusted like any other file in the user's profile.
func checkSafe(path string, fi fs.FileInfo, uid int) error { return nil }
