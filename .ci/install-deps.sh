#!/usr/bin/env bash
# Installs the Debian packages singularity and its tests need, when they are missing:
# PostgreSQL 15 server and client, pg_cron, wal2json, pg_partman, pgBackRest (physical backups and
# WAL archiving); tmux (the spinner and table tests run the CLI in a real terminal); prometheus
# (promtool validates `singularity metrics` in the tests); then the pgmq test fixture
# (.ci/install-pgmq-fixture.sh). Needs root (or sudo).
set -euo pipefail
packages=(postgresql-15 postgresql-client-15 postgresql-contrib postgresql-15-cron postgresql-15-wal2json postgresql-15-partman pgbackrest tmux prometheus)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "--- Debian packages: all present"
else
  echo "--- installing Debian packages: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Debian's package starts a system cluster on 5432; singularity runs its own clusters, so that one
# is left as the package set it up.

# Test prerequisite: an extension named pgmq (our bundled SQL, queue tables as members), so the
# suites run on both queue engines. Never replaces a real pgmq.
bash "$(dirname "$0")/install-pgmq-fixture.sh"
