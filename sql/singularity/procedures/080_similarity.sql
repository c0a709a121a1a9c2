-- Pattern similarity search and duplicate detection over real[] embeddings in plain SQL (seed
-- 002's PatternSimilaritySearch; lantern's role). Exact L2 distance, sequential scan: right for
-- thousands of patterns, not millions. lantern / pgvector are not used even where installed
-- (the columns are real[]); singularity_feature_implementations() reports it.
-- Similarity score = 1 - distance / 2, clamped to [0, 1] (for unit vectors L2 distance is in
-- [0, 2]), as in seed 002: distance 0.15 -> similarity 0.925.
-- Re-applied whenever this file changes: CREATE OR REPLACE only, no BEGIN/COMMIT.

-- Euclidean (L2) distance of two vectors; NULL when their dimensions differ.
CREATE OR REPLACE FUNCTION embedding_l2_distance(p_a real[], p_b real[])
RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
  SELECT CASE WHEN cardinality(p_a) = cardinality(p_b) AND cardinality(p_a) > 0 THEN
    (SELECT sqrt(sum((x::double precision - y::double precision) ^ 2)) FROM unnest(p_a, p_b) AS v(x, y))
  END
$$;

COMMENT ON FUNCTION embedding_l2_distance(real[], real[]) IS 'L2 distance of two real[] vectors; NULL if their lengths differ or are 0';

-- Similarity score in [0, 1] from an L2 distance.
CREATE OR REPLACE FUNCTION embedding_similarity(p_distance double precision)
RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT greatest(0, least(1, 1 - p_distance / 2)) $$;

COMMENT ON FUNCTION embedding_similarity(double precision) IS 'Similarity 1 - distance/2 clamped to [0, 1] (seed 002 similarity_score)';

-- The learned patterns nearest to a query embedding (optionally of one agent, within a distance).
CREATE OR REPLACE FUNCTION search_similar_patterns(
  p_query real[],
  p_limit integer DEFAULT 5,
  p_max_distance double precision DEFAULT NULL,
  p_agent_id text DEFAULT NULL)
RETURNS TABLE (pattern_id bigint, agent_id text, pattern_type text, code_snippet text,
               distance double precision, similarity_score double precision)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  SELECT n.id, n.agent_id, n.pattern_type, n.code_snippet, n.distance, embedding_similarity(n.distance)
  FROM (
    SELECT lp.id, lp.agent_id, lp.pattern_type, lp.code_snippet, embedding_l2_distance(lp.embedding, p_query) AS distance
    FROM public.learned_patterns lp
    WHERE lp.embedding IS NOT NULL
      AND (p_agent_id IS NULL OR lp.agent_id = p_agent_id)
  ) n
  WHERE n.distance IS NOT NULL
    AND (p_max_distance IS NULL OR n.distance <= p_max_distance)
  ORDER BY n.distance, n.id
  LIMIT greatest(coalesce(p_limit, 5), 0)
$$;

COMMENT ON FUNCTION search_similar_patterns(real[], integer, double precision, text) IS
  'Seed 002 search_patterns / search_agent_patterns: nearest learned patterns by L2 distance (exact scan), optional max distance and agent';

-- The nearest neighbours of one learned pattern (itself excluded).
CREATE OR REPLACE FUNCTION pattern_neighbors(p_pattern_id bigint, p_limit integer DEFAULT 5)
RETURNS TABLE (pattern_id bigint, agent_id text, pattern_type text, code_snippet text,
               distance double precision, similarity_score double precision)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  SELECT s.*
  FROM public.learned_patterns self
  CROSS JOIN LATERAL search_similar_patterns(self.embedding, greatest(coalesce(p_limit, 5), 0) + 1) s
  WHERE self.id = p_pattern_id AND s.pattern_id <> self.id
  ORDER BY s.distance, s.pattern_id
  LIMIT greatest(coalesce(p_limit, 5), 0)
$$;

COMMENT ON FUNCTION pattern_neighbors(bigint, integer) IS 'Seed 002 get_pattern_neighbors: nearest learned patterns to a given one, itself excluded';

-- Pairs of learned patterns at least p_min_similarity alike; the newer one is the duplicate.
CREATE OR REPLACE FUNCTION find_duplicate_patterns(p_min_similarity double precision DEFAULT 0.95, p_limit integer DEFAULT 1000)
RETURNS TABLE (pattern_id bigint, duplicate_of bigint, distance double precision, similarity_score double precision)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  SELECT d.newer, d.older, d.distance, embedding_similarity(d.distance)
  FROM (
    SELECT b.id AS newer, a.id AS older, embedding_l2_distance(a.embedding, b.embedding) AS distance
    FROM public.learned_patterns a
    JOIN public.learned_patterns b ON b.id > a.id
    WHERE a.embedding IS NOT NULL AND b.embedding IS NOT NULL
      AND cardinality(a.embedding) = cardinality(b.embedding)
  ) d
  WHERE d.distance IS NOT NULL AND embedding_similarity(d.distance) >= p_min_similarity
  ORDER BY d.distance, d.newer, d.older
  LIMIT greatest(coalesce(p_limit, 1000), 0)
$$;

COMMENT ON FUNCTION find_duplicate_patterns(double precision, integer) IS
  'Seed 002 find_duplicate_patterns: pairs of learned patterns with similarity >= threshold (default 0.95), newer -> older; O(n^2) exact scan';

-- The code chunks whose embeddings are nearest to a query embedding.
CREATE OR REPLACE FUNCTION search_similar_code(p_query real[], p_limit integer DEFAULT 10)
RETURNS TABLE (chunk_id bigint, file_path text, chunk_index integer, distance double precision, similarity_score double precision)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  SELECT n.chunk_id, c.file_path, c.chunk_index, n.distance, embedding_similarity(n.distance)
  FROM (
    SELECT e.chunk_id, embedding_l2_distance(e.embedding, p_query) AS distance
    FROM public.code_embeddings e
  ) n
  JOIN public.code_chunks c ON c.id = n.chunk_id
  WHERE n.distance IS NOT NULL
  ORDER BY n.distance, n.chunk_id
  LIMIT greatest(coalesce(p_limit, 10), 0)
$$;

COMMENT ON FUNCTION search_similar_code(real[], integer) IS 'Nearest code chunks to a query embedding by L2 distance (exact scan of code_embeddings)';
