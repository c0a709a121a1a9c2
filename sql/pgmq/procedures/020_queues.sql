-- Bundled queue engine: queue lifecycle (create, create_unlogged, create_partitioned, drop_queue,
-- purge_queue, detach_archive, list_queues).
-- unless-extension: pgmq
-- Re-applied whenever this file changes: CREATE OR REPLACE only, no BEGIN/COMMIT.
-- Every dynamic identifier goes through format('%I'), every value through %L or USING.

-- Creates the tables, indexes, grants and meta row of a queue; a no-op when it already exists.
CREATE OR REPLACE FUNCTION pgmq._create_queue(queue_name text, unlogged boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $fn$
DECLARE
  qtable text := pgmq.format_table_name(queue_name, 'q');
  atable text := pgmq.format_table_name(queue_name, 'a');
BEGIN
  PERFORM pgmq.acquire_queue_lock(queue_name);

  IF to_regclass(format('pgmq.%I', qtable)) IS NULL THEN
    EXECUTE format(
      $sql$
      CREATE %s TABLE IF NOT EXISTS pgmq.%I (
        msg_id      bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
        read_ct     integer NOT NULL DEFAULT 0,
        enqueued_at timestamptz NOT NULL DEFAULT now(),
        vt          timestamptz NOT NULL,
        message     jsonb,
        headers     jsonb
      )
      $sql$,
      CASE WHEN unlogged THEN 'UNLOGGED' ELSE '' END, qtable);
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I (vt ASC)', qtable || '_vt_idx', qtable);
    -- Readable by pg_monitor whoever creates the queue (default privileges only cover one role).
    EXECUTE format('GRANT SELECT ON TABLE pgmq.%I TO pg_monitor', qtable);
    EXECUTE format('GRANT SELECT ON SEQUENCE %s TO pg_monitor',
                   pg_get_serial_sequence(format('pgmq.%I', qtable), 'msg_id'));
  END IF;

  IF to_regclass(format('pgmq.%I', atable)) IS NULL THEN
    EXECUTE format(
      $sql$
      CREATE TABLE IF NOT EXISTS pgmq.%I (
        msg_id      bigint PRIMARY KEY,
        read_ct     integer NOT NULL DEFAULT 0,
        enqueued_at timestamptz NOT NULL DEFAULT now(),
        archived_at timestamptz NOT NULL DEFAULT now(),
        vt          timestamptz NOT NULL,
        message     jsonb,
        headers     jsonb
      )
      $sql$,
      atable);
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I (archived_at)',
                   'archived_at_idx_' || lower(queue_name), atable);
    EXECUTE format('GRANT SELECT ON TABLE pgmq.%I TO pg_monitor', atable);
  END IF;

  -- As the real pgmq does: the queue's tables are members of the extension when it runs as one.
  PERFORM pgmq._adopt_into_extension(ARRAY[
    to_regclass(format('pgmq.%I', qtable)),
    pg_get_serial_sequence(format('pgmq.%I', qtable), 'msg_id')::regclass,
    to_regclass(format('pgmq.%I', atable))]);

  -- Names differing only in case share their tables, so they are one queue with one meta row.
  INSERT INTO pgmq.meta (queue_name, is_partitioned, is_unlogged)
  SELECT _create_queue.queue_name, false, _create_queue.unlogged
  WHERE NOT EXISTS (SELECT 1 FROM pgmq.meta m WHERE lower(m.queue_name) = lower(_create_queue.queue_name))
  ON CONFLICT DO NOTHING;
END;
$fn$;

COMMENT ON FUNCTION pgmq._create_queue(text, boolean) IS
  'Internal: creates queue table, archive, indexes, pg_monitor grants and meta row; idempotent, serialised per queue';

-- Creates a queue (table pgmq.q_<name>, archive pgmq.a_<name>, meta row); idempotent.
CREATE OR REPLACE FUNCTION pgmq."create"(queue_name text)
RETURNS void
LANGUAGE sql VOLATILE SECURITY INVOKER
AS $fn$
  SELECT pgmq._create_queue(queue_name, false);
$fn$;

