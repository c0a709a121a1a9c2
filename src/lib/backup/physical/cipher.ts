/**
 * pgBackRest's repository cipher for physical backups, with its passphrase from the backup key
 * store (src/lib/backup/keys.ts): never printed, never written into the backup directory.
 *
 * The passphrase is derived from one key of the store (HMAC-SHA256 of the key over the stanza),
 * and the repository remembers that key's id in setup.json. pgBackRest cannot change the
 * passphrase of an existing repository, so the repository keeps its key for life: `backup key
 * rotate` makes a new key for new logical backups, and the old key (kept in the store) still
 * opens the repository.
 *
 * Where the passphrase goes:
 * - to every pgbackrest run of ours, in its environment (PGBACKREST_REPO1_CIPHER_PASS), read from
 *   the key store each time: a missing key exits 1 naming its id before pgBackRest starts;
 * - to the server's archive_command (and a restored cluster's restore_command), which we cannot
 *   give an environment: a pgBackRest include file `cipher.conf`, mode 0600 in a 0700 directory,
 *   both owned by the server's OS user, beside the key file (outside the backup directory). Only
 *   that user (and root) can read it, as only they can read the data directory itself.
 */
import {createHash, createHmac} from 'node:crypto'
import {chownSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync} from 'node:fs'
import {dirname, join, resolve} from 'node:path'

import {CliError} from '../../cli/errors.js'
import {keyLookup} from '../keys.js'

export const REPO_CIPHER = 'aes-256-cbc'
export const CIPHER_CONF = 'cipher.conf'

/** What setup.json records of the repository's cipher (null: an unencrypted repository). */
export interface RepoCipher {
  type: typeof REPO_CIPHER
  /** the backup key the passphrase is derived from (a fingerprint, never the key) */
  keyId: string
  /** the key file it was in at set-up (later runs: --key-file, SINGULARITY_BACKUP_KEY_FILE, then this) */
  keyFile: string
  /** pgBackRest include directory holding cipher.conf, for the server's archive-push */
  includeDir: string
}

/** How an existing unencrypted repository becomes an encrypted one (pgBackRest cannot convert one in place). */
export const MIGRATE_HINT =
  'pgBackRest cannot encrypt an existing repository: set up a new one in another directory (`singularity backup setup --physical --dir <new dir>`: it moves archive_command there), take a full backup into it, and delete the old repository once the new one covers the recovery window you need'

/** The repository passphrase for `stanza`, derived from a 32-byte backup key. */
export function repoCipherPass(key: Buffer, stanza: string): string {
  return createHmac('sha256', key).update(`singularity/pgbackrest/repo1-cipher-pass/v1/${stanza}`).digest('base64url')
}

/** The include directory for a repository: beside the key file, one per repository path. */
export function cipherIncludeDir(keyFile: string, repoPath: string, stanza: string): string {
  const tag = createHash('sha256').update(resolve(repoPath)).digest('hex').slice(0, 8)
  return join(dirname(resolve(keyFile)), 'pgbackrest-cipher', `${stanza}-${tag}`)
}

/** The key file to read the repository's key from: the flag, SINGULARITY_BACKUP_KEY_FILE, else the one recorded at set-up. */
export function repoKeyFile(cipher: RepoCipher, flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? env.SINGULARITY_BACKUP_KEY_FILE ?? cipher.keyFile
}

/**
 * PGBACKREST_REPO1_CIPHER_PASS for a pgbackrest run, from the key store; exit 1 naming the key id
 * when the key file does not hold it (pgBackRest is not started).
 */
export function cipherEnv(stanza: string, cipher: RepoCipher | null | undefined, keyFile?: string): Record<string, string> {
  if (!cipher) return {}
  const path = keyFile ?? repoKeyFile(cipher, undefined)
  let key: Buffer
  try {
    key = keyLookup(path)(cipher.keyId)
  } catch (error) {
    if (error instanceof CliError && error.code === 'BACKUP_KEY_MISSING') {
      throw new CliError(`the physical repository of ${stanza} is encrypted with backup key ${cipher.keyId}, which is not in ${path}${existsSync(path) ? '' : ' (no such file)'}; pgBackRest was not run, nothing was changed`, {
        hint: `point --key-file or SINGULARITY_BACKUP_KEY_FILE at the key file that holds key ${cipher.keyId}`,
        code: 'BACKUP_KEY_MISSING',
      })
    }
    throw error
  }
  return {PGBACKREST_REPO1_CIPHER_TYPE: cipher.type, PGBACKREST_REPO1_CIPHER_PASS: repoCipherPass(key, stanza)}
}

/** The include file's text: the passphrase for this stanza only. */
export function renderCipherConf(stanza: string, pass: string): string {
  return [
    '# Written by `singularity backup setup --physical`: the repository passphrase for the server\'s archive-push',
    '# and a restored cluster\'s archive-get. Derived from the backup key store; keep this file 0600.',
    `[${stanza}]`,
    `repo1-cipher-pass=${pass}`,
    '',
  ].join('\n')
}

/**
 * Writes cipher.conf (0600) into its directory (0700), both owned by the server's OS user (`ids`,
 * when we run as root for another user); the parent is opened for traversal only.
 */
export function writeCipherConf(includeDir: string, stanza: string, pass: string, ids: {uid: number; gid: number} | undefined): string {
  const parent = dirname(includeDir)
  mkdirSync(parent, {recursive: true, mode: ids ? 0o711 : 0o700})
  mkdirSync(includeDir, {recursive: true, mode: 0o700})
  if (ids) chownSync(includeDir, ids.uid, ids.gid)
  const file = join(includeDir, CIPHER_CONF)
  const text = renderCipherConf(stanza, pass)
  if (existsSync(file) && readFileSync(file, 'utf8') === text && (statSync(file).mode & 0o077) === 0) return file
  // not named *.conf until complete: pgBackRest reads every *.conf of the directory
  const tmp = join(includeDir, `.cipher.tmp-${process.pid}`)
  writeFileSync(tmp, text, {mode: 0o600})
  if (ids) chownSync(tmp, ids.uid, ids.gid)
  renameSync(tmp, file)
  return file
}

/** The repository's encryption as `backup list`, `doctor` and setup report it. */
export interface RepoEncryption {
  /** what pgBackRest says of the repository: aes-256-cbc or none */
  cipher: string
  encrypted: boolean
  /** the backup key the passphrase comes from (null when not encrypted) */
  keyId: string | null
}

export function repoEncryption(cipher: RepoCipher | null | undefined, reported?: string): RepoEncryption {
  const actual = reported ?? (cipher ? cipher.type : 'none')
  return {cipher: actual, encrypted: actual !== 'none', keyId: cipher?.keyId ?? null}
}
