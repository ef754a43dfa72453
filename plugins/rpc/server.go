package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/plugins/rpc/pluginpb"
	"github.com/tokenhelper/tokenhelper/plugins/rpc/remote"
)

// Config is what the host hands a plugin before any call.
type Config struct {
	// Profile is the profile the plugin serves, options included.
	Profile *config.Profile
	// Host describes the tokenhelper process (directories, uid, -v).
	Host remote.Host
	// UI is how the backend talks to the person during a login: its
	// messages reach tokenhelper's stderr, and it cannot prompt.
	UI helper.UI
}

// Server is what a plugin process serves.
type Server struct {
	// Name and Version answer Info.
	Name    string
	Version string
	// New builds the backend once the host has sent the configuration.
	New func(ctx context.Context, c Config) (helper.Backend, error)
	// Prototype, if set, answers Info's capabilities before Configure
	// (the backend New will return, or one of the same type).
	Prototype helper.Backend
}

// Serve serves s over go-plugin on this process's stdio, as a plugin
// started by tokenhelper. It returns when the host is done.
func Serve(s *Server) {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         PluginSet(s),
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger: hclog.New(&hclog.LoggerOptions{
			Name:       "plugin",
			Level:      hclog.Warn,
			Output:     os.Stderr,
			JSONFormat: true,
		}),
	})
}

// Margin is how much earlier than the host's deadline the backend's own
// context ends: a tenth of the time left, at most MaxMargin.
func Margin(left time.Duration) time.Duration {
	m := left / 10
	if m > MaxMargin {
		m = MaxMargin
	}
	return m
}

// MaxMargin bounds Margin.
const MaxMargin = 500 * time.Millisecond

func withMargin(ctx context.Context) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	return context.WithDeadline(ctx, dl.Add(-Margin(time.Until(dl))))
}

// grpcServer adapts a Server to the generated service.
type grpcServer struct {
	pluginpb.UnimplementedBackendServer
	srv *Server

	mu      sync.Mutex
	backend helper.Backend
	profile string
}

func caps(b helper.Backend) *pluginpb.Capabilities {
	if b == nil {
		return &pluginpb.Capabilities{}
	}
	_, login := b.(helper.Loginer)
	_, logout := b.(helper.Logouter)
	_, status := b.(helper.Statuser)
	return &pluginpb.Capabilities{Login: login, Logout: logout, Status: status}
}

func (s *grpcServer) Info(ctx context.Context, _ *pluginpb.InfoRequest) (*pluginpb.InfoReply, error) {
	b, _ := s.configured()
	if b == nil {
		b = s.srv.Prototype
	}
	return &pluginpb.InfoReply{Name: s.srv.Name, Version: s.srv.Version, Capabilities: caps(b)}, nil
}

func (s *grpcServer) Configure(ctx context.Context, in *pluginpb.ConfigureRequest) (*pluginpb.ConfigureReply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.backend != nil {
		return &pluginpb.ConfigureReply{Error: ErrorToPB(helper.Errorf(helper.KindInternal, "plugin %s: configured twice", s.srv.Name))}, nil
	}
	p := ProfileFromPB(in.GetProfile())
	if p == nil {
		return &pluginpb.ConfigureReply{Error: ErrorToPB(helper.Errorf(helper.KindInternal, "plugin %s: configured without a profile", s.srv.Name))}, nil
	}
	ctx, cancel := withMargin(ctx)
	defer cancel()
	b, err := s.srv.New(ctx, Config{Profile: p, Host: HostFromPB(in.GetHost()), UI: PluginUI{Profile: p.Name}})
	if err != nil {
		return &pluginpb.ConfigureReply{Error: ErrorToPB(err)}, nil
	}
	if b == nil {
		return &pluginpb.ConfigureReply{Error: ErrorToPB(helper.Errorf(helper.KindInternal, "plugin %s: no backend for profile %q", s.srv.Name, p.Name))}, nil
	}
	s.backend, s.profile = b, p.Name
	return &pluginpb.ConfigureReply{Capabilities: caps(b)}, nil
}

func (s *grpcServer) configured() (helper.Backend, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.backend == nil {
		return nil, helper.Errorf(helper.KindInternal, "plugin %s: called before Configure", s.srv.Name)
	}
	return s.backend, nil
}

func unsupported(name, what string) error {
	return &helper.Error{Kind: helper.KindUsage, Msg: fmt.Sprintf("backend %s does not support %s", name, what), Err: errors.ErrUnsupported}
}

