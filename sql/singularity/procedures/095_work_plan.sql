-- The one-time planning seed (seed 001 "Planning Seed", startup; pg_cron in the original).
-- Re-applied whenever this file changes: CREATE OR REPLACE only, no BEGIN/COMMIT.

-- Inserts the roadmap items that are missing; never changes or removes existing ones.
CREATE OR REPLACE FUNCTION seed_work_plan()
RETURNS integer
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
  v_n integer;
BEGIN
  INSERT INTO public.work_plan (key, title, description, phase, position, depends_on)
  SELECT s.key, s.title, s.description, s.phase, s.position, s.depends_on
  FROM (VALUES
    ('knowledge-migration', 'Knowledge migration', 'Validate and load the knowledge JSON files', 'bootstrap', 10, '{}'::text[]),
    ('templates-data-load', 'Templates data load', 'Sync templates_data/ into the database', 'bootstrap', 20, '{knowledge-migration}'),
    ('planning-seed', 'Planning seed', 'Seed this work plan (seed_work_plan)', 'bootstrap', 30, '{}'),
    ('code-ingest', 'Code ingest', 'Parse the codebase into code_chunks and code_embeddings', 'bootstrap', 40, '{templates-data-load}'),
    ('graph-populate', 'Graph populate', 'Build the dependency graph from code chunks (populate_graph_dependencies)', 'bootstrap', 50, '{code-ingest}'),
    ('rag-setup', 'RAG setup', 'Initialise retrieval over code and knowledge', 'bootstrap', 60, '{graph-populate}'),
    ('pattern-learning', 'Pattern learning', 'Learn patterns from analysis results every 5 min (learn_patterns_from_analysis)', 'autonomy', 110, '{}'),
    ('task-assignment', 'Task assignment', 'Assign pending tasks every 2 min (assign_pending_tasks)', 'autonomy', 120, '{}'),
    ('centralcloud-sync', 'CentralCloud sync', 'Batch learned patterns for CentralCloud every 10 min', 'autonomy', 130, '{pattern-learning}'),
    ('knowledge-aggregation', 'Knowledge aggregation', 'Hourly per-agent knowledge (update_agent_knowledge)', 'autonomy', 140, '{pattern-learning}'),
    ('pagerank', 'PageRank', 'Daily PageRank over the dependency graph (compute_pagerank)', 'autonomy', 150, '{graph-populate}'),
    ('metrics-rollups', 'Metrics rollups', '5 min / 1 h / 1 day metric rollups with percentiles (refresh_metrics)', 'operations', 210, '{}'),
    ('backups', 'Backups', 'Hourly (keep 6), daily (keep 7) and monthly archival backups', 'operations', 220, '{}'),
    ('maintenance', 'Maintenance', 'Vacuum/analyze, reindex, cleanups and statistics on schedule', 'operations', 230, '{}')
  ) AS s (key, title, description, phase, position, depends_on)
  ON CONFLICT (key) DO NOTHING;
  GET DIAGNOSTICS v_n = ROW_COUNT;
  RETURN v_n;
END
$$;

COMMENT ON FUNCTION seed_work_plan() IS
  'Seed 001 planning seed (startup, one-time, idempotent): inserts the missing roadmap items into work_plan, never touches existing ones; returns rows inserted';
