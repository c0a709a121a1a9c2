/**
 * `backup restore --to-time`: the whole cluster as it was at a moment, restored by pgBackRest
 * into a NEW data directory and started there as a cluster of its own (the local-cluster layout,
 * so `singularity local status|env|stop --data-dir <dir>` work on it). Never over the running
 * server: replacing it is `--in-place --confirm <stanza>` with the server stopped.
 */
import {appendFileSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {createServer} from 'node:net'
import {dirname, join, resolve} from 'node:path'

import type pg from 'pg'

import {CliError, UsageError} from '../../cli/errors.js'
import type {ResolvedConfig, Target} from '../../config/resolve.js'
import {connect} from '../../db/connect.js'
import type {EstateStatus} from '../../provision/status.js'
import {requirePhysicalSetup, type PhysicalSetup} from './layout.js'
import {listPhysical, type RecoveryWindow} from './list.js'
import {runPgBackRest} from './pgbackrest.js'
import {parseRecoveryTime, type RecoveryTime} from './recovery-time.js'
import {osUserIds, passwordFor, postmasterRunning, serverFacts} from './server.js'

export interface RestoreToTimeOptions {
  config: ResolvedConfig
  backupDir: string
  /** the source server, when reachable: its WAL up to now is archived before restoring */
  target?: Target
  toTime: string
  /** --key-file (an encrypted repository's key) */
  keyFile?: string
  into?: string
  port?: number
  inPlace?: boolean
  /** asks for --confirm <stanza> (in place only) */
  confirmInPlace?: (stanza: string) => Promise<void>
  /** longest wait for WAL replay and promotion */
  waitSeconds?: number
  progress: (message: string) => void
  signal?: AbortSignal
}

export interface RestoreToTimeResult {
  kind: 'physical'
  stanza: string
  toTime: string
  window: {earliest: string; latest: string; latestSource: 'server' | 'archive'}
  backupSet: string | null
  inPlace: boolean
  dataDir: string
  /** the directory `singularity local … --data-dir` takes for the restored cluster */
  clusterDir: string | null
  port: number
  pid: number | null
  url: string
  /** the restored cluster's last replayed commit (at or before --to-time) */
  lastCommitAt: string | null
  durationMs: number
  stop: string
  /** `db status` against the restored cluster */
  status: EstateStatus | null
}

function windowError(t: RecoveryTime, w: {earliest: string; latest: string}, why: string): UsageError {
  return new UsageError(`--to-time ${t.target} is outside the recovery window ${w.earliest} … ${w.latest} (${why}); nothing was changed`, {
    hint: 'choose a time inside the window (see `singularity backup list`)',
    code: 'OUTSIDE_WINDOW',
  })
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolvePort) => {
    const server = createServer()
    server.once('error', () => resolvePort(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolvePort(true)))
  })
}

/** Checks --into before anything happens: absent or an empty directory, not the live data directory. */
function checkInto(into: string, setup: PhysicalSetup): void {
  if (existsSync(into)) {
    if (!statSync(into).isDirectory()) throw new UsageError(`--into ${into} is not a directory; nothing was changed`, {code: 'INTO_NOT_EMPTY'})
    if (readdirSync(into).length > 0) {
      throw new UsageError(`--into ${into} is not empty; nothing was changed`, {hint: 'name a new or empty directory: a restore never writes over existing files', code: 'INTO_NOT_EMPTY'})
    }
  }
  const data = resolve(setup.dataDir)
  if (into === data || into.startsWith(data + '/') || data.startsWith(into + '/')) {
    throw new UsageError(`--into ${into} overlaps the server's data directory ${data}`, {hint: 'to replace the server itself: stop it, then --in-place --confirm ' + setup.stanza})
  }
}

/** As root, the server's OS user must reach the directory (pgBackRest and PostgreSQL run as it). */
async function checkReachable(path: string, osUser: string): Promise<void> {
  if (process.getuid?.() !== 0 || osUser === 'root') return
  const {execa} = await import('execa')
  const r = await execa('runuser', ['-u', osUser, '--', 'test', '-x', path], {reject: false, stdin: 'ignore'})
  if (r.exitCode !== 0) {
    throw new UsageError(`the ${osUser} OS user cannot reach ${path}; nothing was changed`, {hint: 'choose a directory outside /root, e.g. under /var/lib/singularity or /srv'})
  }
}

