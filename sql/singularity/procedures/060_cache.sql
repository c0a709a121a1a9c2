-- The cache table's helpers and its three pg_cron tasks of seed 001 ("moved from Oban"):
-- cleanup every 15 min, refresh hourly, prewarm every 6 hours (pg_prewarm where installed).
-- Re-applied whenever this file changes: CREATE OR REPLACE only, no BEGIN/COMMIT.

-- Reads a cache entry that has not expired, counting the hit; NULL on a miss.
CREATE OR REPLACE FUNCTION cache_get(p_key text)
RETURNS jsonb
LANGUAGE sql VOLATILE STRICT
AS $$
  UPDATE public.cache_entries c
  SET hit_count = c.hit_count + 1, last_hit_at = now()
  WHERE c.key = p_key AND c.expires_at > now()
  RETURNING c.value
$$;

COMMENT ON FUNCTION cache_get(text) IS 'Value of an unexpired cache entry (counts the hit), NULL on a miss';

-- Writes a cache entry that lives for p_ttl (default 1 hour).
CREATE OR REPLACE FUNCTION cache_put(p_key text, p_value jsonb, p_ttl interval DEFAULT interval '1 hour',
                                     p_namespace text DEFAULT 'default')
RETURNS void
LANGUAGE sql VOLATILE
AS $$
  INSERT INTO public.cache_entries AS c (key, namespace, value, ttl, expires_at)
  VALUES (p_key, coalesce(p_namespace, 'default'), p_value, p_ttl, now() + p_ttl)
  ON CONFLICT (key) DO UPDATE
    SET namespace = EXCLUDED.namespace, value = EXCLUDED.value, ttl = EXCLUDED.ttl,
        expires_at = EXCLUDED.expires_at, updated_at = now()
$$;

COMMENT ON FUNCTION cache_put(text, jsonb, interval, text) IS 'Inserts or replaces a cache entry expiring after p_ttl (default 1 hour)';

-- Deletes expired cache entries; returns how many.
CREATE OR REPLACE FUNCTION cleanup_expired_cache()
RETURNS integer
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
  v_n integer;
BEGIN
  DELETE FROM public.cache_entries c WHERE c.expires_at <= now();
  GET DIAGNOSTICS v_n = ROW_COUNT;
  RETURN v_n;
END
$$;

COMMENT ON FUNCTION cleanup_expired_cache() IS 'Seed 001, every 15 min: deletes expired cache entries; returns the count';

-- Keeps hot entries: extends by their ttl those hit p_min_hits times since the last run, then resets the counters.
CREATE OR REPLACE FUNCTION refresh_cache(p_min_hits integer DEFAULT 5)
RETURNS integer
LANGUAGE plpgsql VOLATILE STRICT
AS $$
DECLARE
  v_n integer;
BEGIN
  UPDATE public.cache_entries c
  SET expires_at = greatest(c.expires_at, now() + c.ttl), updated_at = now()
  WHERE c.hit_count >= p_min_hits AND c.expires_at > now();
  GET DIAGNOSTICS v_n = ROW_COUNT;
  -- hit_count counts per refresh period
  UPDATE public.cache_entries c SET hit_count = 0 WHERE c.hit_count > 0;
  RETURN v_n;
END
$$;

COMMENT ON FUNCTION refresh_cache(integer) IS
  'Seed 001, hourly: unexpired entries hit at least p_min_hits times (default 5) since the last run live another ttl; hit counters restart; returns entries extended';

-- Loads the hot tables and indexes into shared buffers with pg_prewarm; skipped where it is absent.
CREATE OR REPLACE FUNCTION prewarm_cache()
RETURNS TABLE (relation text, blocks bigint)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
  v_schema text := (SELECT n.nspname FROM pg_catalog.pg_extension x
                    JOIN pg_catalog.pg_namespace n ON n.oid = x.extnamespace
                    WHERE x.extname = 'pg_prewarm');
  v_rel regclass;
BEGIN
  IF v_schema IS NULL THEN
    RAISE NOTICE 'prewarm_cache: extension pg_prewarm is not installed; skipped';
    RETURN;
  END IF;
  FOR v_rel IN
    SELECT c.oid::regclass
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public'
      AND c.relname IN ('cache_entries', 'cache_entries_pkey', 'cache_entries_expires_idx',
                        'agents', 'agents_pkey', 'tasks_pending_idx', 'tasks_agent_load_idx',
                        'analysis_results_unlearned_idx', 'package_registry', 'package_registry_pkey')
    ORDER BY c.relname
  LOOP
    relation := v_rel::text;
    EXECUTE format('SELECT %I.pg_prewarm($1)', v_schema) INTO blocks USING v_rel;
    RETURN NEXT;
  END LOOP;
END
$$;

COMMENT ON FUNCTION prewarm_cache() IS
  'Seed 001, every 6 h: pg_prewarm of the cache, agent, pending-task and registry tables/indexes; no rows (and a notice) where pg_prewarm is not installed';
