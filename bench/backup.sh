#!/usr/bin/env bash
# Wall time of `singularity backup` (five databases in parallel, --jobs at a time, checksums, fsync,
# manifest) next to the same pg_dump calls run one after another, in one run, on a throwaway
# cluster filled with pgbench data, encrypted (the default) and with --no-encrypt; then
# `backup verify` with and without --restore-test (each
# archive restored into a scratch database and compared with the manifest). Prints the figures;
# asserts nothing.
#
#   bash bench/backup.sh            # scale 5 per database (≈ 75 MB of tables each)
#   SCALE=20 JOBS=3 REPEAT=5 bash bench/backup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SCALE=${SCALE:-5}
JOBS=${JOBS:-2}
REPEAT=${REPEAT:-3}
PREFIX=bench_bk_
KINDS=(singularity genesis centralcloud nexus shared_queue)

[ -f dist/commands/backup/index.js ] || npm run build >/dev/null
TMP=$(mktemp -d /tmp/singularity-bench-backup.XXXXXX)
chmod 711 "$TMP" # the server runs as the postgres OS user when we are root
CLUSTER="$TMP/cluster"
cleanup() {
  node bin/run.js local stop --data-dir "$CLUSTER" >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
size_of() { du -sb "$1" | awk '{print $1}'; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1048576 }'; }

echo "starting a throwaway cluster in $CLUSTER" >&2
node bin/run.js local start --data-dir "$CLUSTER" >/dev/null
eval "$(node bin/run.js local env --data-dir "$CLUSTER")"
export SINGULARITY_LOCAL_DIR="$CLUSTER"
PGBIN=$(dirname "$(node -e "import('./dist/lib/local-cluster/binaries.js').then(m => console.log(m.findServerBinaries().binDir + '/x'))")")

echo "filling ${#KINDS[@]} databases with pgbench -i -s $SCALE" >&2
for kind in "${KINDS[@]}"; do
  psql -qX -d postgres -c "CREATE DATABASE ${PREFIX}${kind}"
  "$PGBIN/pgbench" -i -q -s "$SCALE" "${PREFIX}${kind}" >/dev/null 2>&1
done
DATA=$(psql -qXAt -d postgres -c "SELECT sum(pg_database_size(datname)) FROM pg_database WHERE datname LIKE '${PREFIX}%'")
psql -qX -d postgres -c CHECKPOINT

sequential() { # pg_dump one after another (+ globals), as a shell script would do it
  local out="$TMP/sequential" a
  rm -rf "$out"; mkdir -p "$out"
  a=$(now)
  "$PGBIN/pg_dumpall" --globals-only -f "$out/globals.sql"
  for kind in "${KINDS[@]}"; do
    "$PGBIN/pg_dump" --format=custom -f "$out/${PREFIX}${kind}.dump" "${PREFIX}${kind}"
  done
  elapsed "$a" "$(now)"
}
run_backup() { # $1 = jobs, $2 = extra flag: singularity backup (parallel, bounded, checksums, fsync, manifest; encrypted unless --no-encrypt)
  local a
  rm -rf "$TMP/b$1${2:-}"
  a=$(now)
  node bin/run.js backup --prefix "$PREFIX" --dir "$TMP/b$1${2:-}" --jobs "$1" ${2:-} --json >"$TMP/out.json" 2>/dev/null
  elapsed "$a" "$(now)"
}
export SINGULARITY_BACKUP_KEY_FILE="$TMP/keys/backup-keys.json" # outside every backup directory
stats() { # min and median of the arguments
  printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {printf "%6.2f  %6.2f", v[1], v[int((NR+1)/2)]}'
}

# Interleaved rounds, so a noisy neighbour hurts every variant alike.
SEQ=(); PAR=(); ONE=(); CLEAR=()
for round in $(seq "$REPEAT"); do
  echo "round $round/$REPEAT" >&2
  SEQ+=("$(sequential)")
  CLEAR+=("$(run_backup "$JOBS" --no-encrypt)")
  PAR+=("$(run_backup "$JOBS")")
  ONE+=("$(run_backup 1)")
done
SEQ_SIZE=$(size_of "$TMP/sequential")
PAR_ID=$(node -e "console.log(JSON.parse(require('fs').readFileSync('$TMP/out.json','utf8')).id)")
PAR_SIZE=$(size_of "$TMP/b1/$PAR_ID")
a=$(now)
node bin/run.js backup verify "$PAR_ID" --dir "$TMP/b1" >/dev/null 2>&1
VER=$(elapsed "$a" "$(now)")
a=$(now)
node bin/run.js backup verify "$PAR_ID" --dir "$TMP/b1" --restore-test --prefix "$PREFIX" --jobs "$JOBS" >/dev/null 2>&1
VER_RT=$(elapsed "$a" "$(now)")

CORES=$(nproc)
echo
echo "backup of 5 databases, pgbench scale $SCALE each ($(mb "$DATA") on disk), $CORES cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(psql -qXAt -d postgres -c 'SHOW server_version'), $REPEAT rounds"
printf '%-52s %6s  %6s  %s\n' "what" "min s" "median" "size"
printf '%-52s %s  %s\n' "pg_dump -Fc x5 + pg_dumpall -g, one after another" "$(stats "${SEQ[@]}")" "$(mb "$SEQ_SIZE")"
printf '%-52s %s  %s\n' "singularity backup --jobs $JOBS (encrypted)" "$(stats "${PAR[@]}")" "$(mb "$PAR_SIZE")"
printf '%-52s %s\n' "singularity backup --jobs $JOBS --no-encrypt" "$(stats "${CLEAR[@]}")"
printf '%-52s %s\n' "singularity backup --jobs 1" "$(stats "${ONE[@]}")"
printf '%-52s %6.2f\n' "singularity backup verify (sha256 + pg_restore --list)" "$VER"
printf '%-52s %6.2f\n' "singularity backup verify --restore-test --jobs $JOBS" "$VER_RT"
best() { printf '%s\n' "$@" | sort -n | head -1; }
awk -v s="$(best "${SEQ[@]}")" -v p="$(best "${PAR[@]}")" 'BEGIN { printf "singularity backup --jobs '"$JOBS"' vs sequential pg_dump (best of each): %.2fx\n", s / p }'
awk -v e="$(best "${PAR[@]}")" -v c="$(best "${CLEAR[@]}")" 'BEGIN { printf "encryption cost (best encrypted / best --no-encrypt): %.2fx (target <= 1.15x)\n", e / c }'
