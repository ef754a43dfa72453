// Package pluginhost is tokenhelper-pluginhost, the companion executable
// that keeps go-plugin, gRPC and protobuf out of the main tokenhelper
// binary (see plugins/rpc/remote for why and for the Call/Reply exchange).
//
//	tokenhelper-pluginhost call        read one remote.Call from stdin, launch the
//	                                   plugin over go-plugin, make the call, print
//	                                   one remote.Reply on stdout
//	tokenhelper-pluginhost serve NAME  serve the built-in backend NAME as a plugin
//	                                   (what `isolate = true` runs; Packer's pattern
//	                                   of re-executing itself with a hidden command)
//
// `call` reads all of its stdin before it starts a plugin, then points
// os.Stdin at /dev/null, which go-plugin hands to the plugin: no plugin
// ever reads a byte meant for tokenhelper. Every plugin is ended (Close,
// or a kill when it overran its deadline) before `call` answers.
package pluginhost

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime/debug"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/plugins"
	"github.com/tokenhelper/tokenhelper/plugins/rpc"
	"github.com/tokenhelper/tokenhelper/plugins/rpc/remote"
)

// Main runs tokenhelper-pluginhost with args (args[0] is the program
// name) and returns the exit code. ctx ends the call early (SIGTERM from
// tokenhelper).
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) >= 2 {
		switch args[1] {
		case "call":
			if len(args) == 2 {
				return mainCall(ctx, stdin, stdout, stderr)
			}
		case "serve":
			if len(args) == 3 {
				return serve(args[2], stderr)
			}
		case "--version", "version":
			fmt.Fprintf(stdout, "%s %s (tokenhelper plugin protocol %d)\n", remote.HostCommand, buildVersion(), rpc.ProtocolVersion)
			return 0
		}
	}
	fmt.Fprintf(stderr, "%s runs tokenhelper's plugins; tokenhelper starts it (usage: %s call | serve NAME)\n", remote.HostCommand, remote.HostCommand)
	return 2
}

// Version is the release (set by the command's main from -ldflags);
// "" means the build information's.
var Version = ""

func buildVersion() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

func mainCall(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) int {
	data, err := io.ReadAll(io.LimitReader(stdin, remote.MaxMessage+1))
	detachStdin()
	var reply *remote.Reply
	switch {
	case err != nil:
		reply = errorReply(helper.Wrap(helper.KindInternal, err, "tokenhelper-pluginhost: cannot read the call"))
	case len(data) > remote.MaxMessage:
		reply = errorReply(helper.Errorf(helper.KindInternal, "tokenhelper-pluginhost: call over %d bytes", remote.MaxMessage))
	default:
		c, err := remote.DecodeCall(data)
		if err != nil {
			reply = errorReply(err)
		} else {
			self, err := os.Executable()
			if err != nil {
				reply = errorReply(helper.Wrap(helper.KindInternal, err, "tokenhelper-pluginhost: cannot find its own executable"))
			} else {
				reply = Run(ctx, c, Options{Self: self, Stderr: stderr})
			}
		}
	}
	reply.Wire = remote.WireVersion
	if err := json.NewEncoder(stdout).Encode(reply); err != nil {
		fmt.Fprintf(stderr, "tokenhelper-pluginhost: cannot write the reply: %v\n", err)
		return 1
	}
	return 0
}

// detachStdin points os.Stdin at /dev/null once the call is read:
// go-plugin gives the plugin os.Stdin.
func detachStdin() {
	if f, err := os.Open(os.DevNull); err == nil {
		os.Stdin = f
	}
}

func errorReply(err error) *remote.Reply { return &remote.Reply{Error: remote.ErrorOf(err)} }

// Options are what Run takes from the process.
type Options struct {
	// Self is this executable, re-run as `serve NAME` for built-ins.
	Self string
	// Stderr receives the plugin's messages for the person.
	Stderr io.Writer
	// StartTimeout bounds a plugin's start (default rpc.DefaultStartTimeout,
	// and never beyond the call's deadline).
	StartTimeout time.Duration
}

