/**
 * Restoring one database's archive (and queue file) into an existing, empty database: the part
 * that `backup restore` and `backup verify --restore-test` share.
 *
 * Without extension-member queues this is one pg_restore. With them: pg_restore of everything but
 * the grants on the queue tables (this creates the extension, and restores pgmq.meta and
 * pg_partman's configuration, which the extensions mark for dumping); then the queues recreated
 * with pgmq's own functions and their rows loaded from the queue file; then those grants.
 */
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {CliError, ExitCode} from '../cli/errors.js'
import type {Target} from '../config/resolve.js'
import {connect} from '../db/connect.js'
import {onDatabase} from '../estate/targets.js'
import type {DatabaseEntry} from './manifest.js'
import {openPlain, runFed, type KeyLookup} from './plain.js'
import {restoreQueues} from './queue-file.js'
import type {QueueDefinition} from './snapshot.js'
import {libpqEnv} from './tools.js'

export interface RestoreArchiveOptions {
  adminTarget: Target
  /** the (new, empty) database to restore into */
  database: string
  /** the backup's directory */
  backupPath: string
  source: DatabaseEntry
  pgRestore: string
  jobs: number
  noOwner: boolean
  signal?: AbortSignal
  progress?: (message: string) => void
  /** the backup is encrypted: keys by id */
  keys?: KeyLookup
}

export interface RestoreArchiveResult {
  /** queues recreated from the queue file */
  queues: number
  queueRows: number
  /** pg_restore jobs used: 1 for an encrypted archive (see singleStreamNote) */
  jobs: number
}

/**
 * Why an encrypted archive restores with one job: pg_restore --jobs needs a seekable archive file,
 * and decrypting one to disk (or to tmpfs, which may swap) would write the plaintext we encrypt
 * against. The archive is decrypted into pg_restore's stdin, one pass.
 */
export const singleStreamNote = (jobs: number) =>
  `the archive is encrypted: pg_restore reads it decrypted from a pipe with 1 job, not --jobs ${jobs} (parallel jobs need a seekable plaintext file, which is never written)`

/** Thrown when pg_restore fails; `stderr` is kept for the caller's hint. */
export class PgRestoreError extends CliError {
  constructor(message: string, readonly stderr: string) {
    super(message, {code: 'RESTORE_FAILED'})
  }
}

/**
 * Splits an archive's table of contents (`pg_restore --list`) into what restores before the carried
 * queues exist and what needs them: the grants, comments and labels on their tables and sequences,
 * which pg_dump writes (they differ from the extension's) although it leaves the tables out.
 */
export function splitToc(toc: string, carried: QueueDefinition[]): {before: string; after: string; deferred: number} {
  const names = new Set<string>()
  for (const q of carried) {
    for (const kind of ['q', 'a']) {
      const table = `${kind}_${q.name}`.toLowerCase()
      names.add(`TABLE ${table}`).add(`TABLE ${quoteIdent(table)}`)
    }
    const seq = `q_${q.name}_msg_id_seq`.toLowerCase()
    names.add(`SEQUENCE ${seq}`).add(`SEQUENCE ${quoteIdent(seq)}`)
  }
  const before: string[] = []
  const after: string[] = []
  for (const line of toc.split('\n')) {
    // "<id>; <catalog oid> <oid> <DESC> <schema> <tag> <owner>", e.g. "4035; 0 0 ACL pgmq TABLE a_x postgres"
    const m = /^\d+; \d+ \d+ (ACL|COMMENT|SECURITY LABEL) pgmq (.*) \S+$/.exec(line)
    if (m && names.has(m[2])) {
      after.push(line)
      before.push(`;${line}`)
    } else {
      before.push(line)
    }
  }
  return {before: before.join('\n'), after: after.join('\n') + '\n', deferred: after.length}
}

function quoteIdent(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replaceAll('"', '""')}"`
}

