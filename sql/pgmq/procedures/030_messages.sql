-- Bundled queue engine: messages (send, send_batch, read, read_with_poll, pop, archive, delete, set_vt).
-- unless-extension: pgmq
-- Re-applied whenever this file changes: CREATE OR REPLACE only, no BEGIN/COMMIT.
-- Every dynamic identifier goes through format('%I'), every value through EXECUTE ... USING.
-- The overloads are thin SQL wrappers around one plpgsql implementation each, defined first.

------------------------------------------------------------------------------------------------
-- send
------------------------------------------------------------------------------------------------

-- Sends one message with headers, visible from the given time (now() when NULL); returns its msg_id.
CREATE OR REPLACE FUNCTION pgmq.send(queue_name text, msg jsonb, headers jsonb, delay timestamptz)
RETURNS SETOF bigint
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $fn$
BEGIN
  RETURN QUERY EXECUTE format(
    'INSERT INTO pgmq.%I (vt, message, headers) VALUES ($1, $2, $3) RETURNING msg_id',
    pgmq.format_table_name(queue_name, 'q'))
  USING coalesce(delay, now()), msg, headers;
END;
$fn$;

COMMENT ON FUNCTION pgmq.send(text, jsonb, jsonb, timestamptz) IS
  'Sends one message with headers, invisible until the given time; returns its msg_id';

-- Sends one message, visible at once; returns its msg_id.
CREATE OR REPLACE FUNCTION pgmq.send(queue_name text, msg jsonb)
RETURNS SETOF bigint
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $fn$
BEGIN
  RETURN QUERY SELECT * FROM pgmq.send(queue_name, msg, NULL::jsonb, now());
END;
$fn$;

COMMENT ON FUNCTION pgmq.send(text, jsonb) IS
  'Sends one message, visible at once; returns its msg_id';

-- Sends one message with headers, visible at once; returns its msg_id.
CREATE OR REPLACE FUNCTION pgmq.send(queue_name text, msg jsonb, headers jsonb)
RETURNS SETOF bigint
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $fn$
BEGIN
  RETURN QUERY SELECT * FROM pgmq.send(queue_name, msg, headers, now());
END;
$fn$;

COMMENT ON FUNCTION pgmq.send(text, jsonb, jsonb) IS
  'Sends one message with headers, visible at once; returns its msg_id';

-- Sends one message, invisible for delay seconds; returns its msg_id.
CREATE OR REPLACE FUNCTION pgmq.send(queue_name text, msg jsonb, delay integer)
RETURNS SETOF bigint
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $fn$
BEGIN
  RETURN QUERY SELECT * FROM pgmq.send(queue_name, msg, NULL::jsonb, now() + make_interval(secs => coalesce(delay, 0)));
END;
$fn$;

COMMENT ON FUNCTION pgmq.send(text, jsonb, integer) IS
  'Sends one message, invisible for delay seconds (vt = now() + delay); returns its msg_id';

-- Sends one message, invisible until the given time; returns its msg_id.
CREATE OR REPLACE FUNCTION pgmq.send(queue_name text, msg jsonb, delay timestamptz)
RETURNS SETOF bigint
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $fn$
BEGIN
  RETURN QUERY SELECT * FROM pgmq.send(queue_name, msg, NULL::jsonb, delay);
END;
$fn$;

COMMENT ON FUNCTION pgmq.send(text, jsonb, timestamptz) IS
  'Sends one message, invisible until the given time (vt = delay); returns its msg_id';

-- Sends one message with headers, invisible for delay seconds; returns its msg_id.
CREATE OR REPLACE FUNCTION pgmq.send(queue_name text, msg jsonb, headers jsonb, delay integer)
RETURNS SETOF bigint
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $fn$
BEGIN
  RETURN QUERY SELECT * FROM pgmq.send(queue_name, msg, headers, now() + make_interval(secs => coalesce(delay, 0)));
END;
$fn$;

COMMENT ON FUNCTION pgmq.send(text, jsonb, jsonb, integer) IS
  'Sends one message with headers, invisible for delay seconds (vt = now() + delay); returns its msg_id';

------------------------------------------------------------------------------------------------
-- send_batch
------------------------------------------------------------------------------------------------

