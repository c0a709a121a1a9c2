#!/usr/bin/env bash
# Issue 19 (reads): wall time of each reading command over 1, 20 (and 60) singularity instances, on a
# throwaway local cluster this script creates and removes. Each command runs 3 times; the median is
# printed, with the default bound (8 at once); SEQUENTIAL=1 adds --concurrency 1 on the largest estate (one
# database after another, as before issue 19). BEFORE=<dir of another built checkout> adds columns timed with that build.
# Usage: bash bench/reads.sh   INSTANCES="1 20 60" BEFORE=/path/to/other/build SEQUENTIAL=1 COMMANDS="doctor|db status"
# The ratio columns are the largest estate's time over the smallest's (issue 19: <= 2x at 60). A last
# row times only connecting to each database (node-postgres alone, 8 at a time): the floor of any reader.
# Target (issue 19, measured fully by bench/scale.sh): reads flat in instance count.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f dist/commands/doctor.js ] || npm run build >/dev/null

source bench/lib/throwaway-cluster.sh reads
# INSTANCES: the estate sizes timed (default 1 and 20; the issue's target is 1, 20 and 60)
read -r -a sizes <<<"${INSTANCES:-1 20}"
largest=${sizes[-1]}
for n in "${sizes[@]}"; do
  node bin/run.js db init --prefix "i${n}_" --instances "$n" --queue-engine bundled --passwords-file "$dir/pw$n.json" >/dev/null 2>&1
done

# median wall time of 3 runs of a command (its output and exit code are not the figure)
median_run() {
  local times=()
  for _ in 1 2 3; do
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || true
    end=$(date +%s.%N)
    times+=("$(echo "$end - $start" | bc | xargs printf '%.2f')")
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n 2p
}

# median wall time of 3 runs of: <bin> <command…> --json
median() { local bin=$1; shift; median_run node "$bin" "$@" --json; }

# COMMANDS: a |-separated list to time instead of all of them, e.g. COMMANDS="doctor|db status"
IFS='|' read -r -a commands <<<"${COMMANDS:-doctor|queue stats|jobs list|db status|db plan|cdc slots --sample 0|metrics}"
header=$(printf '%-22s' command)
for n in "${sizes[@]}"; do
  header+=$(printf ' %9s' "$n inst")
  [ -n "${BEFORE:-}" ] && header+=$(printf ' %9s' "$n before")
done
header+=$(printf ' %9s' "${largest}/1")
[ -n "${BEFORE:-}" ] && header+=$(printf ' %9s' "before")
[ -n "${SEQUENTIAL:-}" ] && header+=$(printf ' %12s' "$largest conc.1")
echo "$header"
for c in "${commands[@]}"; do
  read -r -a args <<<"$c"
  line=$(printf '%-22s' "$c")
  declare -A now=() was=()
  for n in "${sizes[@]}"; do
    now[$n]=$(median bin/run.js "${args[@]}" --prefix "i${n}_")
    line+=$(printf ' %8ss' "${now[$n]}")
    if [ -n "${BEFORE:-}" ]; then
      was[$n]=$(median "$BEFORE/bin/run.js" "${args[@]}" --prefix "i${n}_")
      line+=$(printf ' %8ss' "${was[$n]}")
    fi
  done
  first=${sizes[0]}
  line+=$(printf ' %8sx' "$(echo "scale=2; ${now[$largest]} / ${now[$first]}" | bc)")
  [ -n "${BEFORE:-}" ] && line+=$(printf ' %8sx' "$(echo "scale=2; ${was[$largest]} / ${was[$first]}" | bc)")
  if [ -n "${SEQUENTIAL:-}" ]; then
    case "$c" in cdc*) seq=-;; *) seq=$(median bin/run.js "${args[@]}" --prefix "i${largest}_" --concurrency 1);; esac
    line+=$(printf ' %11ss' "$seq")
  fi
  echo "$line"
  unset now was
done
# Reference: connect + SELECT 1 to every database of the estate, 8 at a time, with node-postgres
# alone (bench/lib/connect-each.cjs): the floor any reader of every database pays.
line=$(printf '%-22s' "connect each (ref.)")
declare -A ref=()
for n in "${sizes[@]}"; do
  ref[$n]=$(median_run node bench/lib/connect-each.cjs "i${n}_" 8)
  line+=$(printf ' %8ss' "${ref[$n]}")
  [ -n "${BEFORE:-}" ] && line+=$(printf ' %9s' '')
done
line+=$(printf ' %8sx' "$(echo "scale=2; ${ref[$largest]} / ${ref[${sizes[0]}]}" | bc)")
echo "$line"
echo "(2-core machine shared with other work: figures are noisy; load average $(cut -d' ' -f1-3 /proc/loadavg))"
