#!/usr/bin/env bash
# Start-up speed, side by side on the same estate: `psql -c 'select 1'`, `singularity ping` (one
# query: version + server time) and `singularity queue stats` (discovers the estate, reads every queue
# database), with two references: `node -e 0` and node-postgres alone running ping's query (the floor of
# any Node.js client). Each round runs all five, interleaved, after warm-ups; prints medians and ratios.
# Targets: ping <= 3x psql (issue 15); queue stats <= 1.5x ping (issue 12).
#
# Usage: bash bench/startup.sh [N]        N runs each (default 15, or $N), after 2 warm-ups ($WARMUP).
# Server: SINGULARITY_ADMIN_URL when set; else the default local cluster when it is running (both must
# hold an estate: `singularity db init`); else a throwaway local cluster in a temporary --data-dir with
# an estate made by `db init`, which this script starts and removes (and only it).
# Figures are wall time on a shared machine: the script prints the load average next to them.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-${N:-15}}
warmup=${WARMUP:-2}

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
  export SINGULARITY_LOCAL_DIR="$tmpdir"
  node bin/run.js db init --passwords-file "$tmpdir/role-passwords.json" >/dev/null 2>&1 || { echo "db init failed on the throwaway cluster" >&2; exit 1; }
  server="a throwaway local cluster with a fresh estate ($tmpdir)"
fi
url=$SINGULARITY_ADMIN_URL

psql_run() { psql "$url" -X -Atc 'select 1' >/dev/null 2>&1; }
ping_run() { node bin/run.js ping >/dev/null 2>&1; }
stats_run() { node bin/run.js queue stats >/dev/null 2>&1; }
node_run() { node -e 0; }
# The floor of any Node.js implementation: node-postgres alone (no CLI framework, no config), the
# same connection and query as ping, as anyone would write it in a script.
bare_pg_run() {
  node -e "const {Client} = require('pg'); const c = new Client({connectionString: process.env.SINGULARITY_ADMIN_URL}); c.connect().then(() => c.query(\"SELECT version(), current_setting('server_version_num'), now()\")).then(() => c.end())"
}

# All must work before anything is timed.
psql "$url" -X -Atc 'select 1' >/dev/null || { echo "psql failed against $server" >&2; exit 1; }
node bin/run.js ping >/dev/null || { echo "singularity ping failed against $server" >&2; exit 1; }
node bin/run.js queue stats >/dev/null || { echo "singularity queue stats failed against $server (no estate? run \`singularity db init\`)" >&2; exit 1; }

# Wall time of one call in seconds (bash's EPOCHREALTIME: no extra process in the measurement).
elapsed() {
  local t0=$EPOCHREALTIME
  "$@"
  local t1=$EPOCHREALTIME
  awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.6f\n", b - a}'
}

median() { sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
bare_pg_run 2>/dev/null || { echo "node-postgres alone failed against $server" >&2; exit 1; }
for ((i = 0; i < warmup; i++)); do psql_run; ping_run; stats_run; node_run; bare_pg_run; done
psql_times=() ping_times=() stats_times=() node_times=() bare_times=()
for ((i = 0; i < runs; i++)); do
  psql_times+=("$(elapsed psql_run)")
  ping_times+=("$(elapsed ping_run)")
  stats_times+=("$(elapsed stats_run)")
  node_times+=("$(elapsed node_run)")
  bare_times+=("$(elapsed bare_pg_run)")
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

psql_median=$(printf '%s\n' "${psql_times[@]}" | median)
ping_median=$(printf '%s\n' "${ping_times[@]}" | median)
stats_median=$(printf '%s\n' "${stats_times[@]}" | median)
node_median=$(printf '%s\n' "${node_times[@]}" | median)
bare_median=$(printf '%s\n' "${bare_times[@]}" | median)

echo "server: $server; $runs runs each after $warmup warm-ups, interleaved"
echo "load average (1/5/15 min): $load_before before, $load_after after"
awk -v p="$psql_median" -v g="$ping_median" -v s="$stats_median" -v n="$node_median" -v b="$bare_median" 'BEGIN {
  printf "  psql -c '"'"'select 1'"'"'          median %6.3f s\n", p
  printf "  singularity ping             median %6.3f s   %4.2fx psql   (target <= 3x)\n", g, g / p
  printf "  singularity queue stats      median %6.3f s   %4.2fx ping   (target <= 1.5x)\n", s, s / g
  printf "  node -e 0 (reference)        median %6.3f s   %4.2fx psql\n", n, n / p
  printf "  node + node-postgres alone   median %6.3f s   %4.2fx psql   (the same query, no CLI: reference)\n", b, b / p
}'
