# Sourced by the benches (from the repository root): a throwaway local cluster in a temporary
# directory ($dir), started now and stopped and removed on exit (only it); the environment points
# at it and at nothing else (connection and tuning variables of the caller's shell are unset).
# Usage: source bench/lib/throwaway-cluster.sh <name>
dir=$(mktemp -d "/tmp/singularity-bench-$1-XXXXXX")
cleanup() { node bin/run.js local stop --data-dir "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT

node bin/run.js local start --data-dir "$dir" >/dev/null 2>&1
unset SINGULARITY_ADMIN_URL PGHOST PGPORT PGUSER PGDATABASE PGSERVICE PGPASSFILE SINGULARITY_PREFIX SINGULARITY_CONCURRENCY SINGULARITY_DB_TIMEOUT
eval "$(node bin/run.js local env --data-dir "$dir")"
export SINGULARITY_LOCAL_DIR="$dir" NODE_NO_WARNINGS=1
