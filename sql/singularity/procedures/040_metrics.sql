-- Metrics refresh (seed 000 "REFRESH agent_performance_5min", seed 001 "Metrics Refresh" every
-- 30 min) and the 5 min / 1 h / 1 day rollups of metrics_events with p50/p95/p99 — what
-- timescaledb_toolkit's continuous aggregates give in seed 002, in plain PostgreSQL
-- (date_bin + percentile_cont). timescaledb_toolkit is not used even where installed.
-- Re-applied whenever this file changes: CREATE OR REPLACE only, no BEGIN/COMMIT.

-- Recomputes the rollup buckets from p_since on (default: the last 2 hours) from the raw events.
CREATE OR REPLACE FUNCTION refresh_metrics_rollups(p_since timestamptz DEFAULT NULL)
RETURNS TABLE (resolution text, buckets integer)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
  c_origin constant timestamptz := timestamptz '2000-01-01 00:00:00+00';
  v_since timestamptz := coalesce(p_since, now() - interval '2 hours');
  v_oldest timestamptz;
  v_from timestamptz;
  v_res record;
  v_n integer;
BEGIN
  -- one refresh at a time: a bucket is deleted and rewritten as a whole
  PERFORM pg_advisory_xact_lock(hashtext('singularity.refresh_metrics_rollups'));
  SELECT min(e.recorded_at) INTO v_oldest FROM public.metrics_events e;
  IF v_oldest IS NOT NULL AND v_oldest > v_since THEN
    v_since := v_oldest;
  END IF;
  FOR v_res IN
    SELECT * FROM (VALUES ('5min', interval '5 minutes'), ('1h', interval '1 hour'), ('1day', interval '1 day')) AS r (name, width)
  LOOP
    -- whole buckets only: from the start of the bucket v_since falls in
    v_from := date_bin(v_res.width, v_since, c_origin);
    DELETE FROM public.metrics_rollups m WHERE m.resolution = v_res.name AND m.bucket_start >= v_from;
    INSERT INTO public.metrics_rollups AS m
      (resolution, bucket_start, metric, agent_key, sample_count, sum_value, avg_value, min_value, max_value, p50, p95, p99)
    SELECT v_res.name,
           date_bin(v_res.width, e.recorded_at, c_origin),
           e.metric,
           CASE WHEN grouping(e.agent_id) = 1 THEN '*' ELSE e.agent_id END,
           count(*), sum(e.value), avg(e.value), min(e.value), max(e.value),
           percentile_cont(0.5) WITHIN GROUP (ORDER BY e.value),
           percentile_cont(0.95) WITHIN GROUP (ORDER BY e.value),
           percentile_cont(0.99) WITHIN GROUP (ORDER BY e.value)
    FROM public.metrics_events e
    WHERE e.recorded_at >= v_from
    GROUP BY GROUPING SETS ((date_bin(v_res.width, e.recorded_at, c_origin), e.metric),
                            (date_bin(v_res.width, e.recorded_at, c_origin), e.metric, e.agent_id))
    -- per-agent rows only for events that name an agent; all events count in '*'
    HAVING grouping(e.agent_id) = 1 OR e.agent_id IS NOT NULL;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    resolution := v_res.name;
    buckets := v_n;
    RETURN NEXT;
  END LOOP;
END
$$;

COMMENT ON FUNCTION refresh_metrics_rollups(timestamptz) IS
  'Rewrites metrics_rollups (5min, 1h, 1day) from metrics_events for every bucket from p_since (default now() - 2 h): count/sum/avg/min/max and percentile_cont p50/p95/p99, per metric for all agents (''*'') and per agent';

-- Refreshes the agent_performance_5min materialized view; returns its row count.
CREATE OR REPLACE FUNCTION refresh_agent_performance()
RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
  v_rows bigint;
BEGIN
  IF (SELECT c.relispopulated FROM pg_catalog.pg_class c WHERE c.oid = 'public.agent_performance_5min'::regclass) THEN
    -- readers keep reading the old contents meanwhile (needs the unique index, which exists)
    REFRESH MATERIALIZED VIEW CONCURRENTLY public.agent_performance_5min;
  ELSE
    REFRESH MATERIALIZED VIEW public.agent_performance_5min;
  END IF;
  SELECT count(*) INTO v_rows FROM public.agent_performance_5min;
  RETURN v_rows;
END
$$;

COMMENT ON FUNCTION refresh_agent_performance() IS
  'Refreshes materialized view agent_performance_5min (concurrently when populated); returns its row count. Needs the view''s owner';

-- The 30-minute metrics job: agent_performance_5min and the three rollup resolutions.
CREATE OR REPLACE FUNCTION refresh_metrics(p_since timestamptz DEFAULT NULL)
RETURNS TABLE (target text, rows_written bigint)
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
  target := 'agent_performance_5min';
  rows_written := public.refresh_agent_performance();
  RETURN NEXT;
  RETURN QUERY
    SELECT 'metrics_rollups_' || r.resolution, r.buckets::bigint
    FROM public.refresh_metrics_rollups(p_since) r;
END
$$;

COMMENT ON FUNCTION refresh_metrics(timestamptz) IS
  'Seed 000/001 metrics refresh (every 30 min): agent_performance_5min, then metrics_rollups 5min/1h/1day from p_since; one row per target';

CREATE OR REPLACE VIEW metrics_5min AS
SELECT m.bucket_start, m.metric, m.agent_key, m.sample_count, m.avg_value, m.min_value, m.max_value, m.p50, m.p95, m.p99
FROM metrics_rollups m
WHERE m.resolution = '5min';

COMMENT ON VIEW metrics_5min IS '5-minute metric buckets (seed 002 metrics_5min), from metrics_rollups';

CREATE OR REPLACE VIEW metrics_1h AS
SELECT m.bucket_start, m.metric, m.agent_key, m.sample_count, m.avg_value, m.min_value, m.max_value, m.p50, m.p95, m.p99
FROM metrics_rollups m
WHERE m.resolution = '1h';

COMMENT ON VIEW metrics_1h IS '1-hour metric buckets (seed 002 metrics_1h), from metrics_rollups';

CREATE OR REPLACE VIEW metrics_1d AS
SELECT m.bucket_start, m.metric, m.agent_key, m.sample_count, m.avg_value, m.min_value, m.max_value, m.p50, m.p95, m.p99
FROM metrics_rollups m
WHERE m.resolution = '1day';

COMMENT ON VIEW metrics_1d IS '1-day metric buckets (seed 002 metrics_1d), from metrics_rollups';
