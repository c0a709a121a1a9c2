import {createHash, createHmac, pbkdf2Sync, randomBytes} from 'node:crypto'
import {chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'

import {UsageError} from '../cli/errors.js'
import {registerSecret} from '../cli/redact.js'
import type {ResolvedConfig} from '../config/resolve.js'

export type PasswordSource = 'env' | 'file' | 'generated' | 'unchanged'

/** Reads the 0600 JSON file {role: password}; refuses one that others can read. */
export function readPasswordFile(path: string): Record<string, string> {
  if (!existsSync(path)) return {}
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'))
  } catch {
    throw new UsageError(`password file ${path} is not valid JSON`, {hint: 'it holds {"role": "password", …}'})
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed) || Object.values(parsed).some((v) => typeof v !== 'string')) {
    throw new UsageError(`password file ${path} must map role names to password strings`)
  }
  const out = parsed as Record<string, string>
  for (const value of Object.values(out)) registerSecret(value)
  return out
}

/** Writes the file atomically with mode 0600 (owner only). */
export function writePasswordFile(path: string, passwords: Record<string, string>): void {
  mkdirSync(dirname(path), {recursive: true, mode: 0o700})
  const temporary = `${path}.${process.pid}.tmp`
  writeFileSync(temporary, JSON.stringify(passwords, null, 2) + '\n', {mode: 0o600})
  chmodSync(temporary, 0o600)
  renameSync(temporary, path)
}

/** The env variable that may carry a role's password, e.g. SINGULARITY_PASSWORD_GENESIS. */
export function passwordEnvName(roleKey: string): string {
  return `SINGULARITY_PASSWORD_${roleKey.toUpperCase()}`
}

export function generatePassword(): string {
  const value = randomBytes(24).toString('base64url')
  registerSecret(value)
  return value
}

/**
 * The SCRAM-SHA-256 verifier of a password, as PostgreSQL stores it. Sending the verifier instead
 * of the password keeps the plain text out of server logs and pg_stat_statements.
 */
export function scramVerifier(password: string, salt = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256')
  const clientKey = createHmac('sha256', salted).update('Client Key').digest()
  const storedKey = createHash('sha256').update(clientKey).digest()
  const serverKey = createHmac('sha256', salted).update('Server Key').digest()
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`
}

/** db init's default passwords file (next to the local cluster's directory, one per estate prefix). */
export function defaultPasswordsFile(config: Pick<ResolvedConfig, 'localDir' | 'prefix'>): string {
  return join(dirname(config.localDir), config.prefix ? `role-passwords.${config.prefix.replace(/_$/, '')}.json` : 'role-passwords.json')
}
