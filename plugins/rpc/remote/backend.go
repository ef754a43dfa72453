package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
)

// HostCommand is the companion executable that speaks go-plugin.
const HostCommand = "tokenhelper-pluginhost"

// EnvHost names an environment variable that overrides where the
// companion is (packagers that install it elsewhere, tests).
const EnvHost = "TOKENHELPER_PLUGINHOST"

// DefaultGrace is how long a Backend waits, after a call's deadline, for
// the companion to report (it kills a plugin that overran and says so)
// before it kills the companion's process group itself.
const DefaultGrace = 5 * time.Second

// Config says how a Backend reaches its target.
type Config struct {
	// HostPath is tokenhelper-pluginhost; "" means LocateHost.
	HostPath string
	// LookupEnv reads EnvHost when HostPath is "".
	LookupEnv func(string) (string, bool)
	// Env is the environment of the companion and thus of the plugin;
	// nil means this process's environment.
	Env []string
	// Stderr receives what the plugin writes for the person (login
	// instructions, warnings); nil discards it. A login sends it to its
	// UI's Out instead.
	Stderr io.Writer
	// Host is handed to the plugin.
	Host Host
	// Grace overrides DefaultGrace.
	Grace time.Duration
}

// Backend is a helper.Backend (and Loginer, Logouter, Statuser) whose
// calls run in another process: one tokenhelper-pluginhost per call,
// which launches the target over go-plugin. Calls the target does not
// implement fail with an error wrapping errors.ErrUnsupported.
type Backend struct {
	target  Target
	profile config.Profile
	cfg     Config

	hostOnce sync.Once
	hostPath string
	hostErr  error
}

var (
	_ helper.Backend  = (*Backend)(nil)
	_ helper.Loginer  = (*Backend)(nil)
	_ helper.Logouter = (*Backend)(nil)
	_ helper.Statuser = (*Backend)(nil)
)

// New returns the Backend of profile p running target t. Nothing starts
// until a call.
func New(p *config.Profile, t Target, c Config) *Backend {
	b := &Backend{target: t, cfg: c}
	if p != nil {
		b.profile = *p
	}
	return b
}

// Target returns what the backend runs.
func (b *Backend) Target() Target { return b.target }

// Token implements helper.Backend.
func (b *Backend) Token(ctx context.Context, req helper.Request) (*helper.Token, error) {
	r, err := b.call(ctx, &Call{Op: OpToken, Request: &req}, b.cfg.Stderr)
	if err != nil {
		return nil, err
	}
	if r.Token == nil {
		return nil, b.noResult(OpToken)
	}
	return r.Token, nil
}

// Login implements helper.Loginer. The plugin's messages (a device code,
// a URL to open) reach req.UI.Out(); the plugin cannot read from the
// terminal, so a flow that prompts (password) is refused up front and a
// passphrase prompt inside the plugin fails with a message saying so.
func (b *Backend) Login(ctx context.Context, req helper.LoginRequest) (*helper.Token, error) {
	flow := req.Flow
	if flow == "" {
		flow = b.profile.Flow
	}
	if flow == config.FlowPassword {
		return nil, helper.Errorf(helper.KindConfig, "profile %q runs its backend in a separate process (%s), which cannot prompt for a password", b.profile.Name, b.describe()).
			WithFix("log in with isolate = false in [profiles.%s], or use flow = \"device\"", b.profile.Name)
	}
	out := b.cfg.Stderr
	if req.UI != nil {
		out = req.UI.Out()
	}
	r, err := b.call(ctx, &Call{Op: OpLogin, Request: &req.Request, Flow: req.Flow}, out)
	if err != nil {
		return nil, err
	}
	if r.Token == nil {
		return nil, b.noResult(OpLogin)
	}
	return r.Token, nil
}

// Logout implements helper.Logouter.
func (b *Backend) Logout(ctx context.Context, req helper.LogoutRequest) error {
	out := b.cfg.Stderr
	if req.UI != nil {
		out = req.UI.Out()
	}
	_, err := b.call(ctx, &Call{Op: OpLogout, Logout: &Logout{Profile: req.Profile, Forget: req.Forget}}, out)
	return err
}

// Status implements helper.Statuser.
func (b *Backend) Status(ctx context.Context) (helper.Status, error) {
	r, err := b.call(ctx, &Call{Op: OpStatus}, b.cfg.Stderr)
	if err != nil {
		return helper.Status{}, err
	}
	if r.Status == nil {
		return helper.Status{}, b.noResult(OpStatus)
	}
	return r.Status.Helper(), nil
}

// Info asks the target for its name, version and capabilities.
func (b *Backend) Info(ctx context.Context) (Info, error) {
	r, err := b.call(ctx, &Call{Op: OpInfo}, b.cfg.Stderr)
	if err != nil {
		return Info{}, err
	}
	if r.Info == nil {
		return Info{}, b.noResult(OpInfo)
	}
	i := *r.Info
	i.Name, i.Version = Clean(i.Name), Clean(i.Version)
	return i, nil
}

func (b *Backend) describe() string {
	if b.target.Builtin {
		return "isolate = true"
	}
	return b.target.String()
}

func (b *Backend) noResult(op string) error {
	return helper.Errorf(helper.KindInternal, "%s: tokenhelper-pluginhost answered %s without a result", b.target, op)
}