-- Sends several messages (headers[i] goes with msgs[i]), visible from the given time; ids in input order.
CREATE OR REPLACE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay timestamptz)
RETURNS SETOF bigint
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $fn$
BEGIN
  IF headers IS NOT NULL
     AND coalesce(array_length(headers, 1), 0) <> coalesce(array_length(msgs, 1), 0) THEN
    RAISE EXCEPTION 'send_batch: headers must have one element per message (% messages, % headers)',
      coalesce(array_length(msgs, 1), 0), coalesce(array_length(headers, 1), 0)
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  -- Rows are inserted, and so numbered by the identity, in the order of the array.
  RETURN QUERY EXECUTE format(
    $sql$
    INSERT INTO pgmq.%I (vt, message, headers)
    SELECT $1, $2[i], $3[i - array_lower($2, 1) + coalesce(array_lower($3, 1), 1)]
    FROM generate_subscripts($2, 1) AS i
    ORDER BY i
    RETURNING msg_id
    $sql$,
    pgmq.format_table_name(queue_name, 'q'))
  USING coalesce(delay, now()), msgs, headers;
END;
$fn$;

COMMENT ON FUNCTION pgmq.send_batch(text, jsonb[], jsonb[], timestamptz) IS
  'Sends one message per element of msgs (with the matching headers), invisible until the given time; returns the msg_ids in input order';

-- Sends several messages, visible at once; ids in input order.
CREATE OR REPLACE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[])
RETURNS SETOF bigint
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $fn$
BEGIN
  RETURN QUERY SELECT * FROM pgmq.send_batch(queue_name, msgs, NULL::jsonb[], now());
END;
$fn$;

COMMENT ON FUNCTION pgmq.send_batch(text, jsonb[]) IS
  'Sends one message per element of msgs, visible at once; returns the msg_ids in input order';

-- Sends several messages with headers, visible at once; ids in input order.
CREATE OR REPLACE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[])
RETURNS SETOF bigint
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $fn$
BEGIN
  RETURN QUERY SELECT * FROM pgmq.send_batch(queue_name, msgs, headers, now());
END;
$fn$;

COMMENT ON FUNCTION pgmq.send_batch(text, jsonb[], jsonb[]) IS
  'Sends one message per element of msgs with the matching headers, visible at once; returns the msg_ids in input order';

-- Sends several messages, invisible for delay seconds; ids in input order.
CREATE OR REPLACE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], delay integer)
RETURNS SETOF bigint
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $fn$
BEGIN
  RETURN QUERY SELECT * FROM pgmq.send_batch(queue_name, msgs, NULL::jsonb[], now() + make_interval(secs => coalesce(delay, 0)));
END;
$fn$;

COMMENT ON FUNCTION pgmq.send_batch(text, jsonb[], integer) IS
  'Sends one message per element of msgs, invisible for delay seconds; returns the msg_ids in input order';

-- Sends several messages, invisible until the given time; ids in input order.
CREATE OR REPLACE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], delay timestamptz)
RETURNS SETOF bigint
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $fn$
BEGIN
  RETURN QUERY SELECT * FROM pgmq.send_batch(queue_name, msgs, NULL::jsonb[], delay);
END;
$fn$;

COMMENT ON FUNCTION pgmq.send_batch(text, jsonb[], timestamptz) IS
  'Sends one message per element of msgs, invisible until the given time; returns the msg_ids in input order';

-- Sends several messages with headers, invisible for delay seconds; ids in input order.
CREATE OR REPLACE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay integer)
RETURNS SETOF bigint
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $fn$
BEGIN
  RETURN QUERY SELECT * FROM pgmq.send_batch(queue_name, msgs, headers, now() + make_interval(secs => coalesce(delay, 0)));
END;
$fn$;

COMMENT ON FUNCTION pgmq.send_batch(text, jsonb[], jsonb[], integer) IS
  'Sends one message per element of msgs with the matching headers, invisible for delay seconds; returns the msg_ids in input order';

------------------------------------------------------------------------------------------------
-- read, read_with_poll, pop
------------------------------------------------------------------------------------------------

-- Reads up to qty visible messages (oldest first, skipping locked ones), hiding them for vt seconds.
CREATE OR REPLACE FUNCTION pgmq.read(queue_name text, vt integer, qty integer, conditional jsonb DEFAULT '{}')
RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $fn$
DECLARE
  condition_sql text := '';
