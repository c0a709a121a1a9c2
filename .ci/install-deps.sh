#!/usr/bin/env bash
# Installs the Debian packages singularity and its tests need, when they are missing:
# PostgreSQL 15 server and client, pg_cron, wal2json, pg_partman, pgBackRest (physical backups and
# WAL archiving); tmux (the spinner and table tests run the CLI in a real terminal). Needs root (or sudo).
set -euo pipefail
packages=(postgresql-15 postgresql-client-15 postgresql-contrib postgresql-15-cron postgresql-15-wal2json postgresql-15-partman pgbackrest tmux)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "--- Debian packages: all present"
  exit 0
fi
echo "--- installing Debian packages: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
# Debian's package starts a system cluster on 5432; singularity runs its own clusters, so that one
# is left as the package set it up.
