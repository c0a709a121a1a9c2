#!/usr/bin/env bash
# Issue 19: how the estate scales with singularity instances, on a throwaway local cluster this
# script creates and stops (by its data directory, also when a step fails):
#  - fresh and no-op `db init` with 1, 20 and 60 instances (each its own prefix on the one cluster);
#  - each reading command (doctor, queue stats, jobs list, db status) side by side for 1, 20, 60;
#  - pg_cron start delays: the first SIM_MINUTES minutes of the week's busiest hour (every daily and
#    weekly job due, as at Sunday 00:00) of the 60-instance estate's jobs, in real minutes
#    (bench/scale-cron-sim.mjs), staggered as db init installs them and unstaggered (every instance at
#    the seed's minute): each run's delay after the minute it was due (runs not started by the end
#    count with their wait so far), p95, max and the worst minute.
# Usage: bash bench/scale.sh            (SIM_MINUTES=5 by default; SIM_MINUTES=0 skips the simulation)
# Targets (issue 19): 60-instance reads <= 2x their 1-instance time; fresh 60-instance db init <= 10 s;
# no-op re-run <= 1.5 s. Figures on a shared machine are noisy: run once, quote the load.
set -euo pipefail
cd "$(dirname "$0")/.."
SIM_MINUTES=${SIM_MINUTES:-5}
[ -f dist/commands/db/init.js ] || npm run build >/dev/null

source bench/lib/throwaway-cluster.sh scale

now() { date +%s.%N; }
# seconds one command takes (its output and exit code are not the figure)
timed() { local a b; a=$(now); "$@" >/dev/null 2>&1 || true; b=$(now); awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", b - a}'; }
prefix_of() { echo "s$1_"; }

declare -A fresh noop doctor qstats jlist dstatus
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
for n in 1 20 60; do
  p=$(prefix_of "$n"); pw="$dir/pw-$p.json"
  fresh[$n]=$(timed node bin/run.js db init --prefix "$p" --instances "$n" --queue-engine bundled --passwords-file "$pw")
  noop[$n]=$(timed node bin/run.js db init --prefix "$p" --instances "$n" --queue-engine bundled --passwords-file "$pw")
  # the estates' jobs paused while the others are measured (a paused job is no drift)
  command psql -X -q -d postgres -c "SELECT cron.alter_job(jobid, active := false) FROM cron.job WHERE jobname LIKE 'singularity:$p%'" >/dev/null
done
for n in 1 20 60; do
  p=$(prefix_of "$n")
  export SINGULARITY_PASSWORDS_FILE="$dir/pw-$p.json"
  doctor[$n]=$(timed node bin/run.js doctor --prefix "$p" --json)
  qstats[$n]=$(timed node bin/run.js queue stats --prefix "$p" --json)
  jlist[$n]=$(timed node bin/run.js jobs list --prefix "$p" --json)
  dstatus[$n]=$(timed node bin/run.js db status --prefix "$p" --json)
done
echo
printf '%-22s %8s %8s %8s %10s\n' 'seconds' '1' '20' '60' '60 / 1'
row() { local -n m=$2; printf '%-22s %8s %8s %8s %9.1fx\n' "$1" "${m[1]}" "${m[20]}" "${m[60]}" "$(awk -v a="${m[1]}" -v b="${m[60]}" 'BEGIN {print (a > 0 ? b / a : 0)}')"; }
row doctor doctor; row 'queue stats' qstats; row 'jobs list' jlist; row 'db status' dstatus
row 'db init, fresh' fresh; row 'db init, no-op' noop
echo "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg)"

if [ "$SIM_MINUTES" -gt 0 ]; then
  echo
  echo "pg_cron start delay, one hour of the 60-instance estate in $SIM_MINUTES minutes (cron.max_running_jobs $(command psql -X -At -d postgres -c 'SHOW cron.max_running_jobs')):"
  for mode in staggered unstaggered; do
    node bench/scale-cron-sim.mjs "singularity:$(prefix_of 60)" "$SIM_MINUTES" "$mode"
  done
fi
