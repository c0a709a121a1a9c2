-- Seed 002's CDC bridge, run by pg_cron (job cdc-bridge): wal2json changes of the captured tables
-- into pgmq queues, exactly once, bounded per run. See sql/singularity/021_cdc_bridge.sql for why
-- progress lives in singularity_private.cdc_bridge_cursor and not in the slot.
-- Re-applied whenever this file changes: CREATE OR REPLACE only, no BEGIN/COMMIT.

-- Sends up to p_max_changes captured changes from slot <database>_<p_slot_suffix> to their queues.
CREATE OR REPLACE FUNCTION public.cdc_bridge_run(
  p_slot_suffix text,
  p_routes jsonb,
  p_max_changes integer DEFAULT 1000,
  OUT messages_sent integer, OUT transactions integer, OUT slot_advanced_to pg_lsn, OUT more_left boolean)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_slot name := (current_database() || '_' || p_slot_suffix)::name;
  v_cursor singularity_private.cdc_bridge_cursor;
  v_tables text;
  v_row record;
  v_change jsonb;
  v_pending jsonb[] := '{}';
  v_commit pg_lsn;
  v_ts text;
  v_table text;
  v_queue text;
  v_skip integer;
  v_i integer;
  v_budget integer := p_max_changes;
  v_last_commit pg_lsn;
  v_last_sent integer;
  v_last_complete boolean;
  v_safe pg_lsn;