BEGIN
  IF conditional IS NOT NULL AND conditional <> '{}'::jsonb THEN
    condition_sql := 'AND message @> $3';
  END IF;
  RETURN QUERY EXECUTE format(
    $sql$
    WITH picked AS (
      SELECT msg_id
      FROM pgmq.%1$I
      WHERE vt <= clock_timestamp() %2$s
      ORDER BY msg_id
      LIMIT $1
      FOR UPDATE SKIP LOCKED
    ), updated AS (
      UPDATE pgmq.%1$I q
      SET vt = clock_timestamp() + $2,
          read_ct = q.read_ct + 1
      FROM picked
      WHERE q.msg_id = picked.msg_id
      RETURNING q.msg_id, q.read_ct, q.enqueued_at, q.vt, q.message, q.headers
    )
    SELECT msg_id, read_ct, enqueued_at, vt, message, headers
    FROM updated
    ORDER BY msg_id
    $sql$,
    pgmq.format_table_name(queue_name, 'q'), condition_sql)
  USING qty, make_interval(secs => coalesce(vt, 0)), conditional;
END;
$fn$;

COMMENT ON FUNCTION pgmq.read(text, integer, integer, jsonb) IS
  'Reads up to qty visible messages (message @> conditional when given), oldest msg_id first, FOR UPDATE SKIP LOCKED; sets vt = clock_timestamp() + vt seconds and read_ct + 1';

-- Like read, but retries every poll_interval_ms until a message arrives or max_poll_seconds pass.
CREATE OR REPLACE FUNCTION pgmq.read_with_poll(
  queue_name text,
  vt integer,
  qty integer,
  max_poll_seconds integer DEFAULT 5,
  poll_interval_ms integer DEFAULT 100,
  conditional jsonb DEFAULT '{}'
)
RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $fn$
DECLARE
  stop_at timestamptz := clock_timestamp() + make_interval(secs => coalesce(max_poll_seconds, 0));
  found_rows bigint;
  wait_s double precision;
BEGIN
  LOOP
    -- Each statement takes a new snapshot (READ COMMITTED), so messages sent meanwhile are seen.
    RETURN QUERY SELECT * FROM pgmq.read(read_with_poll.queue_name, read_with_poll.vt,
                                         read_with_poll.qty, read_with_poll.conditional);
    GET DIAGNOSTICS found_rows = ROW_COUNT;
    IF found_rows > 0 THEN
      RETURN;
    END IF;
    wait_s := least(greatest(coalesce(poll_interval_ms, 100), 1) / 1000.0,
                    extract(epoch FROM stop_at - clock_timestamp())::double precision);
    IF wait_s <= 0 THEN
      RETURN;
    END IF;
    PERFORM pg_sleep(wait_s);
  END LOOP;
END;
$fn$;

COMMENT ON FUNCTION pgmq.read_with_poll(text, integer, integer, integer, integer, jsonb) IS
  'As read, retried every poll_interval_ms until at least one message is returned or max_poll_seconds have passed';

-- Reads and deletes the oldest visible message (at-most-once delivery).
CREATE OR REPLACE FUNCTION pgmq.pop(queue_name text)
RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $fn$
BEGIN
  RETURN QUERY EXECUTE format(
    $sql$
    WITH picked AS (
      SELECT msg_id
      FROM pgmq.%1$I
      WHERE vt <= clock_timestamp()
      ORDER BY msg_id
      LIMIT 1
      FOR UPDATE SKIP LOCKED
    )
    DELETE FROM pgmq.%1$I q
    USING picked
    WHERE q.msg_id = picked.msg_id
    RETURNING q.msg_id, q.read_ct, q.enqueued_at, q.vt, q.message, q.headers
    $sql$,
    pgmq.format_table_name(queue_name, 'q'));
END;
$fn$;

COMMENT ON FUNCTION pgmq.pop(text) IS
  'Reads and deletes the oldest visible message (FOR UPDATE SKIP LOCKED); at-most-once delivery';

------------------------------------------------------------------------------------------------
-- archive, delete, set_vt
------------------------------------------------------------------------------------------------

