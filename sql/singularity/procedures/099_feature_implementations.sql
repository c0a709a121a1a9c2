-- Which implementation of each optional-extension feature is live in this database (db status).
-- Re-applied whenever this file changes: CREATE OR REPLACE only, no BEGIN/COMMIT.

-- One row per feature of seed 002 / issue 5: the implementation in use and why.
CREATE OR REPLACE FUNCTION singularity_feature_implementations()
RETURNS TABLE (feature text, implementation text)
LANGUAGE sql STABLE
AS $$
  WITH x AS (
    SELECT coalesce(array_agg(e.extname::text), '{}') AS names FROM pg_catalog.pg_extension e
  )
  SELECT f.feature, f.implementation
  FROM x, LATERAL (VALUES
    (1, 'queue_engine',
        CASE WHEN 'pgmq' = ANY (x.names) THEN 'pgmq extension'
             WHEN to_regprocedure('pgmq.send(text,jsonb)') IS NOT NULL
               THEN 'bundled pgmq (sql/pgmq)'
             ELSE 'missing: run singularity db init' END),
    (2, 'ulid',
        'plpgsql ulid_generate()/ulid_timestamp()'
        || CASE WHEN 'pgx_ulid' = ANY (x.names) THEN ' (pgx_ulid installed, not used)' ELSE ' (pgx_ulid not installed)' END),
    (3, 'encryption',
        CASE WHEN 'pgcrypto' = ANY (x.names) THEN 'pgcrypto pgp_sym_encrypt AES-256, key in singularity_private.encryption_keys'
             ELSE 'missing: pgcrypto not installed' END
        || CASE WHEN 'pgsodium' = ANY (x.names) THEN ' (pgsodium installed, not used)' ELSE ' (pgsodium not installed)' END),
    (4, 'pattern_similarity',
        'plain SQL exact L2 over real[]'
        || CASE WHEN 'lantern' = ANY (x.names) OR 'vector' = ANY (x.names)
                THEN ' (' || array_to_string(ARRAY(SELECT n FROM unnest(ARRAY['lantern', 'vector']) n WHERE n = ANY (x.names)), ', ') || ' installed, not used)'
                ELSE ' (lantern, pgvector not installed)' END),
    (5, 'metrics_rollups',
        'plain SQL date_bin + percentile_cont into metrics_rollups'
        || CASE WHEN 'timescaledb_toolkit' = ANY (x.names) THEN ' (timescaledb_toolkit installed, not used)' ELSE ' (timescaledb_toolkit not installed)' END),
    (6, 'package_registry_fetch',
        CASE WHEN 'pg_net' = ANY (x.names) THEN 'application registry sync writes package_registry (pg_net installed, not used)'
             ELSE 'application registry sync writes package_registry (pg_net not installed)' END),
    (7, 'geo_clustering',
        CASE WHEN 'h3' = ANY (x.names) THEN 'agents.latitude/longitude; h3 installed, h3_cell filled by the application'
             WHEN 'earthdistance' = ANY (x.names) AND to_regprocedure('public.agents_near(double precision,double precision,double precision)') IS NOT NULL
               THEN 'cube + earthdistance: agents_near(), set_agent_location(), cluster_agents_by_region(), GiST index agents_location_earth_idx (h3 not installed)'
             ELSE 'agents.latitude/longitude only (h3 not installed)' END),
    (8, 'cache_prewarm',
        CASE WHEN 'pg_prewarm' = ANY (x.names) THEN 'pg_prewarm' ELSE 'skipped (pg_prewarm not installed)' END),
    (9, 'index_bloat_estimate',
        CASE WHEN 'pgstattuple' = ANY (x.names) THEN 'pgstattuple pgstatindex' ELSE 'statistics estimate (pgstattuple not installed)' END),
    (10, 'metrics_retention',
        CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_partitioned_table p WHERE p.partrelid = to_regclass('public.metrics_events'))
               THEN 'pg_partman day partitions of metrics_events, dropped after 30 days once rolled up (prune_metrics_events)'
             ELSE 'metrics_events deleted in bounded batches after 30 days once rolled up (prune_metrics_events)'
                  || CASE WHEN 'pg_partman' = ANY (x.names) THEN '' ELSE ' (pg_partman not installed)' END END),
    (11, 'cdc_bridge',
        CASE WHEN to_regprocedure('public.cdc_bridge_run(text,jsonb,integer)') IS NOT NULL
               THEN 'wal2json slot <database>_cdc_bridge into cdc-learned-patterns, cdc-agent-sessions, cdc-metrics-events (cdc_bridge_run, exactly once)'
             ELSE 'missing: run singularity db init' END)
  ) AS f (ord, feature, implementation)
  ORDER BY f.ord
$$;

COMMENT ON FUNCTION singularity_feature_implementations() IS
  'For db status: per feature (queue engine, ULID, encryption, similarity, rollups, registry fetch, geo, prewarm, bloat estimate, metrics retention, CDC bridge) the live implementation and the optional extensions that are or are not installed';
