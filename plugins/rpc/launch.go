package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/plugins/rpc/remote"
)

// DefaultStartTimeout bounds a plugin's start and handshake when the
// caller gives none.
const DefaultStartTimeout = 30 * time.Second

// LaunchConfig says how to start a plugin.
type LaunchConfig struct {
	// Target names the plugin in messages.
	Target remote.Target
	// Cmd runs the plugin. Its Env is the plugin's environment (nil: this
	// process's); Launch adds the handshake and socket variables. Stdin is
	// set by go-plugin to this process's os.Stdin: read it first.
	Cmd *exec.Cmd
	// Stderr receives what the plugin writes to os.Stderr once serving
	// (forwarded by go-plugin): messages for the person. nil discards.
	Stderr io.Writer
	// Log receives go-plugin's own diagnostics; nil: none.
	Log hclog.Logger
	// SocketBase is where the private socket directory is made ("":
	// the system temporary directory).
	SocketBase string
	// StartTimeout bounds the start and handshake (default
	// DefaultStartTimeout).
	StartTimeout time.Duration
}

// Conn is a running plugin. Close it in every path: it ends the process
// (gracefully if it answers, else killed) and reaps it.
type Conn struct {
	// Backend is the plugin's backend service.
	Backend *Client

	target    remote.Target
	client    *plugin.Client
	cmd       *exec.Cmd
	tail      *remote.Tail
	socketDir string
	closeOnce sync.Once
}

// Launch starts the plugin and completes the go-plugin handshake. Every
// failure is a *helper.Error naming the plugin and its path, with the
// plugin's last stderr line when it has something to say; nothing is left
// running.
func Launch(cfg LaunchConfig) (*Conn, error) {
	if cfg.Cmd == nil {
		return nil, helper.Errorf(helper.KindInternal, "rpc.Launch without a command")
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	if cfg.Stderr == nil {
		cfg.Stderr = io.Discard
	}
	if cfg.Log == nil {
		cfg.Log = hclog.NewNullLogger()
	}
	// A private directory for the socket: only this user can reach the
	// plugin (AutoMTLS stays off, see docs/plugins.md).
	dir, err := os.MkdirTemp(cfg.SocketBase, "tokenhelper-plugin-")
	if err != nil {
		return nil, helper.Wrap(helper.KindInternal, err, "cannot create a directory for the plugin socket: "+remote.Clean(err.Error()))
	}
	env := cfg.Cmd.Env
	if env == nil {
		env = os.Environ()
	}
	cfg.Cmd.Env = append(withoutPluginVars(env), plugin.EnvUnixSocketDir+"="+dir)
	c := &Conn{target: cfg.Target, cmd: cfg.Cmd, tail: &remote.Tail{}, socketDir: dir}
	c.client = plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		Plugins:          PluginSet(nil),
		Cmd:              cfg.Cmd,
		SkipHostEnv:      true,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		StartTimeout:     cfg.StartTimeout,
		Stderr:           c.tail,
		SyncStdout:       io.MultiWriter(cfg.Stderr, c.tail),
		SyncStderr:       io.MultiWriter(cfg.Stderr, c.tail),
		Logger:           cfg.Log,
	})
	proto, err := c.client.Client()
	if err != nil {
		c.Close()
		return nil, c.startError(err, cfg.StartTimeout)
	}
	raw, err := proto.Dispense(PluginName)
	if err != nil {
		c.Close()
		return nil, helper.Errorf(helper.KindUnavailable, "%s does not serve the tokenhelper backend: %s", c.target, remote.Clean(err.Error())).
			WithFix("is it a tokenhelper plugin? see docs/plugins.md")
	}
	cl, ok := raw.(*Client)
	if !ok {
		c.Close()
		return nil, helper.Errorf(helper.KindInternal, "%s: unexpected plugin type %T", c.target, raw)
	}
	c.Backend = cl
	return c, nil
}

