/**
 * Backup encryption keys, kept OUTSIDE the backup directory: a JSON file
 * {"current": "<key id>", "keys": {"<key id>": "<base64 of 32 bytes>"}} with mode 0600, created on
 * first use. Default: beside the role passwords file (the directory above the local cluster);
 * SINGULARITY_BACKUP_KEY_FILE or --key-file choose another. A key id is the first 16 bytes of the
 * key's SHA-256 (hex): it names a key without revealing it. Rotation adds a key and makes it
 * current; old keys stay, so old backups stay readable, and nothing is re-encrypted.
 */
import {createHash, randomBytes} from 'node:crypto'
import {existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'

import {CliError} from '../cli/errors.js'
import {listBackups} from './store.js'

export interface KeyFile {
  current: string
  keys: Record<string, string>
}

export const keyIdOfKey = (key: Buffer) => createHash('sha256').update(key).digest('hex').slice(0, 32)

/** Where the keys live: the flag, SINGULARITY_BACKUP_KEY_FILE, else beside the passwords file. */
export function keyFilePath(flag: string | undefined, localDir: string, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? env.SINGULARITY_BACKUP_KEY_FILE ?? join(dirname(localDir), 'backup-keys.json')
}

function read(path: string): KeyFile | undefined {
  if (!existsSync(path)) return undefined
  if ((statSync(path).mode & 0o077) !== 0) {
    throw new CliError(`backup key file ${path} can be read by others; refusing to use it`, {hint: `chmod 600 ${path}`, code: 'KEY_FILE_MODE'})
  }
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as KeyFile
    if (typeof parsed.current !== 'string' || typeof parsed.keys !== 'object' || !parsed.keys[parsed.current]) throw new Error('shape')
    return parsed
  } catch {
    throw new CliError(`backup key file ${path} is not a valid key file`, {hint: 'it holds {"current": id, "keys": {id: base64}}', code: 'KEY_FILE_INVALID'})
  }
}

function write(path: string, file: KeyFile): void {
  mkdirSync(dirname(path), {recursive: true, mode: 0o700})
  const tmp = `${path}.tmp-${process.pid}`
  writeFileSync(tmp, JSON.stringify(file, null, 2) + '\n', {mode: 0o600})
  renameSync(tmp, path)
}

function newKey(): {id: string; key: Buffer} {
  const key = randomBytes(32)
  return {id: keyIdOfKey(key), key}
}

/** The current key for new backups; the key file is created (0600) on first use. */
export function currentKey(path: string): {id: string; key: Buffer; created: boolean} {
  const existing = read(path)
  if (existing) return {id: existing.current, key: Buffer.from(existing.keys[existing.current], 'base64'), created: false}
  const {id, key} = newKey()
  try {
    write(path, {current: id, keys: {[id]: key.toString('base64')}})
  } catch (error) {
    throw new CliError(`cannot create the backup key file ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, {
      hint: 'choose its place with --key-file or SINGULARITY_BACKUP_KEY_FILE (outside the backup directory), or pass --no-encrypt',
      code: 'KEY_FILE',
    })
  }
  return {id, key, created: true}
}

/** A lookup of keys by id for reading backups; a missing file or key exits 1 naming the key id. */
export function keyLookup(path: string): (id: string) => Buffer {
  let file: KeyFile | undefined | null = null
  return (id: string) => {
    if (file === null) file = read(path)
    const encoded = file?.keys[id]
    if (!encoded) {
      throw new CliError(`backup key ${id} is not in ${file ? path : `${path} (no such file)`}; nothing was restored`, {
        hint: 'point --key-file or SINGULARITY_BACKUP_KEY_FILE at the key file that holds it',
        code: 'BACKUP_KEY_MISSING',
      })
    }
    return Buffer.from(encoded, 'base64')
  }
}

/** A new key for new backups; the old ones stay readable. */
export function rotateKey(path: string): {id: string; previous: string | null; keys: number} {
  const existing = read(path)
  const {id, key} = newKey()
  const keys = {...(existing?.keys ?? {}), [id]: key.toString('base64')}
  write(path, {current: id, keys})
  return {id, previous: existing?.current ?? null, keys: Object.keys(keys).length}
}

/** For `doctor`: whether the newest complete backup is encrypted (a warning when it is not; nothing to check when there is none). */
export function backupEncryptionCheck(dir: string): {status: 'ok' | 'warn'; detail: string} {
  const newest = listBackups(dir).find((b) => b.status === 'complete')
  if (!newest?.manifest) return {status: 'ok', detail: 'no backup yet: nothing to check'}
  if (newest.manifest.encryption) return {status: 'ok', detail: `the newest backup (${newest.id}) is encrypted (AES-256-GCM; the key file lives outside the backup directory)`}
  return {status: 'warn', detail: `backup ${newest.id} is not encrypted (taken with --no-encrypt or before encryption): its files hold role password hashes and the session key in clear`}
}
