#!/usr/bin/env bash
# Wall time of `singularity backup` (five databases in parallel, --jobs at a time, checksums, fsync,
# manifest) next to the same pg_dump calls run one after another, in one run, on a throwaway
# cluster filled with pgbench data, encrypted (the default) and with --no-encrypt; then
# `backup verify` with and without --restore-test (each
# archive restored into a scratch database and compared with the manifest). Prints the figures;
# asserts nothing. The encryption cost (target <= 1.15x) is the median of encrypted runs over the
# median of --no-encrypt runs, the two alternating in every round (which goes first alternates too).
#
#   bash bench/backup.sh                    # scale 10 per database (≈ 150 MB of tables each), 5 rounds
#   SCALE=20 JOBS=3 REPEAT=7 bash bench/backup.sh
#   CIPHER_ONLY=1 bash bench/backup.sh      # only encrypted vs --no-encrypt (no sequential, --jobs 1, verify)
set -euo pipefail
cd "$(dirname "$0")/.."

SCALE=${SCALE:-10}
JOBS=${JOBS:-2}
REPEAT=${REPEAT:-5}
CIPHER_ONLY=${CIPHER_ONLY:-0}
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
run_backup() { # $1 = jobs, $2 = extra flag: singularity backup (parallel, bounded, checksums, fsync, manifest; encrypted unless --no-encrypt); prints "wall cpu" seconds
  local t r u s
  rm -rf "$TMP/b$1${2:-}"
  # CPU = user + sys of the CLI and its pg_dump children: what encryption adds, and far less load-sensitive than wall time
  t=$( { TIMEFORMAT='%R %U %S'; time node bin/run.js backup --prefix "$PREFIX" --dir "$TMP/b$1${2:-}" --jobs "$1" ${2:-} --json >"$TMP/out$1${2:-}.json" 2>/dev/null; } 2>&1 )
  read -r r u s <<<"$t"
  awk -v r="$r" -v u="$u" -v s="$s" 'BEGIN { printf "%.2f %.2f", r, u + s }'
}
export SINGULARITY_BACKUP_KEY_FILE="$TMP/keys/backup-keys.json" # outside every backup directory
stats() { # min and median of the arguments
  printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {printf "%6.2f  %6.2f", v[1], v[int((NR+1)/2)]}'
}

# Interleaved rounds, so a noisy neighbour hurts every variant alike.
SEQ=(); PAR=(); ONE=(); CLEAR=(); PAR_CPU=(); CLEAR_CPU=()
encrypted() { local w c; read -r w c <<<"$(run_backup "$JOBS")"; PAR+=("$w"); PAR_CPU+=("$c"); }
clear_() { local w c; read -r w c <<<"$(run_backup "$JOBS" --no-encrypt)"; CLEAR+=("$w"); CLEAR_CPU+=("$c"); }
for round in $(seq "$REPEAT"); do
  echo "round $round/$REPEAT" >&2
  [ "$CIPHER_ONLY" = 1 ] || SEQ+=("$(sequential)")
  if [ $((round % 2)) = 1 ]; then clear_; encrypted; else encrypted; clear_; fi
  [ "$CIPHER_ONLY" = 1 ] || ONE+=("$(run_backup 1 | cut -d' ' -f1)")
