#!/usr/bin/env bash
# Test fixture: installs an extension named `pgmq` into the PostgreSQL server's extension directory,
# built from our bundled queue engine (sql/pgmq). Like the real pgmq it makes each queue's tables
# (and msg_id sequence) members of the extension and marks pgmq.meta for pg_dump
# (pg_extension_config_dump), so the test suite exercises `db init --queue-engine extension` and
# backups of extension-member queues. Production uses the real pgmq; this only reproduces its
# membership behaviour. A real pgmq already installed is never overwritten.
set -euo pipefail
cd "$(dirname "$0")/.."

pg_config_bin="${PG_CONFIG:-}"
if [ -z "$pg_config_bin" ]; then
  for candidate in /usr/lib/postgresql/15/bin/pg_config "$(command -v pg_config || true)"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then pg_config_bin="$candidate"; break; fi
  done
fi
if [ -z "$pg_config_bin" ]; then
  echo "--- pgmq fixture: no pg_config found; set PG_CONFIG" >&2
  exit 1
fi
extdir="$("$pg_config_bin" --sharedir)/extension"
marker="singularity test fixture"
version="1.5.0"

if [ -f "$extdir/pgmq.control" ] && ! grep -q "$marker" "$extdir/pgmq.control"; then
  echo "--- pgmq fixture: a real pgmq is installed in $extdir; leaving it"
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
{
  echo "-- pgmq $version ($marker): the bundled engine of sql/pgmq packaged as an extension."
  echo '\echo Use "CREATE EXTENSION pgmq" to load this file. \quit'
  # as in the real pgmq, the control file's `schema` makes CREATE EXTENSION create schema pgmq
  grep -v '^CREATE SCHEMA IF NOT EXISTS pgmq;$' sql/pgmq/001_engine.sql
  for f in sql/pgmq/procedures/*.sql; do printf '\n'; cat "$f"; done
  printf '\n-- As in the real pgmq: pg_dump carries the queue list (a configuration table).\n'
  echo "SELECT pg_catalog.pg_extension_config_dump('pgmq.meta', '');"
} >"$tmp/pgmq--$version.sql"
cat >"$tmp/pgmq.control" <<CONTROL
# $marker: see .ci/install-pgmq-fixture.sh
comment = 'pgmq queue API ($marker: bundled SQL as an extension, queue tables are members)'
default_version = '$version'
schema = pgmq
relocatable = false
superuser = true
trusted = false
CONTROL

sudo=""
[ -w "$extdir" ] || sudo="sudo"
if [ -f "$extdir/pgmq.control" ] && cmp -s "$tmp/pgmq.control" "$extdir/pgmq.control" && cmp -s "$tmp/pgmq--$version.sql" "$extdir/pgmq--$version.sql"; then
  echo "--- pgmq fixture: current"
  exit 0
fi
$sudo install -m 0644 "$tmp/pgmq.control" "$extdir/pgmq.control"
$sudo install -m 0644 "$tmp/pgmq--$version.sql" "$extdir/pgmq--$version.sql"
echo "--- pgmq fixture: installed into $extdir (pgmq $version, $marker)"
