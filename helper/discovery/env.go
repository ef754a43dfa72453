package discovery

import (
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// The environment variables of the spec.
const (
	VarBearerToken     = "BEARER_TOKEN"
	VarBearerTokenFile = "BEARER_TOKEN_FILE"
	VarXDGRuntimeDir   = "XDG_RUNTIME_DIR"
)

// Defaults for the limits in Env.
const (
	// DefaultMaxFileSize is the largest token file read (64 KiB).
	DefaultMaxFileSize = 64 << 10
	// DefaultReadTimeout bounds reading a FIFO or a terminal.
	DefaultReadTimeout = 5 * time.Second
	// XrootdMaxSize is the xrootd client's limit (5.5): it refuses a token
	// file larger than this and a token of this size or more.
	XrootdMaxSize = 4096
)

// Env is everything discovery depends on. The zero Env is an empty
// environment for uid 0 with TmpDir /tmp; production code uses OSEnv().
type Env struct {
	// LookupEnv returns an environment variable and whether it is set.
	// When nil, Getenv is used and an empty value counts as unset (which
	// discovery treats the same way).
	LookupEnv func(string) (string, bool)
	// Getenv is used when LookupEnv is nil. When both are nil the
	// environment is empty.
	Getenv func(string) string
	// UID is the effective uid: the $ID in bt_u$ID and the owner a file
	// (or symbolic link) in the default locations, and a file Write
	// replaces, must have. OSEnv sets it to os.Geteuid(); the final check
	// in safefile.WriteFile always uses the real effective uid.
	UID int
	// TmpDir replaces /tmp in step 4. Empty means "/tmp".
	TmpDir string
	// MaxFileSize is the largest token file read; 0 means
	// DefaultMaxFileSize. A larger file is an error.
	MaxFileSize int64
	// ReadTimeout bounds reading a file that is not a regular file (a
	// FIFO, a terminal); 0 means DefaultReadTimeout.
	ReadTimeout time.Duration
}

// OSEnv is the environment of this process: os.LookupEnv, the effective
// uid, /tmp.
func OSEnv() Env {
	return Env{
		LookupEnv: os.LookupEnv,
		Getenv:    os.Getenv,
		UID:       os.Geteuid(),
		TmpDir:    "/tmp",
	}
}

// Lookup returns the variable's value and whether it is set.
func (e Env) Lookup(name string) (string, bool) {
	if e.LookupEnv != nil {
		return e.LookupEnv(name)
	}
	if e.Getenv != nil {
		v := e.Getenv(name)
		return v, v != ""
	}
	return "", false
}

func (e Env) tmpDir() string {
	if e.TmpDir == "" {
		return "/tmp"
	}
	return e.TmpDir
}

func (e Env) maxFileSize() int64 {
	if e.MaxFileSize <= 0 {
		return DefaultMaxFileSize
	}
	return e.MaxFileSize
}

func (e Env) readTimeout() time.Duration {
	if e.ReadTimeout <= 0 {
		return DefaultReadTimeout
	}
	return e.ReadTimeout
}

// FileName is the spec's file name for uid: "bt_u<uid>".
func FileName(uid int) string { return "bt_u" + strconv.Itoa(uid) }

// XDGPath returns $XDG_RUNTIME_DIR/bt_u$ID, and false when
// XDG_RUNTIME_DIR is unset or empty.
func XDGPath(env Env) (string, bool) {
	dir, _ := env.Lookup(VarXDGRuntimeDir)
	if dir == "" {
		return "", false
	}
	return filepath.Join(dir, FileName(env.UID)), true
}

// TmpPath returns /tmp/bt_u$ID (with Env.TmpDir for /tmp).
func TmpPath(env Env) string { return filepath.Join(env.tmpDir(), FileName(env.UID)) }

// DefaultPath is where Write puts a token when no path is given and where
// the last two discovery steps look: $XDG_RUNTIME_DIR/bt_u$ID when
// XDG_RUNTIME_DIR is set and not empty, else /tmp/bt_u$ID.
func DefaultPath(env Env) string {
	if p, ok := XDGPath(env); ok {
		return p
	}
	return TmpPath(env)
}