done
# the cipher alone, on this machine: MB/s of encryptStream over 256 MB fed in 64 KiB pieces, as pg_dump's pipe delivers them
CIPHER_MBS=$(node --input-type=module -e "
  const {encryptStream} = await import('./dist/lib/backup/cipher.js')
  const {randomBytes} = await import('node:crypto')
  const piece = randomBytes(64 << 10), s = encryptStream(randomBytes(32), '00'.repeat(16))
  s.on('data', () => {})
  const t = process.hrtime.bigint()
  for (let i = 0; i < 256 * 16; i++) if (!s.write(piece)) await new Promise((r) => s.once('drain', r))
  await new Promise((r) => s.end(r))
  console.log((256 / (Number(process.hrtime.bigint() - t) / 1e9)).toFixed(0))")
PAR_ID=$(node -e "console.log(JSON.parse(require('fs').readFileSync('$TMP/out$JOBS.json','utf8')).id)")
PAR_SIZE=$(size_of "$TMP/b$JOBS/$PAR_ID")
CLEAR_SIZE=$(size_of "$TMP/b$JOBS--no-encrypt")
if [ "$CIPHER_ONLY" != 1 ]; then
  SEQ_SIZE=$(size_of "$TMP/sequential")
  a=$(now)
  node bin/run.js backup verify "$PAR_ID" --dir "$TMP/b$JOBS" >/dev/null 2>&1
  VER=$(elapsed "$a" "$(now)")
  a=$(now)
  node bin/run.js backup verify "$PAR_ID" --dir "$TMP/b$JOBS" --restore-test --prefix "$PREFIX" --jobs "$JOBS" >/dev/null 2>&1
  VER_RT=$(elapsed "$a" "$(now)")
fi

CORES=$(nproc)
echo
echo "backup of 5 databases, pgbench scale $SCALE each ($(mb "$DATA") on disk), $CORES cores, load $(cut -d' ' -f1-3 /proc/loadavg) at the end, $(psql -qXAt -d postgres -c 'SHOW server_version'), $REPEAT rounds"
printf '%-52s %6s  %6s  %s\n' "what" "min s" "median" "size"
[ "$CIPHER_ONLY" = 1 ] || printf '%-52s %s  %s\n' "pg_dump -Fc x5 + pg_dumpall -g, one after another" "$(stats "${SEQ[@]}")" "$(mb "$SEQ_SIZE")"
printf '%-52s %s  %s\n' "singularity backup --jobs $JOBS (encrypted)" "$(stats "${PAR[@]}")" "$(mb "$PAR_SIZE")"
printf '%-52s %s  %s\n' "singularity backup --jobs $JOBS --no-encrypt" "$(stats "${CLEAR[@]}")" "$(mb "$CLEAR_SIZE")"
if [ "$CIPHER_ONLY" != 1 ]; then
  printf '%-52s %s\n' "singularity backup --jobs 1 (encrypted)" "$(stats "${ONE[@]}")"
  printf '%-52s %6.2f\n' "singularity backup verify (sha256 + pg_restore --list)" "$VER"
  printf '%-52s %6.2f\n' "singularity backup verify --restore-test --jobs $JOBS" "$VER_RT"
fi
echo "encrypted runs, wall s:    ${PAR[*]}   CPU s (user+sys): ${PAR_CPU[*]}"
echo "--no-encrypt runs, wall s: ${CLEAR[*]}   CPU s (user+sys): ${CLEAR_CPU[*]}"
echo "the cipher alone: ${CIPHER_MBS} MB/s (encryptStream), so the $(mb "$PAR_SIZE") written cost about $(awk -v b="$PAR_SIZE" -v m="$CIPHER_MBS" 'BEGIN { printf "%.2f", b / 1048576 / m }') s of CPU"
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
best() { printf '%s\n' "$@" | sort -n | head -1; }
[ "$CIPHER_ONLY" = 1 ] || awk -v s="$(median "${SEQ[@]}")" -v p="$(median "${PAR[@]}")" 'BEGIN { printf "singularity backup --jobs '"$JOBS"' vs sequential pg_dump (medians): %.2fx faster\n", s / p }'
awk -v e="$(median "${PAR[@]}")" -v c="$(median "${CLEAR[@]}")" -v eb="$(best "${PAR[@]}")" -v cb="$(best "${CLEAR[@]}")" \
  'BEGIN { printf "encryption cost, wall (median encrypted / median --no-encrypt): %.3fx, best of each: %.3fx (target <= 1.15x)\n", e / c, eb / cb }'
awk -v e="$(median "${PAR_CPU[@]}")" -v c="$(median "${CLEAR_CPU[@]}")" 'BEGIN { printf "encryption cost, CPU (median user+sys encrypted / --no-encrypt): %.3fx\n", e / c }'
