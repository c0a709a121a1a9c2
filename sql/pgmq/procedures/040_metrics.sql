-- Bundled queue engine: metrics, metrics_all.
-- unless-extension: pgmq
-- Re-applied whenever this file changes: CREATE OR REPLACE only, no BEGIN/COMMIT.
-- Note: like pgmq's own, metrics counts every row of the queue; `singularity queue stats`
-- has its own fast path for big queues.

-- Figures of one queue: length, visible length, newest/oldest age, messages ever sent.
CREATE OR REPLACE FUNCTION pgmq.metrics(queue_name text)
RETURNS pgmq.metrics_result
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $fn$
DECLARE
  qtable text := pgmq.format_table_name(queue_name, 'q');
  result pgmq.metrics_result;
BEGIN
  EXECUTE format(
    $sql$
    SELECT
      $1::text,
      count(*),
      extract(epoch FROM now() - max(enqueued_at))::integer,
      extract(epoch FROM now() - min(enqueued_at))::integer,
      -- total ever sent = last value of the msg_id identity sequence (NULL until first used)
      coalesce(pg_sequence_last_value($2::regclass), 0),
      now(),
      count(*) FILTER (WHERE vt <= now())
    FROM pgmq.%I
    $sql$,
    qtable)
  USING queue_name, pg_get_serial_sequence(format('pgmq.%I', qtable), 'msg_id')
  INTO result;
  RETURN result;
END;
$fn$;

COMMENT ON FUNCTION pgmq.metrics(text) IS
  'queue_length, queue_visible_length (vt <= now()), newest/oldest message age in seconds, total_messages ever sent (identity sequence last value) and scrape_time of one queue';

-- Figures of every queue listed in pgmq.meta.
CREATE OR REPLACE FUNCTION pgmq.metrics_all()
RETURNS SETOF pgmq.metrics_result
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $fn$
DECLARE
  q record;
BEGIN
  FOR q IN SELECT m.queue_name FROM pgmq.meta m ORDER BY m.queue_name LOOP
    RETURN NEXT pgmq.metrics(q.queue_name);
  END LOOP;
END;
$fn$;

COMMENT ON FUNCTION pgmq.metrics_all() IS
  'pgmq.metrics of every queue in pgmq.meta';
