-- Dead letters and redrive of pgmq queues: poison messages (read at least max_reads times) move to
-- <queue>_dlq, and messages move back from a DLQ or an archive to a live queue.
-- Works with the real pgmq extension and the bundled engine alike: queue <name> is pgmq.q_<lower(name)>,
-- its archive pgmq.a_<lower(name)>, both with the pgmq 1.5 columns (headers included).
-- Re-applied whenever this file changes: CREATE OR REPLACE only, no BEGIN/COMMIT.

-- Creates <queue>_dlq when it is missing, then grants it every privilege its queue has (copied from the
-- catalog's ACLs of the queue table, archive and msg_id sequence); returns the DLQ's name.
CREATE OR REPLACE FUNCTION public.singularity_ensure_dead_letter_queue(queue_name text)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_dlq text := queue_name || '_dlq';
  v_pair record;
  v_acl record;
BEGIN
  IF to_regclass(format('pgmq.%I', 'q_' || lower(queue_name))) IS NULL THEN
    RAISE EXCEPTION 'queue % does not exist', queue_name USING ERRCODE = 'undefined_table';
  END IF;
  IF octet_length(v_dlq) > 47 THEN
    RAISE EXCEPTION 'queue name % is too long for a dead-letter queue: % would exceed 47 characters', queue_name, v_dlq
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF to_regclass(format('pgmq.%I', 'q_' || lower(v_dlq))) IS NULL THEN
    PERFORM pgmq."create"(v_dlq);
  END IF;
  -- Same grants as its queue: whoever may read/write the queue may read/write its DLQ. Read from
  -- the catalog, so it follows however the estate grants its queues.
  FOR v_pair IN
    SELECT format('pgmq.%I', 'q_' || lower(queue_name))::regclass AS src, format('pgmq.%I', 'q_' || lower(v_dlq))::regclass AS dst, 'TABLE' AS kind
    UNION ALL
    SELECT format('pgmq.%I', 'a_' || lower(queue_name))::regclass, format('pgmq.%I', 'a_' || lower(v_dlq))::regclass, 'TABLE'
     WHERE to_regclass(format('pgmq.%I', 'a_' || lower(queue_name))) IS NOT NULL
    UNION ALL
    SELECT pg_get_serial_sequence(format('pgmq.%I', 'q_' || lower(queue_name)), 'msg_id')::regclass,
           pg_get_serial_sequence(format('pgmq.%I', 'q_' || lower(v_dlq)), 'msg_id')::regclass, 'SEQUENCE'
     WHERE pg_get_serial_sequence(format('pgmq.%I', 'q_' || lower(queue_name)), 'msg_id') IS NOT NULL
  LOOP
    FOR v_acl IN
      SELECT a.grantee, a.privilege_type, a.is_grantable
        FROM pg_class c, aclexplode(c.relacl) a
       WHERE c.oid = v_pair.src AND a.grantee <> c.relowner
    LOOP
      EXECUTE format('GRANT %s ON %s %s TO %s%s', v_acl.privilege_type, v_pair.kind, v_pair.dst,
                     CASE WHEN v_acl.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(v_acl.grantee)) END,
                     CASE WHEN v_acl.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
  END LOOP;
  RETURN v_dlq;
END
$$;

COMMENT ON FUNCTION public.singularity_ensure_dead_letter_queue(text) IS
  'Creates <queue>_dlq when missing and copies the privileges of the queue (table, archive, sequence ACLs) to it; returns the DLQ name';

-- Moves the poison messages of a queue (read_ct >= max_reads, not currently leased by a consumer) to
-- <queue>_dlq in one statement; the DLQ is created on first use. Returns the DLQ and how many moved.
CREATE OR REPLACE FUNCTION public.singularity_dead_letter(queue_name text, max_reads integer, max_messages integer DEFAULT NULL)
RETURNS TABLE (dead_letter_queue text, moved bigint)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_qtable text := 'q_' || lower(queue_name);
  v_dlq text := queue_name || '_dlq';
  v_any boolean;
  v_moved bigint := 0;
BEGIN
  IF max_reads IS NULL OR max_reads < 1 THEN
    RAISE EXCEPTION 'singularity_dead_letter: max_reads must be at least 1, got %', max_reads USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF to_regclass(format('pgmq.%I', v_qtable)) IS NULL THEN
    RAISE EXCEPTION 'queue % does not exist', queue_name USING ERRCODE = 'undefined_table';
  END IF;
  EXECUTE format('SELECT EXISTS (SELECT 1 FROM pgmq.%I WHERE read_ct >= $1 AND vt <= clock_timestamp())', v_qtable)
    USING max_reads INTO v_any;
  IF v_any THEN
    v_dlq := public.singularity_ensure_dead_letter_queue(queue_name);
    -- Readers lock the rows they read (FOR UPDATE SKIP LOCKED) and push vt into the future: a
    -- message being read now is skipped here (locked) and a leased one is not visible, so a message
    -- is either left to its consumer or moved, never both. Delete and insert are one statement.
    EXECUTE format(
      $sql$
      WITH picked AS (
        SELECT msg_id FROM pgmq.%1$I
         WHERE read_ct >= $1 AND vt <= clock_timestamp()
         ORDER BY msg_id
         LIMIT $2
           FOR UPDATE SKIP LOCKED
      ), moved AS (
        DELETE FROM pgmq.%1$I q USING picked WHERE q.msg_id = picked.msg_id
        RETURNING q.msg_id, q.read_ct, q.enqueued_at, q.message, q.headers
      )
      INSERT INTO pgmq.%2$I (vt, message, headers)
      SELECT clock_timestamp(), m.message,
             coalesce(m.headers, '{}'::jsonb) || jsonb_build_object('dead_letter', jsonb_build_object(
               'queue', $3::text, 'msg_id', m.msg_id, 'read_ct', m.read_ct, 'enqueued_at', m.enqueued_at,
               'max_reads', $1, 'dead_lettered_at', clock_timestamp()))
        FROM moved m
       ORDER BY m.msg_id
      $sql$,
      v_qtable, 'q_' || lower(v_dlq))
    USING max_reads, max_messages, queue_name;
    GET DIAGNOSTICS v_moved = ROW_COUNT;
  END IF;
  RETURN QUERY SELECT v_dlq, v_moved;
END
$$;

COMMENT ON FUNCTION public.singularity_dead_letter(text, integer, integer) IS
  'Moves messages read at least max_reads times (and not leased now) from pgmq.q_<queue> to <queue>_dlq in one statement, keeping the original msg_id, read_ct and enqueued_at in headers.dead_letter; creates the DLQ on first use';

-- Moves one batch of messages from a queue (a DLQ) or a queue's archive to another queue, oldest
-- msg_id first, optionally only those matching a JSON path on message or headers; returns how many.
-- Delete and insert are one statement, so each message is in exactly one place whenever a batch commits.
CREATE OR REPLACE FUNCTION public.singularity_redrive(from_queue text, to_queue text, from_archive boolean,
                                                      match jsonpath, batch_size integer)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_source text := CASE WHEN from_archive THEN 'a_' ELSE 'q_' END || lower(from_queue);
  v_target text := 'q_' || lower(to_queue);
  v_moved bigint;
BEGIN
  IF batch_size IS NULL OR batch_size < 1 THEN
    RAISE EXCEPTION 'singularity_redrive: batch_size must be at least 1, got %', batch_size USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF to_regclass(format('pgmq.%I', v_source)) IS NULL THEN
    RAISE EXCEPTION 'queue % does not exist', from_queue USING ERRCODE = 'undefined_table';
  END IF;
  IF to_regclass(format('pgmq.%I', v_target)) IS NULL THEN
    RAISE EXCEPTION 'queue % does not exist', to_queue USING ERRCODE = 'undefined_table';
  END IF;
  IF v_source = v_target THEN
    RAISE EXCEPTION 'singularity_redrive: a queue cannot be redriven into itself' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  EXECUTE format(
    $sql$
    WITH picked AS (
      SELECT msg_id FROM pgmq.%1$I s
       WHERE $1 IS NULL OR jsonb_path_exists(s.message, $1) OR jsonb_path_exists(coalesce(s.headers, '{}'::jsonb), $1)
       ORDER BY msg_id
       LIMIT $2
         FOR UPDATE SKIP LOCKED
    ), moved AS (
      DELETE FROM pgmq.%1$I s USING picked WHERE s.msg_id = picked.msg_id
      RETURNING s.msg_id, s.read_ct, s.enqueued_at, s.message, s.headers
    )
    INSERT INTO pgmq.%2$I (vt, message, headers)
    SELECT clock_timestamp(), m.message,
           coalesce(m.headers, '{}'::jsonb) || jsonb_build_object('redrive', jsonb_build_object(
             'from', $3::text, 'source', $4::text, 'msg_id', m.msg_id, 'read_ct', m.read_ct,
             'enqueued_at', m.enqueued_at, 'redriven_at', clock_timestamp(),
             'count', coalesce((m.headers #>> '{redrive,count}')::int, 0) + 1))
      FROM moved m
     ORDER BY m.msg_id
    $sql$,
    v_source, v_target)
  USING match, batch_size, from_queue, CASE WHEN from_archive THEN 'archive' ELSE 'queue' END;
  GET DIAGNOSTICS v_moved = ROW_COUNT;
  RETURN v_moved;
END
$$;

COMMENT ON FUNCTION public.singularity_redrive(text, text, boolean, jsonpath, integer) IS
  'Moves up to batch_size messages (oldest first, optionally matching a JSON path on message or headers) from pgmq.q_<from> or its archive to pgmq.q_<to>, recording headers.redrive; one statement per batch';
