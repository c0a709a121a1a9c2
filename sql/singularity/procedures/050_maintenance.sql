-- Scheduled maintenance of seed 000's table and seed 001's pg_cron list: sync-log cleanup, task
-- archive, cleanup of old Oban jobs / artifacts / code chunks, table statistics, reindex of
-- bloated indexes, vector statistics.
--
-- Not here: VACUUM cannot run inside a function (nor a transaction), so "Vacuum & Analyze" is the
-- cron job's own command (VACUUM (ANALYZE) ...), not a procedure. Backup archival works on files
-- and belongs to the CLI (`singularity backup`), called by system cron.
-- Re-applied whenever this file changes: CREATE OR REPLACE only, no BEGIN/COMMIT.

-- Deletes sync_log rows older than p_older_than (default 30 days); returns how many.
CREATE OR REPLACE FUNCTION cleanup_sync_log(p_older_than interval DEFAULT interval '30 days')
RETURNS integer
LANGUAGE plpgsql VOLATILE STRICT
AS $$
DECLARE
  v_n integer;
BEGIN
  DELETE FROM public.sync_log s WHERE s.created_at < now() - p_older_than;
  GET DIAGNOSTICS v_n = ROW_COUNT;
  RETURN v_n;
END
$$;

COMMENT ON FUNCTION cleanup_sync_log(interval) IS
  'Seed 000, every 6 h: deletes sync_log rows older than the interval (default 30 days); returns the count';

-- Moves completed and failed tasks finished more than p_older_than ago into tasks_archive.
CREATE OR REPLACE FUNCTION archive_completed_tasks(p_older_than interval DEFAULT interval '1 day')
RETURNS integer
LANGUAGE plpgsql VOLATILE STRICT
AS $$
DECLARE
  v_n integer;
BEGIN
  WITH moved AS (
    DELETE FROM public.tasks t
    WHERE t.status IN ('completed', 'failed') AND t.completed_at < now() - p_older_than
    RETURNING t.*
  )
  INSERT INTO public.tasks_archive
    (id, title, task_type, payload, status, priority, assigned_agent_id, assigned_at, started_at,
     completed_at, error, created_at, updated_at)
  SELECT m.id, m.title, m.task_type, m.payload, m.status, m.priority, m.assigned_agent_id, m.assigned_at,
         m.started_at, m.completed_at, m.error, m.created_at, m.updated_at
  FROM moved m
  ON CONFLICT (id) DO NOTHING;
  GET DIAGNOSTICS v_n = ROW_COUNT;
  RETURN v_n;
END
$$;

COMMENT ON FUNCTION archive_completed_tasks(interval) IS
  'Seed 000, daily 2 AM: moves completed/failed tasks finished before now() - interval (default 1 day) to tasks_archive; returns the count';

-- Deletes finished Oban jobs older than p_older_than where the Elixir app's oban_jobs table exists.
CREATE OR REPLACE FUNCTION cleanup_old_oban_jobs(p_older_than interval DEFAULT interval '7 days')
RETURNS integer
LANGUAGE plpgsql VOLATILE STRICT
AS $$
DECLARE
  v_table regclass := to_regclass('public.oban_jobs');
  v_n integer;
BEGIN
  IF v_table IS NULL THEN
    RAISE NOTICE 'cleanup_old_oban_jobs: no table public.oban_jobs here (Oban not installed); nothing to do';
    RETURN 0;
  END IF;
  EXECUTE format(
    'DELETE FROM %s j WHERE j.state::text IN (''completed'', ''discarded'', ''cancelled'')
       AND coalesce(j.completed_at, j.discarded_at, j.cancelled_at, j.inserted_at) < now() - $1',
    v_table)
  USING p_older_than;
  GET DIAGNOSTICS v_n = ROW_COUNT;
  RETURN v_n;
END
$$;

COMMENT ON FUNCTION cleanup_old_oban_jobs(interval) IS
  'Seed 001, weekly Sun 00:00: deletes completed/discarded/cancelled oban_jobs older than the interval (default 7 days); 0 where Oban is absent';

-- Deletes unpinned artifacts older than p_older_than (default 30 days).
CREATE OR REPLACE FUNCTION cleanup_old_artifacts(p_older_than interval DEFAULT interval '30 days')
RETURNS integer
LANGUAGE plpgsql VOLATILE STRICT
AS $$
DECLARE
  v_n integer;
BEGIN
  DELETE FROM public.artifacts a WHERE NOT a.pinned AND a.created_at < now() - p_older_than;
  GET DIAGNOSTICS v_n = ROW_COUNT;
  RETURN v_n;
END
$$;

