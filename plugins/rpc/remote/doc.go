// Package remote runs token backends in other processes for the main
// tokenhelper binary, without linking gRPC into it.
//
// tokenhelper speaks hashicorp/go-plugin (gRPC, see plugins/rpc and
// plugins/rpc/tokenhelper.proto) to its plugins, but linking go-plugin,
// gRPC and protobuf costs every process start their package
// initialization (measured in docs/benchmarks.md), and most invocations
// are answered from the token cache without any plugin. So the main
// binary links only this package. A Backend hands each call (token, login,
// logout, status, info) to the companion executable tokenhelper-pluginhost
// as one JSON Call on its stdin and reads one JSON Reply from its stdout;
// the companion verifies and launches the plugin over go-plugin, makes the
// call with the same deadline, kills the plugin and exits.
//
// Two kinds of target run this way: an external plugin executable
// tokenhelper-plugin-NAME found in the plugin directories (Find), checked
// before every launch (Check: owner and permissions, or the sha256 pinned
// in [plugins.NAME]); and a built-in backend isolated in its own process
// (isolate = true), served by `tokenhelper-pluginhost serve NAME`.
//
// Stdin rule: no plugin ever reads tokenhelper's stdin. The companion's
// stdin is a pipe carrying exactly one Call, which it reads to EOF before
// it starts a plugin, and it then points its own stdin at /dev/null, which
// is what go-plugin hands to the plugin. So a git credential request or a
// curl config on tokenhelper's stdin stays tokenhelper's to read, before
// or after a backend call.
//
// Failures of the machinery itself (companion missing, plugin crashed or
// too slow, not a plugin, checksum mismatch) are *helper.Error values that
// name the plugin and its path; failures the plugin reports keep the kind,
// message and fix the plugin gave them.
package remote