COMMENT ON FUNCTION pgmq."create"(text) IS
  'Creates queue pgmq.q_<name> with archive pgmq.a_<name> and its meta row; idempotent, serialised per queue by an advisory lock';

-- Creates a queue whose message table is UNLOGGED (fast, lost on crash); idempotent.
CREATE OR REPLACE FUNCTION pgmq.create_unlogged(queue_name text)
RETURNS void
LANGUAGE sql VOLATILE SECURITY INVOKER
AS $fn$
  SELECT pgmq._create_queue(queue_name, true);
$fn$;

COMMENT ON FUNCTION pgmq.create_unlogged(text) IS
  'Creates a queue with an UNLOGGED message table (is_unlogged = true); idempotent';

-- Creates a queue partitioned by pg_partman (by msg_id for numeric intervals, else by time).
CREATE OR REPLACE FUNCTION pgmq.create_partitioned(
  queue_name text,
  partition_interval text DEFAULT '10000',
  retention_interval text DEFAULT '100000'
)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $fn$
DECLARE
  qtable text := pgmq.format_table_name(queue_name, 'q');
  atable text := pgmq.format_table_name(queue_name, 'a');
  partman text;
  partman_major integer;
  part_type text;
  partition_col text;
  a_partition_col text;
BEGIN
  partman := pgmq._ensure_pg_partman_installed();
  partition_col := pgmq._get_partition_col(partition_interval);
  a_partition_col := CASE WHEN partition_col = 'enqueued_at' THEN 'archived_at' ELSE partition_col END;
  SELECT split_part(extversion, '.', 1)::integer INTO partman_major
  FROM pg_catalog.pg_extension WHERE extname = 'pg_partman';
  part_type := CASE WHEN partman_major >= 5 THEN 'range' ELSE 'native' END;

  PERFORM pgmq.acquire_queue_lock(queue_name);

  IF to_regclass(format('pgmq.%I', qtable)) IS NULL THEN
    EXECUTE format(
      $sql$
      CREATE TABLE IF NOT EXISTS pgmq.%I (
        msg_id      bigint NOT NULL GENERATED ALWAYS AS IDENTITY,
        read_ct     integer NOT NULL DEFAULT 0,
        enqueued_at timestamptz NOT NULL DEFAULT now(),
        vt          timestamptz NOT NULL,
        message     jsonb,
        headers     jsonb
      ) PARTITION BY RANGE (%I)
      $sql$,
      qtable, partition_col);
    EXECUTE format('SELECT %I.create_parent(p_parent_table := %L, p_control := %L, p_interval := %L, p_type := %L)',
                   partman, 'pgmq.' || qtable, partition_col, partition_interval, part_type);
    EXECUTE format('UPDATE %I.part_config SET retention = %L, retention_keep_table = false, '
                   'retention_keep_index = true, automatic_maintenance = %L WHERE parent_table = %L',
                   partman, retention_interval, 'on', 'pgmq.' || qtable);
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I (%I)', qtable || '_part_idx', qtable, partition_col);
    IF partition_col <> 'msg_id' THEN
      EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I (msg_id)', qtable || '_msg_id_idx', qtable);
    END IF;
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I (vt ASC)', qtable || '_vt_idx', qtable);
    EXECUTE format('GRANT SELECT ON TABLE pgmq.%I TO pg_monitor', qtable);
    EXECUTE format('GRANT SELECT ON SEQUENCE %s TO pg_monitor',
                   pg_get_serial_sequence(format('pgmq.%I', qtable), 'msg_id'));
  END IF;

  IF to_regclass(format('pgmq.%I', atable)) IS NULL THEN
    EXECUTE format(
      $sql$
      CREATE TABLE IF NOT EXISTS pgmq.%I (
        msg_id      bigint NOT NULL,
        read_ct     integer NOT NULL DEFAULT 0,
        enqueued_at timestamptz NOT NULL DEFAULT now(),
        archived_at timestamptz NOT NULL DEFAULT now(),
        vt          timestamptz NOT NULL,
        message     jsonb,
        headers     jsonb
      ) PARTITION BY RANGE (%I)
      $sql$,
      atable, a_partition_col);
    EXECUTE format('SELECT %I.create_parent(p_parent_table := %L, p_control := %L, p_interval := %L, p_type := %L)',
                   partman, 'pgmq.' || atable, a_partition_col, partition_interval, part_type);
    EXECUTE format('UPDATE %I.part_config SET retention = %L, retention_keep_table = false, '
                   'retention_keep_index = true, automatic_maintenance = %L WHERE parent_table = %L',
                   partman, retention_interval, 'on', 'pgmq.' || atable);
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I (archived_at)',
                   'archived_at_idx_' || lower(queue_name), atable);
    IF a_partition_col <> 'msg_id' THEN
      EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I (msg_id)', atable || '_msg_id_idx', atable);
    END IF;
    EXECUTE format('GRANT SELECT ON TABLE pgmq.%I TO pg_monitor', atable);
  END IF;

  -- As the real pgmq does: the queue's tables are members of the extension when it runs as one.
  PERFORM pgmq._adopt_into_extension(ARRAY[
    to_regclass(format('pgmq.%I', qtable)),
    pg_get_serial_sequence(format('pgmq.%I', qtable), 'msg_id')::regclass,
    to_regclass(format('pgmq.%I', atable))]);

  INSERT INTO pgmq.meta (queue_name, is_partitioned, is_unlogged)
  SELECT create_partitioned.queue_name, true, false
  WHERE NOT EXISTS (SELECT 1 FROM pgmq.meta m WHERE lower(m.queue_name) = lower(create_partitioned.queue_name))
  ON CONFLICT DO NOTHING;
