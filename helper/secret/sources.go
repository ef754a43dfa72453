package secret

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/helper/safefile"
)

// DefaultCmdTimeout bounds passphrase_cmd when Sources.CmdTimeout is 0.
const DefaultCmdTimeout = 30 * time.Second

// maxSourceRead bounds what is read from a passphrase file or command.
const maxSourceRead = 64 << 10

// Sources are the non-interactive places a passphrase comes from, tried in
// the order Env, File, Cmd. Empty fields are skipped.
type Sources struct {
	// Env names an environment variable holding the passphrase
	// (passphrase_env). Unset or empty: skipped.
	Env string
	// File is an absolute path whose first line is the passphrase
	// (passphrase_file). It must exist and be private (no group or other
	// permission bits) and belong to you.
	File string
	// Cmd is run as /bin/sh -c Cmd (passphrase_cmd); the first line of its
	// stdout is the passphrase. Its stdin is /dev/null, its stderr goes to
	// Stderr, and it is killed after CmdTimeout.
	Cmd string
	// CmdTimeout bounds Cmd; 0 means DefaultCmdTimeout.
	CmdTimeout time.Duration

	// Environ is the environment Env is read from and Cmd runs with, as
	// KEY=VALUE pairs; nil means os.Environ(). The variable named by Env
	// is always removed from Cmd's environment.
	Environ []string
	// Stderr receives Cmd's standard error; nil means os.Stderr.
	Stderr io.Writer
}

// SourcesFromProfile returns the passphrase sources a profile configures.
func SourcesFromProfile(p *config.Profile) Sources {
	if p == nil {
		return Sources{}
	}
	return Sources{Env: p.PassphraseEnv, File: p.PassphraseFile, Cmd: p.PassphraseCmd}
}

// Configured reports whether any source is set.
func (s Sources) Configured() bool { return s.Env != "" || s.File != "" || s.Cmd != "" }

// Passphrase returns the first passphrase the sources yield and a
// description of where it came from ("passphrase_env NAME", ...) for
// messages. ("", "", nil) means no source yielded one. A configured file
// or command that fails is an error naming it, never its content.
func (s Sources) Passphrase(ctx context.Context, profile string) (pass, from string, err error) {
	pass, src, err := s.passphrase(ctx, profile)
	return pass, src.from, err
}

// source says which source gave a passphrase: from names it in messages;
// print identifies it in the unlock cache (see [sourcePrint]).
type source struct {
	from  string
	print string
}

// sourcePrint is the unlock cache's name for a passphrase source: a hash of
// what configures it (the variable's name; the file's path, inode and
// modification and change times; the command line), never of the
// passphrase it gives. Different sources, and a passphrase file that was
// written since, get different prints.
func sourcePrint(parts ...string) string {
	h := sha256.New()
	h.Write([]byte("tokenhelper passphrase source v1"))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func (s Sources) passphrase(ctx context.Context, profile string) (string, source, error) {
	if s.Env != "" {
		if v, ok := s.lookup(s.Env); ok {
			if v = strings.TrimSpace(v); v != "" {
				return v, source{"passphrase_env " + s.Env, sourcePrint("env", s.Env)}, nil
			}
		}
	}
	if s.File != "" {
		v, stamp, err := s.readFile(profile)
		if err != nil {
			return "", source{}, err
		}
		return v, source{"passphrase_file " + s.File, sourcePrint("file", s.File, stamp)}, nil
	}
	if s.Cmd != "" {
		v, err := s.runCmd(ctx, profile)
		if err != nil {
			return "", source{}, err
		}
		return v, source{"passphrase_cmd " + s.cmdName(), sourcePrint("cmd", s.Cmd)}, nil
	}
	return "", source{}, nil
}

func (s Sources) environ() []string {
	if s.Environ != nil {
		return s.Environ
	}
	return os.Environ()
}

func (s Sources) lookup(name string) (string, bool) {
	env := s.environ()
	for i := len(env) - 1; i >= 0; i-- { // last one wins, as in the C library
		if k, v, ok := strings.Cut(env[i], "="); ok && k == name {
			return v, true
		}
	}
	return "", false
}

func profileRef(profile string) string {
	if profile == "" {
		return "the default profile"
	}
	return "profile " + profile
}

// readFile returns the passphrase in s.File and the file's stamp (see
// fileStamp).
func (s Sources) readFile(profile string) (pass, stamp string, err error) {
	where := fmt.Sprintf("passphrase_file %s of %s", s.File, profileRef(profile))
	if !filepath.IsAbs(s.File) {
		return "", "", (&helper.Error{Kind: helper.KindConfig, Msg: where + " is not an absolute path"}).
			WithFix("set passphrase_file to an absolute path")
	}
	f, err := os.Open(s.File)
	if err != nil {
		kind := helper.KindConfig
		if errors.Is(err, fs.ErrPermission) {
			kind = helper.KindUnsafe
		}
		return "", "", (&helper.Error{Kind: kind, Msg: fmt.Sprintf("cannot open %s: %v", where, errnoText(err)), Err: err}).
			WithFix("create it with the passphrase on its first line (chmod 600), or remove passphrase_file from %s", profileRef(profile))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", "", helper.Wrap(helper.KindInternal, err, "cannot stat "+where)
	}
	if !fi.Mode().IsRegular() {
		return "", "", (&helper.Error{Kind: helper.KindConfig, Msg: where + " is not a regular file"}).
			WithFix("point passphrase_file at a file holding the passphrase")
	}
	if uid, ok := safefile.Owner(fi); ok && uid != os.Geteuid() && uid != 0 {
		return "", "", (&helper.Error{Kind: helper.KindUnsafe, Msg: fmt.Sprintf("%s belongs to uid %d, not to you", where, uid)}).
			WithFix("use a passphrase file you own (chmod 600)")
	}
	if !safefile.Private(fi) {
		return "", "", (&helper.Error{Kind: helper.KindUnsafe, Msg: fmt.Sprintf("refusing %s: it is accessible by others (mode %04o)", where, fi.Mode().Perm())}).
			WithFix("chmod 600 %s", s.File)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSourceRead))
	if err != nil {
		return "", "", helper.Wrap(helper.KindInternal, err, fmt.Sprintf("cannot read %s: %v", where, errnoText(err)))
	}
	defer clear(data)
	v := firstLine(data)
	if v == "" {
		return "", "", (&helper.Error{Kind: helper.KindConfig, Msg: where + " has an empty first line"}).
			WithFix("put the passphrase on the first line of %s", s.File)
	}
	return v, fileStamp(fi), nil
}

