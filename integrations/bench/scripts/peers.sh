#!/usr/bin/env bash
# tokenhelper against its peers, side by side in one run (docs/benchmarks.md):
# warm token vs oidc-token vs cat, git credential helpers, a refresh vs curl,
# peak memory, 10/100/500 processes at once, a simulated batch day.
#
#   TOKENHELPER_BENCH_OUT=bin/bench   where report.md, results.json and
#                                     hyperfine's JSON exports go
#   TOKENHELPER_BENCH_DAY_SCALE=60    time scale of the simulated day
#                                     (60: 1 h tokens last 60 s, the day 24 min)
#   TOKENHELPER_BIN=                  prebuilt binaries (default: built as make build does)
#
# Needs: hyperfine git curl oidc-agent-cli time (Debian packages). Run it on a
# quiet machine: other load shows up in every number.
set -euo pipefail
cd "$(dirname "$0")/../../.."

missing=()
for tool in hyperfine:hyperfine git:git curl:curl oidc-agent:oidc-agent-cli oidc-token:oidc-agent-cli /usr/bin/time:time; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "peers.sh: missing tools; install them with: apt-get install -y ${missing[*]}" >&2
  exit 2
fi

export TOKENHELPER_BENCH=1
export TOKENHELPER_BENCH_OUT=${TOKENHELPER_BENCH_OUT:-$PWD/bin/bench}
mkdir -p "$TOKENHELPER_BENCH_OUT"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
${GO:-go} test -count=1 -run '^TestPeers$' -v -timeout 90m ./integrations/bench/ | tee "$TOKENHELPER_BENCH_OUT/test.log"
echo
echo "report: $TOKENHELPER_BENCH_OUT/report.md (raw numbers: results.json, hyperfine-*.json)"