COMMENT ON FUNCTION cleanup_old_artifacts(interval) IS
  'Seed 001, weekly Sun 01:00: deletes unpinned artifacts older than the interval (default 30 days); returns the count';

-- Deletes code chunks no ingest has seen for p_older_than (their embeddings go with them).
CREATE OR REPLACE FUNCTION cleanup_old_code_chunks(p_older_than interval DEFAULT interval '30 days')
RETURNS integer
LANGUAGE plpgsql VOLATILE STRICT
AS $$
DECLARE
  v_n integer;
BEGIN
  DELETE FROM public.code_chunks c WHERE c.ingested_at < now() - p_older_than;
  GET DIAGNOSTICS v_n = ROW_COUNT;
  RETURN v_n;
END
$$;

COMMENT ON FUNCTION cleanup_old_code_chunks(interval) IS
  'Seed 001, weekly Sun 02:00: deletes code chunks not re-ingested within the interval (default 30 days), embeddings cascade; returns the count';

-- Snapshots pg_stat_user_tables for schema public into table_statistics; prunes old snapshots.
CREATE OR REPLACE FUNCTION collect_table_statistics(p_keep interval DEFAULT interval '90 days')
RETURNS integer
LANGUAGE plpgsql VOLATILE STRICT
AS $$
DECLARE
  v_n integer;
BEGIN
  DELETE FROM public.table_statistics s WHERE s.captured_at < now() - p_keep;
  INSERT INTO public.table_statistics
    (captured_at, table_name, live_rows, dead_rows, total_bytes, index_bytes, seq_scans, index_scans,
     last_autovacuum, last_autoanalyze)
  SELECT now(), st.relname, st.n_live_tup, st.n_dead_tup,
         pg_total_relation_size(st.relid), pg_indexes_size(st.relid),
         coalesce(st.seq_scan, 0), coalesce(st.idx_scan, 0),
         st.last_autovacuum, st.last_autoanalyze
  FROM pg_catalog.pg_stat_user_tables st
  WHERE st.schemaname = 'public'
  ON CONFLICT (captured_at, table_name) DO NOTHING;
  GET DIAGNOSTICS v_n = ROW_COUNT;
  RETURN v_n;
END
$$;

COMMENT ON FUNCTION collect_table_statistics(interval) IS
  'Seed 001, every 6 h: one table_statistics row per public table (rows live/dead, sizes, scans, autovacuum times); keeps the interval (default 90 days); returns rows written';

-- Estimates btree bloat of public indexes and rebuilds those above the threshold.
CREATE OR REPLACE FUNCTION reindex_bloated_indexes(
  p_min_bloat double precision DEFAULT 0.3,
  p_min_bytes bigint DEFAULT 8388608,
  p_dry_run boolean DEFAULT false)
RETURNS TABLE (index_name text, size_bytes bigint, estimated_bloat double precision, action text)
LANGUAGE plpgsql VOLATILE
-- REINDEX blocks writes to the table while it runs; do not queue behind long transactions
SET lock_timeout = '5s'
AS $$
DECLARE
  v_stattuple text := (SELECT n.nspname FROM pg_catalog.pg_extension x
                       JOIN pg_catalog.pg_namespace n ON n.oid = x.extnamespace
                       WHERE x.extname = 'pgstattuple');
  v_idx record;
  v_density double precision;
