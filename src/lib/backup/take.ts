/**
 * Taking a backup: pg_dump -Fc of each database (in parallel, bounded) and pg_dumpall
 * --globals-only, written into `<dir>/.<id>.partial/` and renamed to `<dir>/<id>/` only once every
 * file is written, checksummed and fsynced and the manifest says complete.
 */
import {createWriteStream} from 'node:fs'
import {PassThrough} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {mkdir, open, rename, rm} from 'node:fs/promises'
import {hostname} from 'node:os'
import {dirname, join} from 'node:path'
import type pg from 'pg'

import {CliError, ExitCode} from '../cli/errors.js'
import {formatBytes} from '../cli/format.js'
import type {Target} from '../config/resolve.js'
import {
  backupId,
  dumpFileName,
  GLOBALS_FILE,
  MANIFEST_FILE,
  MANIFEST_FORMAT,
  partialDirName,
  deletingDirName,
  type BackupKind,
  type DatabaseEntry,
  type Manifest,
} from './manifest.js'
import {connect} from '../db/connect.js'
import {CHUNK_SIZE, CIPHER, encryptStream} from './cipher.js'
import {DATABASE_ACCESS_SQL, type DatabaseGrant} from './copies.js'
import {queueFileName, writeQueueRows} from './queue-file.js'
import {countTables, exactTablePattern, readQueues, type DumpContents} from './snapshot.js'
import {fsyncPath, hashFile, manifestSize, writeFileAtomic} from './store.js'
import {findClientTools, libpqEnv, type ClientTools} from './tools.js'

/** The admin server's name (several servers). */
const MAIN = 'main'

export interface BackupSource {
  /** concrete database name */
  name: string
  /** topology kind (singularity, genesis, …) */
  kind: string
  target: Target
  /** the server it is placed on (several servers); absent: the admin server */
  server?: string
}

/** Several servers: another server of the estate (its roles are saved too, its databases' metadata read there). */
export interface OtherServer {
  name: string
  admin: pg.Client
  target: Target
}

export interface TakeOptions {
  /** a connected admin client (server version, database metadata) */
  admin: pg.Client
  /** the admin connection, for pg_dumpall --globals-only */
  adminTarget: Target
  databases: BackupSource[]
  dir: string
  kind: BackupKind
  prefix: string
  /** pg_dump processes at a time */
  jobs: number
  signal?: AbortSignal
  progress?: (message: string) => void
  now?: () => Date
  /** encrypt every file while it streams (null: --no-encrypt) */
  encryption: {key: Buffer; keyId: string} | null
  /** several servers: the other servers (the admin server is `admin`) */
  servers?: OtherServer[]
}

export interface TakeResult {
  id: string
  path: string
  manifest: Manifest
  durationMs: number
  size: number
}

interface DbInfo {
  datname: string
  access: DatabaseGrant[]
  owner: string | null
  encoding: string | null
  collate: string | null
  ctype: string | null
  size: string | null
}

function lastLine(text: string): string {
  return text.trim().split('\n').filter(Boolean).pop()?.replace(/^pg_dump(all)?: (error: )?/, '') ?? ''
}

/** Creates an empty file with mode 0600 so the tool that fills it never widens its mode. */
async function createPrivateFile(path: string): Promise<void> {
  const handle = await open(path, 'wx', 0o600)
  await handle.close()
}

/**
 * Runs `fn` over items, at most `limit` at a time. After the first error nothing new starts and
 * `onError` is called (to cancel what runs); waits for all, then throws the first real error.
 */
async function boundedAll<T>(items: T[], limit: number, fn: (item: T) => Promise<void>, onError: () => void): Promise<void> {
  let next = 0
  const errors: unknown[] = []
  const worker = async () => {
    while (next < items.length && errors.length === 0) {
      const item = items[next++]
      try {
        await fn(item)
      } catch (error) {
        errors.push(error)
        onError()
      }
    }
  }
  await Promise.all(Array.from({length: Math.max(1, Math.min(limit, items.length))}, worker))
  if (errors.length > 0) throw errors.find((e) => !(e instanceof CliError && e.code === 'CANCELLED')) ?? errors[0]
}

