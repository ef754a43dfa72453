#!/usr/bin/env bash
# Run every fuzz target of the module, one after the other, and keep what
# the fuzzer found as seed corpus (testdata/fuzz/FuzzXxx/ of each package).
#
#   FUZZTIME=30s       how long one go test -fuzz run lasts (go's -fuzztime)
#   FUZZ_MIN_CPU=0     run a target again until it has used this many CPU
#                      seconds in all (make reliability: 300, i.e. 5 CPU-minutes)
#   FUZZ_PARALLEL=     fuzz workers (go's -parallel; default: GOMAXPROCS)
#   FUZZ_KEEP=10       new corpus entries (the smallest) copied per target
#   FUZZ_PKGS=./...    package patterns
#   FUZZ_REPORT=       also write the markdown summary to this file, row by
#                      row; a campaign cut short resumes from it: targets it
#                      already reports ok are not run again
#
# A failing input is written by go test itself into the package's
# testdata/fuzz/FuzzXxx/ and makes this script exit 1 at the end.
set -euo pipefail
cd "$(dirname "$0")/../../.."

FUZZTIME=${FUZZTIME:-30s}
FUZZ_MIN_CPU=${FUZZ_MIN_CPU:-0}
FUZZ_KEEP=${FUZZ_KEEP:-10}
FUZZ_PKGS=${FUZZ_PKGS:-./...}
GO=${GO:-go}
par=()
[ -n "${FUZZ_PARALLEL:-}" ] && par=(-parallel "$FUZZ_PARALLEL")
[ -x /usr/bin/time ] || { echo "fuzz.sh: /usr/bin/time is missing: apt-get install time" >&2; exit 2; }

cache=$($GO env GOCACHE)/fuzz
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
summary="$work/summary.md"
{
  echo "| package | target | CPU seconds | runs | executions | new interesting inputs | seeds kept | result |"
  echo "|---|---|---:|---:|---:|---:|---:|---|"
} > "$summary"

# Resume: the rows of targets a previous run finished (result ok).
done_rows="$work/done"
: > "$done_rows"
if [ -n "${FUZZ_REPORT:-}" ] && [ -f "$FUZZ_REPORT" ]; then
  grep -E '^\| [^|]+ \| Fuzz[A-Za-z0-9_]+ \|.*\| ok \|$' "$FUZZ_REPORT" > "$done_rows" || true
  cat "$done_rows" >> "$summary"
fi
report() { [ -z "${FUZZ_REPORT:-}" ] || cp "$summary" "$FUZZ_REPORT"; }

failed=0
for pkg in $($GO list $FUZZ_PKGS); do
  targets=$($GO test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true)
  [ -z "$targets" ] && continue
  dir=$($GO list -f '{{.Dir}}' "$pkg")
  for f in $targets; do
    if grep -qF "| ${pkg#github.com/tokenhelper/tokenhelper/} | $f |" "$done_rows"; then
      echo "== $pkg $f: done in an earlier run ($FUZZ_REPORT)"
      continue
    fi
    corpus="$cache/$pkg/$f"
    mkdir -p "$corpus"
    ls "$corpus" > "$work/before"
    cpu=0 runs=0 execs=0 interesting=0 result=ok
    while :; do
      runs=$((runs + 1))
      log="$work/$f.$runs.log"
      echo "== $pkg $f (run $runs, $FUZZTIME)"
      if ! /usr/bin/time -f '%U %S' -o "$work/time" \
          $GO test -run '^$' -fuzz "^$f\$" -fuzztime "$FUZZTIME" "${par[@]}" "$pkg" > "$log" 2>&1; then
        result=FAILED
        failed=1
        tail -30 "$log"
      fi
      # time -o starts with "Command exited with non-zero status N" when the run failed.
      cpu=$(tail -n 1 "$work/time" | awk -v c="$cpu" '{printf "%.0f", c + $1 + $2}')
      last=$(grep -E '^fuzz: elapsed' "$log" | tail -1 || true)
      e=$(sed -n 's/.*execs: \([0-9]*\).*/\1/p' <<<"$last"); execs=$((execs + ${e:-0}))
      n=$(sed -n 's/.*new interesting: \([0-9]*\).*/\1/p' <<<"$last"); interesting=$((interesting + ${n:-0}))
      [ "$result" = ok ] || break
      [ "$cpu" -ge "$FUZZ_MIN_CPU" ] && break
    done
    # The inputs that widened coverage in this campaign become seeds.
    ls "$corpus" | sort > "$work/after"
    kept=0
    mkdir -p "$dir/testdata/fuzz/$f"
    for e in $(comm -13 <(sort "$work/before") "$work/after" | while read -r x; do
                 echo "$(stat -c %s "$corpus/$x") $x"; done | sort -n | head -n "$FUZZ_KEEP" | cut -d' ' -f2); do
      if [ ! -e "$dir/testdata/fuzz/$f/$e" ]; then
        cp "$corpus/$e" "$dir/testdata/fuzz/$f/$e"
        kept=$((kept + 1))
      fi
    done
    rmdir "$dir/testdata/fuzz/$f" 2>/dev/null || true
    echo "| ${pkg#github.com/tokenhelper/tokenhelper/} | $f | $cpu | $runs | $execs | $interesting | $kept | $result |" >> "$summary"
    report
    if [ "$FUZZ_MIN_CPU" -gt 0 ] && [ "$cpu" -lt "$FUZZ_MIN_CPU" ] && [ "$result" = ok ]; then
      echo "fuzz.sh: $f used only $cpu CPU seconds" >&2
    fi
  done
done

echo
cat "$summary"
report
exit "$failed"