BEGIN
  IF p_min_bloat IS NULL OR p_min_bloat <= 0 OR p_min_bloat >= 1 THEN
    RAISE EXCEPTION 'reindex_bloated_indexes: min bloat must be between 0 and 1, got %', p_min_bloat
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  FOR v_idx IN
    WITH idx AS (
      SELECT i.indexrelid, i.indrelid, ic.relname AS idxname, n.nspname,
             pg_catalog.pg_relation_size(i.indexrelid) AS bytes,
             ic.relpages::double precision AS pages, ic.reltuples::double precision AS tuples,
             current_setting('block_size')::double precision AS block_size
      FROM pg_catalog.pg_index i
      JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
      JOIN pg_catalog.pg_namespace n ON n.oid = ic.relnamespace
      JOIN pg_catalog.pg_am am ON am.oid = ic.relam
      WHERE n.nspname = 'public' AND am.amname = 'btree' AND i.indisvalid AND i.indisready
    ), widths AS (
      -- average key width from column statistics; 8 bytes where there are none (expressions)
      SELECT x.indexrelid, sum(coalesce(s.avg_width, 8))::double precision AS key_width
      FROM idx x
      JOIN pg_catalog.pg_index i ON i.indexrelid = x.indexrelid
      CROSS JOIN LATERAL unnest(i.indkey::smallint[]) AS k(attnum)
      LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
      LEFT JOIN pg_catalog.pg_stats s
        ON s.schemaname = x.nspname AND s.tablename = (SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = x.indrelid)
       AND s.attname = a.attname
      GROUP BY x.indexrelid
    )
    SELECT x.indexrelid, x.nspname, x.idxname, x.bytes, x.pages,
           -- statistical estimate: index tuples (8-byte header + key, MAXALIGNed, + 4-byte line
           -- pointer) packed at the default fillfactor 90 into pages without the page header and
           -- btree special space, plus the meta page
           CASE WHEN x.tuples > 0 AND x.pages > 1 THEN
             greatest(0, 1 - (1 + ceil(x.tuples * (ceil((8 + w.key_width) / 8) * 8 + 4)
                                      / ((x.block_size - 24 - 16) * 0.9))) / x.pages)
           END AS stat_bloat
    FROM idx x JOIN widths w ON w.indexrelid = x.indexrelid
    WHERE x.bytes >= p_min_bytes
    ORDER BY x.bytes DESC
  LOOP
    index_name := format('%I.%I', v_idx.nspname, v_idx.idxname);
    size_bytes := v_idx.bytes;
    estimated_bloat := v_idx.stat_bloat;
    IF v_stattuple IS NOT NULL THEN
      -- pgstattuple measures leaf density exactly; 90 is the default fillfactor
      EXECUTE format('SELECT avg_leaf_density FROM %I.pgstatindex($1)', v_stattuple)
        INTO v_density USING v_idx.indexrelid::regclass;
      IF v_density IS NOT NULL AND v_density = v_density THEN
        estimated_bloat := greatest(0, 1 - v_density / 90.0);
      END IF;
    END IF;
    IF estimated_bloat IS NULL OR estimated_bloat < p_min_bloat THEN
      CONTINUE;
    END IF;
    IF p_dry_run THEN
      action := 'would reindex';
    ELSE
      BEGIN
        EXECUTE format('REINDEX INDEX %I.%I', v_idx.nspname, v_idx.idxname);
        action := 'reindexed';
      EXCEPTION WHEN lock_not_available THEN
        action := 'skipped: lock timeout';
      END;
    END IF;
    RETURN NEXT;
  END LOOP;
END
$$;

COMMENT ON FUNCTION reindex_bloated_indexes(double precision, bigint, boolean) IS
  'Seed 001, weekly Sun 03:00: btree indexes of schema public of at least p_min_bytes whose estimated bloat (pgstattuple where installed, else statistics) reaches p_min_bloat are rebuilt (REINDEX, 5 s lock timeout); one row per candidate';

-- Computes count, dimensions and mean L2 norm of every real[] / float8[] column of schema public.
CREATE OR REPLACE FUNCTION refresh_vector_stats()
RETURNS TABLE (table_name text, column_name text, row_count bigint, vectors bigint,
               min_dims integer, max_dims integer, avg_norm double precision)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
  v_col record;
  v_now timestamptz := now();
BEGIN
  FOR v_col IN
    SELECT c.relname, a.attname
    FROM pg_catalog.pg_attribute a
    JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
      AND a.atttypid IN ('real[]'::regtype, 'double precision[]'::regtype)
    ORDER BY c.relname, a.attname
  LOOP
    table_name := v_col.relname;
    column_name := v_col.attname;
    EXECUTE format(
      'SELECT count(*), count(%2$I), min(cardinality(%2$I)), max(cardinality(%2$I)),
              avg((SELECT sqrt(sum(x::double precision * x)) FROM unnest(%2$I) AS u(x)))
       FROM %1$I', v_col.relname, v_col.attname)
      INTO row_count, vectors, min_dims, max_dims, avg_norm;
    INSERT INTO public.vector_statistics
      (computed_at, table_name, column_name, row_count, vectors, min_dims, max_dims, avg_norm)
    VALUES (v_now, v_col.relname, v_col.attname, row_count, vectors, min_dims, max_dims, avg_norm)
    ON CONFLICT ON CONSTRAINT vector_statistics_pkey DO UPDATE
      SET row_count = EXCLUDED.row_count, vectors = EXCLUDED.vectors, min_dims = EXCLUDED.min_dims,
          max_dims = EXCLUDED.max_dims, avg_norm = EXCLUDED.avg_norm;
    RETURN NEXT;
  END LOOP;
END
$$;

COMMENT ON FUNCTION refresh_vector_stats() IS
  'Seed 001, weekly Sun 04:00: per embedding column (real[]/float8[]) of schema public, rows, vectors, min/max dimensions and mean L2 norm, recorded in vector_statistics';