END;
$fn$;

COMMENT ON FUNCTION pgmq.create_partitioned(text, text, text) IS
  'Creates a queue partitioned by pg_partman (numeric interval: by msg_id; time interval: by enqueued_at); raises "pg_partman is required for partitioned queues" without it';

-- Drops a queue's table, archive and meta row; false (with a notice) when the queue does not exist.
CREATE OR REPLACE FUNCTION pgmq.drop_queue(queue_name text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $fn$
DECLARE
  qtable text := pgmq.format_table_name(queue_name, 'q');
  atable text := pgmq.format_table_name(queue_name, 'a');
  existed boolean;
  partitioned boolean;
  partman text := pgmq._pg_partman_schema();
  tmpl text;
BEGIN
  PERFORM pgmq.acquire_queue_lock(queue_name);
  existed := to_regclass(format('pgmq.%I', qtable)) IS NOT NULL;
  SELECT coalesce(bool_or(m.is_partitioned), false) INTO partitioned
  FROM pgmq.meta m WHERE lower(m.queue_name) = lower(drop_queue.queue_name);

  IF partman IS NOT NULL THEN
    -- Forget pg_partman's configuration (and template tables) of a partitioned queue, or of an archive
    -- converted by convert_archive_partitioned.
    FOR tmpl IN EXECUTE format(
        'DELETE FROM %I.part_config WHERE parent_table IN ($1, $2) RETURNING template_table', partman)
      USING 'pgmq.' || qtable, 'pgmq.' || atable
    LOOP
      IF tmpl IS NOT NULL THEN
        -- stored unquoted as schema.table; the table part may contain a hyphen or a dot
        EXECUTE format('DROP TABLE IF EXISTS %I.%I',
                       split_part(tmpl, '.', 1), substr(tmpl, position('.' in tmpl) + 1));
      END IF;
    END LOOP;
  END IF;

  IF existed THEN
    PERFORM pgmq._release_from_extension(ARRAY[
      to_regclass(format('pgmq.%I', qtable)),
      pg_get_serial_sequence(format('pgmq.%I', qtable), 'msg_id')::regclass,
      to_regclass(format('pgmq.%I', atable))]);
    EXECUTE format('DROP TABLE pgmq.%I', qtable);
  END IF;
  IF to_regclass(format('pgmq.%I', atable)) IS NOT NULL THEN
    PERFORM pgmq._release_from_extension(ARRAY[to_regclass(format('pgmq.%I', atable))]);
    EXECUTE format('DROP TABLE pgmq.%I', atable);
  END IF;
  DELETE FROM pgmq.meta m WHERE lower(m.queue_name) = lower(drop_queue.queue_name);

  IF NOT existed THEN
    -- worded as pgmq's drop_queue
    RAISE NOTICE 'pgmq queue `%` does not exist', queue_name;
  END IF;
  RETURN existed;
END;
$fn$;

COMMENT ON FUNCTION pgmq.drop_queue(text) IS
  'Drops pgmq.q_<name>, pgmq.a_<name> and the meta row; returns false (not an error) when the queue does not exist';

-- Deletes every message of a queue (not its archive) and returns how many there were.
CREATE OR REPLACE FUNCTION pgmq.purge_queue(queue_name text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $fn$
DECLARE
  deleted bigint;
BEGIN
  -- DELETE rather than TRUNCATE: exact count, MVCC-safe, needs only the DELETE privilege,
  -- and the identity sequence (total_messages) is left alone.
  EXECUTE format('DELETE FROM pgmq.%I', pgmq.format_table_name(queue_name, 'q'));
  GET DIAGNOSTICS deleted = ROW_COUNT;
  RETURN deleted;
END;
$fn$;

COMMENT ON FUNCTION pgmq.purge_queue(text) IS
  'Deletes every message of the queue (the archive is kept); returns the number of messages deleted';

-- With the pgmq extension this detaches the archive table from it; the bundled engine has nothing to detach.
CREATE OR REPLACE FUNCTION pgmq.detach_archive(queue_name text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $fn$
BEGIN
  PERFORM pgmq.validate_queue_name(queue_name);
  PERFORM pgmq._release_from_extension(ARRAY[to_regclass(format('pgmq.%I', pgmq.format_table_name(queue_name, 'a')))]);
END;
$fn$;

COMMENT ON FUNCTION pgmq.detach_archive(text) IS
  'Detaches the archive table from extension pgmq so DROP EXTENSION keeps it; a no-op in the bundled engine; validates the name';

-- Lists the queues: the rows of pgmq.meta.
CREATE OR REPLACE FUNCTION pgmq.list_queues()
RETURNS SETOF pgmq.queue_record
LANGUAGE sql STABLE SECURITY INVOKER
AS $fn$
  SELECT m.queue_name, m.is_partitioned, m.is_unlogged, m.created_at
  FROM pgmq.meta m
  ORDER BY m.queue_name;
$fn$;

COMMENT ON FUNCTION pgmq.list_queues() IS
  'Every queue (the rows of pgmq.meta) as pgmq.queue_record';

-- pgmq 1.5's deprecated two-argument drop_queue: warns, then drops like drop_queue(queue_name)
-- (whether the queue is partitioned is read from pgmq.meta, so the flag is ignored).
CREATE OR REPLACE FUNCTION pgmq.drop_queue(queue_name text, partitioned boolean)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $fn$
BEGIN
  RAISE WARNING 'drop_queue(queue_name, partitioned) is deprecated and will be removed in PGMQ v2.0. Use drop_queue(queue_name) instead';
  RETURN pgmq.drop_queue(queue_name);
END;
$fn$;

COMMENT ON FUNCTION pgmq.drop_queue(text, boolean) IS
  'Deprecated (pgmq 1.5): warns and drops the queue like drop_queue(queue_name); the partitioned flag is ignored (pgmq.meta knows)';

-- pgmq 1.5's create_non_partitioned: what pgmq.create does for a queue without pg_partman.
CREATE OR REPLACE FUNCTION pgmq.create_non_partitioned(queue_name text)
RETURNS void
LANGUAGE sql VOLATILE SECURITY INVOKER
AS $fn$
  SELECT pgmq._create_queue(queue_name, false);
$fn$;

COMMENT ON FUNCTION pgmq.create_non_partitioned(text) IS
  'Creates a queue whose tables are not partitioned (what pgmq.create does); idempotent, serialised per queue';

-- Converts the archive of a queue to a table partitioned by msg_id and managed by pg_partman,
-- keeping its rows (they move into the partitions). As pgmq 1.5: a NOTICE and nothing done when
-- the archive is already partitioned or does not exist; pg_partman's absence is an error.
CREATE OR REPLACE FUNCTION pgmq.convert_archive_partitioned(
  table_name text,
  partition_interval text DEFAULT '10000',
  retention_interval text DEFAULT '100000',
  leading_partition integer DEFAULT 10
)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $fn$
DECLARE
  partman text;
  atable text := pgmq.format_table_name(table_name, 'a');
  old_table text := atable || '_old';
  idx text := 'archived_at_idx_' || lower(table_name);
  kind "char";
  moved bigint;
BEGIN
  partman := pgmq._ensure_pg_partman_installed();
  SELECT c.relkind INTO kind FROM pg_catalog.pg_class c
   WHERE c.relnamespace = 'pgmq'::regnamespace AND c.relname = atable;
  -- NOTICE texts as pgmq words them (its "%s" prints the name followed by an s)
  IF kind = 'p' THEN
    RAISE NOTICE 'Table %s is already partitioned', atable;
    RETURN;
  END IF;
  IF kind IS DISTINCT FROM 'r' THEN
    RAISE NOTICE 'Table %s doesnot exists', atable;
    RETURN;
  END IF;
  IF partition_interval !~ '^\s*[0-9]+\s*$' THEN
    RAISE EXCEPTION 'convert_archive_partitioned partitions by msg_id: partition_interval must be a number of messages, got %', partition_interval
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  PERFORM pgmq.acquire_queue_lock(table_name);

  EXECUTE format('ALTER TABLE pgmq.%I RENAME TO %I', atable, old_table);
  IF to_regclass(format('pgmq.%I', idx)) IS NOT NULL THEN
    EXECUTE format('ALTER INDEX pgmq.%I RENAME TO %I', idx, left(idx, 59) || '_old');
  END IF;
  EXECUTE format(
    $sql$
    CREATE TABLE pgmq.%I (
      msg_id      bigint NOT NULL,
      read_ct     integer NOT NULL DEFAULT 0,
      enqueued_at timestamptz NOT NULL DEFAULT now(),
      archived_at timestamptz NOT NULL DEFAULT now(),
      vt          timestamptz NOT NULL,
      message     jsonb,
      headers     jsonb
    ) PARTITION BY RANGE (msg_id)
    $sql$,
    atable);
  EXECUTE format('CREATE INDEX %I ON pgmq.%I (archived_at)', idx, atable);
  EXECUTE format('SELECT %I.create_parent(p_parent_table := %L, p_control := %L, p_interval := %L, p_premake := %s, p_type := %L)',
                 partman, 'pgmq.' || atable, 'msg_id', trim(partition_interval), coalesce(leading_partition, 10),
                 CASE WHEN (SELECT split_part(extversion, '.', 1)::int FROM pg_catalog.pg_extension WHERE extname = 'pg_partman') >= 5
                      THEN 'range' ELSE 'native' END);
  EXECUTE format('UPDATE %I.part_config SET retention = %L, retention_keep_table = false, retention_keep_index = false, '
                 'infinite_time_partitions = true WHERE parent_table = %L',
                 partman, retention_interval, 'pgmq.' || atable);
  -- The old rows go into the partitions (pg_partman's default partition catches ids beyond them),
  -- and the old table goes: nothing archived is lost, nothing is left behind.
  EXECUTE format('INSERT INTO pgmq.%I (msg_id, read_ct, enqueued_at, archived_at, vt, message, headers) '
                 'SELECT msg_id, read_ct, enqueued_at, archived_at, vt, message, headers FROM pgmq.%I',
                 atable, old_table);
  GET DIAGNOSTICS moved = ROW_COUNT;
  EXECUTE format('DROP TABLE pgmq.%I', old_table);
  EXECUTE format('GRANT SELECT ON TABLE pgmq.%I TO pg_monitor', atable);
  RAISE NOTICE 'archive of queue % is now partitioned by msg_id (% rows kept)', table_name, moved;
END;
$fn$;

COMMENT ON FUNCTION pgmq.convert_archive_partitioned(text, text, text, integer) IS
  'Converts pgmq.a_<name> to a pg_partman-managed table partitioned by msg_id, keeping its rows; NOTICE when already partitioned or absent; raises without pg_partman';
