-- Retention in each singularity database (issue 18, seeds 000/002/003):
-- * the archives of the instance's own queues (centralcloud-new-patterns, agent-sessions,
--   agent-knowledge-updates), as shared_queue's are: SINGULARITY_QUEUE_RETENTION_DAYS (default 90);
-- * raw metrics_events after 30 days, once rolled up (seed 002); metrics_rollups are kept.
-- pg_cron runs both (jobs prune-instance-queue-archives, prune-metrics-events).
-- Re-applied whenever this file changes: CREATE OR REPLACE only, no BEGIN/COMMIT.

-- Deletes archived messages older than retention_days from every queue's archive; returns how many.
CREATE OR REPLACE FUNCTION public.singularity_prune_queue_archives(retention_days integer)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_queue text;
  v_archive text;
  v_n bigint;
  v_total bigint := 0;
BEGIN
  IF retention_days IS NULL OR retention_days < 1 THEN
    RAISE EXCEPTION 'singularity_prune_queue_archives: retention_days must be at least 1, got %', retention_days
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF to_regclass('pgmq.meta') IS NULL THEN
    RAISE NOTICE 'singularity_prune_queue_archives: no pgmq.meta here (no queue engine); nothing to do';
    RETURN 0;
  END IF;
  FOR v_queue IN SELECT m.queue_name::text FROM pgmq.meta m ORDER BY m.queue_name LOOP
    v_archive := 'a_' || lower(v_queue);
    IF to_regclass(format('pgmq.%I', v_archive)) IS NULL THEN
      CONTINUE;
    END IF;
    BEGIN
      EXECUTE format('DELETE FROM pgmq.%I WHERE archived_at < now() - make_interval(days => $1)', v_archive)
        USING retention_days;
      GET DIAGNOSTICS v_n = ROW_COUNT;
    EXCEPTION WHEN undefined_table THEN
      v_n := 0;
    END;
    IF v_n > 0 THEN
      RAISE NOTICE 'queue %: pruned % archived messages', v_queue, v_n;
    END IF;
    v_total := v_total + v_n;
  END LOOP;
  RETURN v_total;
END
$$;

COMMENT ON FUNCTION public.singularity_prune_queue_archives(integer) IS
  'Archive retention of this instance''s queues, daily via pg_cron: deletes messages archived more than retention_days (SINGULARITY_QUEUE_RETENTION_DAYS, default 90) ago from pgmq.a_<queue> of every queue in pgmq.meta; returns the number deleted';

REVOKE ALL ON FUNCTION public.singularity_prune_queue_archives(integer) FROM PUBLIC;

-- Drops raw metrics older than p_keep_days (whole UTC days) once their rollups are complete.
CREATE OR REPLACE FUNCTION public.prune_metrics_events(
  p_keep_days integer DEFAULT 30,
  p_batch_rows integer DEFAULT 10000,
  p_max_batches integer DEFAULT 50,
  OUT method text, OUT rolled_up_from timestamptz, OUT partitions_dropped integer, OUT rows_deleted bigint, OUT more_left boolean)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  -- the rollups' bucket origin (refresh_metrics_rollups): whole days are UTC days
  c_origin constant timestamptz := timestamptz '2000-01-01 00:00:00+00';
  v_cutoff timestamptz;
  v_partman text;
  v_child record;
  v_end timestamptz;
  v_n bigint;
  v_i integer := 0;
