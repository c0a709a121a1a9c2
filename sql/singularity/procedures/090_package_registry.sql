-- Package registry cache helpers (seed 002's RemoteDataFetcher minus the HTTP: pg_net is not used;
-- the registry sync of the application writes package_registry rows). Fresh = fetched < 24 h ago.
-- Re-applied whenever this file changes: CREATE OR REPLACE only, no BEGIN/COMMIT.

-- Whether a package's cached metadata is fresh (fetched within p_max_age, default 24 h).
CREATE OR REPLACE FUNCTION package_cache_is_fresh(p_ecosystem text, p_name text, p_max_age interval DEFAULT interval '24 hours')
RETURNS boolean
LANGUAGE sql STABLE
AS $$
  SELECT coalesce((
    SELECT p.fetched_at > now() - p_max_age
    FROM public.package_registry p
    WHERE p.ecosystem = p_ecosystem AND p.name = p_name
  ), false)
$$;

COMMENT ON FUNCTION package_cache_is_fresh(text, text, interval) IS
  'Seed 002 is_fresh?: true when the package is cached and was fetched within p_max_age (default 24 h); false when absent or stale';

-- The cached row of a package (no row when not cached), whatever its age.
CREATE OR REPLACE FUNCTION package_cache_get(p_ecosystem text, p_name text)
RETURNS SETOF package_registry
LANGUAGE sql STABLE
AS $$
  SELECT p.* FROM public.package_registry p WHERE p.ecosystem = p_ecosystem AND p.name = p_name
$$;

COMMENT ON FUNCTION package_cache_get(text, text) IS 'Seed 002 get_cached: the cached package_registry row, if any (no network)';

-- Expired cache entries, oldest first: what the registry sync should refetch.
CREATE OR REPLACE FUNCTION package_cache_expired(p_limit integer DEFAULT 100, p_max_age interval DEFAULT interval '24 hours')
RETURNS TABLE (ecosystem text, name text, fetched_at timestamptz, age interval)
LANGUAGE sql STABLE
AS $$
  SELECT p.ecosystem, p.name, p.fetched_at, now() - p.fetched_at
  FROM public.package_registry p
  WHERE p.fetched_at <= now() - p_max_age
  ORDER BY p.fetched_at, p.ecosystem, p.name
  LIMIT greatest(coalesce(p_limit, 100), 0)
$$;

COMMENT ON FUNCTION package_cache_expired(integer, interval) IS
  'Seed 002 refresh_expired_cache input: cached packages older than p_max_age (default 24 h), oldest first, at most p_limit';

-- Counts of cached packages per ecosystem: fresh, expired, oldest and newest fetch.
CREATE OR REPLACE FUNCTION package_cache_stats(p_max_age interval DEFAULT interval '24 hours')
RETURNS TABLE (ecosystem text, packages bigint, fresh bigint, expired bigint, oldest_fetch timestamptz, newest_fetch timestamptz)
LANGUAGE sql STABLE
AS $$
  SELECT p.ecosystem, count(*),
         count(*) FILTER (WHERE p.fetched_at > now() - p_max_age),
         count(*) FILTER (WHERE p.fetched_at <= now() - p_max_age),
         min(p.fetched_at), max(p.fetched_at)
  FROM public.package_registry p
  GROUP BY p.ecosystem
  ORDER BY p.ecosystem
$$;

COMMENT ON FUNCTION package_cache_stats(interval) IS 'Seed 002 cache_stats: per ecosystem, packages cached, fresh, expired, oldest and newest fetch';
