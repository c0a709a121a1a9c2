#!/usr/bin/env bash
# Times a fresh `singularity db init` of the five databases and a no-op re-run, in one run, on a
# throwaway local cluster that this script creates and removes.
# Usage: bash bench/db-init.sh            Targets (issue): fresh <= 15 s, re-run <= 2 s.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f dist/commands/db/init.js ] || npm run build >/dev/null

dir=$(mktemp -d /tmp/singularity-bench-init-XXXXXX)
cleanup() { node bin/run.js local stop --data-dir "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT

node bin/run.js local start --data-dir "$dir" >/dev/null 2>&1
export SINGULARITY_LOCAL_DIR="$dir"
unset SINGULARITY_ADMIN_URL PGHOST PGPORT PGUSER PGDATABASE PGSERVICE
passwords="$dir/role-passwords.json"

now() { date +%s.%N; }
t0=$(now); node bin/run.js db init --passwords-file "$passwords" >/dev/null 2>&1; t1=$(now)
node bin/run.js db init --passwords-file "$passwords" --json > "$dir/rerun.json" 2>/dev/null; t2=$(now)
status=$(node -e "console.log(JSON.parse(require('fs').readFileSync('$dir/rerun.json','utf8')).status)")

awk -v a="$t0" -v b="$t1" -v c="$t2" -v s="$status" 'BEGIN {
  printf "db init, fresh (5 databases, roles, SQL, queues, grants): %6.2f s   (target <= 15 s)\n", b - a
  printf "db init, no-op re-run (status: %s):                 %6.2f s   (target <= 2 s)\n", s, c - b
}'
