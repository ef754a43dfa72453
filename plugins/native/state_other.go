//go:build !unix

package native

const syscallNoFollow = 0

func isSymlinkErr(err error) bool { return false }
