/**
 * Where the agent sessions' encryption key lives. No key service is used (pgsodium's key
 * management differs, see sql/singularity/procedures/020_crypto.sql): the pgcrypto fallback keeps
 * the key inside each singularity database, so every backup of one holds it.
 */
export const SESSION_KEY = {
  location: 'singularity_private.encryption_keys, inside each singularity database',
  keyService: null,
  inBackups: 'held by every backup of a singularity database: encrypted (AES-256-GCM) unless the backup was taken with --no-encrypt',
} as const

/** One line for people: where the key lives and what backups do with it. */
export function sessionKeyLine(): string {
  return `session key: ${SESSION_KEY.location} (no key service); ${SESSION_KEY.inBackups}`
}
