/**
 * The backup directory: reading manifests and verification results, listing backups (complete,
 * running, incomplete), atomic writes, checksums.
 */
import {createHash} from 'node:crypto'
import {createReadStream, existsSync, readdirSync, readFileSync, statSync} from 'node:fs'
import {open, rename, rm, stat} from 'node:fs/promises'
import {hostname} from 'node:os'
import {join} from 'node:path'

import {NotFoundError} from '../cli/errors.js'
import {
  classifyEntry,
  manifestSchema,
  MANIFEST_FILE,
  parseBackupId,
  partialDirName,
  verificationSchema,
  VERIFY_FILE,
  type BackupKind,
  type Manifest,
  type Verification,
} from './manifest.js'
import type {VerifiedState} from './retention.js'

export type BackupStatus = 'complete' | 'running' | 'incomplete' | 'invalid'

export interface BackupEntry {
  id: string
  kind: BackupKind
  /** complete: renamed into place with a complete manifest; running: a live process is writing it;
   * incomplete: a partial left by a killed or failed run; invalid: a final directory whose manifest is unreadable */
  status: BackupStatus
  path: string
  startedAt: string
  endedAt: string | null
  /** bytes of all files listed in the manifest (archives + globals) */
  size: number | null
  databases: string[]
  verified: VerifiedState
  verifiedAt: string | null
  manifest?: Manifest
  verification?: Verification
  /** why a backup is incomplete or invalid */
  problem?: string
}

/** A partial without a readable manifest is left alone this long (its writer may be starting). */
const PARTIAL_GRACE_MS = 10 * 60 * 1000

