// Package rig runs the real tokenhelper binary, as users and tools run it,
// against the loopback test bed (integrations/testbed): a private HOME with
// XDG directories, a native profile logged in through the device flow, the
// real oidc-agent 4.2.6 with an account at the test bed, and helpers to
// time commands, read their peak memory (getrusage), expire the token
// cache and fingerprint the stored state.
//
// It is shared by the benchmarks (integrations/bench) and the reliability
// campaign (integrations/reliability); both are tests, and so is every
// user of this package: it imports the test bed, which the tokenhelper
// binary must never link.
//
// The binaries are built once per test process the way `make build` builds
// them (-trimpath, -ldflags "-s -w"), or taken from $TOKENHELPER_BIN when
// that names a directory holding them. Nothing here touches the machine's
// real configuration, cache, state or /tmp/bt_u$UID: every child gets
// HOME, XDG_RUNTIME_DIR and a git configuration inside the rig's
// directory, and secrets reach children through files or the environment,
// never argv.
package rig
