#!/usr/bin/env bash
# Queue figures of issue 4, in one run, on a throwaway local cluster this script creates and removes:
#  (a) engine throughput with pgbench, 2 clients: pgmq.send per second next to a plain single-row
#      INSERT into a table of the same shape, and pgmq.read + pgmq.archive per second next to a plain
#      DELETE ... RETURNING moved into an archive table of the same shape;
#  (b) `queue stats` over the 12 queues of shared_queue, one holding 1,000,000 messages, next to
#      `select * from pgmq.metrics_all()` on the same data, and the same at 100,000 (flatness);
#      `metrics` wall time on the same estate;
#  (c) issue 13: dead-lettering 100,000 poison messages while 2 consumers read the queue (rows/s),
#      redrive of 100,000 archived messages (rows/s), `peek --archive --since` on a 1,000,000-row
#      archive in the library.
# Usage: bash bench/queue.sh [transactions per client, default 10000]
# Targets (issues 4, 13): send >= 0.8x the INSERT baseline; queue stats <= 0.1x metrics_all and
# 100k vs 1M within 20%; peek --archive --since on 1M archived <= 50 ms in the library.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
[ -f dist/commands/queue/stats.js ] || npm run build >/dev/null

source bench/lib/throwaway-cluster.sh queue
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

# ---- (b) queue stats on 12 queues, one of 100,000 then 1,000,000 messages ------------------------
fill() { # fill N: messages up to N in llm_requests, every 50th in flight
  psql -c "INSERT INTO pgmq.q_llm_requests (vt, message)
           SELECT clock_timestamp() + CASE WHEN g % 50 = 0 THEN interval '5 minutes' ELSE interval '0' END,
                  jsonb_build_object('agent_id', 'agent-' || g % 100, 'task_type', 'architect',
                                     'messages', jsonb_build_array(jsonb_build_object('role', 'user', 'content', 'message ' || g)))
             FROM generate_series((SELECT count(*) FROM pgmq.q_llm_requests) + 1, $1) g"
  psql -c "VACUUM ANALYZE pgmq.q_llm_requests"
}

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

median() { printf '%s\n' "$@" | sort -g | sed -n 3p; }
fill 100000
metrics_ms >/dev/null; lib_ms >/dev/null # warm-up (same cache state for both)
m=(); l=()
for i in 1 2 3 4 5; do m+=("$(metrics_ms)"); l+=("$(lib_ms)"); done
M100=$(median "${m[@]}"); L100=$(median "${l[@]}")

