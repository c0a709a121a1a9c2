-- unless-extension: h3
-- requires-extension: earthdistance
-- Seed 002's geo helpers where h3 is absent (sql/singularity/022_geo_fallback.sql): agents near a
-- point, setting an agent's location, and clusters by region on a latitude/longitude grid
-- (in place of h3's hexagonal cells). All on cube + earthdistance with the GiST index
-- agents_location_earth_idx. Re-applied whenever this file changes: CREATE OR REPLACE only.

-- The agents within p_km kilometres of a point, nearest first (GiST index, then exact distance).
CREATE OR REPLACE FUNCTION public.agents_near(p_latitude double precision, p_longitude double precision, p_km double precision)
RETURNS TABLE (agent_id text, name text, latitude double precision, longitude double precision, distance_km double precision)
LANGUAGE sql STABLE
SET search_path = public, pg_catalog
AS $$
  SELECT a.id, a.name, a.latitude, a.longitude,
         earth_distance(geo_point(a.latitude, a.longitude), geo_point(p_latitude, p_longitude)) / 1000.0
  FROM agents a
  WHERE a.latitude IS NOT NULL
    AND geo_point(a.latitude, a.longitude) <@ earth_box(geo_point(p_latitude, p_longitude), p_km * 1000.0)
    AND earth_distance(geo_point(a.latitude, a.longitude), geo_point(p_latitude, p_longitude)) <= p_km * 1000.0
  ORDER BY 5, a.id
$$;

COMMENT ON FUNCTION public.agents_near(double precision, double precision, double precision) IS
  'Seed 002 find_nearby_agents without h3: agents within p_km km of (latitude, longitude), nearest first, with their distance in km (earthdistance, GiST index agents_location_earth_idx)';

-- Sets (or clears, with NULLs) an agent's location; false when there is no such agent.
CREATE OR REPLACE FUNCTION public.set_agent_location(p_agent_id text, p_latitude double precision, p_longitude double precision)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = public, pg_catalog
AS $$
BEGIN
  UPDATE agents SET latitude = p_latitude, longitude = p_longitude, h3_cell = NULL, updated_at = now()
  WHERE id = p_agent_id;
  RETURN FOUND;
END
$$;

COMMENT ON FUNCTION public.set_agent_location(text, double precision, double precision) IS
  'Seed 002 set_agent_location without h3: stores latitude/longitude (checked ranges, both or neither); h3_cell stays empty. False when the agent does not exist';

-- Agents grouped by region: cells of p_cell_degrees x p_cell_degrees on the latitude/longitude grid.
CREATE OR REPLACE FUNCTION public.cluster_agents_by_region(p_cell_degrees double precision DEFAULT 1.0)
RETURNS TABLE (region text, agent_count integer, center_latitude double precision, center_longitude double precision, agent_ids text[])
LANGUAGE sql STABLE
SET search_path = public, pg_catalog
AS $$
  SELECT format('grid:%s:%s:%s', p_cell_degrees, floor(a.latitude / p_cell_degrees)::bigint, floor(a.longitude / p_cell_degrees)::bigint),
         count(*)::integer,
         avg(a.latitude),
         avg(a.longitude),
         array_agg(a.id ORDER BY a.id)
  FROM agents a
  WHERE a.latitude IS NOT NULL AND p_cell_degrees > 0
  GROUP BY 1
  ORDER BY 2 DESC, 1
$$;

COMMENT ON FUNCTION public.cluster_agents_by_region(double precision) IS
  'Seed 002 cluster_agents_by_region without h3: agents per grid cell of p_cell_degrees (default 1 degree), with the cell''s agent count, centre and agent ids; region is grid:<size>:<lat cell>:<lon cell>';
