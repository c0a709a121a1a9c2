-- ULIDs in plain PL/pgSQL (seed 002's DistributedIds; pgx_ulid's role).
--
-- A ULID is 26 Crockford base32 characters: 48 bits of Unix time in milliseconds, then 80 random
-- bits. Generation is monotonic within a session: a ULID generated in the same millisecond as the
-- session's previous one is the previous one plus 1, so ULIDs of one session sort in generation
-- order. Randomness comes from gen_random_uuid() (core PostgreSQL 13+, a CSPRNG).
--
-- pgx_ulid is not used even where installed: its monotonic generator needs
-- shared_preload_libraries and its API differs across versions; these functions behave the same
-- everywhere (singularity_feature_implementations() reports it).
--
-- Re-applied whenever this file changes: CREATE OR REPLACE only, no BEGIN/COMMIT.

-- Crockford base32 encoding of a 48-bit time and two 40-bit random halves (internal).
-- One expression without FROM, so the planner inlines it: 26 substr() calls, no loop.
CREATE OR REPLACE FUNCTION ulid_encode(p_ms bigint, p_hi bigint, p_lo bigint)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
  SELECT substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ', ((p_ms >> 45) & 31)::int + 1, 1) || substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ', ((p_ms >> 40) & 31)::int + 1, 1)
      || substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ', ((p_ms >> 35) & 31)::int + 1, 1) || substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ', ((p_ms >> 30) & 31)::int + 1, 1)
      || substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ', ((p_ms >> 25) & 31)::int + 1, 1) || substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ', ((p_ms >> 20) & 31)::int + 1, 1)
      || substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ', ((p_ms >> 15) & 31)::int + 1, 1) || substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ', ((p_ms >> 10) & 31)::int + 1, 1)
      || substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ', ((p_ms >> 5) & 31)::int + 1, 1) || substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ', (p_ms & 31)::int + 1, 1)
      || substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ', ((p_hi >> 35) & 31)::int + 1, 1) || substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ', ((p_hi >> 30) & 31)::int + 1, 1)
      || substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ', ((p_hi >> 25) & 31)::int + 1, 1) || substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ', ((p_hi >> 20) & 31)::int + 1, 1)
      || substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ', ((p_hi >> 15) & 31)::int + 1, 1) || substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ', ((p_hi >> 10) & 31)::int + 1, 1)
      || substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ', ((p_hi >> 5) & 31)::int + 1, 1) || substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ', (p_hi & 31)::int + 1, 1)
      || substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ', ((p_lo >> 35) & 31)::int + 1, 1) || substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ', ((p_lo >> 30) & 31)::int + 1, 1)
      || substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ', ((p_lo >> 25) & 31)::int + 1, 1) || substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ', ((p_lo >> 20) & 31)::int + 1, 1)
      || substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ', ((p_lo >> 15) & 31)::int + 1, 1) || substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ', ((p_lo >> 10) & 31)::int + 1, 1)
      || substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ', ((p_lo >> 5) & 31)::int + 1, 1) || substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ', (p_lo & 31)::int + 1, 1)
$$;

COMMENT ON FUNCTION ulid_encode(bigint, bigint, bigint) IS
  'Internal: Crockford base32 text of a ULID from its 48-bit millisecond time and two 40-bit random halves';

-- Generates p_count ULIDs, strictly increasing, continuing the session's monotonic sequence.
CREATE OR REPLACE FUNCTION ulid_generate_batch(p_count integer)
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
  c_max40 constant bigint := 1099511627775;  -- 2^40 - 1
  v_state text := current_setting('singularity.ulid_last', true);
  v_last_ms bigint := -1;
  v_hi bigint := 0;
  v_lo bigint := 0;
  v_ms bigint;
  v_rand bytea;
