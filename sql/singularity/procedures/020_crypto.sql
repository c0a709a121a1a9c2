-- Encryption helpers (seed 002's Encryption module; pgsodium's role, done with pgcrypto).
--
-- Ciphertext format, for session state and secrets alike: 4-byte big-endian key id, then an
-- OpenPGP symmetric message (pgp_sym_encrypt, AES-256, integrity-protected) whose password is the
-- hex of the 256-bit key from singularity_private.encryption_keys. The key never leaves the server
-- and is never a literal. Encrypting is open to callers (SECURITY DEFINER, fixed search_path);
-- decrypting lives in singularity_private, where only the owner (the role running db init) can
-- reach it. Hash / sign / verify / token take no server key.
--
-- pgsodium is not used even where installed (its key management differs); see
-- singularity_feature_implementations(). Needs pgcrypto (created by db init).
-- Re-applied whenever this file changes: CREATE OR REPLACE only, no BEGIN/COMMIT.

-- The active key id and key (internal; owner only).
CREATE OR REPLACE FUNCTION singularity_private.active_key(OUT key_id integer, OUT key bytea)
LANGUAGE sql STABLE
SET search_path = pg_catalog, public
AS $$
  SELECT k.id, k.key FROM singularity_private.encryption_keys k WHERE k.retired_at IS NULL
$$;

COMMENT ON FUNCTION singularity_private.active_key() IS 'Internal: id and bytes of the active encryption key (owner only)';

-- Encrypts text with the active key: key id (4 bytes) || OpenPGP message (internal; owner only).
CREATE OR REPLACE FUNCTION singularity_private.encrypt(p_plaintext text)
RETURNS bytea
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, public
AS $$
DECLARE
  v_key record;
BEGIN
  SELECT * INTO v_key FROM singularity_private.active_key();
  IF v_key.key_id IS NULL THEN
    RAISE EXCEPTION 'no active encryption key in singularity_private.encryption_keys'
      USING HINT = 'insert one: INSERT INTO singularity_private.encryption_keys (key) VALUES (gen_random_bytes(32))';
  END IF;
  RETURN int4send(v_key.key_id)
      || pgp_sym_encrypt(p_plaintext, encode(v_key.key, 'hex'), 'cipher-algo=aes256, s2k-mode=1');
END
$$;

COMMENT ON FUNCTION singularity_private.encrypt(text) IS
  'Internal: key id || pgp_sym_encrypt(plaintext) with the active key (owner only)';

-- Decrypts a ciphertext of singularity_private.encrypt / encrypt_secret (owner only).
CREATE OR REPLACE FUNCTION singularity_private.decrypt(p_ciphertext bytea)
RETURNS text
LANGUAGE plpgsql STABLE STRICT
SET search_path = pg_catalog, public
AS $$
DECLARE
  v_key_id integer;
  v_key bytea;
BEGIN
  IF octet_length(p_ciphertext) < 5 THEN
    RAISE EXCEPTION 'not a singularity ciphertext (too short)' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  v_key_id := ('x' || encode(substring(p_ciphertext FROM 1 FOR 4), 'hex'))::bit(32)::integer;
  SELECT k.key INTO v_key FROM singularity_private.encryption_keys k WHERE k.id = v_key_id;
  IF v_key IS NULL THEN
    RAISE EXCEPTION 'encryption key % not found', v_key_id USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN pgp_sym_decrypt(substring(p_ciphertext FROM 5), encode(v_key, 'hex'));
END
$$;

COMMENT ON FUNCTION singularity_private.decrypt(bytea) IS
  'Decrypts key id || OpenPGP ciphertext with the key it names (owner only; service roles cannot reach this schema)';

-- Decrypts an agent session's state (owner only).
CREATE OR REPLACE FUNCTION singularity_private.decrypt_session_state(p_session_id text)
RETURNS jsonb
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, public
AS $$
  SELECT singularity_private.decrypt(s.state_encrypted)::jsonb FROM public.agent_sessions s WHERE s.id = p_session_id
$$;

COMMENT ON FUNCTION singularity_private.decrypt_session_state(text) IS
  'Plaintext state of an agent session (owner only); NULL when the session has no state';

REVOKE ALL ON FUNCTION singularity_private.active_key() FROM PUBLIC;
REVOKE ALL ON FUNCTION singularity_private.encrypt(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION singularity_private.decrypt(bytea) FROM PUBLIC;
REVOKE ALL ON FUNCTION singularity_private.decrypt_session_state(text) FROM PUBLIC;

-- Encrypts a secret (API key, agent secret) with the server's key; decrypt is owner-only.
CREATE OR REPLACE FUNCTION encrypt_secret(p_plaintext text)
RETURNS bytea
LANGUAGE sql VOLATILE STRICT
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$ SELECT singularity_private.encrypt(p_plaintext) $$;

COMMENT ON FUNCTION encrypt_secret(text) IS
  'Encrypts text with the server-side key (pgcrypto AES-256); the caller never sees the key; decrypt: singularity_private.decrypt (owner only)';

-- Hashes a password with bcrypt (crypt + gen_salt('bf', 12)).
CREATE OR REPLACE FUNCTION hash_password(p_password text)
RETURNS text
LANGUAGE sql VOLATILE STRICT
AS $$ SELECT crypt(p_password, gen_salt('bf', 12)) $$;

COMMENT ON FUNCTION hash_password(text) IS 'bcrypt hash (cost 12) of a password, for verify_password';

-- Checks a password against a hash_password() hash.
CREATE OR REPLACE FUNCTION verify_password(p_password text, p_hash text)
RETURNS boolean
LANGUAGE sql STABLE STRICT
AS $$ SELECT crypt(p_password, p_hash) = p_hash $$;

COMMENT ON FUNCTION verify_password(text, text) IS 'True when the password matches the bcrypt hash';

-- Signs a message between instances: hex HMAC-SHA256 with a shared secret.
CREATE OR REPLACE FUNCTION sign_message(p_secret text, p_message text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT
AS $$ SELECT encode(hmac(p_message, p_secret, 'sha256'), 'hex') $$;

COMMENT ON FUNCTION sign_message(text, text) IS 'Hex HMAC-SHA256 of the message under the shared secret';

-- Verifies a sign_message() signature; compares HMACs of both values so timing reveals nothing.
CREATE OR REPLACE FUNCTION verify_message(p_secret text, p_message text, p_signature text)
RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT
AS $$
  SELECT hmac(lower(p_signature), p_secret, 'sha256')
       = hmac(encode(hmac(p_message, p_secret, 'sha256'), 'hex'), p_secret, 'sha256')
$$;

COMMENT ON FUNCTION verify_message(text, text, text) IS
  'True when the signature is sign_message(secret, message) (double-HMAC comparison, no timing leak)';

-- Generates a random URL-safe token (base64url of p_bytes CSPRNG bytes, no padding).
CREATE OR REPLACE FUNCTION generate_token(p_bytes integer DEFAULT 32)
RETURNS text
LANGUAGE plpgsql VOLATILE STRICT
AS $$
BEGIN
  IF p_bytes NOT BETWEEN 16 AND 1024 THEN
    RAISE EXCEPTION 'generate_token: bytes must be between 16 and 1024, got %', p_bytes
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN translate(encode(gen_random_bytes(p_bytes), 'base64'), E'+/=\n', '-_');
END
$$;

COMMENT ON FUNCTION generate_token(integer) IS 'Random URL-safe token: base64url (no padding) of n random bytes, default 32';
