-- The dependency graph: populate from code chunks' declared dependencies (seed 001 "Graph
-- Populate", weekly Sun 07:00 and at startup) and PageRank (seed 001, daily 03:00).
-- Re-applied whenever this file changes: CREATE OR REPLACE only, no BEGIN/COMMIT.

-- Seed 001's runbook says `CALL populate_graph_dependencies();`, so that name is a procedure (below)
-- and the work, with its report, is the function populate_graph_dependencies_report(). PostgreSQL
-- cannot keep a function and a zero-argument-callable procedure of one name: SELECT of the
-- function becomes ambiguous. The function of that name from before is dropped here.
DROP FUNCTION IF EXISTS populate_graph_dependencies();

-- Syncs graph nodes and 'code_chunks' edges with the dependencies the code chunks declare.
CREATE OR REPLACE FUNCTION populate_graph_dependencies_report(
  OUT nodes_added integer, OUT edges_added integer, OUT edges_removed integer)
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('singularity.graph'));

  -- nodes: every chunk's module (module_name, else file_path) and every declared dependency;
  -- a dependency that is no chunk's module is 'external' until a chunk declares that module
  WITH modules AS (
    SELECT DISTINCT coalesce(c.module_name, c.file_path) AS node_key FROM public.code_chunks c
  ), deps AS (
    SELECT DISTINCT d.dep AS node_key
    FROM public.code_chunks c CROSS JOIN LATERAL unnest(c.dependencies) AS d(dep)
    WHERE d.dep IS NOT NULL AND d.dep <> ''
  ), wanted AS (
    SELECT m.node_key, 'module' AS kind FROM modules m
    UNION ALL
    SELECT d.node_key, 'external' FROM deps d WHERE NOT EXISTS (SELECT 1 FROM modules m WHERE m.node_key = d.node_key)
  ), upserted AS (
    INSERT INTO public.graph_nodes AS g (node_key, kind)
    SELECT w.node_key, w.kind FROM wanted w
    ON CONFLICT (node_key) DO UPDATE SET kind = 'module'
      WHERE g.kind = 'external' AND EXCLUDED.kind = 'module'
    RETURNING (xmax = 0) AS inserted
  )
  SELECT count(*) FILTER (WHERE u.inserted)::integer INTO nodes_added FROM upserted u;

  -- edges: exactly the declared (module -> dependency) pairs, for origin 'code_chunks'
  WITH wanted AS (
    SELECT DISTINCT s.id AS source_id, t.id AS target_id
    FROM public.code_chunks c
    CROSS JOIN LATERAL unnest(c.dependencies) AS d(dep)
    JOIN public.graph_nodes s ON s.node_key = coalesce(c.module_name, c.file_path)
    JOIN public.graph_nodes t ON t.node_key = d.dep
    WHERE s.id <> t.id
  ), removed AS (
    DELETE FROM public.graph_edges e
    WHERE e.origin = 'code_chunks' AND e.kind = 'depends_on'
      AND NOT EXISTS (SELECT 1 FROM wanted w WHERE w.source_id = e.source_id AND w.target_id = e.target_id)
    RETURNING 1
  ), added AS (
    INSERT INTO public.graph_edges (source_id, target_id, kind, origin)
    SELECT w.source_id, w.target_id, 'depends_on', 'code_chunks' FROM wanted w
    ON CONFLICT (source_id, target_id, kind) DO NOTHING
    RETURNING 1
  )
  SELECT (SELECT count(*) FROM added)::integer, (SELECT count(*) FROM removed)::integer
  INTO edges_added, edges_removed;
END
$$;

COMMENT ON FUNCTION populate_graph_dependencies_report() IS
  'Seed 001 graph populate (startup + weekly): graph_nodes for chunk modules and declared dependencies, depends_on edges (origin code_chunks) added/removed to match code_chunks.dependencies. Returns (nodes_added, edges_added, edges_removed); CALL populate_graph_dependencies() does the same';

-- Seed 001's `CALL populate_graph_dependencies();`: the graph populate as a procedure; CALL prints its report.
CREATE OR REPLACE PROCEDURE populate_graph_dependencies(
  INOUT nodes_added integer DEFAULT NULL, INOUT edges_added integer DEFAULT NULL, INOUT edges_removed integer DEFAULT NULL)
LANGUAGE plpgsql
AS $$
BEGIN
  SELECT r.nodes_added, r.edges_added, r.edges_removed
  INTO nodes_added, edges_added, edges_removed
  FROM public.populate_graph_dependencies_report() r;
END
$$;

