#!/usr/bin/env bash
# Queue figures of issue 4, in one run, on a throwaway local cluster this script creates and removes:
#  (a) engine throughput with pgbench, 2 clients: pgmq.send per second next to a plain single-row
#      INSERT into a table of the same shape, and pgmq.read + pgmq.archive per second next to a plain
#      DELETE ... RETURNING moved into an archive table of the same shape;
#  (b) `queue stats` over the 12 queues of shared_queue, one holding 1,000,000 messages, next to
#      `select * from pgmq.metrics_all()` on the same data.
# Usage: bash bench/queue.sh [transactions per client, default 10000]
# Targets (issue): send >= 0.8x the INSERT baseline; queue stats <= 0.2x metrics_all.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
[ -f dist/commands/queue/stats.js ] || npm run build >/dev/null

dir=$(mktemp -d /tmp/singularity-bench-queue-XXXXXX)
cleanup() { node bin/run.js local stop --data-dir "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT

node bin/run.js local start --data-dir "$dir" >/dev/null 2>&1
unset SINGULARITY_ADMIN_URL PGHOST PGPORT PGUSER PGDATABASE PGSERVICE PGPASSFILE SINGULARITY_PREFIX
eval "$(node bin/run.js local env --data-dir "$dir")"
export SINGULARITY_LOCAL_DIR="$dir" NODE_NO_WARNINGS=1
node bin/run.js db init --passwords-file "$dir/role-passwords.json" >/dev/null 2>&1
DB=shared_queue
psql() { command psql -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }

now() { date +%s.%N; }
tps() { sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p'; }

# ---- (a) engine throughput -------------------------------------------------------------------
psql <<'SQL'
SELECT pgmq.create('bench') \gset
CREATE TABLE bench_plain (
  msg_id bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY, read_ct int NOT NULL DEFAULT 0,
  enqueued_at timestamptz NOT NULL DEFAULT now(), vt timestamptz NOT NULL, message jsonb, headers jsonb);
CREATE INDEX ON bench_plain (vt);
CREATE TABLE bench_plain_archive (
  msg_id bigint PRIMARY KEY, read_ct int NOT NULL DEFAULT 0, enqueued_at timestamptz NOT NULL DEFAULT now(),
  archived_at timestamptz NOT NULL DEFAULT now(), vt timestamptz NOT NULL, message jsonb, headers jsonb);
CREATE INDEX ON bench_plain_archive (archived_at);
SQL
msg='{"agent_id":"self-improving-agent","task_type":"architect","messages":[{"role":"user","content":"plan the next step"}]}'
cat > "$dir/send.sql" <<SQL
SELECT pgmq.send('bench', '$msg');
SQL
cat > "$dir/insert.sql" <<SQL
INSERT INTO bench_plain (vt, message) VALUES (clock_timestamp(), '$msg');
SQL
cat > "$dir/read_archive.sql" <<'SQL'
SELECT msg_id FROM pgmq.read('bench', 30, 1) \gset
SELECT pgmq.archive('bench', :msg_id::bigint);
SQL
cat > "$dir/delete_returning.sql" <<'SQL'
WITH moved AS (
  DELETE FROM bench_plain WHERE msg_id = (
    SELECT msg_id FROM bench_plain WHERE vt <= clock_timestamp() ORDER BY msg_id LIMIT 1 FOR UPDATE SKIP LOCKED)
  RETURNING *)
INSERT INTO bench_plain_archive (msg_id, read_ct, enqueued_at, vt, message, headers)
SELECT msg_id, read_ct + 1, enqueued_at, vt, message, headers FROM moved;
SQL
bench() { pgbench -n -c 2 -j 2 -t "$1" -f "$2" "$DB" 2>/dev/null | tps; }
send_tps=$(bench "$N" "$dir/send.sql")
insert_tps=$(bench "$N" "$dir/insert.sql")
# consume at most what was sent (2 x N each), so that every read finds a message
consume=$((N * 9 / 10))
read_tps=$(bench "$consume" "$dir/read_archive.sql")
delete_tps=$(bench "$consume" "$dir/delete_returning.sql")
psql -c "SELECT pgmq.drop_queue('bench'); DROP TABLE bench_plain, bench_plain_archive;" >/dev/null

# ---- (b) queue stats on 12 queues, one of 1,000,000 messages ------------------------------------
t0=$(now)
psql -c "INSERT INTO pgmq.q_llm_requests (vt, message)
         SELECT clock_timestamp() + CASE WHEN g % 50 = 0 THEN interval '5 minutes' ELSE interval '0' END,
                jsonb_build_object('agent_id', 'agent-' || g % 100, 'task_type', 'architect',
                                   'messages', jsonb_build_array(jsonb_build_object('role', 'user', 'content', 'message ' || g)))
           FROM generate_series(1, 1000000) g"
psql -c "VACUUM ANALYZE pgmq.q_llm_requests"
t1=$(now)
queues=$(psql -At -c "SELECT count(*) FROM pgmq.meta")
length=$(psql -At -c "SELECT count(*) FROM pgmq.q_llm_requests")

metrics_ms() { psql -At -c '\timing on' -c 'SELECT * FROM pgmq.metrics_all()' | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'; }
# the library call queue stats makes (listQueues + queueStats on one connection), timed in-process
cat > "$dir/stats-time.mjs" <<EOF
import pg from '$PWD/node_modules/pg/lib/index.js'
import {listQueues} from '$PWD/dist/lib/queue/catalog.js'
import {queueStats} from '$PWD/dist/lib/queue/stats.js'
const url = new URL(process.env.SINGULARITY_ADMIN_URL); url.pathname = '/$DB'
const c = new pg.Client({connectionString: url.toString()}); await c.connect()
const t = process.hrtime.bigint()
const {queues} = await listQueues(c)
const stats = await queueStats(c, queues, {database: '$DB'})
console.log((Number(process.hrtime.bigint() - t) / 1e6).toFixed(1), stats.length)
await c.end()
EOF
lib_ms() { node "$dir/stats-time.mjs" | cut -d' ' -f1; }
cli_s() { local a b; a=$(now); node bin/run.js queue stats --db "$DB" >/dev/null; b=$(now); awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", b - a}'; }
cli_startup_s() { local a b; a=$(now); node bin/run.js queue stats --db "$DB" --pattern instance_heartbeat >/dev/null; b=$(now); awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", b - a}'; }

metrics_ms >/dev/null; lib_ms >/dev/null # warm-up (same cache state for both)
m=(); l=(); w=(); s=()
for i in 1 2 3; do m+=("$(metrics_ms)"); l+=("$(lib_ms)"); w+=("$(cli_s)"); s+=("$(cli_startup_s)"); done
median() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
M=$(median "${m[@]}"); L=$(median "${l[@]}"); W=$(median "${w[@]}"); S=$(median "${s[@]}")
exact=$( { a=$(now); node bin/run.js queue stats --db "$DB" --exact >/dev/null; b=$(now); awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", b - a}'; } )

node bin/run.js queue stats --db "$DB" --pattern 'llm_*'
awk -v st="$send_tps" -v it="$insert_tps" -v rt="$read_tps" -v dt="$delete_tps" -v n="$N" -v c="$consume" \
    -v q="$queues" -v len="$length" -v fill="$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" \
    -v M="$M" -v L="$L" -v W="$W" -v S="$S" -v X="$exact" 'BEGIN {
  printf "\n(a) engine throughput, pgbench 2 clients (%d / %d transactions per client)\n", n, c
  printf "  pgmq.send                       %9.0f /s   plain INSERT            %9.0f /s   ratio %.2f (target >= 0.8)\n", st, it, st / it
  printf "  pgmq.read + pgmq.archive        %9.0f /s   DELETE..RETURNING move  %9.0f /s   ratio %.2f\n", rt, dt, rt / dt
  printf "\n(b) %d queues in shared_queue, llm_requests holding %d messages (filled + VACUUM ANALYZE in %.1f s); medians of 3\n", q, len, fill
  printf "  select * from pgmq.metrics_all()  %8.1f ms\n", M
  printf "  queue stats (library: list + stats of all queues, one connection)  %8.1f ms   ratio %.3f (target <= 0.2)\n", L, L / M
  printf "  queue stats CLI wall time          %8.0f ms   (of which start-up + connect, same command on one empty queue: %.0f ms)\n", W * 1000, S * 1000
  printf "  queue stats --exact CLI wall time  %8.0f ms\n", X * 1000
}'
