/**
 * `backup verify --restore-test`: each archive is restored into a scratch database and the result
 * compared with what the manifest recorded in the dump's snapshot (rows per table, queues and their
 * lengths). `pg_restore --list` only reads an archive's table of contents; this proves it restores.
 *
 * Scratch databases are named `singularity_rt_<UTC time>_<random>`, closed to PUBLIC (CONNECT and
 * TEMP revoked, granted as on the source database), commented with the host and pid of the run, and dropped when the test ends, also
 * on failure or interruption. One killed outright (SIGKILL, power loss) is dropped by the next
 * restore test on the server once its process is gone (or, from another host, after a day).
 */
import {randomBytes} from 'node:crypto'
import {hostname} from 'node:os'
import type pg from 'pg'

import type {Target} from '../config/resolve.js'
import {connect} from '../db/connect.js'
import {onDatabase} from '../estate/targets.js'
import type {DatabaseEntry} from './manifest.js'
import {restoreArchive} from './restore-archive.js'
import {applySourceAccess} from './copies.js'
import type {KeyLookup} from './plain.js'
import {dropDatabase} from './restore.js'
import {countTables, readQueues} from './snapshot.js'
import {writerAlive} from './store.js'

export const SCRATCH_PREFIX = 'singularity_rt_'
const SCRATCH_PATTERN = /^singularity_rt_(\d{14})_[0-9a-f]{8}$/
const FOREIGN_HOST_GRACE_MS = 24 * 3600 * 1000
const UNCOMMENTED_GRACE_MS = 10 * 60 * 1000

export interface RestoreTestResult {
  ok: boolean
  database: string
  scratch: string
  durationMs: number
  tables: number
  queues: number
  problems: string[]
}

function stamp(at: Date): string {
  return at.toISOString().replace(/\.\d{3}Z$/, '').replace(/[-:T]/g, '')
}

function stampTime(s: string): number {
  return Date.parse(`${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}T${s.slice(8, 10)}:${s.slice(10, 12)}:${s.slice(12, 14)}Z`)
}

async function ddl(admin: pg.Client, template: string, ...args: string[]): Promise<void> {
  const params = args.map((_, i) => `$${i + 1}::text`).join(', ')
  const {rows} = await admin.query<{sql: string}>(`SELECT format('${template}', ${params}) AS sql`, args)
  await admin.query(rows[0].sql)
}

/** Drops scratch databases of restore tests whose process is gone; returns their names. */
export async function dropStaleScratch(admin: pg.Client, now = Date.now()): Promise<string[]> {
  const {rows} = await admin.query<{datname: string; comment: string | null}>(
    "SELECT datname, shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname LIKE 'singularity\\_rt\\_%'",
  )
  const dropped: string[] = []
  for (const r of rows) {
    const m = SCRATCH_PATTERN.exec(r.datname)
    if (!m) continue
    let owner: {host: string; pid: number} | undefined
    try {
      const parsed = JSON.parse(r.comment ?? '') as {host?: unknown; pid?: unknown}
      if (typeof parsed.host === 'string' && typeof parsed.pid === 'number') owner = {host: parsed.host, pid: parsed.pid}
    } catch {
      owner = undefined
    }
    const age = now - stampTime(m[1])
    const stale = owner ? (owner.host === hostname() ? !writerAlive(owner) : age > FOREIGN_HOST_GRACE_MS) : age > UNCOMMENTED_GRACE_MS
    if (!stale) continue
    await dropDatabase(admin, r.datname)
    dropped.push(r.datname)
  }
  return dropped
}

export interface RestoreTestOptions {
  admin: pg.Client
  adminTarget: Target
  backupPath: string
  source: DatabaseEntry
  pgRestore: string
  jobs: number
  signal?: AbortSignal
  progress?: (message: string) => void
  keys?: KeyLookup
}

