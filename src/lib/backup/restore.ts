/**
 * Restoring one database of a backup. By default into a NEW database (`<db>_restored_<time>` or
 * --as); an existing database is replaced only after confirmation, and only once the restore into
 * a scratch database has succeeded (then: drop the old one, rename the new one into place).
 *
 * Ownership: the database is created owned by the original owner when that role exists (else by
 * the connecting user). Objects keep their owners and grants (pg_restore without --no-owner), so
 * a restored estate database works for its service role at once; on a server without the
 * estate's roles, restore globals.sql first or pass noOwner (pg_restore --no-owner
 * --no-privileges: everything owned by the connecting user, no grants).
 */
import {randomBytes} from 'node:crypto'
import {join} from 'node:path'
import type pg from 'pg'

import {CliError, ExitCode, UsageError} from '../cli/errors.js'
import {MAIN_SERVER, type ResolvedConfig, type Target} from '../config/resolve.js'
import {dropDatabaseForceSupported} from '../db/catalog-version.js'
import {connect} from '../db/connect.js'
import {knownServer, onDatabase, serverNames} from '../estate/targets.js'
import {validateName} from '../names.js'
import type {DatabaseEntry} from './manifest.js'
import {applySourceAccess, markCopy, type DatabaseGrant} from './copies.js'
import {keyLookup} from './keys.js'
import {PgRestoreError, restoreArchive, singleStreamNote} from './restore-archive.js'
import {hashFile, type BackupEntry} from './store.js'
import {findClientTools, parseToolVersion} from './tools.js'

export interface RestoreOptions {
  admin: pg.Client
  adminTarget: Target
  /** the backup, as findBackup found it */
  entry: BackupEntry
  /** database name or kind inside the backup; optional when the backup holds one database */
  db?: string
  /** name of the database to restore into */
  as?: string
  /** called when the target exists; throws to refuse (confirmDestructive) */
  confirmOverwrite: (name: string) => Promise<void>
  jobs: number
  noOwner: boolean
  /** key file for encrypted backups */
  keyFile: string
  signal?: AbortSignal
  progress?: (message: string) => void
  now?: () => Date
}

export interface RestoreResult {
  id: string
  source: string
  kind: string
  database: string
  replaced: boolean
  owner: string
  ownerIsOriginal: boolean
  /** database grants given to the new database: those of the source (PUBLIC has none unless the source gave it) */
  access: DatabaseGrant[]
  tables: number
  /** pg_restore jobs used: --jobs, or 1 for an encrypted backup (singleStream says why) */
  jobs: number
  /** set when fewer jobs than --jobs were used: an encrypted archive restores as one stream */
  singleStream: string | null
  durationMs: number
}

const MAX_NAME = 63

/** `<db>_restored_20261123_201500`, the database part shortened to fit 63 characters. */
export function defaultRestoreName(source: string, at: Date): string {
  const stamp = at.toISOString().replace(/\.\d{3}Z$/, '').replace(/[-:]/g, '').replace('T', '_')
  const suffix = `_restored_${stamp}`
  return `${source.slice(0, MAX_NAME - suffix.length)}${suffix}`
}

function pickDatabase(databases: DatabaseEntry[], wanted: string | undefined, id: string): DatabaseEntry {
  const choices = databases.map((d) => d.name).join(', ')
  if (!wanted) {
    if (databases.length === 1) return databases[0]
    throw new UsageError(`backup ${id} holds ${databases.length} databases: say which one with --db`, {hint: `--db one of: ${choices} (or a kind)`})
  }
  const found = databases.filter((d) => d.name === wanted || d.kind === wanted)
  if (found.length === 1) return found[0]
  if (found.length > 1) throw new UsageError(`'${wanted}' matches ${found.map((d) => d.name).join(', ')} in backup ${id}`, {hint: 'pass the database name with --db'})
  throw new UsageError(`backup ${id} has no database '${wanted}'`, {hint: `--db one of: ${choices}`})
}

/**
 * The server a database of a backup goes back to: `chosen` (--server) when given, else the one it
 * was dumped from (the manifest's placement; `main` for a one-server backup), which the config must
 * name: a database restored onto another server than its own would not be where its services look.
 */