BEGIN
  IF p_count IS NULL OR p_count < 0 THEN
    RAISE EXCEPTION 'ulid_generate_batch: count must be 0 or more, got %', p_count
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF v_state IS NOT NULL AND v_state <> '' THEN
    v_last_ms := split_part(v_state, ':', 1)::bigint;
    v_hi := split_part(v_state, ':', 2)::bigint;
    v_lo := split_part(v_state, ':', 3)::bigint;
  END IF;
  FOR i IN 1 .. p_count LOOP
    v_ms := floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint;
    IF v_ms <= v_last_ms THEN
      -- same millisecond (or the clock went back): previous ULID + 1
      v_ms := v_last_ms;
      v_lo := v_lo + 1;
      IF v_lo > c_max40 THEN
        v_lo := 0;
        v_hi := v_hi + 1;
        IF v_hi > c_max40 THEN
          -- 2^80 ULIDs in one millisecond: move on to the next millisecond
          v_ms := v_ms + 1;
          v_hi := 0;
        END IF;
      END IF;
    ELSE
      -- bytes 1-5 and 11-15 of a v4 UUID are random (version and variant bits lie outside)
      v_rand := uuid_send(gen_random_uuid());
      v_hi := ('x' || encode(substring(v_rand FROM 1 FOR 5), 'hex'))::bit(40)::bigint;
      v_lo := ('x' || encode(substring(v_rand FROM 11 FOR 5), 'hex'))::bit(40)::bigint;
    END IF;
    v_last_ms := v_ms;
    RETURN NEXT ulid_encode(v_ms, v_hi, v_lo);
  END LOOP;
  PERFORM set_config('singularity.ulid_last', v_last_ms || ':' || v_hi || ':' || v_lo, false);
  RETURN;
END
$$;

COMMENT ON FUNCTION ulid_generate_batch(integer) IS
  'Generates n ULIDs (seed 002 generate_batch), strictly increasing and monotonic with the session''s earlier ULIDs';

-- Generates one ULID (session ids, correlation ids, batch ids), monotonic within the session.
CREATE OR REPLACE FUNCTION ulid_generate()
RETURNS text
LANGUAGE sql VOLATILE PARALLEL UNSAFE
AS $$ SELECT ulid_generate_batch(1) $$;

COMMENT ON FUNCTION ulid_generate() IS
  'Generates one ULID (26 chars, Crockford base32), monotonic within a millisecond in this session';

-- Extracts the creation time (millisecond precision) from a ULID; rejects malformed ones.
CREATE OR REPLACE FUNCTION ulid_timestamp(p_ulid text)
RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
DECLARE
  c_alphabet constant text := '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
  v_ulid text := upper(p_ulid);
  v_ms bigint := 0;
BEGIN
  IF v_ulid !~ '^[0-7][0-9A-HJKMNP-TV-Z]{25}$' THEN
    RAISE EXCEPTION 'not a ULID: %', left(p_ulid, 40)
      USING ERRCODE = 'invalid_text_representation',
            HINT = 'a ULID is 26 Crockford base32 characters, e.g. 01ARZ3NDEKTSV4RRFFQ69G5FAV';
  END IF;
  FOR i IN 1 .. 10 LOOP
    v_ms := v_ms * 32 + (strpos(c_alphabet, substr(v_ulid, i, 1)) - 1);
  END LOOP;
  RETURN timestamptz 'epoch' + v_ms * interval '1 millisecond';
END
$$;

COMMENT ON FUNCTION ulid_timestamp(text) IS
  'Creation time of a ULID (its 48-bit millisecond prefix); error on malformed input';

-- Age of a ULID in seconds, relative to the transaction's now().
CREATE OR REPLACE FUNCTION ulid_age_seconds(p_ulid text)
RETURNS double precision
LANGUAGE sql STABLE STRICT PARALLEL SAFE
AS $$ SELECT extract(epoch FROM now() - ulid_timestamp(p_ulid))::double precision $$;

COMMENT ON FUNCTION ulid_age_seconds(text) IS 'Seconds since the ULID was generated (seed 002 age_seconds)';

-- Whether a ULID was generated within the last p_seconds seconds.
CREATE OR REPLACE FUNCTION ulid_is_recent(p_ulid text, p_seconds integer DEFAULT 300)
RETURNS boolean
LANGUAGE sql STABLE STRICT PARALLEL SAFE
AS $$ SELECT ulid_timestamp(p_ulid) >= now() - p_seconds * interval '1 second' $$;

COMMENT ON FUNCTION ulid_is_recent(text, integer) IS 'True when the ULID is at most p_seconds old (seed 002 recent?, default 300 s)';
