#!/usr/bin/env bash
# Point-in-time recovery figures, in one run, on a throwaway cluster with the estate and pgbench
# data in each of its five databases. Prints the figures; asserts nothing.
#  1. RPO: under a steady write load (pgbench -R), how far behind the last archived WAL is
#     (now() - pg_stat_archiver.last_archived_time, sampled every second), with archive_timeout
#     as `backup setup --physical` configures it (60 s).
#  2. Restore time of the whole estate: physical to a time (pgBackRest restore + WAL replay +
#     promotion, into a new cluster) against `backup restore` of the logical dumps, database by database.
#
#   bash bench/pitr.sh                       # SCALE=10 per database, 180 s of load at 50 tps
#   SCALE=2 LOAD_SECONDS=90 TPS=20 bash bench/pitr.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SCALE=${SCALE:-10}
LOAD_SECONDS=${LOAD_SECONDS:-180}
TPS=${TPS:-50}
KINDS=(singularity genesis centralcloud nexus shared_queue)

[ -f dist/commands/backup/setup.js ] || npm run build >/dev/null
TMP=$(mktemp -d /tmp/singularity-bench-pitr.XXXXXX)
chmod 755 "$TMP" # the server and pgBackRest run as the postgres OS user when we are root
CLUSTER="$TMP/cluster"
RESTORED="$TMP/restored"
export SINGULARITY_LOCAL_DIR="$CLUSTER" SINGULARITY_BACKUP_DIR="$TMP/backups" XDG_CONFIG_HOME="$TMP/config"
cleanup() {
  [ -n "${LOAD_PID:-}" ] && kill "$LOAD_PID" 2>/dev/null || true
  node bin/run.js local stop --data-dir "$RESTORED" >/dev/null 2>&1 || true
  node bin/run.js local stop --data-dir "$CLUSTER" >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
mb() { awk -v b="$1" 'BEGIN { printf "%.0f MB", b / 1048576 }'; }

echo "starting a throwaway cluster in $CLUSTER" >&2
node bin/run.js local start >/dev/null
node bin/run.js db init --passwords-file "$TMP/pw.json" >/dev/null 2>&1
eval "$(node bin/run.js local env)"
PGBIN=$(node -e "import('./dist/lib/local-cluster/binaries.js').then(m => console.log(m.findServerBinaries().binDir))")
# the estate's own schedules stay off: the write load is pgbench's alone
psql -qX -d postgres -c "UPDATE cron.job SET active = false WHERE jobname LIKE 'singularity:%'"

echo "filling the five estate databases with pgbench -i -s $SCALE" >&2
for kind in "${KINDS[@]}"; do "$PGBIN/pgbench" -i -q -s "$SCALE" "$kind" >/dev/null 2>&1; done
DATA=$(psql -qXAt -d postgres -c "SELECT sum(pg_database_size(datname)) FROM pg_database WHERE datname = ANY('{singularity,genesis,centralcloud,nexus,shared_queue}')")

echo "backup setup --physical, a full physical backup and a logical backup" >&2
node bin/run.js backup setup --physical >/dev/null 2>"$TMP/setup.err" || { cat "$TMP/setup.err" >&2; exit 1; }
a=$(now); node bin/run.js backup --physical --type full --json >"$TMP/full.json" 2>"$TMP/full.err" || { cat "$TMP/full.err" >&2; exit 1; }; FULL_S=$(elapsed "$a" "$(now)")
a=$(now); node bin/run.js backup --json >"$TMP/logical.json" 2>"$TMP/logical.err" || { cat "$TMP/logical.err" >&2; exit 1; }; DUMP_S=$(elapsed "$a" "$(now)")
LOGICAL_ID=$(node -e "console.log(JSON.parse(require('fs').readFileSync('$TMP/logical.json','utf8')).id)")

echo "steady write load: pgbench -R $TPS on shared_queue for ${LOAD_SECONDS}s, sampling the archive lag every second" >&2
"$PGBIN/pgbench" -n -c 2 -R "$TPS" -T "$LOAD_SECONDS" shared_queue >"$TMP/pgbench.log" 2>&1 &
LOAD_PID=$!
: >"$TMP/lag"
while kill -0 "$LOAD_PID" 2>/dev/null; do
  psql -qXAt -d postgres -c "SELECT extract(epoch FROM now() - last_archived_time) FROM pg_stat_archiver" >>"$TMP/lag"
  sleep 1
done
wait "$LOAD_PID" || true
LOAD_PID=
MARK=$(psql -qXAt -d postgres -c 'SELECT now()')
WAL=$(psql -qXAt -d postgres -c "SELECT pg_size_pretty(pg_current_wal_lsn() - '0/0'::pg_lsn)")
read -r LAG_MAX LAG_MED LAG_N < <(sort -n "$TMP/lag" | awk '{v[NR]=$1} END {printf "%.1f %.1f %d\n", v[NR], v[int((NR+1)/2)], NR}')

echo "restore: physical to $MARK" >&2
a=$(now)
node bin/run.js backup restore --to-time "$MARK" --into "$RESTORED" --json >"$TMP/restore.json" 2>"$TMP/restore.err" || { cat "$TMP/restore.err" >&2; exit 1; }
PHYS_S=$(elapsed "$a" "$(now)")
node bin/run.js local stop --data-dir "$RESTORED" >/dev/null

echo "restore: backup restore of the five logical dumps, one database after another" >&2
# the product's own restore (the dumps are encrypted by default: pg_restore alone cannot read them)
RESTORE_ERRORS=0
a=$(now)
for kind in "${KINDS[@]}"; do
  node bin/run.js backup restore "$LOGICAL_ID" --db "$kind" --as "${kind}_bench_restored" --json >>"$TMP/logical-restore.json" 2>>"$TMP/logical-restore.err" || RESTORE_ERRORS=$((RESTORE_ERRORS + 1))
done
[ "$RESTORE_ERRORS" -eq 0 ] || { echo "backup restore failed for $RESTORE_ERRORS of 5 databases:" >&2; cat "$TMP/logical-restore.err" >&2; }
LOGI_S=$(elapsed "$a" "$(now)")

echo
echo "PITR bench: estate of 5 databases with pgbench scale $SCALE each ($(mb "$DATA")), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(psql -qXAt -d postgres -c 'SHOW server_version')"
echo "archive_timeout $(psql -qXAt -d postgres -c 'SHOW archive_timeout'); write load pgbench -R $TPS for ${LOAD_SECONDS}s ($(grep -Eo 'tps = [0-9.]+' "$TMP/pgbench.log" | head -1)); WAL position at the end $WAL"
printf '%-60s %s\n' "RPO: now() - last archived WAL, max over $LAG_N samples" "${LAG_MAX} s (median ${LAG_MED} s; hourly dumps: up to 3600 s)"
printf '%-60s %s\n' "physical full backup (pgBackRest, lz4)" "${FULL_S} s"
printf '%-60s %s\n' "logical backup (pg_dump -Fc x5 + globals)" "${DUMP_S} s"
printf '%-60s %s\n' "restore physical to a time (new cluster, replay, promote)" "${PHYS_S} s"
printf '%-60s %s\n' "restore logical: backup restore of the 5 dumps, in turn" "${LOGI_S} s (the dumps' point, not a chosen time; $RESTORE_ERRORS of 5 with errors)"