/** Restores one archive into a scratch database, compares it with the manifest, drops it. */
export async function restoreTest(options: RestoreTestOptions): Promise<RestoreTestResult> {
  const t0 = Date.now()
  const {admin, source} = options
  const scratch = `${SCRATCH_PREFIX}${stamp(new Date())}_${randomBytes(4).toString('hex')}`
  const problems: string[] = []
  let tables = 0
  let queues = 0
  const {rows: who} = await admin.query<{has: boolean}>('SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AS has', [source.owner ?? ''])
  // owners and grants are restored as `backup restore` does, when the backup's roles exist here
  const noOwner = !who[0].has
  await ddl(admin, 'CREATE DATABASE %I TEMPLATE template0', scratch)
  try {
    // closed like its source (CONNECT/TEMP revoked from PUBLIC, granted as on the source)
    await applySourceAccess(admin, scratch, source.access)
    await ddl(admin, 'COMMENT ON DATABASE %I IS %L', scratch, JSON.stringify({by: 'singularity backup verify --restore-test', host: hostname(), pid: process.pid, source: source.name}))
    options.progress?.(`${source.file}: restoring into scratch database ${scratch}${noOwner ? ` (role ${source.owner} is missing here: without owners and grants)` : ''}…`)
    try {
      await restoreArchive({
        adminTarget: options.adminTarget,
        database: scratch,
        backupPath: options.backupPath,
        source,
        pgRestore: options.pgRestore,
        jobs: options.jobs,
        noOwner,
        signal: options.signal,
        keys: options.keys,
      })
    } catch (error) {
      if (options.signal?.aborted) throw error
      problems.push(`database ${source.name}: restore failed: ${(error as Error).message}`)
    }
    if (problems.length === 0 && source.contents) {
      const client = await connect(onDatabase(options.adminTarget, scratch), {applicationName: 'singularity-backup', statementTimeoutMs: 0})
      try {
        problems.push(...compareTables(source, await countTables(client)))
        const restored = await readQueues(client)
        problems.push(...compareQueues(source, restored.queues))
        tables = Object.keys(source.contents.tables).length
        queues = source.contents.queues.length
      } finally {
        await client.end().catch(() => {})
      }
    }
  } finally {
    await dropDatabase(admin, scratch).catch(() => {})
  }
  return {ok: problems.length === 0, database: source.name, scratch, durationMs: Date.now() - t0, tables, queues, problems}
}

/** Differences between the rows recorded at dump time and those restored, naming database and table. */
export function compareTables(source: DatabaseEntry, restored: Record<string, number>): string[] {
  const out: string[] = []
  for (const [table, expected] of Object.entries(source.contents?.tables ?? {})) {
    const got = restored[table]
    if (got === undefined) out.push(`database ${source.name} table ${table}: missing after restore (${expected} rows at dump time)`)
    else if (got !== expected) out.push(`database ${source.name} table ${table}: ${expected} rows at dump time, ${got} restored`)
  }
  return out
}

/** Differences in the queue list, kinds, lengths and archive sizes. */
export function compareQueues(source: DatabaseEntry, restored: {name: string; partitioned: boolean; unlogged: boolean; length: number; archived: number}[]): string[] {
  const out: string[] = []
  const byName = new Map(restored.map((q) => [q.name, q]))
  for (const q of source.contents?.queues ?? []) {
    const r = byName.get(q.name)
    if (!r) {
      out.push(`database ${source.name} queue ${q.name}: missing after restore`)
      continue
    }
    if (r.partitioned !== q.partitioned || r.unlogged !== q.unlogged) out.push(`database ${source.name} queue ${q.name}: restored as ${r.partitioned ? 'partitioned' : r.unlogged ? 'unlogged' : 'plain'}, was ${q.partitioned ? 'partitioned' : q.unlogged ? 'unlogged' : 'plain'}`)
    if (r.length !== q.length) out.push(`database ${source.name} table pgmq.q_${q.name.toLowerCase()}: queue ${q.name} had ${q.length} messages at dump time, ${r.length} restored`)
    if (r.archived !== q.archived) out.push(`database ${source.name} table pgmq.a_${q.name.toLowerCase()}: queue ${q.name} had ${q.archived} archived at dump time, ${r.archived} restored`)
    byName.delete(q.name)
  }
  for (const name of byName.keys()) out.push(`database ${source.name} queue ${name}: restored but not in the backup`)
  return out
}