// withoutPluginVars drops go-plugin's variables from an inherited
// environment (a plugin that itself starts plugins must not pass its own
// handshake on).
func withoutPluginVars(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PLUGIN_") || k == Handshake.MagicCookieKey {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// Pid is the plugin's process id (0 before start).
func (c *Conn) Pid() int {
	if c.cmd.Process == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

// Close ends the plugin: a graceful shutdown if it answers (go-plugin
// waits up to 2 s), else a kill; then it reaps the process and removes
// the socket directory. Safe to call more than once.
func (c *Conn) Close() {
	c.closeOnce.Do(func() {
		c.client.Kill()
		_ = os.RemoveAll(c.socketDir)
	})
}

// Kill ends the plugin at once (SIGKILL) and then closes the connection.
// For a plugin that overran its deadline or misbehaves.
func (c *Conn) Kill() {
	if c.cmd.Process != nil && !c.client.Exited() {
		_ = c.cmd.Process.Kill()
	}
	c.Close()
}

// LastLine is the plugin's last stderr line worth showing (redacted).
func (c *Conn) LastLine() string { return c.tail.LastLine() }

func (c *Conn) withLine(msg string) string {
	if l := c.tail.LastLine(); l != "" {
		return msg + ": " + l
	}
	return msg
}

func (c *Conn) fix() string {
	if c.target.Builtin {
		return "run with -vv and report it to tokenhelper's authors; isolate = false avoids the separate process"
	}
	return fmt.Sprintf("run with -vv to see its output; check %s with: tokenhelper plugin list", c.target.Path)
}

func (c *Conn) startError(err error, timeout time.Duration) error {
	text := err.Error()
	var pe *os.PathError
	var ee *exec.Error
	lower := strings.ToLower(text)
	switch {
	case errors.As(err, &pe) || errors.As(err, &ee):
		return helper.Wrap(helper.KindConfig, err, fmt.Sprintf("cannot run %s: %s", c.target, remote.Clean(errText(err)))).
			WithFix("check that it is an executable for this machine (tokenhelper plugin list)")
	case strings.Contains(lower, "incompatible api version") || strings.Contains(lower, "incompatible core api version"):
		return helper.Wrap(helper.KindConfig, err, fmt.Sprintf("%s speaks another version of the plugin protocol than this tokenhelper (version %d)", c.target, ProtocolVersion)).
			WithFix("install a version of the plugin built for tokenhelper plugin protocol %d", ProtocolVersion)
	case strings.Contains(text, "unsupported plugin protocol"):
		return helper.Wrap(helper.KindConfig, err, fmt.Sprintf("%s speaks go-plugin's net/rpc, not gRPC", c.target)).
			WithFix("rebuild it with tokenhelper's plugins/sdk")
	case strings.Contains(text, "timeout while waiting for plugin to start"):
		return helper.Wrap(helper.KindUnavailable, err, c.withLine(fmt.Sprintf("%s did not start within %s; stopped it", c.target, timeout))).
			WithFix("%s", c.fix())
	case strings.Contains(text, "plugin exited before we could connect") ||
		strings.Contains(text, "Failed to read any lines from plugin's stdout"):
		return helper.Wrap(helper.KindUnavailable, err, c.withLine(fmt.Sprintf("%s exited before it was ready", c.target))).
			WithFix("%s", c.fix())
	case strings.Contains(text, "Unrecognized remote plugin message"):
		// Never show what it printed: an unknown program's stdout may be
		// a token.
		return helper.Wrap(helper.KindConfig, err, c.withLine(fmt.Sprintf("%s does not speak the tokenhelper plugin protocol", c.target))).
			WithFix("is it a tokenhelper plugin? plugins are built with tokenhelper's plugins/sdk (docs/plugins.md)")
	}
	return helper.Wrap(helper.KindUnavailable, err, c.withLine(fmt.Sprintf("cannot start %s: %s", c.target, remote.Clean(text)))).
		WithFix("%s", c.fix())
}

func errText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// Failure explains an error from a call to the plugin (op, e.g. "token")
// made with ctx, whose deadline was timeout from the call's start. Typed
// errors from the plugin pass through unchanged. A deadline overrun or a
// cancellation kills the plugin; a plugin that died is reported as
// crashed with its last stderr line.
func (c *Conn) Failure(ctx context.Context, op string, timeout time.Duration, err error) error {
	if err == nil {
		return nil
	}
	var he *helper.Error
	if errors.As(err, &he) {
		return err
	}
	code := status.Code(err)
	switch {
	case code == codes.DeadlineExceeded || errors.Is(ctx.Err(), context.DeadlineExceeded):
		c.Kill()
		msg := fmt.Sprintf("%s did not answer %s in time; stopped it", c.target, op)
		if timeout > 0 {
			msg = fmt.Sprintf("%s did not answer %s within %s; stopped it", c.target, op, timeout.Round(time.Millisecond))
		}
		return helper.Wrap(helper.KindUnavailable, context.DeadlineExceeded, msg).
			WithFix("raise timeout in the profile, or find out why it hangs (run with -vv)")
	case code == codes.Canceled || ctx.Err() != nil:
		c.Kill()
		return helper.Wrap(helper.KindUnavailable, context.Canceled, fmt.Sprintf("%s: %s interrupted", c.target, op))
	}
	if c.waitExit(time.Second) {
		return helper.Wrap(helper.KindUnavailable, err, c.withLine(fmt.Sprintf("%s crashed during %s", c.target, op))).
			WithFix("%s", c.fix())
	}
	c.Kill()
	return helper.Wrap(helper.KindUnavailable, err, fmt.Sprintf("%s failed during %s: %s", c.target, op, remote.Clean(status.Convert(err).Message()))).
		WithFix("%s", c.fix())
}

// waitExit reports whether the plugin process ends within d.
func (c *Conn) waitExit(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if c.client.Exited() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}