/**
 * Makes the source's newest WAL archived: one commit (so the archive holds a commit after any
 * earlier target time, which recovery needs to stop there) and a WAL switch, then waits for the
 * archiver. Returns the server's time afterwards: the latest restorable time.
 */
async function archiveUpToNow(client: pg.Client, progress: (m: string) => void, timeoutMs = 180_000): Promise<Date> {
  await client.query('SELECT pg_catalog.txid_current()')
  const {rows} = await client.query<{wal: string}>('SELECT pg_walfile_name(pg_switch_wal()) AS wal')
  const wal = rows[0].wal
  progress(`waiting for WAL ${wal} to be archived`)
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const r = await client.query<{last: string | null; failed: string | null; now: Date}>('SELECT last_archived_wal AS last, last_failed_wal AS failed, now() AS now FROM pg_stat_archiver')
    const last = r.rows[0].last
    if (last && last.slice(8) >= wal.slice(8) && last.slice(0, 8) >= wal.slice(0, 8)) return r.rows[0].now
    if (Date.now() > deadline) {
      throw new CliError(`WAL ${wal} was not archived within ${timeoutMs / 1000}s (last archived: ${last ?? 'none'}, last failed: ${r.rows[0].failed ?? 'none'})`, {
        hint: 'archiving is stuck: see `singularity doctor`',
        code: 'ARCHIVE_STUCK',
      })
    }
    await new Promise((r2) => setTimeout(r2, 500))
  }
}

/** The source server, when it answers and is the one the backups are of. */
async function sourceClient(target: Target | undefined, setup: PhysicalSetup): Promise<pg.Client | undefined> {
  if (!target) return undefined
  let client: pg.Client
  try {
    client = await connect(target, {applicationName: 'singularity backup restore', statementTimeoutMs: 60_000})
  } catch {
    return undefined
  }
  const facts = await serverFacts(client).catch(() => undefined)
  if (!facts?.dataDir || resolve(facts.dataDir) !== resolve(setup.dataDir) || facts.inRecovery) {
    await client.end().catch(() => {})
    return undefined
  }
  return client
}

