// Package pluginpb is the Go code generated from
// plugins/rpc/tokenhelper.proto, the tokenhelper backend plugin protocol
// (version 1). Do not edit it by hand: change the .proto and run
// `make generate`. Use it through plugins/rpc, which converts to and from
// tokenhelper's own types.
package pluginpb