// Run performs one call: check and launch the target, configure it, make
// the call, end the plugin. It always returns a reply.
func Run(ctx context.Context, c *remote.Call, o Options) *remote.Reply {
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	cmd, err := command(c.Target, o.Self)
	if err != nil {
		return errorReply(err)
	}
	start := o.StartTimeout
	if start <= 0 {
		start = rpc.DefaultStartTimeout
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < start {
		start = time.Until(dl)
	}
	if start <= 0 {
		return errorReply(helper.Errorf(helper.KindUnavailable, "%s: no time left to start it", c.Target))
	}
	conn, err := rpc.Launch(rpc.LaunchConfig{
		Target:       c.Target,
		Cmd:          cmd,
		Stderr:       o.Stderr,
		Log:          hostLogger(c.Host.Verbose, o.Stderr),
		SocketBase:   socketBase(),
		StartTimeout: start,
	})
	if err != nil {
		return errorReply(err)
	}
	defer conn.Close()
	be := conn.Backend
	fail := func(op string, err error) *remote.Reply {
		return errorReply(conn.Failure(ctx, op, c.Timeout, err))
	}
	if c.Op == remote.OpInfo {
		info, err := be.Info(ctx)
		if err != nil {
			return fail("info", err)
		}
		return &remote.Reply{Info: &info}
	}
	caps, err := be.Configure(ctx, rpc.Config{Profile: c.Profile, Host: c.Host})
	if err != nil {
		return fail("configure", err)
	}
	switch c.Op {
	case remote.OpToken:
		tok, err := be.Token(ctx, *c.Request)
		if err != nil {
			return fail("token", err)
		}
		return &remote.Reply{Token: tok}
	case remote.OpLogin:
		if !caps.Login {
			return errorReply(unsupported(c, "login"))
		}
		tok, err := be.Login(ctx, helper.LoginRequest{Request: *c.Request, Flow: c.Flow})
		if err != nil {
			return fail("login", err)
		}
		return &remote.Reply{Token: tok}
	case remote.OpLogout:
		if !caps.Logout {
			return errorReply(unsupported(c, "logout"))
		}
		if err := be.Logout(ctx, helper.LogoutRequest{Profile: c.Logout.Profile, Forget: c.Logout.Forget}); err != nil {
			return fail("logout", err)
		}
		return &remote.Reply{Status: &remote.Status{Backend: c.Target.Name, OK: true}}
	case remote.OpStatus:
		if !caps.Status {
			return errorReply(unsupported(c, "status"))
		}
		st, err := be.Status(ctx)
		if err != nil {
			return fail("status", err)
		}
		return &remote.Reply{Status: remote.StatusOf(st)}
	}
	return errorReply(helper.Errorf(helper.KindInternal, "tokenhelper-pluginhost: unknown operation %q", c.Op))
}

func unsupported(c *remote.Call, what string) error {
	return (&remote.Error{Kind: helper.KindUsage, Msg: fmt.Sprintf("%s does not support %s", c.Target, what), Unsupported: true}).Err()
}

// command builds the plugin's command line after checking it: a
// built-in is this executable's `serve NAME`; an external plugin must
// pass remote.Check and still be the file checked when it is started.
// The command has no context: go-plugin owns the process (Conn.Kill and
// Conn.Close end it, gracefully first), and Conn.Failure tells a call's
// deadline from a crash.
func command(t remote.Target, self string) (*exec.Cmd, error) {
	if t.Builtin {
		if _, ok := plugins.Lookup(t.Name); !ok {
			return nil, helper.Errorf(helper.KindConfig, "%s is not built into this tokenhelper-pluginhost", t).
				WithFix("install tokenhelper and tokenhelper-pluginhost from the same release")
		}
		return exec.Command(self, "serve", t.Name), nil //nolint:noctx // go-plugin ends it (see above)
	}
	checked, err := remote.Check(t, os.Geteuid())
	if err != nil {
		return nil, err
	}
	now, err := os.Stat(t.Path)
	if err != nil || !os.SameFile(checked, now) || now.Size() != checked.Size() || !now.ModTime().Equal(checked.ModTime()) {
		return nil, helper.Errorf(helper.KindUnsafe, "%s changed while it was being checked", t).
			WithFix("try again; if it persists, find out what rewrites %s", t.Path)
	}
	return exec.Command(t.Path), nil //nolint:noctx // go-plugin ends it (see above)
}

// socketBase is where the plugin's private socket directory goes: the
// system temporary directory, unless its path is too long for a UNIX
// socket address (108 bytes on Linux).
func socketBase() string {
	if d := os.TempDir(); len(d) <= 60 {
		return d
	}
	return "/tmp"
}

func hostLogger(verbose int, w io.Writer) hclog.Logger {
	if verbose < 2 || w == nil {
		return hclog.NewNullLogger()
	}
	return hclog.New(&hclog.LoggerOptions{Name: "pluginhost", Level: hclog.Debug, Output: w})
}

// serve serves the built-in backend name over go-plugin.
func serve(name string, stderr io.Writer) int {
	b, ok := plugins.Lookup(name)
	if !ok {
		fmt.Fprintf(stderr, "%s: no built-in backend %q\n", remote.HostCommand, name)
		return 2
	}
	rpc.Serve(&rpc.Server{
		Name:    b.Name,
		Version: buildVersion(),
		New: func(ctx context.Context, c rpc.Config) (helper.Backend, error) {
			return b.New(c.Profile, Deps(c))
		},
	})
	return 0
}

// Deps are a built-in backend's dependencies inside a plugin process: the
// real environment and clock, and the host's directories, uid and
// temporary directory; its log and UI write to the plugin's stderr,
// which go-plugin forwards to tokenhelper's.
func Deps(c rpc.Config) plugins.Deps {
	level := slog.LevelWarn
	switch {
	case c.Host.Verbose >= 2:
		level = slog.LevelDebug
	case c.Host.Verbose == 1:
		level = slog.LevelInfo
	}
	ui := c.UI
	if ui == nil {
		ui = rpc.PluginUI{Profile: c.Profile.Name}
	}
	return plugins.Deps{
		LookupEnv: os.LookupEnv,
		Environ:   os.Environ,
		Dirs:      c.Host.Dirs,
		Now:       time.Now,
		UID:       c.Host.UID,
		TmpDir:    c.Host.TmpDir,
		Log:       slog.New(slog.NewTextHandler(ui.Out(), &slog.HandlerOptions{Level: level})),
		UI:        ui,
	}
}