export async function restoreToTime(options: RestoreToTimeOptions): Promise<RestoreToTimeResult> {
  const setup = requirePhysicalSetup(options.backupDir, options.keyFile)
  const t = parseRecoveryTime(options.toTime)
  if (options.inPlace && options.into) throw new UsageError('--in-place and --into exclude each other')
  if (!options.inPlace && !options.into) throw new UsageError('--to-time needs --into <new directory> (or --in-place --confirm <stanza> with the server stopped)')
  const into = options.into ? resolve(options.into) : undefined
  if (into) {
    checkInto(into, setup)
    await checkReachable(existsSync(into) ? into : dirname(into), setup.osUser)
  }
  if (options.port !== undefined && !(await portFree(options.port))) throw new UsageError(`port ${options.port} is in use; nothing was changed`, {hint: 'choose another --port, or omit it for a free one'})
  if (options.inPlace && postmasterRunning(setup.dataDir)) {
    throw new UsageError(`the server of ${setup.stanza} is running (${setup.dataDir}); an in-place restore needs it stopped`, {
      hint: setup.localDir ? `stop it: singularity local stop --data-dir ${setup.localDir}` : 'stop it first (pg_ctl stop / systemctl stop)',
    })
  }

  const listing = await listPhysical(options.backupDir, setup)
  if (!listing.window) {
    throw new CliError(`no physical backup of ${setup.stanza} to restore from`, {hint: 'take one: singularity backup --physical --type full', code: 'NO_PHYSICAL_BACKUP', exitCode: 4})
  }
  const window: RecoveryWindow = listing.window
  const started = Date.now()
  let latest: Date
  let latestSource: 'server' | 'archive' = 'archive'
  const source = options.inPlace ? undefined : await sourceClient(options.target, setup)
  try {
    if (t.date.getTime() < Date.parse(window.earliest)) throw windowError(t, window, 'before the oldest backup finished')
    if (source) {
      const now = (await source.query<{now: Date}>('SELECT now() AS now')).rows[0].now
      if (t.date > now) throw windowError(t, {earliest: window.earliest, latest: now.toISOString()}, 'in the future')
      latest = await archiveUpToNow(source, options.progress)
      latestSource = 'server'
    } else {
      latest = new Date(window.latest)
      if (t.date > latest) throw windowError(t, window, 'after the last archived WAL')
    }
  } finally {
    await source?.end().catch(() => {})
  }
  if (options.inPlace) await options.confirmInPlace?.(setup.stanza)

  const ids = process.getuid?.() === 0 && setup.osUser !== 'root' ? osUserIds(setup.osUser) : undefined
  const dataDir = into ? join(into, 'data') : setup.dataDir
  const runDir = into ? join(into, 'run') : undefined
  const createdInto = into !== undefined && !existsSync(into)
  if (into) {
    mkdirSync(into, {recursive: true, mode: 0o755})
    for (const dir of [dataDir, runDir!]) {
      mkdirSync(dir, {mode: 0o700})
      if (ids) chownSync(dir, ids.uid, ids.gid)
    }
  }
  let backupSet: string | null = null
  options.progress(`pgbackrest restore of ${setup.stanza} to ${t.target} into ${dataDir}`)
  try {
    await runPgBackRest(
      options.backupDir,
      setup,
      'restore',
      [
        `--pg1-path=${dataDir}`,
        '--type=time',
        `--target=${t.target}`,
        '--target-action=promote',
        ...(options.inPlace ? ['--delta'] : []),
      ],
      {
        logLevel: 'info',
        signal: options.signal,
        onLine: (line) => {
          const set = /restore backup set (\S+)/.exec(line)
          if (set) backupSet = set[1].replace(/,$/, '')
          if (/backup set|restore size|ERROR|WARN/.test(line)) options.progress(line)
        },
      },
    )
  } catch (error) {
    // nothing half-restored is left behind in a directory we were given empty
    if (into) {
      if (createdInto) rmSync(into, {recursive: true, force: true})
      else for (const entry of readdirSync(into)) rmSync(join(into, entry), {recursive: true, force: true})
    }
    throw error
  }

  if (into) prepareCopy(into, dataDir, setup, options.target)
  const clusterDir = into ?? setup.localDir
  let port: number
  let pid: number | null = null
  const {startCluster} = await import('../../local-cluster/cluster.js')
  const waitSeconds = options.waitSeconds ?? 3600
  if (clusterDir) {
    options.progress('starting the restored cluster: PostgreSQL replays WAL up to the target, then promotes')
    const startedCluster = await startCluster({dir: clusterDir, port: options.port, startTimeoutSeconds: waitSeconds}).catch((error: Error) => {
      throw new CliError(`the restored cluster did not start: ${error.message}`, {hint: `see ${join(clusterDir, 'run', 'server.log')}`, code: 'RESTORED_START_FAILED'})
    })
    port = startedCluster.status.port!
    pid = startedCluster.status.pid
  } else {
    // in place on a server we do not start ourselves: its operator starts it
    return {
      kind: 'physical',
      stanza: setup.stanza,
      toTime: t.target,
      window: {earliest: window.earliest, latest: latest.toISOString(), latestSource},
      backupSet,
      inPlace: true,
      dataDir,
      clusterDir: null,
      port: setup.port,
      pid: null,
      url: '',
      lastCommitAt: null,
      durationMs: Date.now() - started,
      stop: 'start the server as you usually do: it replays WAL to the target and promotes',
      status: null,
    }
  }
  const {readLocalState} = await import('../../local-cluster/paths.js')
  const state = readLocalState(clusterDir)!
  const url = state.adminUrl
  const lastCommitAt = await waitForPromotion(url, clusterDir, waitSeconds, options.progress)
  const {estateStatus} = await import('../../provision/status.js')
  const status = await estateStatus({...options.config, admin: {url, source: 'flag', origin: 'restored cluster'}, databases: {}})
  return {
    kind: 'physical',
    stanza: setup.stanza,
    toTime: t.target,
    window: {earliest: window.earliest, latest: latest.toISOString(), latestSource},
    backupSet,
    inPlace: Boolean(options.inPlace),
    dataDir,
    clusterDir,
    port,
    pid,
    url,
    lastCommitAt,
    durationMs: Date.now() - started,
    stop: `singularity local stop --data-dir ${clusterDir}`,
    status,
  }
}