BEGIN
  IF p_keep_days IS NULL OR p_keep_days < 1 OR p_batch_rows < 1 OR p_max_batches < 1 THEN
    RAISE EXCEPTION 'prune_metrics_events: keep days, batch rows and batches must be at least 1'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  -- whole days: refresh_metrics_rollups() never rewrites a day older than the oldest raw row,
  -- so a 1-day bucket whose rows are gone keeps its figures
  v_cutoff := date_bin('1 day', now() - make_interval(days => p_keep_days), c_origin);
  partitions_dropped := 0;
  rows_deleted := 0;
  PERFORM pg_advisory_xact_lock(hashtext('singularity.prune_metrics_events'));

  -- 1. rolled up first: a day about to go whose 1-day rollup is missing or counts fewer samples
  -- than its raw rows is rolled up (from that day on) before anything is dropped
  SELECT min(raw.day) INTO rolled_up_from
  FROM (
    SELECT date_bin('1 day', e.recorded_at, c_origin) AS day, e.metric, count(*) AS n
    FROM public.metrics_events e
    WHERE e.recorded_at < v_cutoff
    GROUP BY 1, 2
  ) raw
  LEFT JOIN public.metrics_rollups r
    ON r.resolution = '1day' AND r.agent_key = '*' AND r.metric = raw.metric AND r.bucket_start = raw.day
  WHERE r.sample_count IS NULL OR r.sample_count < raw.n;
  IF rolled_up_from IS NOT NULL THEN
    PERFORM public.refresh_metrics_rollups(rolled_up_from);
  END IF;

  -- 2. pg_partman's daily partitions: whole days whose end is at or before the cutoff are dropped
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_partitioned_table WHERE partrelid = 'public.metrics_events'::regclass) THEN
    method := 'partitions';
    SELECT n.nspname INTO v_partman
      FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'pg_partman';
    FOR v_child IN
      SELECT c.oid::regclass AS child, n.nspname AS schema_name, c.relname AS table_name
      FROM pg_catalog.pg_inherits i
      JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE i.inhparent = 'public.metrics_events'::regclass
        AND pg_catalog.pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'
      ORDER BY c.relname
    LOOP
      IF v_partman IS NULL THEN
        EXIT;
      END IF;
      EXECUTE format('SELECT child_end_time FROM %I.show_partition_info($1, p_parent_table := $2)', v_partman)
        INTO v_end USING format('%I.%I', v_child.schema_name, v_child.table_name), 'public.metrics_events';
      IF v_end IS NOT NULL AND v_end <= v_cutoff THEN
        EXECUTE format('SELECT count(*) FROM %s', v_child.child) INTO v_n;
        EXECUTE format('DROP TABLE %s', v_child.child);
        partitions_dropped := partitions_dropped + 1;
        rows_deleted := rows_deleted + v_n;
      END IF;
    END LOOP;
    IF v_partman IS NOT NULL THEN
      -- the days ahead (premake)
      EXECUTE format('SELECT %I.run_maintenance(p_parent_table := $1)', v_partman) USING 'public.metrics_events';
    END IF;
  ELSE
    method := 'batched delete';
  END IF;

  -- 3. rows older than the cutoff that no dropped partition held (the default partition, or the
  -- whole table without pg_partman), in bounded batches: a run never holds locks for long, the
  -- next run goes on
  LOOP
    EXIT WHEN v_i >= p_max_batches;
    DELETE FROM public.metrics_events e
    WHERE (e.id, e.recorded_at) IN (
      SELECT x.id, x.recorded_at FROM public.metrics_events x
      WHERE x.recorded_at < v_cutoff
      ORDER BY x.recorded_at
      LIMIT p_batch_rows);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    rows_deleted := rows_deleted + v_n;
    v_i := v_i + 1;
    EXIT WHEN v_n < p_batch_rows;
  END LOOP;
  more_left := EXISTS (SELECT 1 FROM public.metrics_events e WHERE e.recorded_at < v_cutoff);
END
$$;

COMMENT ON FUNCTION public.prune_metrics_events(integer, integer, integer) IS
  'Seed 002 retention, hourly via pg_cron: rolls up any day about to go whose 1-day rollup is short, then drops raw metrics_events older than p_keep_days whole UTC days: pg_partman day partitions where metrics_events is partitioned, else (and for the default partition) DELETE in at most p_max_batches batches of p_batch_rows. metrics_rollups are kept. Returns (method, rolled_up_from, partitions_dropped, rows_deleted, more_left)';

REVOKE ALL ON FUNCTION public.prune_metrics_events(integer, integer, integer) FROM PUBLIC;
