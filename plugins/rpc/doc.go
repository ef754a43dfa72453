// Package rpc is tokenhelper's backend plugin protocol over
// hashicorp/go-plugin: the handshake (magic cookie TOKENHELPER_PLUGIN,
// protocol version 1), the plugin map (one plugin, "backend"), the gRPC
// service of tokenhelper.proto (generated code in pluginpb), the adapters
// between that service and helper.Backend on both sides, the error codes
// (helper.Kind numbers), and Launch, which starts a plugin and turns every
// way it can fail into an error naming it.
//
// The layout follows go-plugin's examples/grpc/shared. Errors a person
// must act on cross in-band as (kind, msg, fix), so a plugin's "login
// needed" is KindLoginNeeded on the host; a gRPC error means the call
// itself failed. Deadlines are the gRPC deadlines of the calls; the
// server gives the backend a slightly earlier one (Margin) so that the
// backend's own timeout message, not the host's, reaches the user.
//
// Only tokenhelper-pluginhost and plugins link this package (with gRPC
// and protobuf): the main binary reaches it through plugins/rpc/remote.
package rpc
