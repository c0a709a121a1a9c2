-- Bundled queue engine, part 1: storage objects of the pgmq 1.5 SQL API.
-- unless-extension: pgmq
-- (the migration runner skips every file of sql/pgmq/ where the real pgmq extension is installed)
--
-- Installed by `singularity db init` when the server has no `pgmq` extension.
-- Applied once, inside the transaction the migration runner opens (no BEGIN/COMMIT here).
-- The functions live in sql/pgmq/procedures/ and are re-applied when they change.
-- Contract: shared docs, pgmq-api.md.

CREATE SCHEMA IF NOT EXISTS pgmq;

COMMENT ON SCHEMA pgmq IS
  'Message queues: the pgmq 1.5 SQL API (bundled implementation installed by singularity db init)';

-- One row per queue; pgmq.q_<name> holds its messages, pgmq.a_<name> its archive.
CREATE TABLE IF NOT EXISTS pgmq.meta (
  queue_name     varchar     NOT NULL UNIQUE,
  is_partitioned boolean     NOT NULL,
  is_unlogged    boolean     NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE pgmq.meta IS 'One row per queue (pgmq API); queue tables are pgmq.q_<name>, archives pgmq.a_<name>';

-- A message as returned by read, read_with_poll, pop and set_vt.
CREATE TYPE pgmq.message_record AS (
  msg_id      bigint,
  read_ct     integer,
  enqueued_at timestamptz,
  vt          timestamptz,
  message     jsonb,
  headers     jsonb
);

-- A queue as returned by list_queues (the columns of pgmq.meta).
CREATE TYPE pgmq.queue_record AS (
  queue_name     varchar,
  is_partitioned boolean,
  is_unlogged    boolean,
  created_at     timestamptz
);

-- One queue's figures as returned by metrics and metrics_all.
CREATE TYPE pgmq.metrics_result AS (
  queue_name           text,
  queue_length         bigint,
  newest_msg_age_sec   integer,
  oldest_msg_age_sec   integer,
  total_messages       bigint,
  scrape_time          timestamptz,
  queue_visible_length bigint
);

-- Monitoring: pg_monitor may read everything in schema pgmq, now and later.
-- (Default privileges cover tables created by the role running this migration; pgmq.create also
-- grants SELECT to pg_monitor on the tables it creates, whoever calls it.)
GRANT USAGE ON SCHEMA pgmq TO pg_monitor;
GRANT SELECT ON ALL TABLES IN SCHEMA pgmq TO pg_monitor;
GRANT SELECT ON ALL SEQUENCES IN SCHEMA pgmq TO pg_monitor;
ALTER DEFAULT PRIVILEGES IN SCHEMA pgmq GRANT SELECT ON TABLES TO pg_monitor;
ALTER DEFAULT PRIVILEGES IN SCHEMA pgmq GRANT SELECT ON SEQUENCES TO pg_monitor;