/**
 * Turns the restored data directory into a cluster of its own: the local-cluster layout
 * (state.json, password, pgpass) so `local start|stop|status|env --data-dir` manage it, and
 * settings that keep it apart from its source: no archiving into the source's repository (a
 * copy on a new timeline there would confuse later restores) and no pg_cron jobs acting on it.
 */
function prepareCopy(into: string, dataDir: string, setup: PhysicalSetup, target: Target | undefined): void {
  const autoConf = join(dataDir, 'postgresql.auto.conf')
  appendFileSync(
    autoConf,
    [
      '',
      '# Added by `singularity backup restore --to-time`: this copy archives nothing into its source\'s',
      "# repository and runs no pg_cron jobs (ALTER SYSTEM RESET them to change that).",
      "archive_mode = 'off'",
      'cron.max_running_jobs = 0',
      '',
    ].join('\n'),
  )
  if (!existsSync(join(dataDir, 'postgresql.conf'))) writeFileSync(join(dataDir, 'postgresql.conf'), '# the source kept its configuration outside its data directory\n')
  if (!existsSync(join(dataDir, 'pg_hba.conf'))) {
    writeFileSync(join(dataDir, 'pg_hba.conf'), ['local all all scram-sha-256', 'host all all 127.0.0.1/32 scram-sha-256', 'host all all ::1/128 scram-sha-256', ''].join('\n'))
  }
  const ids = process.getuid?.() === 0 && setup.osUser !== 'root' ? osUserIds(setup.osUser) : undefined
  if (ids) {
    for (const f of ['postgresql.auto.conf', 'postgresql.conf', 'pg_hba.conf']) chownSync(join(dataDir, f), ids.uid, ids.gid)
  }
  const version = readFileSync(join(dataDir, 'PG_VERSION'), 'utf8').trim()
  writeFileSync(join(into, 'state.json'), JSON.stringify({port: 0, binDir: setup.binDir, version, superuser: setup.dbUser, createdAt: new Date().toISOString(), restoredFrom: setup.stanza}, null, 2) + '\n', {mode: 0o644})
  writeFileSync(join(into, 'superuser.password'), (target ? (passwordFor(target) ?? '') : '') + '\n', {mode: 0o600})
  writeFileSync(join(into, 'pgpass'), '', {mode: 0o600})
}

/** Waits until the restored server has promoted (recovery reached the target); returns its last replayed commit time. */
async function waitForPromotion(url: string, clusterDir: string, waitSeconds: number, progress: (m: string) => void): Promise<string | null> {
  const deadline = Date.now() + waitSeconds * 1000
  const dataDir = join(clusterDir, 'data')
  let said = false
  for (;;) {
    if (!postmasterRunning(dataDir)) {
      const log = join(clusterDir, 'run', 'server.log')
      const tail = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter((l) => /FATAL|PANIC|ERROR/.test(l)).slice(-2).join(' | ') : ''
      throw new CliError(`the restored cluster stopped during recovery${tail ? `: ${tail}` : ''}`, {hint: `see ${log}`, code: 'RECOVERY_FAILED'})
    }
    try {
      const client = await connect(url, {applicationName: 'singularity backup restore', statementTimeoutMs: 10_000})
      try {
        const {rows} = await client.query<{recovery: boolean; last: Date | null}>('SELECT pg_is_in_recovery() AS recovery, pg_last_xact_replay_timestamp() AS last')
        if (!rows[0].recovery) return rows[0].last?.toISOString() ?? null
      } finally {
        await client.end().catch(() => {})
      }
    } catch (error) {
      if (error instanceof CliError && error.code === 'AUTH_FAILED') throw error
    }
    if (Date.now() > deadline) throw new CliError(`the restored cluster did not finish recovery within ${waitSeconds}s`, {hint: `it keeps going; see ${join(clusterDir, 'run', 'server.log')}`, code: 'RECOVERY_TIMEOUT'})
    if (!said) {
      progress('replaying WAL …')
      said = true
    }
    await new Promise((r) => setTimeout(r, 500))
  }
}
