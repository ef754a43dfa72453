// Package bench measures tokenhelper against the tools grid users run
// today, side by side in one run: warm `tokenhelper token` against
// `oidc-token` (the real oidc-agent 4.2.6, answering from its cache) and
// `cat` of a token file; `git credential fill` through tokenhelper against
// git's credential-store; a refresh through tokenhelper against a bare
// curl POST of the same refresh; peak memory of each; 10, 100 and 500
// processes asking at once on an expired cache (refreshes at the provider,
// p50/p99 latency); and a simulated day of a batch node (1000 job starts,
// 1 h tokens, time scaled) against the fewest refreshes the lifetime
// allows.
//
// The measurements are tests gated by TOKENHELPER_BENCH=1 (they take
// minutes and need hyperfine, git, curl and oidc-agent-cli); `make bench`
// runs them through scripts/peers.sh, together with the Go benchmarks of
// every package (go test -bench). Results go to docs/benchmarks.md; the
// raw numbers to $TOKENHELPER_BENCH_OUT (report.md, results.json,
// hyperfine's JSON exports).
package bench
