-- Archive retention of the shared_queue database (seed 003: archived messages are pruned after
-- SHARED_QUEUE_RETENTION_DAYS, default 90). pg_cron runs it daily (job prune-queue-archives).
-- Works with the real pgmq extension and the bundled engine alike: every queue listed in
-- pgmq.meta has its archive in pgmq.a_<lower(name)>, with an archived_at column.
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
      -- the queue was dropped while we ran
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
  'Seed 003 retention, daily via pg_cron: deletes messages archived more than retention_days (SHARED_QUEUE_RETENTION_DAYS, default 90) ago from pgmq.a_<queue> of every queue in pgmq.meta; returns the number deleted';

REVOKE ALL ON FUNCTION public.singularity_prune_queue_archives(integer) FROM PUBLIC;
