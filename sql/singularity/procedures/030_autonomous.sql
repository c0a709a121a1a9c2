-- The five autonomous procedures of seed 000 ("PostgreSQL Autonomous Worker Architecture").
--
-- pg_cron calls them (learn every 5 min, sync every 10 min, knowledge hourly, assign every 2 min);
-- the session trigger fires on writes to agent_sessions. Messages go to pgmq queues created by
-- db init: centralcloud-new-patterns, agent-sessions, agent-knowledge-updates.
-- Concurrency: two callers at once never learn a result twice, never assign a task twice and
-- never put an agent over capacity (row locks with SKIP LOCKED, see each function).
-- Re-applied whenever this file changes: CREATE OR REPLACE / DROP TRIGGER IF EXISTS, no BEGIN/COMMIT.

-- Learns up to 100 unlearned analysis results: one learned pattern each, queued for CentralCloud.
CREATE OR REPLACE FUNCTION learn_patterns_from_analysis(OUT patterns_learned integer, OUT patterns_queued integer)
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
  -- FOR UPDATE SKIP LOCKED: a concurrent call takes the next 100 instead of the same ones; a
  -- result learned by a call that committed meanwhile fails the re-checked "NOT learned".
  -- learned_patterns.analysis_result_id is UNIQUE as a last line of defence.
  WITH picked AS (
    SELECT r.id
    FROM public.analysis_results r
    WHERE NOT r.learned
    ORDER BY r.created_at, r.id
    LIMIT 100
    FOR UPDATE SKIP LOCKED
  ), marked AS (
    UPDATE public.analysis_results r
    SET learned = true, learned_at = now()
    FROM picked p
    WHERE r.id = p.id
    RETURNING r.id, r.agent_id, r.pattern_type, r.pattern, r.code_snippet, r.embedding, r.confidence
  ), inserted AS (
    INSERT INTO public.learned_patterns
      (analysis_result_id, agent_id, pattern_type, pattern, code_snippet, embedding, confidence, learned_at)
    SELECT m.id, m.agent_id, m.pattern_type, m.pattern, m.code_snippet, m.embedding, m.confidence, now()
    FROM marked m
    ON CONFLICT (analysis_result_id) DO NOTHING
    RETURNING id, analysis_result_id, agent_id, pattern_type, pattern, confidence, learned_at, source
  ), queued AS (
    SELECT q.msg_id
    FROM inserted i
    CROSS JOIN LATERAL pgmq.send('centralcloud-new-patterns', jsonb_build_object(
      'pattern_id', i.id,
      'analysis_result_id', i.analysis_result_id,
      'agent_id', i.agent_id,
      'pattern_type', i.pattern_type,
      'pattern', i.pattern,
      'confidence', i.confidence,
      'learned_at', i.learned_at,
      'source', i.source
    )) AS q(msg_id)
  )
  SELECT (SELECT count(*) FROM inserted)::integer, (SELECT count(*) FROM queued)::integer
  INTO patterns_learned, patterns_queued;
END
$$;

COMMENT ON FUNCTION learn_patterns_from_analysis() IS
  'Seed 000, every 5 min: up to 100 unlearned analysis_results -> learned_patterns + pgmq centralcloud-new-patterns, marked learned; exactly once under concurrency. Returns (patterns_learned, patterns_queued)';

-- Trigger: encrypts an agent session's state, queues the session to agent-sessions, stamps last_synced_at.
CREATE OR REPLACE FUNCTION persist_agent_session()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
DECLARE
  v_state jsonb;
BEGIN
  IF NEW.id IS NULL THEN
    NEW.id := public.ulid_generate();
  END IF;
  IF NEW.state IS NOT NULL THEN
    NEW.state_encrypted := singularity_private.encrypt(NEW.state::text);
    NEW.state := NULL;
  END IF;
  IF NEW.status = 'ended' AND NEW.ended_at IS NULL THEN
    NEW.ended_at := now();
  END IF;
  NEW.last_synced_at := now();
  NEW.updated_at := now();
  IF NEW.state_encrypted IS NOT NULL THEN
    v_state := jsonb_build_object(
      'encrypted', true,
      'algorithm', 'pgp-sym-aes256',
      'key_id', ('x' || encode(substring(NEW.state_encrypted FROM 1 FOR 4), 'hex'))::bit(32)::integer,
      'ciphertext', translate(encode(NEW.state_encrypted, 'base64'), E'\n', '')
    );
  END IF;
  PERFORM pgmq.send('agent-sessions', jsonb_build_object(
    'agent_id', NEW.agent_id,
    'session_id', NEW.id,
    'status', NEW.status,
    'session_state', v_state,
    'confidence', NEW.confidence,
    'synced_at', NEW.last_synced_at
  ));
  RETURN NEW;