-- Moves one message to the archive; false when it is not in the queue.
CREATE OR REPLACE FUNCTION pgmq.archive(queue_name text, msg_id bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $fn$
DECLARE
  archived_id bigint;
BEGIN
  EXECUTE format(
    $sql$
    WITH moved AS (
      DELETE FROM pgmq.%I
      WHERE msg_id = $1
      RETURNING msg_id, read_ct, enqueued_at, vt, message, headers
    )
    INSERT INTO pgmq.%I (msg_id, read_ct, enqueued_at, vt, message, headers)
    SELECT msg_id, read_ct, enqueued_at, vt, message, headers
    FROM moved
    RETURNING msg_id
    $sql$,
    pgmq.format_table_name(queue_name, 'q'), pgmq.format_table_name(queue_name, 'a'))
  USING msg_id
  INTO archived_id;
  RETURN archived_id IS NOT NULL;
END;
$fn$;

COMMENT ON FUNCTION pgmq.archive(text, bigint) IS
  'Moves one message from pgmq.q_<name> to pgmq.a_<name> (archived_at = now()); false when it is not in the queue';

-- Moves several messages to the archive; returns the ids actually archived.
CREATE OR REPLACE FUNCTION pgmq.archive(queue_name text, msg_ids bigint[])
RETURNS SETOF bigint
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $fn$
BEGIN
  RETURN QUERY EXECUTE format(
    $sql$
    WITH moved AS (
      DELETE FROM pgmq.%I
      WHERE msg_id = ANY ($1)
      RETURNING msg_id, read_ct, enqueued_at, vt, message, headers
    ), inserted AS (
      INSERT INTO pgmq.%I (msg_id, read_ct, enqueued_at, vt, message, headers)
      SELECT msg_id, read_ct, enqueued_at, vt, message, headers
      FROM moved
      RETURNING msg_id
    )
    SELECT msg_id FROM inserted ORDER BY msg_id
    $sql$,
    pgmq.format_table_name(queue_name, 'q'), pgmq.format_table_name(queue_name, 'a'))
  USING msg_ids;
END;
$fn$;

COMMENT ON FUNCTION pgmq.archive(text, bigint[]) IS
  'Moves the given messages from pgmq.q_<name> to pgmq.a_<name>; returns the ids actually archived';

-- Deletes one message; false when it is not in the queue.
CREATE OR REPLACE FUNCTION pgmq."delete"(queue_name text, msg_id bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $fn$
DECLARE
  deleted_id bigint;
BEGIN
  EXECUTE format('DELETE FROM pgmq.%I WHERE msg_id = $1 RETURNING msg_id',
                 pgmq.format_table_name(queue_name, 'q'))
  USING msg_id
  INTO deleted_id;
  RETURN deleted_id IS NOT NULL;
END;
$fn$;

COMMENT ON FUNCTION pgmq."delete"(text, bigint) IS
  'Deletes one message from the queue (not archived); false when it is not in the queue';

-- Deletes several messages; returns the ids actually deleted.
CREATE OR REPLACE FUNCTION pgmq."delete"(queue_name text, msg_ids bigint[])
RETURNS SETOF bigint
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $fn$
BEGIN
  RETURN QUERY EXECUTE format(
    $sql$
    WITH deleted AS (
      DELETE FROM pgmq.%I
      WHERE msg_id = ANY ($1)
      RETURNING msg_id
    )
    SELECT msg_id FROM deleted ORDER BY msg_id
    $sql$,
    pgmq.format_table_name(queue_name, 'q'))
  USING msg_ids;
END;
$fn$;

COMMENT ON FUNCTION pgmq."delete"(text, bigint[]) IS
  'Deletes the given messages from the queue (not archived); returns the ids actually deleted';

-- Sets a message's visibility timeout to vt seconds from now; returns the updated message.
CREATE OR REPLACE FUNCTION pgmq.set_vt(queue_name text, msg_id bigint, vt integer)
RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $fn$
BEGIN
  RETURN QUERY EXECUTE format(
    $sql$
    UPDATE pgmq.%I
    SET vt = clock_timestamp() + $2
    WHERE msg_id = $1
    RETURNING msg_id, read_ct, enqueued_at, vt, message, headers
    $sql$,
    pgmq.format_table_name(queue_name, 'q'))
  USING msg_id, make_interval(secs => coalesce(vt, 0));
END;
$fn$;

COMMENT ON FUNCTION pgmq.set_vt(text, bigint, integer) IS
  'Sets vt = clock_timestamp() + vt seconds for one message; returns the updated message (no row when absent)';
