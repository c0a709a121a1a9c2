-- unless-extension: h3
-- requires-extension: earthdistance
-- Seed 002 clusters agents by location with h3, which Debian 12 lacks. Where h3 is absent, contrib's
-- cube + earthdistance answer "agents near here" with a GiST index on the agents' coordinates. The
-- extensions are the topology's (db init creates them where the admin may; on a managed server
-- earthdistance is a provider step, and this file waits for it).

-- earthdistance 1.1's ll_to_earth() resolves cube() and earth() through the caller's search_path,
-- which pg_restore empties while it rebuilds indexes: this wrapper pins it, so the index below
-- restores (and analyzes) under any search_path.
CREATE FUNCTION public.geo_point(p_latitude double precision, p_longitude double precision)
RETURNS public.earth
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = public, pg_catalog
AS 'SELECT public.ll_to_earth(p_latitude, p_longitude)';

COMMENT ON FUNCTION public.geo_point(double precision, double precision) IS
  'A point on the earth (earthdistance) from latitude/longitude in degrees, with a fixed search_path: the expression of the agents location index';

CREATE INDEX agents_location_earth_idx ON agents USING gist (public.geo_point(latitude, longitude))
  WHERE latitude IS NOT NULL;