/** Writes a file atomically: temp file (mode), fsync, rename. */
export async function writeFileAtomic(path: string, content: string, mode = 0o600): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`
  const handle = await open(tmp, 'w', mode)
  try {
    await handle.writeFile(content)
    await handle.sync()
  } finally {
    await handle.close()
  }
  await rename(tmp, path)
}

/** fsyncs a file or directory so a rename that follows survives a crash. */
export async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, 'r')
  try {
    await handle.sync()
  } catch {
    // some file systems refuse fsync on directories: best effort
  } finally {
    await handle.close()
  }
}

/** sha256 (hex) and size of a file, streamed. */
export async function hashFile(path: string): Promise<{sha256: string; size: number}> {
  const hash = createHash('sha256')
  let size = 0
  await new Promise<void>((resolve, reject) => {
    createReadStream(path, {highWaterMark: 1024 * 1024})
      .on('data', (chunk) => {
        hash.update(chunk)
        size += chunk.length
      })
      .on('error', reject)
      .on('end', () => resolve())
  })
  return {sha256: hash.digest('hex'), size}
}

export function readManifest(dir: string): {manifest?: Manifest; problem?: string} {
  const path = join(dir, MANIFEST_FILE)
  if (!existsSync(path)) return {problem: 'no manifest.json'}
  let raw: unknown
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'))
  } catch {
    return {problem: 'manifest.json is not valid JSON'}
  }
  const parsed = manifestSchema.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    return {problem: `manifest.json: ${issue.path.join('.') || '(root)'}: ${issue.message}`}
  }
  return {manifest: parsed.data}
}

export function readVerification(dir: string): Verification | undefined {
  const path = join(dir, VERIFY_FILE)
  if (!existsSync(path)) return undefined
  try {
    const parsed = verificationSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')))
    return parsed.success ? parsed.data : undefined
  } catch {
    return undefined
  }
}

/** Whether a process that wrote a partial backup still runs (same host only). */
export function writerAlive(writer: {pid: number; host: string} | undefined): boolean {
  if (!writer) return false
  if (writer.host !== hostname()) return true // cannot tell: assume alive
  try {
    process.kill(writer.pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export function manifestSize(m: Manifest): number {
  return m.databases.reduce((sum, d) => sum + d.size + (d.queueFile?.size ?? 0), 0) + (m.globals?.size ?? 0) + (m.serverGlobals ?? []).reduce((sum, g) => sum + g.size, 0)
}

function entryFor(dir: string, name: string): BackupEntry | undefined {
  const type = classifyEntry(name)
  if (!type || type.type === 'deleting') return undefined
  const path = join(dir, name)
  let isDir = false
  try {
    isDir = statSync(path).isDirectory()
  } catch {
    return undefined
  }
  if (!isDir) return undefined
  const parsedId = parseBackupId(type.id)!
  const {manifest, problem} = readManifest(path)
  const base = {
    id: type.id,
    kind: manifest?.kind ?? parsedId.kind,
    path,
    startedAt: manifest?.startedAt ?? parsedId.startedAt.toISOString(),
    endedAt: manifest?.endedAt ?? null,
    size: manifest ? manifestSize(manifest) : null,
    databases: manifest?.databases.map((d) => d.name) ?? [],
    manifest,
  }
  if (type.type === 'partial') {
    const running = manifest?.status === 'running' && writerAlive(manifest.writer)
    return {
      ...base,
      size: null,
      status: running ? 'running' : 'incomplete',
      verified: 'no',
      verifiedAt: null,
      problem: running
        ? `being written by pid ${manifest?.writer?.pid}`
        : manifest?.status === 'failed'
          ? `failed: ${manifest.error ?? 'unknown error'}`
          : manifest
            ? 'interrupted: its writer is gone'
            : (problem ?? 'no manifest'),
    }
  }
  if (!manifest || manifest.status !== 'complete' || manifest.id !== type.id) {
    return {...base, status: 'invalid', verified: 'no', verifiedAt: null, problem: problem ?? (manifest?.id !== type.id ? 'manifest id does not match the directory' : `manifest status ${manifest?.status}`)}
  }
  const verification = readVerification(path)
  return {
    ...base,
    status: 'complete',
    verified: verification ? (verification.ok ? 'yes' : 'failed') : 'no',
    verifiedAt: verification?.verifiedAt ?? null,
    verification,
  }
}

/** Every backup in the directory, newest first (partials included with their status). */
export function listBackups(dir: string): BackupEntry[] {
  if (!existsSync(dir)) return []
  const entries: BackupEntry[] = []
  for (const name of readdirSync(dir)) {
    const entry = entryFor(dir, name)
    if (entry) entries.push(entry)
  }
  return entries.sort((a, b) => Date.parse(b.startedAt) - Date.parse(a.startedAt) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
}

/** Leftovers prune may remove: partials whose writer is gone, and half-deleted backups. */
export async function staleLeftovers(dir: string): Promise<{name: string; path: string; reason: string}[]> {
  if (!existsSync(dir)) return []
  const out: {name: string; path: string; reason: string}[] = []
  for (const name of readdirSync(dir)) {
    const type = classifyEntry(name)
    if (!type || type.type === 'backup') continue
    const path = join(dir, name)
    if (type.type === 'deleting') {
      out.push({name, path, reason: 'half-deleted backup'})
      continue
    }
    const {manifest} = readManifest(path)
    if (manifest) {
      if (manifest.status === 'running' && writerAlive(manifest.writer)) continue
      out.push({name, path, reason: manifest.status === 'failed' ? 'failed backup' : 'interrupted backup (its writer is gone)'})
    } else {
      const age = Date.now() - (await stat(path)).mtimeMs
      if (age > PARTIAL_GRACE_MS) out.push({name, path, reason: 'partial backup without a manifest'})
    }
  }
  return out
}

/** The complete backup with this id ('latest' = newest complete); exit 4 when there is none. */
export function findBackup(dir: string, id: string): BackupEntry {
  const all = listBackups(dir)
  if (id === 'latest') {
    const latest = all.find((b) => b.status === 'complete')
    if (!latest) throw new NotFoundError(`no complete backup in ${dir}`, {hint: 'take one with `singularity backup`', code: 'BACKUP_NOT_FOUND'})
    return latest
  }
  const found = all.find((b) => b.id === id)
  if (!found) {
    const near = all.filter((b) => b.status === 'complete').slice(0, 3).map((b) => b.id)
    throw new NotFoundError(`backup '${id}' not found in ${dir}`, {
      hint: near.length > 0 ? `newest: ${near.join(', ')} (see \`singularity backup list\`)` : 'see `singularity backup list` (and --dir)',
      code: 'BACKUP_NOT_FOUND',
    })
  }
  return found
}

/** Removes a backup so that it is never seen half-deleted as complete: rename, then delete. */
export async function removeBackupDir(dir: string, id: string): Promise<void> {
  const from = join(dir, id)
  const to = join(dir, `.${id}.deleting`)
  await rename(from, to)
  await rm(to, {recursive: true, force: true})
}

export {partialDirName}