END
$$;

COMMENT ON FUNCTION persist_agent_session() IS
  'Seed 000 trigger on agent_sessions: encrypts state (pgcrypto, server key) into state_encrypted, queues the session (ciphertext only) to agent-sessions, sets last_synced_at';

DROP TRIGGER IF EXISTS agent_sessions_persist_insert ON agent_sessions;
CREATE TRIGGER agent_sessions_persist_insert
  BEFORE INSERT ON agent_sessions
  FOR EACH ROW EXECUTE FUNCTION persist_agent_session();

DROP TRIGGER IF EXISTS agent_sessions_persist_update ON agent_sessions;
CREATE TRIGGER agent_sessions_persist_update
  BEFORE UPDATE OF state, confidence, status ON agent_sessions
  FOR EACH ROW
  WHEN (NEW.state IS NOT NULL
        OR NEW.confidence IS DISTINCT FROM OLD.confidence
        OR NEW.status IS DISTINCT FROM OLD.status)
  EXECUTE FUNCTION persist_agent_session();

-- Puts each agent's last-24h learned patterns and their average confidence into agents.
CREATE OR REPLACE FUNCTION update_agent_knowledge(OUT agents_updated integer, OUT total_patterns integer)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
  v_since timestamptz := now() - interval '24 hours';
BEGIN
  WITH knowledge AS (
    SELECT lp.agent_id,
           jsonb_agg(jsonb_build_object(
             'pattern_id', lp.id,
             'pattern_type', lp.pattern_type,
             'pattern', lp.pattern,
             'confidence', lp.confidence,
             'learned_at', lp.learned_at
           ) ORDER BY lp.learned_at DESC, lp.id DESC) AS patterns,
           avg(lp.confidence) AS confidence,
           count(*) AS pattern_count
    FROM public.learned_patterns lp
    WHERE lp.agent_id IS NOT NULL AND lp.learned_at >= v_since
    GROUP BY lp.agent_id
  ), updated AS (
    UPDATE public.agents a
    SET known_patterns = k.patterns,
        pattern_confidence = k.confidence,
        knowledge_updated_at = now(),
        updated_at = now()
    FROM knowledge k
    WHERE a.id = k.agent_id
    RETURNING k.pattern_count
  )
  SELECT count(*)::integer, coalesce(sum(u.pattern_count), 0)::integer
  INTO agents_updated, total_patterns
  FROM updated u;

  -- agents that learned nothing in the window forget what they knew (not counted as updated)
  UPDATE public.agents a
  SET known_patterns = '[]', pattern_confidence = NULL, knowledge_updated_at = now(), updated_at = now()
  WHERE a.known_patterns <> '[]'::jsonb
    AND NOT EXISTS (SELECT 1 FROM public.learned_patterns lp WHERE lp.agent_id = a.id AND lp.learned_at >= v_since);

  PERFORM pgmq.send('agent-knowledge-updates', jsonb_build_object(
    'agents_updated', agents_updated,
    'total_patterns', total_patterns,
    'updated_at', now()
  ));
END
$$;

COMMENT ON FUNCTION update_agent_knowledge() IS
  'Seed 000, hourly: per agent, last-24h learned patterns -> agents.known_patterns (jsonb) and their average confidence -> pattern_confidence; summary to pgmq agent-knowledge-updates. Returns (agents_updated, total_patterns)';

-- Logs a CentralCloud sync batch: a ULID batch id and the patterns waiting in the queue.
CREATE OR REPLACE FUNCTION sync_learning_to_centralcloud(OUT batch_id text, OUT pattern_count integer)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
  c_queue constant text := 'centralcloud-new-patterns';
  v_table regclass := to_regclass(format('%I.%I', 'pgmq', 'q_' || c_queue));
  v_batch text;
  v_count integer;