export function restoreServer(config: Pick<ResolvedConfig, 'servers'>, entry: BackupEntry, db: string | undefined, chosen?: string): string {
  if (chosen !== undefined) return knownServer(config, chosen)
  const configured = serverNames(config)
  if (!entry.manifest) return MAIN_SERVER // incomplete: restoreBackup says so
  const source = pickDatabase(entry.manifest.databases, db, entry.id)
  const server = entry.manifest.placement?.[source.name] ?? MAIN_SERVER
  if (!configured.includes(server)) {
    throw new UsageError(`${source.name} was dumped from server '${server}', which the config does not name; nothing was changed`, {
      hint: `add servers.${server} to the config file, or restore it elsewhere with --server (one of: ${configured.join(', ')})`,
    })
  }
  return server
}

async function exists(admin: pg.Client, name: string): Promise<boolean> {
  return (await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount! > 0
}

/** DROP DATABASE, ending its sessions first. */
export async function dropDatabase(admin: pg.Client, name: string): Promise<void> {
  const num = Number((await admin.query<{n: string}>("SELECT current_setting('server_version_num') AS n")).rows[0].n)
  if (dropDatabaseForceSupported(num)) {
    const {rows} = await admin.query<{sql: string}>("SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', $1::text) AS sql", [name])
    await admin.query(rows[0].sql)
    return
  }
  await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name])
  const {rows} = await admin.query<{sql: string}>("SELECT format('DROP DATABASE IF EXISTS %I', $1::text) AS sql", [name])
  await admin.query(rows[0].sql)
}

