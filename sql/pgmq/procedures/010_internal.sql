-- Bundled queue engine: internal helpers (name validation, table names, locks, pg_partman).
-- unless-extension: pgmq
-- Re-applied whenever this file changes: CREATE OR REPLACE only, no BEGIN/COMMIT.
-- All functions are SECURITY INVOKER, like pgmq's own.

-- Table name of a queue ('q') or its archive ('a'): lower(prefix || '_' || name), after validating the name:
-- not empty, none of $ ; -- ', at most 47 characters. Every function goes through here.
CREATE OR REPLACE FUNCTION pgmq.format_table_name(queue_name text, prefix text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE SECURITY INVOKER
AS $fn$
BEGIN
  IF queue_name IS NULL OR queue_name = '' THEN
    RAISE EXCEPTION 'queue name must not be empty'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  -- Worded exactly as pgmq's format_table_name (clients match on it), backslash included.
  IF queue_name ~ '[$;'']|--' THEN
    RAISE EXCEPTION 'queue name contains invalid characters: $, ;, --, or \'''
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'A queue name may not contain $, ;, -- or a single quote.';
  END IF;
  -- 'archived_at_idx_' (16) + name must fit in an identifier (63 bytes), hence 47.
  -- Counted in bytes too, so that a multibyte name can never be silently truncated.
  IF octet_length(queue_name) > 47 THEN
    RAISE EXCEPTION 'queue name is too long, maximum length is 47 characters'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN lower(prefix || '_' || queue_name);
END;
$fn$;

COMMENT ON FUNCTION pgmq.format_table_name(text, text) IS
  'Validated table name of a queue: lower(prefix || ''_'' || queue_name), prefix q (messages) or a (archive); raises on an empty name, $ ; -- or '', or more than 47 characters';

-- Validates a queue name (same rules as format_table_name).
CREATE OR REPLACE FUNCTION pgmq.validate_queue_name(queue_name text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE SECURITY INVOKER
AS $fn$
BEGIN
  PERFORM pgmq.format_table_name(queue_name, 'q');
END;
$fn$;

COMMENT ON FUNCTION pgmq.validate_queue_name(text) IS
  'Raises when a queue name is empty, contains $ ; -- or '', or is longer than 47 characters';

-- Serialises create/drop of one queue until the end of the transaction.
CREATE OR REPLACE FUNCTION pgmq.acquire_queue_lock(queue_name text)
RETURNS void
LANGUAGE sql VOLATILE SECURITY INVOKER
AS $fn$
  SELECT pg_advisory_xact_lock(hashtext('pgmq.queue_' || lower(queue_name)));
$fn$;

COMMENT ON FUNCTION pgmq.acquire_queue_lock(text) IS
  'Transaction advisory lock that serialises create/drop of one queue (key: hashtext of the lower-cased name)';

-- Schema of the pg_partman extension in this database, NULL when it is not installed.
CREATE OR REPLACE FUNCTION pgmq._pg_partman_schema()
RETURNS text
LANGUAGE sql STABLE SECURITY INVOKER
AS $fn$
  SELECT n.nspname::text
  FROM pg_catalog.pg_extension e
  JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
  WHERE e.extname = 'pg_partman';
$fn$;

COMMENT ON FUNCTION pgmq._pg_partman_schema() IS
  'Schema of the pg_partman extension in this database, or NULL when it is not installed';

-- Raises the documented error when pg_partman is not installed in this database.
CREATE OR REPLACE FUNCTION pgmq._ensure_pg_partman_installed()
RETURNS text
LANGUAGE plpgsql STABLE SECURITY INVOKER
AS $fn$
DECLARE
  partman_schema text := pgmq._pg_partman_schema();
BEGIN
  IF partman_schema IS NULL THEN
    RAISE EXCEPTION 'pg_partman is required for partitioned queues'
      USING ERRCODE = 'feature_not_supported',
            HINT = 'Install the pg_partman extension in this database, or use pgmq.create / pgmq.create_unlogged.';
  END IF;
  RETURN partman_schema;
END;
$fn$;

COMMENT ON FUNCTION pgmq._ensure_pg_partman_installed() IS
  'Returns the pg_partman schema; raises "pg_partman is required for partitioned queues" when absent';

-- Partition column for a partition interval: msg_id for a number, enqueued_at for a time interval.
CREATE OR REPLACE FUNCTION pgmq._get_partition_col(partition_interval text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE SECURITY INVOKER
AS $fn$
BEGIN
  IF partition_interval ~ '^\s*[0-9]+\s*$' THEN
    RETURN 'msg_id';
  END IF;
  BEGIN
    PERFORM partition_interval::interval;
  EXCEPTION WHEN others THEN
    RAISE EXCEPTION 'unknown partition_interval: %', partition_interval
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Use a number of messages (''10000'') or a time interval (''1 day'').';
  END;
  RETURN 'enqueued_at';
END;
$fn$;

COMMENT ON FUNCTION pgmq._get_partition_col(text) IS
  'Partition column for a pg_partman interval: msg_id when numeric, enqueued_at when a time interval';

-- Like the real pgmq, makes a queue's tables (and its msg_id sequence) members of extension pgmq
-- when this SQL runs as that extension (the test fixture); a no-op for the bundled engine.
CREATE OR REPLACE FUNCTION pgmq._adopt_into_extension(relations regclass[])
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $fn$
DECLARE
  ext oid := (SELECT e.oid FROM pg_catalog.pg_extension e WHERE e.extname = 'pgmq');
  rel regclass;
  kind "char";
BEGIN
  IF ext IS NULL THEN
    RETURN;
  END IF;
  FOREACH rel IN ARRAY relations LOOP
    CONTINUE WHEN rel IS NULL OR EXISTS (
      SELECT 1 FROM pg_catalog.pg_depend d
      WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = rel
        AND d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.refobjid = ext AND d.deptype = 'e');
    SELECT c.relkind INTO kind FROM pg_catalog.pg_class c WHERE c.oid = rel;
    EXECUTE format('ALTER EXTENSION pgmq ADD %s %s', CASE WHEN kind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, rel);
  END LOOP;
END;
$fn$;

COMMENT ON FUNCTION pgmq._adopt_into_extension(regclass[]) IS
  'Internal: adds queue tables and sequences to extension pgmq when installed as one (membership as in the real pgmq); no-op otherwise';

-- Removes relations from extension pgmq (before a queue's tables are dropped, or an archive is
-- detached); a no-op for the bundled engine and for relations that are not members.
CREATE OR REPLACE FUNCTION pgmq._release_from_extension(relations regclass[])
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $fn$
DECLARE
  ext oid := (SELECT e.oid FROM pg_catalog.pg_extension e WHERE e.extname = 'pgmq');
  rel regclass;
  kind "char";
BEGIN
  IF ext IS NULL THEN
    RETURN;
  END IF;
  FOREACH rel IN ARRAY relations LOOP
    CONTINUE WHEN rel IS NULL OR NOT EXISTS (
      SELECT 1 FROM pg_catalog.pg_depend d
      WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = rel
        AND d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.refobjid = ext AND d.deptype = 'e');
    SELECT c.relkind INTO kind FROM pg_catalog.pg_class c WHERE c.oid = rel;
    EXECUTE format('ALTER EXTENSION pgmq DROP %s %s', CASE WHEN kind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, rel);
  END LOOP;
END;
$fn$;

COMMENT ON FUNCTION pgmq._release_from_extension(regclass[]) IS
  'Internal: removes queue tables and sequences from extension pgmq (before drop or detach); no-op for the bundled engine';
