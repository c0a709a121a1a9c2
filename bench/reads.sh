#!/usr/bin/env bash
# Issue 19 (reads): wall time of each reading command over 1 and 20 singularity instances, on a
# throwaway local cluster this script creates and removes. Each command runs 3 times; the median is
# printed, with the default bound (8 at once) and with --concurrency 1 (one database after another,
# as before issue 19). BEFORE=<dir of another built checkout> adds a column timed with that build.
# Usage: bash bench/reads.sh
# Target (issue 19, measured fully by bench/scale.sh): reads flat in instance count.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f dist/commands/doctor.js ] || npm run build >/dev/null

dir=$(mktemp -d /tmp/singularity-bench-reads-XXXXXX)
cleanup() { node bin/run.js local stop --data-dir "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT

node bin/run.js local start --data-dir "$dir" >/dev/null 2>&1
unset SINGULARITY_ADMIN_URL PGHOST PGPORT PGUSER PGDATABASE PGSERVICE PGPASSFILE SINGULARITY_PREFIX SINGULARITY_CONCURRENCY SINGULARITY_DB_TIMEOUT
export SINGULARITY_LOCAL_DIR="$dir" NODE_NO_WARNINGS=1
node bin/run.js db init --prefix one_ --queue-engine bundled --passwords-file "$dir/pw1.json" >/dev/null 2>&1
node bin/run.js db init --prefix twenty_ --instances 20 --queue-engine bundled --passwords-file "$dir/pw20.json" >/dev/null 2>&1

# median wall time of 3 runs of: <bin> <command…>
median() {
  local bin=$1; shift
  local times=()
  for _ in 1 2 3; do
    local start end
    start=$(date +%s.%N)
    node "$bin" "$@" --json >/dev/null 2>&1 || true
    end=$(date +%s.%N)
    times+=("$(echo "$end - $start" | bc | xargs printf '%.2f')")
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n 2p
}

commands=("doctor" "queue stats" "jobs list" "db status" "db plan" "cdc slots --sample 0" "metrics")
printf '%-22s %10s %10s %14s%s\n' command "1 inst" "20 inst" "20, conc. 1" "${BEFORE:+   20, before}"
for c in "${commands[@]}"; do
  read -r -a args <<<"$c"
  one=$(median bin/run.js "${args[@]}" --prefix one_)
  twenty=$(median bin/run.js "${args[@]}" --prefix twenty_)
  case "$c" in cdc*) seq=-;; *) seq=$(median bin/run.js "${args[@]}" --prefix twenty_ --concurrency 1);; esac
  before=""
  [ -n "${BEFORE:-}" ] && before=$(printf '%13ss' "$(median "$BEFORE/bin/run.js" "${args[@]}" --prefix twenty_)")
  printf '%-22s %9ss %9ss %13ss%s\n' "$c" "$one" "$twenty" "$seq" "$before"
done
echo "(2-core machine shared with other work: figures are noisy; load average $(cut -d' ' -f1-3 /proc/loadavg))"