BEGIN
  messages_sent := 0;
  transactions := 0;
  more_left := false;
  IF p_max_changes IS NULL OR p_max_changes < 1 THEN
    RAISE EXCEPTION 'cdc_bridge_run: p_max_changes must be at least 1' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  -- one run per slot at a time; a run that finds another one busy returns at once (pg_cron every few seconds)
  IF NOT pg_try_advisory_xact_lock(hashtext('singularity.cdc_bridge:' || v_slot)) THEN
    RETURN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots s WHERE s.slot_name = v_slot AND s.database = current_database()) THEN
    RAISE EXCEPTION 'cdc_bridge_run: replication slot % does not exist in this database', v_slot
      USING ERRCODE = 'undefined_object', HINT = 'run singularity db init (it creates the slot)';
  END IF;
  INSERT INTO singularity_private.cdc_bridge_cursor (slot_name) VALUES (v_slot) ON CONFLICT (slot_name) DO NOTHING;
  SELECT * INTO STRICT v_cursor FROM singularity_private.cdc_bridge_cursor c WHERE c.slot_name = v_slot FOR UPDATE;
  v_last_commit := v_cursor.last_commit;
  v_last_sent := v_cursor.last_sent;
  v_last_complete := v_cursor.last_complete;
  v_safe := v_cursor.safe_commit;

  -- WAL of what is committed as sent is released; never further (advancing is not transactional)
  IF v_safe > '0/0' AND v_safe > (SELECT s.confirmed_flush_lsn FROM pg_catalog.pg_replication_slots s WHERE s.slot_name = v_slot) THEN
    PERFORM pg_replication_slot_advance(v_slot, v_safe);
  END IF;
  slot_advanced_to := (SELECT s.confirmed_flush_lsn FROM pg_catalog.pg_replication_slots s WHERE s.slot_name = v_slot);

  -- the captured tables and, for partitioned ones, their partitions (wal2json names the partition)
  SELECT string_agg(format('%s.%s', replace(n.nspname, '.', '\.'), replace(c.relname, '.', '\.')), ',')
    INTO v_tables
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = 'public'
     AND (c.relname IN (SELECT jsonb_object_keys(p_routes))
          OR c.oid IN (SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
                        JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace
                       WHERE pn.nspname = 'public' AND p.relname IN (SELECT jsonb_object_keys(p_routes))));
  IF v_tables IS NULL THEN
    RETURN;
  END IF;

  -- whole transactions come back (wal2json format 2: B, changes, C); the cursor says what to skip
  FOR v_row IN
    SELECT p.lsn, p.xid, p.data::jsonb AS data
    FROM pg_logical_slot_peek_changes(v_slot, NULL, p_max_changes + v_last_sent + 1,
           'format-version', '2', 'include-xids', '1', 'include-timestamp', '1', 'include-transaction', 'true',
           'add-tables', v_tables) WITH ORDINALITY AS p(lsn, xid, data, ord)
    ORDER BY p.ord
  LOOP
    IF v_row.data ->> 'action' = 'B' THEN
      v_pending := '{}';
      CONTINUE;
    END IF;
    IF v_row.data ->> 'action' <> 'C' THEN
      IF v_row.data ->> 'action' IN ('I', 'U', 'D') THEN
        v_pending := v_pending || v_row.data;
      END IF;
      CONTINUE;
    END IF;
    -- a commit: its LSN orders transactions, the changes before it are the transaction's
    v_commit := v_row.lsn;
    v_ts := v_row.data ->> 'timestamp';
    IF v_commit < v_last_commit OR (v_commit = v_last_commit AND v_last_complete) THEN
      CONTINUE;
    END IF;
    v_skip := CASE WHEN v_commit = v_last_commit THEN v_last_sent ELSE 0 END;
    IF coalesce(array_length(v_pending, 1), 0) > v_skip AND v_budget = 0 THEN
      more_left := true;
      EXIT;
    END IF;
    v_i := 0;
    FOREACH v_change IN ARRAY v_pending LOOP
      v_i := v_i + 1;
      CONTINUE WHEN v_i <= v_skip;
      IF v_budget = 0 THEN
        more_left := true;
        EXIT;
      END IF;
      -- a partition's change goes to its partitioned table's queue
      v_table := v_change ->> 'table';
      IF NOT p_routes ? v_table THEN
        SELECT p.relname INTO v_table
          FROM pg_catalog.pg_inherits i
          JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
         WHERE i.inhrelid = to_regclass(format('%I.%I', v_change ->> 'schema', v_change ->> 'table'));
      END IF;
      v_queue := p_routes ->> v_table;
      IF v_queue IS NOT NULL THEN
        PERFORM pgmq.send(v_queue, jsonb_build_object(
          'lsn', v_commit::text,
          'xid', (v_change ->> 'xid')::bigint,
          'kind', CASE v_change ->> 'action' WHEN 'I' THEN 'insert' WHEN 'U' THEN 'update' ELSE 'delete' END,
          'schema', v_change ->> 'schema',
          'table', v_table,
          'partition', CASE WHEN v_table <> v_change ->> 'table' THEN v_change ->> 'table' END,
          'columns', (SELECT coalesce(jsonb_agg(c ->> 'name' ORDER BY o), '[]') FROM jsonb_array_elements(v_change -> 'columns') WITH ORDINALITY AS x(c, o)),
          'values', (SELECT coalesce(jsonb_agg(c -> 'value' ORDER BY o), '[]') FROM jsonb_array_elements(v_change -> 'columns') WITH ORDINALITY AS x(c, o)),
          'before_values', CASE WHEN v_change ? 'identity'
                             THEN (SELECT jsonb_object_agg(c ->> 'name', c -> 'value') FROM jsonb_array_elements(v_change -> 'identity') AS x(c)) END,
          'timestamp', v_ts::timestamptz));
        messages_sent := messages_sent + 1;
      END IF;
      v_budget := v_budget - 1;
      v_last_commit := v_commit;
      v_last_sent := v_i;
    END LOOP;
    IF more_left THEN
      v_last_complete := false;
      EXIT;
    END IF;
    -- the whole transaction is sent (also one without captured changes)
    v_last_commit := v_commit;
    v_last_sent := coalesce(array_length(v_pending, 1), 0);
    v_last_complete := true;
    v_safe := v_commit;
    transactions := transactions + 1;
  END LOOP;

  UPDATE singularity_private.cdc_bridge_cursor c
     SET last_commit = v_last_commit, last_sent = v_last_sent, last_complete = v_last_complete,
         safe_commit = v_safe, messages_sent = c.messages_sent + cdc_bridge_run.messages_sent, updated_at = now()
   WHERE c.slot_name = v_slot;
END
$$;

COMMENT ON FUNCTION public.cdc_bridge_run(text, jsonb, integer) IS
  'Seed 002 CDC bridge (pg_cron): captured changes from wal2json slot <database>_<suffix> to the queues p_routes names per table (cdc-learned-patterns, cdc-agent-sessions, cdc-metrics-events), at most p_max_changes per run, exactly once (progress in singularity_private.cdc_bridge_cursor, committed with the messages). Returns (messages_sent, transactions, slot_advanced_to, more_left)';

REVOKE ALL ON FUNCTION public.cdc_bridge_run(text, jsonb, integer) FROM PUBLIC;