export async function restoreBackup(options: RestoreOptions): Promise<RestoreResult> {
  const progress = options.progress ?? (() => {})
  const now = options.now ?? (() => new Date())
  const t0 = Date.now()

  // 1. Checks that change nothing: the backup, the database in it, the target name, tools.
  const entry = options.entry
  if (entry.status !== 'complete' || !entry.manifest) {
    throw new CliError(`backup ${entry.id} is ${entry.status} (${entry.problem ?? 'no manifest'}) and cannot be restored`, {
      hint: 'choose a complete backup: `singularity backup list`',
      code: 'BACKUP_INCOMPLETE',
    })
  }
  if (entry.verified === 'failed') {
    throw new CliError(`backup ${entry.id} failed its last verification; nothing was changed`, {
      hint: `choose another backup, or rerun \`singularity backup verify ${entry.id}\` if the cause is fixed`,
      code: 'BACKUP_VERIFY_FAILED',
    })
  }
  const source = pickDatabase(entry.manifest.databases, options.db, entry.id)
  const target = validateName('database', options.as ?? defaultRestoreName(source.name, now()))
  for (const file of [source, ...(source.queueFile ? [source.queueFile] : [])]) {
    const actual = await hashFile(join(entry.path, file.file)).catch(() => undefined)
    if (!actual || actual.sha256 !== file.sha256) {
      throw new CliError(`${file.file} in backup ${entry.id} does not match its manifest checksum; nothing was changed`, {
        hint: `run \`singularity backup verify ${entry.id}\` and choose another backup`,
        code: 'BACKUP_CORRUPT',
      })
    }
  }
  // an encrypted backup needs its key before anything is created: a wrong or missing key changes nothing
  const keys = entry.manifest.encryption ? keyLookup(options.keyFile) : undefined
  if (keys && entry.manifest.encryption) keys(entry.manifest.encryption.keyId)
  const archiveNum = parseToolVersion(`(PostgreSQL) ${entry.manifest.tools.pgDump}`)?.num ?? entry.manifest.server.versionNum
  const tools = await findClientTools(archiveNum, {purpose: 'restore'})

  // 2. An existing target is replaced only when confirmed.
  const replace = await exists(options.admin, target)
  if (replace) await options.confirmOverwrite(target)
  const scratch = replace ? `${target.slice(0, MAX_NAME - 15)}_restoring_${randomBytes(2).toString('hex')}` : target

  // 3. The new database, owned by the original owner when that role exists (and not --no-owner).
  const {rows: who} = await options.admin.query<{me: string; has: boolean}>('SELECT current_user AS me, EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AS has', [source.owner ?? ''])
  const ownerIsOriginal = Boolean(source.owner && who[0].has && !options.noOwner)
  const owner = ownerIsOriginal ? source.owner! : who[0].me
  if (!ownerIsOriginal && !options.noOwner) progress(`role ${source.owner ?? '(unknown)'} does not exist here: ${target} will be owned by ${owner}`)
  const create = async (withLocale: boolean) => {
    const {rows} = await options.admin.query<{sql: string}>(
      withLocale
        ? "SELECT format('CREATE DATABASE %I OWNER %I TEMPLATE template0 ENCODING %L LC_COLLATE %L LC_CTYPE %L', $1::text, $2::text, $3::text, $4::text, $5::text) AS sql"
        : "SELECT format('CREATE DATABASE %I OWNER %I TEMPLATE template0', $1::text, $2::text) AS sql",
      withLocale ? [scratch, owner, source.encoding, source.collate, source.ctype] : [scratch, owner],
    )
    await options.admin.query(rows[0].sql)
  }
  if (source.encoding && source.collate && source.ctype) {
    try {
      await create(true)
    } catch (error) {
      progress(`creating ${scratch} with the original encoding/locale failed (${(error as Error).message}); using the server's defaults`)
      await create(false)
    }
  } else {
    await create(false)
  }

  // 4. The source's isolation (pg_dump does not carry database grants), then pg_restore (and the
  //    queues of the pgmq extension); on any failure the new database is dropped again.
  let access: {granted: DatabaseGrant[]; missingRoles: string[]} = {granted: [], missingRoles: []}
  let restored: {jobs: number} = {jobs: options.jobs}
  try {
    access = await applySourceAccess(options.admin, scratch, source.access)
    if (access.missingRoles.length > 0) progress(`roles ${access.missingRoles.join(', ')} do not exist here: their access to ${source.name} is not granted on ${target}`)
    if (target !== source.name) await markCopy(options.admin, scratch, {source: source.name, backup: entry.id, restoredAt: now().toISOString()})
    progress(`restoring ${source.name} from ${entry.id} into ${scratch}…`)
    restored = await restoreArchive({
      adminTarget: options.adminTarget,
      database: scratch,
      backupPath: entry.path,
      source,
      pgRestore: tools.pgRestore,
      jobs: options.jobs,
      noOwner: options.noOwner,
      signal: options.signal,
      progress,
      keys,
    })
  } catch (error) {
    await dropDatabase(options.admin, scratch).catch(() => {})
    if ((error as CliError).code === 'INTERRUPTED' || options.signal?.aborted) {
      throw new CliError('restore interrupted; the new database was dropped', {exitCode: ExitCode.interrupted, code: 'INTERRUPTED'})
    }
    if (error instanceof PgRestoreError) {
      const roleProblem = /role .* does not exist/.test(error.stderr)
      throw new CliError(`pg_restore into ${scratch} failed: ${error.message}; the new database was dropped`, {
        hint: roleProblem ? `the backup's roles are missing here: restore ${join(entry.path, 'globals.sql')} with psql first, or pass --no-owner` : 'nothing else was changed',
        code: 'RESTORE_FAILED',
      })
    }
    if (error instanceof CliError) throw new CliError(`${error.message}; the new database was dropped`, {hint: error.hint, code: error.code})
    throw error
  }

  // 5. Replace: only now is the old database dropped and the new one renamed into place.
  if (replace) {
    progress(`replacing ${target} with the restored copy`)
    await dropDatabase(options.admin, target)
    const {rows} = await options.admin.query<{sql: string}>("SELECT format('ALTER DATABASE %I RENAME TO %I', $1::text, $2::text) AS sql", [scratch, target])
    await options.admin.query(rows[0].sql)
  }

  const client = await connect(onDatabase(options.adminTarget, target), {applicationName: 'singularity-backup'})
  let tables = 0
  try {
    const {rows} = await client.query<{n: string}>(
      "SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r','p') AND n.nspname NOT IN ('pg_catalog','information_schema') AND n.nspname NOT LIKE 'pg_toast%'",
    )
    tables = Number(rows[0].n)
  } finally {
    await client.end().catch(() => {})
  }
  return {id: entry.id, source: source.name, kind: source.kind, database: target, replaced: replace, owner, ownerIsOriginal, access: access.granted, tables, jobs: restored.jobs, singleStream: restored.jobs < options.jobs ? singleStreamNote(options.jobs) : null, durationMs: Date.now() - t0}
}
