package rpc

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/tokenhelper/tokenhelper/plugins/rpc/pluginpb"
)

// ProtocolVersion is the version of the plugin protocol
// (tokenhelper.proto). A host and a plugin of different versions refuse
// each other at the handshake.
const ProtocolVersion = 1

// PluginName is the name the backend is dispensed under.
const PluginName = "backend"

// Handshake is shared by host and plugins. The magic cookie only tells a
// plugin executable that tokenhelper started it (it is not a secret); a
// plugin run by hand says what it is instead.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "TOKENHELPER_PLUGIN",
	MagicCookieValue: "backend-v1-8f9e0c4a2b7d",
}

// BackendPlugin is the go-plugin Plugin of the backend service. The host
// uses it with a nil Impl; a plugin serves Impl.
type BackendPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl *Server
}

var _ plugin.GRPCPlugin = (*BackendPlugin)(nil)

// GRPCServer registers the backend service (plugin side).
func (p *BackendPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pluginpb.RegisterBackendServer(s, &grpcServer{srv: p.Impl})
	return nil
}

// GRPCClient returns a *Client (host side).
func (p *BackendPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &Client{rpc: pluginpb.NewBackendClient(c)}, nil
}

// PluginSet is the plugin map of host and plugins.
func PluginSet(s *Server) plugin.PluginSet {
	return plugin.PluginSet{PluginName: &BackendPlugin{Impl: s}}
}
