-- Seed 002's CDC bridge: changes of learned_patterns, agent_sessions and metrics_events, read from
-- the database's own wal2json slot (<database>_cdc_bridge) by cdc_bridge_run() under pg_cron, go to
-- the queues cdc-learned-patterns, cdc-agent-sessions and cdc-metrics-events exactly once.
--
-- Why a cursor table: moving a slot (pg_replication_slot_advance, pg_logical_slot_get_changes) is
-- not transactional. Checked on PostgreSQL 15: after BEGIN; pg_replication_slot_advance(...);
-- ROLLBACK; the slot stays advanced. So the slot cannot be the record of what was sent. The record
-- is this row, updated in the transaction that sends the messages; the slot is only ever advanced
-- to a position this row had already committed, and changes at or before the cursor are skipped.
CREATE TABLE singularity_private.cdc_bridge_cursor (
  slot_name     name        PRIMARY KEY,
  -- commit LSN of the newest transaction whose changes were (partly) sent
  last_commit   pg_lsn      NOT NULL DEFAULT '0/0',
  -- how many of that transaction's captured changes were sent (all of them when complete)
  last_sent     integer     NOT NULL DEFAULT 0,
  last_complete boolean     NOT NULL DEFAULT true,
  -- commit LSN of the newest transaction sent completely: the slot may be advanced to it
  safe_commit   pg_lsn      NOT NULL DEFAULT '0/0',
  messages_sent bigint      NOT NULL DEFAULT 0,
  updated_at    timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE singularity_private.cdc_bridge_cursor IS
  'CDC bridge progress per slot, written in the transaction that sends the messages (exactly once): what was sent, and how far the slot may be advanced';