export async function restoreArchive(options: RestoreArchiveOptions): Promise<RestoreArchiveResult> {
  const archive = join(options.backupPath, options.source.file)
  const carried = (options.source.contents?.queues ?? []).filter((q) => q.carriedBy === 'queue-file')
  const {execa} = await import('execa')
  // an encrypted archive is decrypted into pg_restore's stdin (one pass, so no parallel jobs)
  const keys = options.keys
  const jobs = keys ? 1 : options.jobs
  if (keys && options.jobs > 1) options.progress?.(singleStreamNote(options.jobs))
  const pgRestore = async (extra: string[], parallel: boolean) => {
    const args = ['--no-password', '--exit-on-error', '-d', options.database, ...extra]
    if (parallel && jobs > 1) args.push(`--jobs=${jobs}`)
    if (options.noOwner) args.push('--no-owner', '--no-privileges')
    if (!keys) args.push(archive)
    const child = execa(options.pgRestore, args, {
      env: libpqEnv(options.adminTarget, options.database),
      extendEnv: false,
      stdin: keys ? 'pipe' : 'ignore',
      stdout: 'ignore',
      stderr: 'pipe',
      reject: false,
      cancelSignal: options.signal,
    })
    const result = await runFed(child, keys ? openPlain(archive, keys) : undefined)
    if (result.isCanceled || options.signal?.aborted) throw new CliError('restore interrupted', {exitCode: ExitCode.interrupted, code: 'INTERRUPTED'})
    if (result.exitCode !== 0) {
      const stderr = String(result.stderr ?? '')
      const reason = stderr.trim().split('\n').filter((l) => !/^(pg_restore: (detail|hint|while|from TOC)|Command was:)/.test(l)).pop()?.replace(/^pg_restore: (error: )?/, '') ?? `exit ${result.exitCode}`
      throw new PgRestoreError(reason, stderr)
    }
  }

  if (carried.length === 0) {
    await pgRestore([], true)
    return {queues: 0, queueRows: 0, jobs}
  }
  if (!options.source.queueFile) {
    throw new CliError(`the manifest lists queues carried by a queue file for ${options.source.name}, but no queue file`, {code: 'BACKUP_CORRUPT'})
  }
  const listed = await runFed(
    execa(options.pgRestore, keys ? ['--list'] : ['--list', archive], {reject: false, stdin: keys ? 'pipe' : 'ignore', extendEnv: true, cancelSignal: options.signal}),
    keys ? openPlain(archive, keys) : undefined,
  )
  if (listed.exitCode !== 0) throw new PgRestoreError(String(listed.stderr).trim().split('\n').pop() ?? 'pg_restore --list failed', String(listed.stderr))
  const toc = splitToc(String(listed.stdout), carried)
  const work = await mkdtemp(join(tmpdir(), 'singularity-restore-'))
  try {
    await writeFile(join(work, 'before.list'), toc.before, {mode: 0o600})
    await writeFile(join(work, 'after.list'), toc.after, {mode: 0o600})
    await pgRestore(['-L', join(work, 'before.list')], true)
    options.progress?.(`recreating ${carried.length} queue${carried.length === 1 ? '' : 's'} of the pgmq extension with pgmq's functions`)
    const client = await connect(onDatabase(options.adminTarget, options.database), {applicationName: 'singularity-backup', statementTimeoutMs: 0})
    let loaded: {queues: number; rows: number}
    try {
      const input = openPlain(join(options.backupPath, options.source.queueFile.file), keys)
      loaded = await restoreQueues(client, carried, input, options.source.queueFile.file)
    } finally {
      await client.end().catch(() => {})
    }
    // grants on the queue tables, now that they exist again
    if (toc.deferred > 0 && !options.noOwner) await pgRestore(['-L', join(work, 'after.list')], false)
    return {queues: loaded.queues, queueRows: loaded.rows, jobs}
  } finally {
    await rm(work, {recursive: true, force: true})
  }
}
