#!/usr/bin/env bash
# Start-up speed of a one-query command vs psql running the same query against the same server.
# `singularity ping --json` runs exactly one query (version + server time); psql -Atc runs it too.
# Each round runs both, interleaved, after warm-ups; prints the medians and the ratio (target <= 3x).
#
# Usage: bash bench/startup.sh [N]        N runs each (default 15, or $N), after 2 warm-ups ($WARMUP).
# Server: SINGULARITY_ADMIN_URL when set; else the default local cluster when it is running; else a
# throwaway local cluster in a temporary --data-dir, which this script starts and removes (and only it).
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-${N:-15}}
warmup=${WARMUP:-2}
# The same query as src/commands/ping.ts.
query="SELECT version() AS version, current_setting('server_version_num') AS version_num, to_json(now())#>>'{}' AS now"

[ -f dist/commands/ping.js ] && [ -f oclif.manifest.json ] || npm run build >/dev/null
command -v psql >/dev/null || { echo "psql not found (apt-get install postgresql-client)" >&2; exit 1; }

tmpdir=
cleanup() {
  if [ -n "$tmpdir" ]; then
    node bin/run.js local stop --data-dir "$tmpdir" >/dev/null 2>&1 || true
    rm -rf "$tmpdir"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -n "${SINGULARITY_ADMIN_URL:-}" ]; then
  server="SINGULARITY_ADMIN_URL"
elif node bin/run.js local status >/dev/null 2>&1; then
  eval "$(node bin/run.js local env)"
  server="the local cluster (already running)"
else
  tmpdir=$(mktemp -d /tmp/singularity-bench-startup-XXXXXX)
  chmod 755 "$tmpdir"
  node bin/run.js local start --data-dir "$tmpdir" >/dev/null
  eval "$(node bin/run.js local env --data-dir "$tmpdir")"
  server="a throwaway local cluster ($tmpdir)"
fi
url=$SINGULARITY_ADMIN_URL

cli_run() { node bin/run.js ping --json >/dev/null 2>&1; }
psql_run() { psql "$url" -X -Atc "$query" >/dev/null 2>&1; }
node_run() { node -e 0; }

# Both must work before anything is timed.
node bin/run.js ping >/dev/null || { echo "singularity ping failed against $server" >&2; exit 1; }
psql "$url" -X -Atc "$query" >/dev/null || { echo "psql failed against $server" >&2; exit 1; }

# Wall time of one call in seconds (bash's EPOCHREALTIME: no extra process in the measurement).
elapsed() {
  local t0=$EPOCHREALTIME
  "$@"
  local t1=$EPOCHREALTIME
  awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.6f\n", b - a}'
}

median() { sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

for ((i = 0; i < warmup; i++)); do cli_run; psql_run; node_run; done
cli_times=() psql_times=() node_times=()
for ((i = 0; i < runs; i++)); do
  cli_times+=("$(elapsed cli_run)")
  psql_times+=("$(elapsed psql_run)")
  node_times+=("$(elapsed node_run)")
done

cli_median=$(printf '%s\n' "${cli_times[@]}" | median)
psql_median=$(printf '%s\n' "${psql_times[@]}" | median)
node_median=$(printf '%s\n' "${node_times[@]}" | median)

echo "server: $server; $runs runs each after $warmup warm-ups; one query: version + server time"
awk -v c="$cli_median" -v p="$psql_median" -v n="$node_median" 'BEGIN {
  printf "  singularity ping --json   median %6.3f s\n", c
  printf "  psql -Atc (same query)    median %6.3f s\n", p
  printf "  node -e 0 (reference)     median %6.3f s\n", n
  printf "ratio singularity / psql: %.1fx   (target <= 3x)\n", c / p
}'
