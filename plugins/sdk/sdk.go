// Package sdk is for writing external tokenhelper backends: an executable
// tokenhelper-plugin-NAME whose main hands a helper.Backend to Serve.
// tokenhelper finds it in its plugin directories when a profile says
// backend = "NAME", starts it over hashicorp/go-plugin (protocol in
// plugins/rpc/tokenhelper.proto), hands it the profile, and calls it with
// the request's deadline. A complete plugin:
//
//	package main
//
//	import (
//		"context"
//
//		"github.com/tokenhelper/tokenhelper/helper"
//		"github.com/tokenhelper/tokenhelper/plugins/sdk"
//	)
//
//	type backend struct{ profile string }
//
//	func (b *backend) Configure(ctx context.Context, c sdk.Config) error {
//		b.profile = c.Profile.Name // c.Profile.Options holds [profiles.NAME.options]
//		return nil
//	}
//
//	func (b *backend) Token(ctx context.Context, req helper.Request) (*helper.Token, error) {
//		return nil, helper.LoginNeeded(req.Profile, "no session yet")
//	}
//
//	func main() { sdk.Serve(&backend{}, sdk.WithVersion("1.0.0")) }
//
// Rules for backends: honour ctx (its deadline ends a little before the
// host's, so your own timeout message reaches the user); never prompt
// (there is no terminal: PluginUI.Secret fails with the fix to give); return
// *helper.Error values with the right Kind, a Msg without token material
// and a Fix naming what to do — they arrive unchanged on the host, where
// the Kind is tokenhelper's exit code. Implement helper.Loginer,
// helper.Logouter or helper.Statuser to offer login, logout or status;
// write diagnostics to os.Stderr (tokenhelper shows them), never to
// os.Stdout (go-plugin's handshake channel). Test with
// plugins/conformance.
//
// Run by hand, a plugin answers --version and otherwise explains that
// tokenhelper starts it.
package sdk

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/plugins/rpc"
	"github.com/tokenhelper/tokenhelper/plugins/rpc/remote"
)

// Config is what the host hands the plugin before any call: the profile
// (with its options table), the host's directories and the login UI.
type Config = rpc.Config

// Configurer is implemented by backends that need their profile. Serve
// calls Configure once, before any other call.
type Configurer interface {
	Configure(ctx context.Context, c Config) error
}

// Factory builds the backend for the profile the host sends.
type Factory func(ctx context.Context, c Config) (helper.Backend, error)

// Option changes how Serve presents the plugin.
type Option func(*options)

type options struct {
	name, version string
	prototype     helper.Backend
	args          []string
	getenv        func(string) string
	stdout        io.Writer
	stderr        io.Writer
}

// WithName sets the backend name (default: NAME of the executable's
// name tokenhelper-plugin-NAME).
func WithName(name string) Option { return func(o *options) { o.name = name } }

// WithVersion sets the version the plugin reports (default: the main
// module's version from the build information).
func WithVersion(v string) Option { return func(o *options) { o.version = v } }

// WithPrototype gives ServeFactory a backend of the type the factory
// returns, so the plugin can report its capabilities before it is
// configured (tokenhelper plugin list).
func WithPrototype(b helper.Backend) Option { return func(o *options) { o.prototype = b } }

// withIO replaces the process's arguments, environment and output
// (tests).
func withIO(args []string, getenv func(string) string, stdout, stderr io.Writer) Option {
	return func(o *options) { o.args, o.getenv, o.stdout, o.stderr = args, getenv, stdout, stderr }
}

// Serve serves b. If b implements Configurer it receives the profile
// first. Serve returns when tokenhelper is done with the plugin; when the
// executable is run by hand it prints its version (--version) or what it
// is, and exits.
func Serve(b helper.Backend, opts ...Option) {
	ServeFactory(func(ctx context.Context, c Config) (helper.Backend, error) {
		if cf, ok := b.(Configurer); ok {
			if err := cf.Configure(ctx, c); err != nil {
				return nil, err
			}
		}
		return b, nil
	}, append([]Option{WithPrototype(b)}, opts...)...)
}

// ServeFactory serves the backend f builds from the configuration.
func ServeFactory(f Factory, opts ...Option) {
	o := resolve(opts)
	if code, done := o.standalone(); done {
		os.Exit(code)
	}
	rpc.Serve(&rpc.Server{Name: o.name, Version: o.version, New: f, Prototype: o.prototype})
}

func resolve(opts []Option) *options {
	o := &options{args: os.Args, getenv: os.Getenv, stdout: os.Stdout, stderr: os.Stderr}
	for _, opt := range opts {
		opt(o)
	}
	if o.name == "" && len(o.args) > 0 {
		o.name = strings.TrimPrefix(filepath.Base(o.args[0]), remote.ExecPrefix)
	}
	if o.version == "" {
		o.version = "(devel)"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
			o.version = bi.Main.Version
		}
	}
	return o
}

// standalone handles a run by hand: --version, or an explanation when the
// magic cookie is missing. done is false when tokenhelper started us.
func (o *options) standalone() (code int, done bool) {
	if len(o.args) == 2 && (o.args[1] == "--version" || o.args[1] == "-version" || o.args[1] == "version") {
		fmt.Fprintf(o.stdout, "%s%s %s (tokenhelper plugin protocol %d)\n", remote.ExecPrefix, o.name, o.version, rpc.ProtocolVersion)
		return 0, true
	}
	if o.getenv(rpc.Handshake.MagicCookieKey) != rpc.Handshake.MagicCookieValue {
		fmt.Fprintf(o.stderr, "%s%s is a tokenhelper plugin: tokenhelper runs it for profiles with backend = %q.\n"+
			"Put it into a plugin directory ($XDG_DATA_HOME/tokenhelper/plugins); see: tokenhelper plugin list\n",
			remote.ExecPrefix, o.name, o.name)
		return 2, true
	}
	return 0, false
}