COMMENT ON PROCEDURE populate_graph_dependencies(integer, integer, integer) IS
  'Seed 001 runbook form: CALL populate_graph_dependencies(); runs populate_graph_dependencies_report() and returns its row (nodes_added, edges_added, edges_removed); the arguments are outputs only';

-- PageRank of every graph node by power iteration; writes graph_nodes.pagerank.
CREATE OR REPLACE FUNCTION compute_pagerank(
  p_damping double precision DEFAULT 0.85,
  p_tolerance double precision DEFAULT 1e-10,
  p_max_iterations integer DEFAULT 1000,
  OUT nodes integer, OUT iterations integer, OUT converged boolean, OUT delta double precision)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
  v_ids bigint[];
  v_src integer[];
  v_dst integer[];
  v_share double precision[];
  v_dangling integer[];
  v_rank double precision[];
  v_next double precision[];
  v_dangling_mass double precision;
BEGIN
  IF p_damping IS NULL OR p_damping <= 0 OR p_damping >= 1 THEN
    RAISE EXCEPTION 'compute_pagerank: damping must be in (0, 1), got %', p_damping USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF p_tolerance IS NULL OR p_tolerance <= 0 OR p_max_iterations IS NULL OR p_max_iterations < 1 THEN
    RAISE EXCEPTION 'compute_pagerank: tolerance must be > 0 and max iterations >= 1' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext('singularity.graph'));

  SELECT array_agg(g.id ORDER BY g.id) INTO v_ids FROM public.graph_nodes g;
  nodes := coalesce(cardinality(v_ids), 0);
  iterations := 0;
  delta := 0;
  converged := true;
  IF nodes = 0 THEN
    RETURN;
  END IF;

  -- edges as (source index, target index, share of the source's rank): parallel edges of
  -- different kinds add up; shares are weights normalised by the source's total out-weight
  WITH idx AS (
    SELECT u.id, u.i::integer AS i FROM unnest(v_ids) WITH ORDINALITY AS u(id, i)
  ), e AS (
    SELECT s.i AS si, t.i AS ti, sum(ge.weight) AS w
    FROM public.graph_edges ge
    JOIN idx s ON s.id = ge.source_id
    JOIN idx t ON t.id = ge.target_id
    GROUP BY s.i, t.i
  ), o AS (
    SELECT e.si, sum(e.w) AS total FROM e GROUP BY e.si
  )
  SELECT array_agg(e.si ORDER BY e.si, e.ti), array_agg(e.ti ORDER BY e.si, e.ti),
         array_agg(e.w / o.total ORDER BY e.si, e.ti)
  INTO v_src, v_dst, v_share
  FROM e JOIN o ON o.si = e.si;

  -- dangling nodes (no out-edges) spread their rank evenly over all nodes
  SELECT array_agg(g.i) INTO v_dangling
  FROM generate_series(1, nodes) AS g(i)
  WHERE g.i <> ALL (coalesce(v_src, '{}'));

  v_rank := array_fill(1.0::double precision / nodes, ARRAY[nodes]);
  LOOP
    iterations := iterations + 1;
    SELECT coalesce(sum(v_rank[d]), 0) INTO v_dangling_mass FROM unnest(v_dangling) AS d;
    SELECT array_agg((1 - p_damping) / nodes + p_damping * (coalesce(f.inflow, 0) + v_dangling_mass / nodes) ORDER BY g.i)
    INTO v_next
    FROM generate_series(1, nodes) AS g(i)
    LEFT JOIN (
      SELECT x.t, sum(v_rank[x.s] * x.share) AS inflow
      FROM unnest(v_src, v_dst, v_share) AS x(s, t, share)
      GROUP BY x.t
    ) f ON f.t = g.i;
    SELECT sum(abs(a.n - a.r)) INTO delta FROM unnest(v_next, v_rank) AS a(n, r);
    v_rank := v_next;
    EXIT WHEN delta < p_tolerance OR iterations >= p_max_iterations;
  END LOOP;
  converged := delta < p_tolerance;

  UPDATE public.graph_nodes g
  SET pagerank = r.rank, pagerank_computed_at = now()
  FROM unnest(v_ids, v_rank) AS r(id, rank)
  WHERE g.id = r.id;
END
$$;

COMMENT ON FUNCTION compute_pagerank(double precision, double precision, integer) IS
  'Seed 001, daily 03:00: PageRank of graph_nodes over graph_edges (weights, dangling nodes spread evenly) by power iteration, damping 0.85, until the L1 change < tolerance (1e-10) or max iterations; writes graph_nodes.pagerank (sums to 1). Returns (nodes, iterations, converged, delta)';