func (s *grpcServer) Token(ctx context.Context, in *pluginpb.TokenRequest) (*pluginpb.TokenReply, error) {
	b, err := s.configured()
	if err != nil {
		return &pluginpb.TokenReply{Error: ErrorToPB(err)}, nil
	}
	ctx, cancel := withMargin(ctx)
	defer cancel()
	tok, err := b.Token(ctx, RequestFromPB(in.GetRequest()))
	return tokenReply(tok, err), nil
}

func tokenReply(tok *helper.Token, err error) *pluginpb.TokenReply {
	switch {
	case err != nil:
		return &pluginpb.TokenReply{Error: ErrorToPB(err)}
	case tok == nil:
		return &pluginpb.TokenReply{Error: ErrorToPB(helper.Errorf(helper.KindInternal, "the backend returned neither a token nor an error"))}
	}
	return &pluginpb.TokenReply{Token: TokenToPB(tok)}
}

func (s *grpcServer) Login(ctx context.Context, in *pluginpb.LoginRequest) (*pluginpb.TokenReply, error) {
	b, err := s.configured()
	if err != nil {
		return &pluginpb.TokenReply{Error: ErrorToPB(err)}, nil
	}
	l, ok := b.(helper.Loginer)
	if !ok {
		return &pluginpb.TokenReply{Error: ErrorToPB(unsupported(s.srv.Name, "login"))}, nil
	}
	ctx, cancel := withMargin(ctx)
	defer cancel()
	tok, err := l.Login(ctx, helper.LoginRequest{Request: RequestFromPB(in.GetRequest()), Flow: in.GetFlow(), UI: PluginUI{Profile: s.profile}})
	return tokenReply(tok, err), nil
}

func (s *grpcServer) Logout(ctx context.Context, in *pluginpb.LogoutRequest) (*pluginpb.LogoutReply, error) {
	b, err := s.configured()
	if err != nil {
		return &pluginpb.LogoutReply{Error: ErrorToPB(err)}, nil
	}
	l, ok := b.(helper.Logouter)
	if !ok {
		return &pluginpb.LogoutReply{Error: ErrorToPB(unsupported(s.srv.Name, "logout"))}, nil
	}
	ctx, cancel := withMargin(ctx)
	defer cancel()
	err = l.Logout(ctx, helper.LogoutRequest{Profile: in.GetProfile(), Forget: in.GetForget(), UI: PluginUI{Profile: s.profile}})
	return &pluginpb.LogoutReply{Error: ErrorToPB(err)}, nil
}

func (s *grpcServer) Status(ctx context.Context, _ *pluginpb.StatusRequest) (*pluginpb.StatusReply, error) {
	b, err := s.configured()
	if err != nil {
		return &pluginpb.StatusReply{Error: ErrorToPB(err)}, nil
	}
	st, ok := b.(helper.Statuser)
	if !ok {
		return &pluginpb.StatusReply{Error: ErrorToPB(unsupported(s.srv.Name, "status"))}, nil
	}
	ctx, cancel := withMargin(ctx)
	defer cancel()
	out, err := st.Status(ctx)
	if err != nil {
		return &pluginpb.StatusReply{Error: ErrorToPB(err)}, nil
	}
	return StatusToPB(out), nil
}

// PluginUI is the helper.UI of a backend running in a plugin process. Its
// output goes to the plugin's stderr, which go-plugin forwards to
// tokenhelper's; it has no terminal, so Secret fails with a message
// naming the ways to give a passphrase without one.
type PluginUI struct {
	// Profile names the profile in messages.
	Profile string
}

// Out returns the plugin's stderr (forwarded to the host).
func (PluginUI) Out() io.Writer { return stderr{} }

// Terminal is false: a plugin cannot read the person's terminal.
func (PluginUI) Terminal() bool { return false }

// Now is the real clock.
func (PluginUI) Now() time.Time { return time.Now() }

// Secret always fails: there is no terminal in a plugin process.
func (u PluginUI) Secret(prompt string) (string, error) {
	p := u.Profile
	if p == "" {
		p = "NAME"
	}
	return "", &helper.Error{
		Kind: helper.KindLoginNeeded,
		Msg:  "a passphrase is needed, but the backend runs in its own process (isolate = true or a plugin) and cannot read the terminal",
		Fix:  fmt.Sprintf("set passphrase_env, passphrase_file or passphrase_cmd in [profiles.%s], or set isolate = false", p),
	}
}

// stderr writes to whatever os.Stderr is at the time of the write:
// go-plugin replaces it once serving starts.
type stderr struct{}

func (stderr) Write(p []byte) (int, error) { return os.Stderr.Write(p) }
