-- Singularity database, part 2: the private schema holding the encryption key.
--
-- Applied once, inside the runner's transaction. Needs pgcrypto (created by db init beforehand).
-- The key is generated here, on the server (gen_random_bytes), never written in any file, never
-- logged. Nobody but the owner of this schema (the role running db init) can read it: no USAGE for
-- PUBLIC, and db init grants service roles nothing here. Functions that need the key are
-- SECURITY DEFINER with a fixed search_path (sql/singularity/procedures/020_crypto.sql).
--
-- Note for DBAs: the key is data, so it is in pg_dump output and base backups of this database;
-- protect backups accordingly. Rotate with
--   UPDATE singularity_private.encryption_keys SET retired_at = now() WHERE retired_at IS NULL;
--   INSERT INTO singularity_private.encryption_keys (key) VALUES (gen_random_bytes(32));
-- Old ciphertexts stay readable (each names its key id); new ones use the new key.

CREATE SCHEMA singularity_private;

COMMENT ON SCHEMA singularity_private IS 'Encryption keys and key-using internals; no access for service roles';

REVOKE ALL ON SCHEMA singularity_private FROM PUBLIC;

CREATE TABLE singularity_private.encryption_keys (
  id         integer     GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  key        bytea       NOT NULL CHECK (octet_length(key) = 32),
  created_at timestamptz NOT NULL DEFAULT now(),
  retired_at timestamptz
);

COMMENT ON TABLE singularity_private.encryption_keys IS
  'Symmetric keys (256 bit) for session state and secrets; exactly one active (retired_at IS NULL)';

-- exactly one active key at a time
CREATE UNIQUE INDEX encryption_keys_one_active ON singularity_private.encryption_keys ((true)) WHERE retired_at IS NULL;

REVOKE ALL ON TABLE singularity_private.encryption_keys FROM PUBLIC;

INSERT INTO singularity_private.encryption_keys (key) VALUES (gen_random_bytes(32));