/** Reserves a fresh id by creating its partial directory (mkdir is atomic: two runs never share one). */
async function reserveId(dir: string, kind: BackupKind, at: Date): Promise<{id: string; partial: string}> {
  const {existsSync} = await import('node:fs')
  for (let sequence = 0; sequence < 1000; sequence++) {
    const id = backupId(kind, at, sequence)
    if (existsSync(join(dir, id)) || existsSync(join(dir, deletingDirName(id)))) continue
    const partial = join(dir, partialDirName(id))
    try {
      await mkdir(partial, {mode: 0o700})
      return {id, partial}
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') continue
      throw error
    }
  }
  throw new CliError(`could not find a free backup id in ${dir}`, {code: 'BACKUP_ID'})
}

/** Takes a backup; throws (and removes the partial directory) on failure or interruption. */
export async function takeBackup(options: TakeOptions): Promise<TakeResult> {
  const progress = options.progress ?? (() => {})
  const now = options.now ?? (() => new Date())
  const names = options.databases.map((d) => d.name)

  // 1. Everything that can fail without writing: server version, databases, tools.
  const server = await options.admin.query<{num: string; version: string; superuser: boolean}>(
    `SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS version,
            (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser`,
  )
  const serverNum = Number(server.rows[0].num)
  const serverVersion = server.rows[0].version
  const others = options.servers ?? []
  const readInfo = (client: pg.Client, wanted: string[]) =>
    client.query<DbInfo>(
      `SELECT datname, pg_get_userbyid(datdba) AS owner, pg_encoding_to_char(encoding) AS encoding,
              datcollate AS collate, datctype AS ctype, ${DATABASE_ACCESS_SQL} AS access,
              CASE WHEN has_database_privilege(d.oid, 'CONNECT') THEN pg_database_size(d.oid) END AS size
         FROM pg_database d WHERE datname = ANY($1::text[])`,
      [wanted],
    )
  // each database's metadata on its own server; the other servers' versions decide the tools too
  const onServer = (name: string | undefined) => options.databases.filter((d) => (d.server ?? MAIN) === (name ?? MAIN)).map((d) => d.name)
  const infoRows = (await readInfo(options.admin, onServer(MAIN))).rows
  let toolsNum = serverNum
  const otherFacts = new Map<string, {superuser: boolean}>()
  for (const other of others) {
    const {rows: [facts]} = await other.admin.query<{num: string; superuser: boolean}>(
      `SELECT current_setting('server_version_num') AS num, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser`,
    )
    toolsNum = Math.max(toolsNum, Number(facts.num))
    otherFacts.set(other.name, {superuser: facts.superuser === true})
    infoRows.push(...(await readInfo(other.admin, onServer(other.name))).rows)
  }
  const info = new Map(infoRows.map((r) => [r.datname, r]))
  const missing = names.filter((n) => !info.has(n))
  if (missing.length > 0) {
    throw new CliError(`database${missing.length > 1 ? 's' : ''} ${missing.join(', ')} not found on the server; nothing was written`, {
      hint: 'create the estate with `singularity db init` (check --prefix), or narrow the backup with --db',
      code: 'DATABASE_NOT_FOUND',
    })
  }
  const tools: ClientTools = await findClientTools(toolsNum, {purpose: 'dump'})
  if (options.signal?.aborted) throw interrupted()

  // 2. Reserve the id and its partial directory.
  try {
    await mkdir(options.dir, {recursive: true, mode: 0o700})
  } catch (error) {
    throw new CliError(`cannot create the backup directory ${options.dir}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, {
      hint: 'choose a writable one with --dir or SINGULARITY_BACKUP_DIR',
      code: 'BACKUP_DIR',
    })
  }
  const startedAt = now()
  const {id, partial} = await reserveId(options.dir, options.kind, startedAt)
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    id,
    kind: options.kind,
    status: 'running',
    prefix: options.prefix,
    startedAt: startedAt.toISOString(),
    endedAt: null,
    server: {version: serverVersion, versionNum: serverNum},
    tools: {pgDump: tools.version.version, binDir: tools.binDir},
    databases: [],
    globals: null,
    encrypted: options.encryption !== null,
    encryption: options.encryption ? {cipher: CIPHER, keyId: options.encryption.keyId, chunkSize: CHUNK_SIZE} : null,
    writer: {pid: process.pid, host: hostname()},
  }
  const writeManifest = () => writeFileAtomic(join(partial, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n')

  const internal = new AbortController()
  const onAbort = () => internal.abort()
  options.signal?.addEventListener('abort', onAbort, {once: true})
  const {execa} = await import('execa')
  /** Runs a dump tool; its output goes to `output`: through the cipher when encrypting (no plaintext on disk), else with -f. */
  const run = async (file: string, args: string[], env: Record<string, string>, what: string, output: string) => {
    if (internal.signal.aborted) throw new CliError('cancelled', {code: 'CANCELLED'})
    const encrypt = options.encryption
    const child = execa(file, encrypt ? args : [...args, '-f', output], {env, extendEnv: false, stdin: 'ignore', stdout: encrypt ? 'pipe' : 'ignore', stderr: 'pipe', reject: false, cancelSignal: internal.signal, buffer: {stdout: false}})
    const written = encrypt ? pipeline(child.stdout!, encryptStream(encrypt.key, encrypt.keyId), createWriteStream(output, {flags: 'w'})) : Promise.resolve()
    const [result] = await Promise.all([child, written.catch((error: Error) => error)]).then(async ([r, w]) => {
      if (w instanceof Error && r.exitCode === 0) throw new CliError(`${what} failed: writing ${output}: ${w.message}`, {code: 'BACKUP_FAILED'})
      return [r]
    })
    if (result.isCanceled || internal.signal.aborted && result.exitCode !== 0) throw new CliError('cancelled', {code: 'CANCELLED'})
    if (result.exitCode !== 0 || result.failed) {
      const reason = lastLine(String(result.stderr ?? '')) || result.shortMessage?.split('\n')[0] || `exit code ${result.exitCode}`
      throw new CliError(`${what} failed: ${reason}`, {code: 'BACKUP_FAILED', hint: 'nothing was kept; fix the cause and rerun'})
    }
  }

  try {
    await writeManifest()
    progress(`backup ${id}: ${names.length} database${names.length === 1 ? '' : 's'} + globals into ${options.dir} (pg_dump ${tools.version.version}, ${Math.min(options.jobs, names.length)} at a time)`)

    // 3. Globals (roles): role password hashes inside, so 0600 and never printed.
    const globalsPath = join(partial, GLOBALS_FILE)
    await createPrivateFile(globalsPath)
    const superuser = server.rows[0].superuser === true
    const adminEnv = libpqEnv(options.adminTarget)
    const globalsArgs = ['--globals-only', '--no-password', '-l', adminEnv.PGDATABASE ?? 'postgres']
    if (!superuser) globalsArgs.push('--no-role-passwords')
    await run(tools.pgDumpAll, globalsArgs, adminEnv, 'pg_dumpall --globals-only', globalsPath)
    await fsyncPath(globalsPath)
    manifest.globals = {file: GLOBALS_FILE, ...(await hashFile(globalsPath)), rolePasswords: superuser}
    progress(`globals: roles${superuser ? '' : ' (without passwords: not a superuser)'} saved`)
    // several servers: each other server's roles (the same roles, with that server's verifiers)
    for (const other of others) {
      const file = `globals-${other.name}.sql`
      const path = join(partial, file)
      await createPrivateFile(path)
      const env = libpqEnv(other.target)
      const withPasswords = otherFacts.get(other.name)!.superuser
      await run(tools.pgDumpAll, ['--globals-only', '--no-password', '-l', env.PGDATABASE ?? 'postgres', ...(withPasswords ? [] : ['--no-role-passwords'])], env, `pg_dumpall --globals-only on server ${other.name}`, path)
      await fsyncPath(path)
      manifest.serverGlobals = [...(manifest.serverGlobals ?? []), {file, ...(await hashFile(path)), server: other.name, rolePasswords: withPasswords}]
      progress(`globals of server ${other.name}: roles${withPasswords ? '' : ' (without passwords: not a superuser)'} saved`)
    }
    if (others.length > 0) manifest.placement = Object.fromEntries(options.databases.map((d) => [d.name, d.server ?? MAIN]))

    // 4. One pg_dump -Fc per database, `jobs` at a time.
    let done = 0
    const entries = new Map<string, DatabaseEntry>()
    await boundedAll(options.databases, options.jobs, async (db) => {
      const file = dumpFileName(db.name)
      const path = join(partial, file)
      const t0 = Date.now()
      progress(`${db.name}: dumping…`)
      await createPrivateFile(path)
      const dumped = await dumpInSnapshot(db, path, (args) => run(tools.pgDump, args, libpqEnv(db.target, db.name), `pg_dump of ${db.name}`, path), internal.signal, options.encryption)
      await fsyncPath(path)
      const {sha256, size} = await hashFile(path)
      const meta = info.get(db.name)!
      const durationMs = Date.now() - t0
      entries.set(db.name, {
        name: db.name,
        kind: db.kind,
        file,
        size,
        sha256,
        owner: meta.owner,
        encoding: meta.encoding,
        collate: meta.collate,
        ctype: meta.ctype,
        databaseSize: meta.size === null ? null : Number(meta.size),
        durationMs,
        access: meta.access,
        contents: dumped.contents,
        queueFile: dumped.queueFile,
      })
      done++
      progress(`${db.name}: ${formatBytes(size)} in ${(durationMs / 1000).toFixed(1)}s [${done}/${names.length}]`)
    }, () => internal.abort())
    manifest.databases = names.map((n) => entries.get(n)!)

    // 5. Complete: manifest says so, then the rename makes it visible as a backup.
    manifest.status = 'complete'
    manifest.endedAt = now().toISOString()
    delete manifest.writer
    await writeManifest()
    await fsyncPath(partial)
    const final = join(options.dir, id)
    await rename(partial, final)
    await fsyncPath(options.dir)
    const size = manifestSize(manifest)
    return {id, path: final, manifest, durationMs: Date.parse(manifest.endedAt) - startedAt.getTime(), size}
  } catch (error) {
    internal.abort()
    await rm(partial, {recursive: true, force: true}).catch(() => {})
    if (options.signal?.aborted) throw interrupted()
    throw error
  } finally {
    options.signal?.removeEventListener('abort', onAbort)
  }
}

/**
 * pg_dump of one database in a snapshot exported by our own transaction, which stays open while
 * pg_dump runs: the row counts and queue definitions recorded, and the rows of extension-member
 * queues copied into the queue file, are those of the archive.
 */
async function dumpInSnapshot(
  db: BackupSource,
  path: string,
  pgDump: (args: string[]) => Promise<void>,
  signal: AbortSignal,
  encryption: TakeOptions['encryption'],
): Promise<{contents: DumpContents; queueFile: {file: string; size: number; sha256: string} | null}> {
  const client = await connect(db.target, {applicationName: 'singularity-backup', statementTimeoutMs: 0})
  const cancel = () => void client.end().catch(() => {})
  signal.addEventListener('abort', cancel, {once: true})
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
    const {rows} = await client.query<{snapshot: string}>('SELECT pg_export_snapshot() AS snapshot')
    const queues = await readQueues(client)
    const args = ['--format=custom', '--no-password', `--snapshot=${rows[0].snapshot}`]
    for (const t of queues.excludeTables) args.push(`--exclude-table=${exactTablePattern(t)}`)
    const carried = queues.queues.some((q) => q.carriedBy === 'queue-file')
    const queuePath = join(dirname(path), queueFileName(db.name))
    // pg_dump and our reads run side by side in the same snapshot
    const ours = (async () => {
      const tables = await countTables(client)
      if (carried) {
        await createPrivateFile(queuePath)
        const file = createWriteStream(queuePath, {flags: 'w'})
        const out = encryption ? encryptStream(encryption.key, encryption.keyId) : new PassThrough()
        const closed = pipeline(out, file)
        await writeQueueRows(client, queues.queues, out)
        out.end()
        await closed
      }
      return tables
    })()
    const [tables] = await Promise.all([ours, pgDump(args)])
    await client.query('COMMIT')
    let queueFile = null
    if (carried) {
      await fsyncPath(queuePath)
      queueFile = {file: queueFileName(db.name), ...(await hashFile(queuePath))}
    }
    return {contents: {queueEngine: queues.engine, tables, queues: queues.queues}, queueFile}
  } finally {
    signal.removeEventListener('abort', cancel)
    await client.end().catch(() => {})
  }
}

function interrupted(): CliError {
  return new CliError('backup interrupted; the partial backup was removed', {exitCode: ExitCode.interrupted, code: 'INTERRUPTED'})
}