t0=$(now)
fill 1000000
t1=$(now)
queues=$(psql -At -c "SELECT count(*) FROM pgmq.meta")
length=$(psql -At -c "SELECT count(*) FROM pgmq.q_llm_requests")
metrics_ms >/dev/null; lib_ms >/dev/null # warm-up (same cache state for both)
m=(); l=(); w=(); s=()
for i in 1 2 3 4 5; do m+=("$(metrics_ms)"); l+=("$(lib_ms)"); w+=("$(cli_s)"); s+=("$(cli_startup_s)"); done
M=$(median "${m[@]}"); L=$(median "${l[@]}"); W=$(median "${w[@]}"); S=$(median "${s[@]}")
metrics_cli_s() { local a b; a=$(now); node bin/run.js metrics >/dev/null; b=$(now); awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", b - a}'; }
mc=(); for i in 1 2 3 4 5; do mc+=("$(metrics_cli_s)"); done; MC=$(median "${mc[@]}")
exact=$( { a=$(now); node bin/run.js queue stats --db "$DB" --exact >/dev/null; b=$(now); awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", b - a}'; } )

node bin/run.js queue stats --db "$DB" --pattern 'llm_*'
awk -v st="$send_tps" -v it="$insert_tps" -v rt="$read_tps" -v dt="$delete_tps" -v n="$N" -v c="$consume" \
    -v q="$queues" -v len="$length" -v fill="$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" \
    -v M="$M" -v L="$L" -v W="$W" -v S="$S" -v X="$exact" -v M100="$M100" -v L100="$L100" -v MC="$MC" 'BEGIN {
  printf "\n(a) engine throughput, pgbench 2 clients (%d / %d transactions per client)\n", n, c
  printf "  pgmq.send                       %9.0f /s   plain INSERT            %9.0f /s   ratio %.2f (target >= 0.8)\n", st, it, st / it
  printf "  pgmq.read + pgmq.archive        %9.0f /s   DELETE..RETURNING move  %9.0f /s   ratio %.2f\n", rt, dt, rt / dt
  printf "\n(b) %d queues in shared_queue, llm_requests holding %d messages (filled + VACUUM ANALYZE in %.1f s); medians of 5\n", q, len, fill
  printf "  select * from pgmq.metrics_all()  %8.1f ms   (at 100,000 messages: %.1f ms)\n", M, M100
  printf "  queue stats (library: list + stats of all queues, one connection)  %8.1f ms   ratio %.3f (target <= 0.1)\n", L, L / M
  printf "  queue stats (library) at 100,000 messages  %8.1f ms   1M / 100k = %.2f (target within 20%%)\n", L100, L / L100
  printf "  metrics CLI wall time (whole estate, 5 databases)  %8.0f ms\n", MC * 1000
  printf "  queue stats CLI wall time          %8.0f ms   (of which start-up + connect, same command on one empty queue: %.0f ms)\n", W * 1000, S * 1000
  printf "  queue stats --exact CLI wall time  %8.0f ms\n", X * 1000
}'

# ---- (c) issue 13: dead letters, redrive, archive search ----------------------------------------
# dead-letter 100,000 poison messages of job_requests while 2 consumers read it (pgbench, vt 30 s)
psql -c "INSERT INTO pgmq.q_job_requests (vt, read_ct, message)
         SELECT clock_timestamp(), 5, jsonb_build_object('id', 'j' || g, 'code', 'IO.puts 1', 'language', 'elixir')
           FROM generate_series(1, 100000) g" -c "VACUUM ANALYZE pgmq.q_job_requests"
cat > "$dir/consume.sql" <<'SQL'
SELECT count(*) FROM pgmq.read('job_requests', 30, 5);
SQL
pgbench -n -c 2 -j 2 -T 30 -f "$dir/consume.sql" "$DB" >/dev/null 2>&1 &
consumers=$!
sleep 1
a=$(now); dl=$(node bin/run.js queue dead-letter job_requests --confirm job_requests --json | sed -n 's/.*"moved": \([0-9]*\).*/\1/p'); b=$(now)
kill "$consumers" 2>/dev/null || true; wait "$consumers" 2>/dev/null || true
leased=$(psql -At -c "SELECT count(*) FROM pgmq.q_job_requests")
dlq=$(psql -At -c "SELECT count(*) FROM pgmq.q_job_requests_dlq")
dl_s=$(awk -v a="$a" -v b="$b" 'BEGIN {print b - a}')

# redrive 100,000 archived messages of job_results back into it (CLI, batches of 1000)
psql -c "INSERT INTO pgmq.a_job_results (msg_id, vt, message)
         SELECT g, now(), jsonb_build_object('request_id', g, 'output', '', 'error', null) FROM generate_series(1, 100000) g" \
     -c "VACUUM ANALYZE pgmq.a_job_results"
a=$(now); rd=$(node bin/run.js queue redrive job_results --archive --to job_results --confirm job_results --json | sed -n 's/.*"moved": \([0-9]*\).*/\1/p'); b=$(now)
rd_s=$(awk -v a="$a" -v b="$b" 'BEGIN {print b - a}')

# peek --archive --since on a 1,000,000-row archive (llm_results), archived over 30 days, in the library
psql -c "INSERT INTO pgmq.a_llm_results (msg_id, vt, enqueued_at, archived_at, message)
         SELECT g, now(), now() - make_interval(secs => (1000000 - g) * 2.592 + 60), now() - make_interval(secs => (1000000 - g) * 2.592),
                jsonb_build_object('request_id', g, 'result', 'ok', 'model', 'm')
           FROM generate_series(1, 1000000) g" -c "VACUUM ANALYZE pgmq.a_llm_results"
cat > "$dir/peek-time.mjs" <<EOF
import pg from '$PWD/node_modules/pg/lib/index.js'
import {listQueues, findQueue} from '$PWD/dist/lib/queue/catalog.js'
import {countMessages, peekMessages} from '$PWD/dist/lib/queue/peek.js'
const url = new URL(process.env.SINGULARITY_ADMIN_URL); url.pathname = '/$DB'
const c = new pg.Client({connectionString: url.toString()}); await c.connect()
const queue = findQueue((await listQueues(c)).queues, 'llm_results')
const time = async (fn) => { const out = []; for (let i = 0; i < 7; i++) { const t = process.hrtime.bigint(); await fn(); out.push(Number(process.hrtime.bigint() - t) / 1e6) } return out.sort((a, b) => a - b)[3] }
const peek = await time(() => peekMessages(c, queue, {database: '$DB', limit: 10, archive: true, since: {agoSec: 3600}}))
const count = await time(() => countMessages(c, queue, {archive: true, since: {agoSec: 3600}}))
const week = await time(() => countMessages(c, queue, {archive: true, since: {agoSec: 7 * 86400}, until: {agoSec: 6 * 86400}}))
const plan = (await c.query("EXPLAIN SELECT count(*) FROM pgmq.a_llm_results t WHERE t.archived_at >= now() - make_interval(secs => 3600)")).rows.map((r) => r['QUERY PLAN'].trim()).join(' | ')
console.log(peek.toFixed(1), count.toFixed(1), week.toFixed(1), plan)
await c.end()
EOF
read -r peek_ms count_ms week_ms plan < <(node "$dir/peek-time.mjs")

awk -v dl="$dl" -v dls="$dl_s" -v leased="$leased" -v dlq="$dlq" -v rd="$rd" -v rds="$rd_s" -v pm="$peek_ms" -v cm="$count_ms" -v wm="$week_ms" 'BEGIN {
  printf "\n(c) dead letters, redrive, archive search (issue 13)\n"
  printf "  queue dead-letter, 100,000 poison messages, 2 consumers reading meanwhile: moved %d in %.2f s = %.0f rows/s (CLI wall time); %d left leased to the consumers, DLQ holds %d\n", dl, dls, dl / dls, leased, dlq
  printf "  queue redrive --archive, 100,000 archived messages, batches of 1000: moved %d in %.2f s = %.0f rows/s (CLI wall time)\n", rd, rds, rd / rds
  printf "  peek --archive --since 1h on a 1,000,000-row archive (library, median of 7): %.1f ms for 10 messages, %.1f ms for --count (target <= 50 ms)\n", pm, cm
  printf "  peek --archive --since 7d --until 6d --count (~33,000 rows) in the library: %.1f ms\n", wm
}'
echo "  plan of the count with a bound: $plan"