BEGIN
  IF v_table IS NULL THEN
    RAISE EXCEPTION 'pgmq queue % does not exist', c_queue
      USING HINT = 'db init creates it: singularity db init';
  END IF;
  EXECUTE format('SELECT count(*) FROM %s', v_table) INTO v_count;
  v_batch := public.ulid_generate();
  INSERT INTO public.sync_log (batch_id, target, queue_name, pattern_count, status)
  VALUES (v_batch, 'centralcloud', c_queue, v_count, 'queued');
  batch_id := v_batch;
  pattern_count := v_count;
END
$$;

COMMENT ON FUNCTION sync_learning_to_centralcloud() IS
  'Seed 000, every 10 min: new ULID batch id, count of patterns pending in pgmq centralcloud-new-patterns, one sync_log row. Returns (batch_id, pattern_count)';

-- Assigns pending tasks to agents with free capacity: at most 10 per agent per call.
CREATE OR REPLACE FUNCTION assign_pending_tasks(OUT tasks_assigned integer, OUT agents_assigned integer)
LANGUAGE plpgsql VOLATILE
-- the slot estimate (generate_series per agent) inflates costs past the JIT threshold; compiling
-- the plan would take most of the call's time
SET jit = off
AS $$
DECLARE
  v_agents text[];
BEGIN
  tasks_assigned := 0;
  agents_assigned := 0;

  -- 1. Lock the assignable agents. A concurrent call skips them (and works with the others, or
  --    none): an agent's load is only ever changed by the one call holding its row lock.
  SELECT array_agg(l.id ORDER BY l.id) INTO v_agents
  FROM (
    SELECT a.id
    FROM public.agents a
    WHERE a.status IN ('active', 'idle') AND a.capacity > 0
    ORDER BY a.id
    FOR NO KEY UPDATE SKIP LOCKED
  ) l;
  IF v_agents IS NULL THEN
    RETURN;
  END IF;

  -- 2. A new statement, so a new snapshot (READ COMMITTED): every assignment committed by the
  --    previous holder of these locks is visible in the load count. Free slots are dealt round
  --    robin (every agent's first slot, then every agent's second ...) to the pending tasks in
  --    priority order; the tasks are locked with SKIP LOCKED and re-checked as still pending.
  WITH load AS (
    SELECT a.id,
           LEAST(10, a.capacity - coalesce(n.active, 0)) AS free
    FROM public.agents a
    LEFT JOIN (
      SELECT t.assigned_agent_id, count(*) AS active
      FROM public.tasks t
      WHERE t.status IN ('assigned', 'running') AND t.assigned_agent_id = ANY (v_agents)
      GROUP BY t.assigned_agent_id
    ) n ON n.assigned_agent_id = a.id
    WHERE a.id = ANY (v_agents)
  ), slots AS (
    SELECT l.id AS agent_id, row_number() OVER (ORDER BY g.n, l.id) AS slot
    FROM load l
    CROSS JOIN LATERAL generate_series(1, l.free) AS g(n)
    WHERE l.free > 0
  ), picked AS (
    SELECT p.id, row_number() OVER (ORDER BY p.priority DESC, p.created_at, p.id) AS slot
    FROM (
      SELECT t.id, t.priority, t.created_at
      FROM public.tasks t
      WHERE t.status = 'pending'
      ORDER BY t.priority DESC, t.created_at, t.id
      LIMIT (SELECT count(*) FROM slots)
      FOR UPDATE SKIP LOCKED
    ) p
  ), assigned AS (
    UPDATE public.tasks t
    SET status = 'assigned', assigned_agent_id = s.agent_id, assigned_at = now(), updated_at = now()
    FROM picked p
    JOIN slots s ON s.slot = p.slot
    WHERE t.id = p.id
    RETURNING t.assigned_agent_id
  ), touched AS (
    -- also makes a REPEATABLE READ caller that raced us fail instead of miscounting
    UPDATE public.agents a
    SET last_assigned_at = now()
    WHERE a.id IN (SELECT DISTINCT x.assigned_agent_id FROM assigned x)
    RETURNING a.id
  )
  SELECT (SELECT count(*) FROM assigned)::integer, (SELECT count(*) FROM touched)::integer
  INTO tasks_assigned, agents_assigned;
END
$$;

COMMENT ON FUNCTION assign_pending_tasks() IS
  'Seed 000, every 2 min: pending tasks (priority, then age) to active/idle agents with free capacity, at most 10 per agent; never twice, never over capacity under concurrency. Returns (tasks_assigned, agents_assigned)';
