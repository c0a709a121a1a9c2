-- Singularity database, part 3: the agent_performance_5min materialized view (seed 000's
-- "REFRESH agent_performance_5min", every 30 min via refresh_metrics()).
--
-- Applied once, inside the runner's transaction. Finished tasks of the last 24 hours (live and
-- archived) per agent in 5-minute buckets. Its unique index lets refresh_metrics() refresh it
-- CONCURRENTLY (readers are never blocked).

CREATE MATERIALIZED VIEW agent_performance_5min AS
SELECT f.assigned_agent_id AS agent_id,
       date_bin('5 minutes', f.completed_at, timestamptz '2000-01-01 00:00:00+00') AS bucket_start,
       count(*) FILTER (WHERE f.status = 'completed')::integer AS tasks_completed,
       count(*) FILTER (WHERE f.status = 'failed')::integer AS tasks_failed,
       avg(f.duration_ms) AS avg_duration_ms,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY f.duration_ms) AS p50_duration_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY f.duration_ms) AS p95_duration_ms,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY f.duration_ms) AS p99_duration_ms
FROM (
  SELECT t.assigned_agent_id, t.status, t.completed_at,
         extract(epoch FROM t.completed_at - coalesce(t.started_at, t.assigned_at)) * 1000 AS duration_ms
  FROM tasks t
  WHERE t.status IN ('completed', 'failed')
  UNION ALL
  SELECT a.assigned_agent_id, a.status, a.completed_at,
         extract(epoch FROM a.completed_at - coalesce(a.started_at, a.assigned_at)) * 1000
  FROM tasks_archive a
) f
WHERE f.assigned_agent_id IS NOT NULL
  AND f.completed_at >= now() - interval '24 hours'
GROUP BY 1, 2
WITH DATA;

COMMENT ON MATERIALIZED VIEW agent_performance_5min IS
  'Per agent and 5-minute bucket over the last 24 h: tasks completed/failed, duration avg/p50/p95/p99 (ms); refresh_metrics()';

CREATE UNIQUE INDEX agent_performance_5min_key ON agent_performance_5min (agent_id, bucket_start);