// cmdName names the command by its first word only: the rest of a command
// line may carry things that do not belong in messages.
func (s Sources) cmdName() string {
	f := strings.Fields(s.Cmd)
	if len(f) == 0 {
		return `""`
	}
	if len(f) == 1 {
		return fmt.Sprintf("%q", clip(f[0]))
	}
	return fmt.Sprintf("%q", clip(f[0])+" …")
}

func (s Sources) runCmd(ctx context.Context, profile string) (string, error) {
	where := fmt.Sprintf("passphrase_cmd %s of %s", s.cmdName(), profileRef(profile))
	timeout := s.CmdTimeout
	if timeout <= 0 {
		timeout = DefaultCmdTimeout
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	cmd := exec.CommandContext(cctx, "/bin/sh", "-c", s.Cmd)
	cmd.Stdin = nil // /dev/null
	out := &limitedBuffer{max: maxSourceRead}
	cmd.Stdout = out
	cmd.Stderr = s.Stderr
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	cmd.Env = withoutVar(s.environ(), s.Env)
	ownProcessGroup(cmd)
	// A background child that keeps stdout open after the shell exited
	// must not keep us waiting: after WaitDelay the pipe is closed and the
	// group killed.
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		_ = killProcessGroup(cmd)
		err = nil
	}
	defer clear(out.buf.Bytes())
	switch {
	case err == nil:
		// Exited successfully (possibly after a background child held
		// stdout past the deadline): use what it printed.
	case cctx.Err() != nil && ctx.Err() == nil:
		return "", (&helper.Error{Kind: helper.KindUnavailable, Msg: fmt.Sprintf("%s did not finish within %s and was killed", where, timeout), Err: cctx.Err()}).
			WithFix("run the command by hand: it must print the passphrase without waiting for input")
	case ctx.Err() != nil:
		return "", helper.Wrap(helper.KindUnavailable, ctx.Err(), where+" was interrupted")
	case err != nil:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", (&helper.Error{Kind: helper.KindUnavailable, Msg: fmt.Sprintf("%s failed (%s)", where, ee.ProcessState), Err: err}).
				WithFix("run the command by hand to see why; its error output, if any, is shown above")
		}
		return "", helper.Wrap(helper.KindInternal, err, fmt.Sprintf("cannot run %s: %v", where, errnoText(err)))
	}
	v := firstLine(out.buf.Bytes())
	if v == "" {
		return "", (&helper.Error{Kind: helper.KindConfig, Msg: where + " printed an empty first line"}).
			WithFix("make the command print the passphrase on its first line")
	}
	return v, nil
}

func firstLine(b []byte) string {
	line, _, _ := bytes.Cut(b, []byte{'\n'})
	return strings.TrimSpace(string(line))
}

func withoutVar(env []string, name string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); name != "" && k == name {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// limitedBuffer keeps the first max bytes written and discards the rest
// (still reporting success, so the command is not killed by EPIPE).
type limitedBuffer struct {
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
