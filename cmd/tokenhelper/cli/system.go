package cli

import (
	"io"
	"os"
	"time"

	"golang.org/x/term"
)

// System is everything the CLI takes from the process: streams,
// environment, clock and terminal detection. Tests construct their own, so
// the whole CLI runs in-process without touching the machine's files.
type System struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// LookupEnv reads an environment variable.
	LookupEnv func(string) (string, bool)
	// Environ is the full environment (for children we start).
	Environ func() []string
	// Now is the clock.
	Now func() time.Time
	// UID is the effective user id (WLCG discovery file names).
	UID int
	// StdinTerminal and StderrTerminal report whether a person is there.
	StdinTerminal  bool
	StderrTerminal bool
	// TmpDir is where /tmp-based discovery files live ("/tmp").
	TmpDir string
	// Location is the user's time zone for human output.
	Location *time.Location
	// ReadSecret, when set, replaces reading a passphrase from the
	// terminal (tests).
	ReadSecret func(prompt string) (string, error)
}

// OSSystem is the real process environment.
func OSSystem() *System {
	return &System{
		Stdin:          os.Stdin,
		Stdout:         os.Stdout,
		Stderr:         os.Stderr,
		LookupEnv:      os.LookupEnv,
		Environ:        os.Environ,
		Now:            time.Now,
		UID:            os.Geteuid(),
		StdinTerminal:  term.IsTerminal(int(os.Stdin.Fd())),
		StderrTerminal: term.IsTerminal(int(os.Stderr.Fd())),
		TmpDir:         "/tmp",
		Location:       time.Local,
	}
}

// Getenv returns the value of an environment variable or "".
func (s *System) Getenv(k string) string {
	v, _ := s.LookupEnv(k)
	return v
}

// Interactive reports whether tokenhelper may talk to a person.
func (s *System) Interactive() bool { return s.StdinTerminal && s.StderrTerminal }
