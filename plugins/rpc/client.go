package rpc

import (
	"context"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/plugins/rpc/pluginpb"
	"github.com/tokenhelper/tokenhelper/plugins/rpc/remote"
)

// Client is the host side of the backend service. Its methods return the
// plugin's typed errors as *helper.Error values and transport failures as
// the gRPC errors they are (Conn.Failure explains those).
type Client struct {
	rpc pluginpb.BackendClient
}

// Info asks for the plugin's name, version and (possibly incomplete)
// capabilities.
func (c *Client) Info(ctx context.Context) (remote.Info, error) {
	r, err := c.rpc.Info(ctx, &pluginpb.InfoRequest{})
	if err != nil {
		return remote.Info{}, err
	}
	return infoOf(r.GetName(), r.GetVersion(), r.GetCapabilities()), nil
}

func infoOf(name, version string, c *pluginpb.Capabilities) remote.Info {
	return remote.Info{
		Name: remote.Clean(name), Version: remote.Clean(version),
		Login: c.GetLogin(), Logout: c.GetLogout(), Status: c.GetStatus(),
	}
}

// Configure hands the plugin its profile and returns its capabilities.
func (c *Client) Configure(ctx context.Context, cfg Config) (remote.Info, error) {
	r, err := c.rpc.Configure(ctx, &pluginpb.ConfigureRequest{Profile: ProfileToPB(cfg.Profile), Host: HostToPB(cfg.Host)})
	if err != nil {
		return remote.Info{}, err
	}
	if e := r.GetError(); e != nil {
		return remote.Info{}, ErrorFromPB(e)
	}
	return infoOf("", "", r.GetCapabilities()), nil
}

// Token implements helper.Backend.
func (c *Client) Token(ctx context.Context, req helper.Request) (*helper.Token, error) {
	r, err := c.rpc.Token(ctx, &pluginpb.TokenRequest{Request: RequestToPB(req)})
	if err != nil {
		return nil, err
	}
	return tokenOf(r)
}

func tokenOf(r *pluginpb.TokenReply) (*helper.Token, error) {
	if e := r.GetError(); e != nil {
		return nil, ErrorFromPB(e)
	}
	tok := TokenFromPB(r.GetToken())
	if tok == nil || tok.AccessToken == "" {
		return nil, helper.Errorf(helper.KindUnavailable, "the plugin answered without a token or an error")
	}
	if !helper.IsB64Token(tok.AccessToken) {
		return nil, helper.Errorf(helper.KindUnavailable, "the plugin returned something that is not a bearer token (%d bytes)", len(tok.AccessToken))
	}
	return tok, nil
}

// Login implements helper.Loginer (req.UI stays on the host: the plugin
// has its own, see PluginUI).
func (c *Client) Login(ctx context.Context, req helper.LoginRequest) (*helper.Token, error) {
	r, err := c.rpc.Login(ctx, &pluginpb.LoginRequest{Request: RequestToPB(req.Request), Flow: req.Flow})
	if err != nil {
		return nil, err
	}
	return tokenOf(r)
}

// Logout implements helper.Logouter.
func (c *Client) Logout(ctx context.Context, req helper.LogoutRequest) error {
	r, err := c.rpc.Logout(ctx, &pluginpb.LogoutRequest{Profile: req.Profile, Forget: req.Forget})
	if err != nil {
		return err
	}
	return ErrorFromPB(r.GetError())
}

// Status implements helper.Statuser.
func (c *Client) Status(ctx context.Context) (helper.Status, error) {
	r, err := c.rpc.Status(ctx, &pluginpb.StatusRequest{})
	if err != nil {
		return helper.Status{}, err
	}
	if e := r.GetError(); e != nil {
		return helper.Status{}, ErrorFromPB(e)
	}
	return StatusFromPB(r), nil
}
