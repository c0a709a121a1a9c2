#!/usr/bin/env bash
# Figures for issue 5's autonomous procedures, on a throwaway PostgreSQL cluster of its own:
#   1. learn_patterns_from_analysis() draining 100,000 unlearned analysis results, one call (one
#      transaction, up to 100 results) after another, as pg_cron would: rows/second.
#   2. one assign_pending_tasks() with 100,000 pending tasks and 1,000 agents: milliseconds.
#   3. the same load with 4 concurrent callers (10 calls each, agents of capacity 100): wall time,
#      double assignments (must be 0) and agents over capacity (must be 0).
# Prints its figures; asserts nothing else. Usage: bench/procedures.sh   (PG_BIN overrides the
# PostgreSQL binaries directory; as root the server runs as the postgres OS user.)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PG_BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"
[ -x "$PG_BIN/initdb" ] || { echo "no PostgreSQL binaries (set PG_BIN)" >&2; exit 1; }

DIR="$(mktemp -d /tmp/singularity-bench-XXXXXX)"
PORT=5432 # the socket lives in $DIR and TCP is off, so any port number is free
AS=()
if [ "$(id -u)" = 0 ]; then
  chown postgres "$DIR"
  AS=(runuser -u postgres --)
fi

cleanup() {
  "${AS[@]}" "$PG_BIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"${AS[@]}" "$PG_BIN/initdb" -D "$DIR/data" -A trust -U postgres >/dev/null
"${AS[@]}" "$PG_BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w \
  -o "-c listen_addresses='' -k $DIR -p $PORT -c max_connections=20" start >/dev/null

export PGOPTIONS="-c client_min_messages=warning"
PSQL=(psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -U postgres)
"${PSQL[@]}" -d postgres -c 'CREATE DATABASE bench'
DB=("${PSQL[@]}" -d bench)

now_ns() { date +%s%N; }
ms_since() { echo $(( ($(now_ns) - $1) / 1000000 )); }

# Install like db init: extensions, then each file in one transaction, honouring extension headers.
"${DB[@]}" -c 'CREATE EXTENSION pgcrypto'
installed="$("${DB[@]}" -c 'SELECT string_agg(extname, $$ $$) FROM pg_extension')"
applies() {
  local req unless
  req="$(head -10 "$1" | sed -n 's/^--[[:space:]]*requires-extension:[[:space:]]*\([a-z0-9_]*\).*/\1/p')"
  unless="$(head -10 "$1" | sed -n 's/^--[[:space:]]*unless-extension:[[:space:]]*\([a-z0-9_]*\).*/\1/p')"
  if [ -n "$req" ] && [[ " $installed " != *" $req "* ]]; then return 1; fi
  if [ -n "$unless" ] && [[ " $installed " == *" $unless "* ]]; then return 1; fi
  return 0
}
for f in "$ROOT"/sql/pgmq/[0-9]*.sql "$ROOT"/sql/pgmq/procedures/*.sql \
         "$ROOT"/sql/singularity/[0-9]*.sql "$ROOT"/sql/singularity/procedures/*.sql; do
  if applies "$f"; then "${DB[@]}" -1 -f "$f" >/dev/null; fi
done
"${DB[@]}" -c "SELECT pgmq.create('centralcloud-new-patterns'), pgmq.create('agent-sessions'), pgmq.create('agent-knowledge-updates')" >/dev/null

echo "PostgreSQL: $("${DB[@]}" -c 'SHOW server_version')   cores: $(nproc)"
echo

# 1. learn_patterns_from_analysis draining 100,000 results -------------------------------------
"${DB[@]}" <<'SQL'
INSERT INTO agents (id, status) SELECT 'agent-' || g, 'active' FROM generate_series(1, 100) g;
INSERT INTO analysis_results (agent_id, pattern_type, pattern, code_snippet, confidence)
SELECT 'agent-' || (1 + g % 100), 'pattern-' || (g % 17), jsonb_build_object('n', g, 'shape', 'retry-with-backoff'),
       'def handle(x), do: retry(x)', (g % 100) / 100.0
FROM generate_series(1, 100000) g;
VACUUM ANALYZE analysis_results;
SQL
start=$(now_ns)
learned=$(for _ in $(seq 1 1001); do echo 'SELECT patterns_learned FROM learn_patterns_from_analysis();'; done \
  | "${DB[@]}" | awk '{s += $1} END {print s}')
ms=$(ms_since "$start")
check=$("${DB[@]}" -c "SELECT (SELECT count(*) FROM learned_patterns) || ' patterns, ' || (SELECT count(*) FROM pgmq.\"q_centralcloud-new-patterns\") || ' messages, ' || (SELECT count(*) FROM analysis_results WHERE NOT learned) || ' unlearned'")
echo "learn_patterns_from_analysis: drained $learned results in 1,001 calls, ${ms} ms = $(( learned * 1000 / (ms > 0 ? ms : 1) )) rows/s  ($check)"

# 2. one assign_pending_tasks with 100,000 pending tasks and 1,000 agents ------------------------
"${DB[@]}" <<'SQL'
DELETE FROM agents;
INSERT INTO agents (id, status, capacity) SELECT 'worker-' || g, 'active', 100 FROM generate_series(1, 1000) g;
INSERT INTO tasks (title, priority, created_at)
SELECT 'task ' || g, g % 10, now() - g * interval '1 millisecond' FROM generate_series(1, 100000) g;
VACUUM ANALYZE agents;
VACUUM ANALYZE tasks;
SQL
start=$(now_ns)
one=$("${DB[@]}" -c 'SELECT tasks_assigned || $$ tasks to $$ || agents_assigned || $$ agents$$ FROM assign_pending_tasks()')
ms=$(ms_since "$start")
echo "assign_pending_tasks, 100,000 pending / 1,000 agents, one call: ${ms} ms ($one)"

# 3. four concurrent callers --------------------------------------------------------------------
"${DB[@]}" <<'SQL'
UPDATE tasks SET status = 'pending', assigned_agent_id = NULL, assigned_at = NULL;
VACUUM ANALYZE tasks;
SQL
start=$(now_ns)
for i in 1 2 3 4; do
  (for _ in $(seq 1 10); do echo 'SELECT tasks_assigned FROM assign_pending_tasks();'; done \
    | "${DB[@]}" > "$DIR/caller$i.out") &
done
wait
ms=$(ms_since "$start")
returned=$(cat "$DIR"/caller*.out | awk '{s += $1} END {print s}')
empty=$(cat "$DIR"/caller*.out | awk '$1 == 0 {n++} END {print n + 0}')
read -r in_table over <<<"$("${DB[@]}" -F ' ' -c "SELECT (SELECT count(*) FROM tasks WHERE status <> 'pending'),
  (SELECT count(*) FROM (SELECT a.id FROM agents a JOIN tasks t ON t.assigned_agent_id = a.id
     AND t.status IN ('assigned', 'running') GROUP BY a.id, a.capacity HAVING count(*) > a.capacity) x)")"
echo "assign_pending_tasks, 4 concurrent callers x 10 calls: ${ms} ms wall, $returned assignments reported" \
     "($empty calls found every agent locked or full), $in_table tasks assigned in the table"
echo "  double assignments: $(( returned - in_table ))   agents over capacity: $over"
