// Package reliability is tokenhelper's fault, kill and leak campaign
// (docs/reliability.md): the real tokenhelper binary, as git, curl, batch
// jobs and people run it, against the loopback test bed
// (integrations/testbed) with everything going wrong.
//
//   - Fault matrix: every fault the test bed can inject (HTTP statuses, a
//     hanging provider, broken, HTML and oversized answers, every OAuth
//     error code) × `token`, `login`, `git credential fill`,
//     `tokenhelper curl` and `tokenhelper exec`: each ends with one line
//     on stderr and its documented exit code, the stored state is byte for
//     byte unchanged, and a cached token still valid is served while the
//     provider is down.
//   - SIGKILL at random points of a refresh and of the writes that
//     follow it (some rounds slowed down at fsync and rename with strace
//     fault injection), at least 100 rounds: the stored state always
//     reads back, and a refresh token is only ever lost in the window no
//     client can close (after the provider rotated it, before the new one
//     reached the disk), which the next call reports as "session expired".
//   - Secret-leak scan: the end-to-end suites at maximum verbosity
//     (TOKENHELPER_VERBOSE=2) under strace, recording every write of every
//     process and every execve's argv and environment, /proc polled for
//     argv and environments, and every file others can read under the
//     tests' temporary directories, searched for every secret the test
//     beds issued ($TOKENHELPER_TESTBED_SECRETS).
//
// The tests run only with TOKENHELPER_RELIABILITY=1 (`make reliability`,
// which also runs every fuzz target for 5 minutes): plain `go test ./...`
// skips them. They need git, curl and strace (Debian: git curl strace).
package reliability