// LocateHost finds tokenhelper-pluginhost: $TOKENHELPER_PLUGINHOST if
// set, else next to the running executable (symlinks resolved), where
// `make install` and packages put it.
func LocateHost(lookupEnv func(string) (string, bool)) (string, error) {
	if lookupEnv != nil {
		if p, ok := lookupEnv(EnvHost); ok && p != "" {
			if !filepath.IsAbs(p) {
				return "", helper.Errorf(helper.KindConfig, "%s=%q is not an absolute path", EnvHost, p).WithFix("set %s to the full path of %s, or unset it", EnvHost, HostCommand)
			}
			return p, checkExecutable(p)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return "", helper.Wrap(helper.KindInternal, err, "cannot find the running executable to locate "+HostCommand)
	}
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	p := filepath.Join(filepath.Dir(exe), HostCommand)
	return p, checkExecutable(p)
}

func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	if err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
		return nil
	}
	return helper.Errorf(helper.KindConfig, "%s is not installed at %s: it runs plugins and isolated backends", HostCommand, p).
		WithFix("install it next to tokenhelper (make install installs both), or set %s to its path", EnvHost)
}

func (b *Backend) host() (string, error) {
	b.hostOnce.Do(func() {
		if b.cfg.HostPath != "" {
			b.hostPath, b.hostErr = b.cfg.HostPath, checkExecutable(b.cfg.HostPath)
			return
		}
		b.hostPath, b.hostErr = LocateHost(b.cfg.LookupEnv)
	})
	return b.hostPath, b.hostErr
}

// call runs one Call through a fresh companion process.
func (b *Backend) call(ctx context.Context, c *Call, stderr io.Writer) (*Reply, error) {
	if err := ctx.Err(); err != nil {
		return nil, b.ctxError(ctx, 0)
	}
	host, err := b.host()
	if err != nil {
		return nil, err
	}
	c.Wire = WireVersion
	c.Target = b.target
	c.Host = b.cfg.Host
	if c.Op != OpInfo {
		p := b.profile
		c.Profile = &p
	}
	var timeout time.Duration
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
		if timeout <= 0 {
			return nil, b.ctxError(ctx, 0)
		}
	}
	c.Timeout = timeout
	data, err := json.Marshal(c)
	if err != nil {
		return nil, helper.Wrap(helper.KindInternal, err, "cannot encode the plugin call")
	}
	if stderr == nil {
		stderr = io.Discard
	}
	out := &limitedBuffer{max: MaxMessage}
	// Not exec.CommandContext, which would kill the companion as soon as
	// ctx ends: stop gives it SIGTERM or a grace period first.
	cmd := exec.Command(host, "call") //nolint:noctx // ctx is watched below (stop)
	cmd.Stdin = bytes.NewReader(data)
	cmd.Stdout = out
	cmd.Stderr = stderr
	cmd.Env = b.cfg.Env
	cmd.WaitDelay = time.Second
	ownProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		return nil, helper.Wrap(helper.KindConfig, err, fmt.Sprintf("cannot start %s (%s): %s", HostCommand, host, errText(err))).
			WithFix("reinstall tokenhelper (make install), or set %s", EnvHost)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var waitErr error
	stopped := false
	select {
	case waitErr = <-done:
	case <-ctx.Done():
		waitErr, stopped = b.stop(ctx, cmd, done)
	}
	var r Reply
	if len(out.Bytes()) > 0 && json.Unmarshal(out.Bytes(), &r) == nil && (r.Error != nil || r.Token != nil || r.Status != nil || r.Info != nil) {
		if r.Error != nil {
			return nil, r.Error.Err()
		}
		return &r, nil
	}
	if stopped || ctx.Err() != nil {
		return nil, b.ctxError(ctx, timeout)
	}
	why := "without an answer"
	if out.over {
		why = fmt.Sprintf("with an answer over %d bytes", MaxMessage)
	} else if waitErr != nil {
		why = "without an answer (" + waitErr.Error() + ")"
	}
	return nil, helper.Errorf(helper.KindInternal, "%s (%s) ended %s while running %s", HostCommand, host, why, b.target).
		WithFix("run with -vv to see its diagnostics; reinstall tokenhelper if it persists")
}

// stop ends a companion whose call's context is done. After a deadline the
// companion reports on its own (it has the same deadline), so it gets
// Grace; after a cancellation it is asked to stop (SIGTERM) at once. Then
// its process group is killed.
func (b *Backend) stop(ctx context.Context, cmd *exec.Cmd, done <-chan error) (error, bool) {
	grace := b.cfg.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		terminate(cmd)
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case err := <-done:
		return err, false
	case <-t.C:
	}
	killGroup(cmd)
	return <-done, true
}

func (b *Backend) ctxError(ctx context.Context, timeout time.Duration) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		msg := fmt.Sprintf("%s did not answer in time", b.target)
		if timeout > 0 {
			msg = fmt.Sprintf("%s did not answer within %s", b.target, timeout.Round(time.Millisecond))
		}
		return helper.Wrap(helper.KindUnavailable, ctx.Err(), msg).
			WithFix("raise timeout in [profiles.%s], or find out why the backend hangs (run with -vv)", b.profile.Name)
	}
	return helper.Wrap(helper.KindUnavailable, ctx.Err(), fmt.Sprintf("%s: interrupted", b.target))
}

// limitedBuffer keeps at most max bytes and remembers that more came.
type limitedBuffer struct {
	buf  bytes.Buffer // not embedded: io.Copy would use its ReadFrom and bypass the limit
	max  int
	over bool
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); len(p) > room {
		l.over = true
		if room > 0 {
			l.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return l.buf.Write(p)
}

// Bytes returns what was kept.
func (l *limitedBuffer) Bytes() []byte { return l.buf.Bytes() }
