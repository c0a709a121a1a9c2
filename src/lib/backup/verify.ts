/**
 * Verifying a backup: every file's size and sha256 against the manifest, and `pg_restore --list`
 * reads every archive. The result is stored in `<id>/verify.json` (list shows it).
 */
import {existsSync} from 'node:fs'
import {Writable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {join} from 'node:path'

import type pg from 'pg'

import {CliError} from '../cli/errors.js'
import type {Target} from '../config/resolve.js'
import {VERIFY_FILE, type DatabaseEntry, type Verification} from './manifest.js'
import {keyFilePath, keyLookup} from './keys.js'
import {openPlain, runFed} from './plain.js'
import {dropStaleScratch, restoreTest} from './restore-test.js'
import {findBackup, hashFile, writeFileAtomic} from './store.js'
import {findClientTools, parseToolVersion} from './tools.js'

export interface VerifyOptions {
  dir: string
  id: string
  /** also restore each archive into a scratch database and compare it with the manifest */
  restoreTest?: {admin: pg.Client; adminTarget: Target; jobs: number; signal?: AbortSignal}
  /** the key file of an encrypted backup */
  keyFile?: string
  progress?: (message: string) => void
  now?: () => Date
}

export async function verifyBackup(options: VerifyOptions): Promise<Verification & {path: string}> {
  const progress = options.progress ?? (() => {})
  const entry = findBackup(options.dir, options.id)
  if (entry.status !== 'complete' || !entry.manifest) {
    throw new CliError(`backup ${entry.id} is ${entry.status} (${entry.problem ?? 'no manifest'}) and cannot be verified`, {
      hint: entry.status === 'running' ? 'wait for it to finish' : '`singularity backup prune` removes leftovers; take a new backup',
      code: 'BACKUP_INCOMPLETE',
    })
  }
  const manifest = entry.manifest
  const archiveNum = parseToolVersion(`(PostgreSQL) ${manifest.tools.pgDump}`)?.num ?? manifest.server.versionNum
  const tools = await findClientTools(archiveNum, {purpose: 'restore'})
  const {execa} = await import('execa')
  const keys = manifest.encryption ? keyLookup(options.keyFile ?? keyFilePath(undefined, process.env.SINGULARITY_LOCAL_DIR ?? '.')) : undefined

  const files: Verification['files'] = []
  const expected = [
    ...(manifest.globals ? [{...manifest.globals, archive: false}] : []),
    ...(manifest.serverGlobals ?? []).map((g) => ({file: g.file, size: g.size, sha256: g.sha256, archive: false as const, database: undefined as DatabaseEntry | undefined})),
    ...manifest.databases.flatMap((d) => [
      {file: d.file, size: d.size, sha256: d.sha256, archive: true, database: d as DatabaseEntry | undefined},
      ...(d.queueFile ? [{...d.queueFile, archive: false}] : []),
    ]),
  ]
  if (options.restoreTest) {
    const dropped = await dropStaleScratch(options.restoreTest.admin)
    for (const name of dropped) progress(`dropped ${name}, left by a restore test that was killed`)
  }
  for (const f of expected) {
    const path = join(entry.path, f.file)
    if (!existsSync(path)) {
      files.push({file: f.file, ok: false, size: null, sha256: 'missing', archive: f.archive ? 'unreadable' : 'n/a', entries: null, problem: 'file is missing'})
      progress(`${f.file}: MISSING`)
      continue
    }
    progress(`checking ${f.file}…`)
    const actual = await hashFile(path)
    const shaOk = actual.sha256 === f.sha256 && actual.size === f.size
    let archive: 'ok' | 'unreadable' | 'n/a' = 'n/a'
    let entries: number | null = null
    let problem: string | null = shaOk ? null : actual.size === f.size ? 'sha256 differs from the manifest' : `size ${actual.size} differs from the manifest (${f.size})`
    // encrypted: every chunk's tag is checked while the plaintext streams (into pg_restore --list for archives)
    let decrypt: 'ok' | 'failed' | undefined
    if (keys) {
      try {
        if (f.archive) {
          const listed = await runFed(execa(tools.pgRestore, ['--list'], {reject: false, stdin: 'pipe', extendEnv: true}), openPlain(path, keys))
          decrypt = 'ok'
          if (listed.exitCode === 0) {
            archive = 'ok'
            entries = String(listed.stdout).split('\n').filter((l) => l.trim() && !l.startsWith(';')).length
          } else {
            archive = 'unreadable'
            const reason = String(listed.stderr).trim().split('\n').pop()?.replace(/^pg_restore: (error: )?/, '') ?? `exit ${listed.exitCode}`
            problem = problem ? `${problem}; pg_restore --list: ${reason}` : `pg_restore --list: ${reason}`
          }
        } else {
          await pipeline(openPlain(path, keys), new Writable({write: (_chunk, _encoding, done) => done()}))
          decrypt = 'ok'
        }
      } catch (error) {
        decrypt = 'failed'
        if (f.archive) archive = 'unreadable'
        const reason = `${f.file}: ${(error as Error).message}`
        problem = problem ? `${problem}; ${reason}` : reason
      }
    } else if (f.archive) {
      const listed = await execa(tools.pgRestore, ['--list', path], {reject: false, stdin: 'ignore', extendEnv: true})
      if (listed.exitCode === 0) {
        archive = 'ok'
        entries = String(listed.stdout).split('\n').filter((l) => l.trim() && !l.startsWith(';')).length
      } else {
        archive = 'unreadable'
        const reason = String(listed.stderr).trim().split('\n').pop()?.replace(/^pg_restore: (error: )?/, '') ?? `exit ${listed.exitCode}`
        problem = problem ? `${problem}; pg_restore --list: ${reason}` : `pg_restore --list: ${reason}`
      }
    }
    let restore: Verification['files'][number]['restore']
    const database = 'database' in f ? f.database : undefined
    if (options.restoreTest && database && shaOk && archive === 'ok') {
      const rt = options.restoreTest
      const tested = await restoreTest({admin: rt.admin, adminTarget: rt.adminTarget, backupPath: entry.path, source: database, pgRestore: tools.pgRestore, jobs: rt.jobs, signal: rt.signal, progress, keys})
      restore = tested
      if (!tested.ok) problem = tested.problems.join('; ')
      progress(`${f.file}: ${tested.ok ? `restored and matches the manifest (${tested.tables} tables, ${tested.queues} queues)` : 'restore test FAILED'} in ${(tested.durationMs / 1000).toFixed(1)}s`)
    }
    const ok = shaOk && archive !== 'unreadable' && decrypt !== 'failed' && (restore?.ok ?? true)
    files.push({file: f.file, ok, size: actual.size, sha256: shaOk ? 'ok' : 'mismatch', archive, entries, problem, ...(decrypt ? {decrypt} : {}), ...(restore ? {restore} : {})})
  }

  const verification: Verification = {
    id: entry.id,
    ok: files.every((f) => f.ok),
    verifiedAt: (options.now ?? (() => new Date()))().toISOString(),
    pgRestore: tools.version.version,
    files,
    restoreTested: Boolean(options.restoreTest),
  }
  await writeFileAtomic(join(entry.path, VERIFY_FILE), JSON.stringify(verification, null, 2) + '\n')
  return {...verification, path: entry.path}
}
