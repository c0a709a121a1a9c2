import {randomBytes} from 'node:crypto'
import {chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {createServer} from 'node:net'
import {join} from 'node:path'

import {CliError} from '../cli/errors.js'
import {checkExtensionPackages, findServerBinaries, installCommand, type ExtensionCheck, type ServerBinaries} from './binaries.js'
import {DEFAULT_SLOT_WAL_CAP} from '../cdc/cap.js'
import {layout, localUrl, readLocalState, type LocalState} from './paths.js'

export interface StartOptions {
  dir: string
  port?: number
  /** install missing Debian packages with apt-get (root only) */
  installDeps?: boolean
  /** max_slot_wal_keep_size, e.g. '4GB' (default: the recorded one, else DEFAULT_SLOT_WAL_CAP) */
  maxSlotWalKeepSize?: string
  progress?: (message: string) => void
  /** how long pg_ctl waits for the server to accept connections (a restored cluster replays WAL first) */
  startTimeoutSeconds?: number
}

export interface ClusterStatus {
  dir: string
  created: boolean
  running: boolean
  pid: number | null
  port: number | null
  version: string | null
  dataDir: string
  logFile: string
  extensions: ExtensionCheck[]
}

const isRoot = () => process.getuid?.() === 0
const SERVER_USER = 'postgres'

/** Runs a server binary, as the postgres OS user when we are root (initdb/postgres refuse root). */
async function runServerTool(binaries: ServerBinaries, tool: string, args: string[], options: {reject?: boolean} = {}) {
  const {execa} = await import('execa')
  const file = join(binaries.binDir, tool)
  const [cmd, cmdArgs] = isRoot() ? ['runuser', ['-u', SERVER_USER, '--', file, ...args]] : [file, args]
  return execa(cmd, cmdArgs, {reject: options.reject ?? true, stdin: 'ignore', all: true})
}

function ownedByServerUser(path: string): void {
  if (!isRoot()) return
  const entry = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${SERVER_USER}:`))?.split(':')
  if (!entry) {
    throw new CliError(`running as root, but there is no '${SERVER_USER}' OS user to run the server`, {
      hint: 'install postgresql-15 (it creates the user) or run as a non-root user',
      code: 'NO_SERVER_USER',
    })
  }
  chownSync(path, Number(entry[2]), Number(entry[3]))
}

/** A free TCP port on 127.0.0.1, chosen by the kernel. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))))
    })
  })
}

async function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(true))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(false)))
  })
}

/** Whether the server binary knows a setting (e.g. output_plugin_libraries exists only in some builds). */
async function serverHasSetting(binaries: ServerBinaries, name: string): Promise<boolean> {
  const result = await runServerTool(binaries, 'postgres', ['--describe-config'], {reject: false})
  return String(result.stdout).split('\n').some((line) => line.startsWith(`${name}\t`))
}

/**
 * Settings the product needs: pg_cron preloaded, logical decoding, enough slots and workers, and a
 * cap on the WAL a replication slot may retain: `db init` creates a persistent CDC slot, and a slot
 * nobody reads would otherwise keep WAL until the disk is full and the server stops. Past the cap
 * PostgreSQL invalidates the slot (wal_status = lost) instead; doctor and `cdc slots` say so.
 */
async function productSettings(binaries: ServerBinaries, port: number, runDir: string, slotWalCap: string): Promise<string> {
  const lines = [
    '# Written by `singularity local start`; edit with care, it is rewritten on start.',
    `port = ${port}`,
    "listen_addresses = '127.0.0.1'",
    `unix_socket_directories = '${runDir}'`,
    "shared_preload_libraries = 'pg_cron'",
    "cron.database_name = 'postgres'",
    'cron.use_background_workers = on',
    'max_worker_processes = 24',
    'wal_level = logical',
    // two logical slots per singularity instance (CDC + bridge), temporary ones for cdc tail, room for 100 instances
    'max_replication_slots = 256',
    'max_wal_senders = 32',
    'max_connections = 200',
    `max_slot_wal_keep_size = '${slotWalCap}'`,
    "log_min_messages = 'warning'",
  ]
  if (await serverHasSetting(binaries, 'output_plugin_libraries')) {
    lines.push("output_plugin_libraries = 'pgoutput, test_decoding, wal2json'")
  }
  return lines.join('\n') + '\n'
}

/** Reads postmaster.pid: pid and port of a running server, or undefined. */
function postmasterPid(dataDir: string): {pid: number; port: number} | undefined {
  const file = join(dataDir, 'postmaster.pid')
  if (!existsSync(file)) return undefined
  const lines = readFileSync(file, 'utf8').split('\n')
  const pid = Number(lines[0])
  try {
    process.kill(pid, 0)
  } catch {
    return undefined
  }
  return {pid, port: Number(lines[3])}
}

/** Makes sure the required extension packages are there, installing them when asked. */
async function ensurePackages(binaries: ServerBinaries, options: StartOptions): Promise<ExtensionCheck[]> {
  let checks = checkExtensionPackages(binaries)
  const missing = checks.filter((c) => c.required && !c.available).map((c) => c.package)
  if (missing.length === 0) return checks
  const command = installCommand(missing)
  if (!options.installDeps) {
    throw new CliError(`missing PostgreSQL extension packages: ${missing.join(', ')}`, {
      hint: `install them: ${command}  (or rerun with --install-deps as root)`,
      code: 'MISSING_PACKAGES',
    })
  }
  if (!isRoot()) throw new CliError('--install-deps needs root (apt-get)', {hint: `run as root: ${command}`})
  options.progress?.(`installing ${missing.join(', ')} with apt-get`)
  const {execa} = await import('execa')
  await execa('apt-get', ['update', '-qq'], {stdin: 'ignore'})
  await execa('apt-get', ['install', '-y', '-qq', ...missing], {stdin: 'ignore', env: {DEBIAN_FRONTEND: 'noninteractive'}})
  checks = checkExtensionPackages(binaries)
  return checks
}

export interface StartResult {
  action: 'created' | 'started' | 'already-running'
  status: ClusterStatus
}

/** Creates (first time) and starts the private cluster. Idempotent: a running cluster is left alone. */
export async function startCluster(options: StartOptions): Promise<StartResult> {
  const paths = layout(options.dir)
  const existing = readLocalState(options.dir)
  if (existing && postmasterPid(paths.data)) {
    if (options.port && options.port !== existing.port) {
      throw new CliError(`the local cluster is already running on port ${existing.port}`, {hint: 'run `singularity local stop` first to change its port'})
    }
    await applySlotWalCap(paths, existing, options)
    return {action: 'already-running', status: await clusterStatus(options.dir)}
  }
  const binaries = existing ? {...findServerBinaries(), binDir: existing.binDir} : findServerBinaries()
  await ensurePackages(binaries, options)

  let action: StartResult['action'] = 'started'
  let state: LocalState
  if (existing) {
    // state.json records the state only: never the admin URL (it carries the password).
    const {adminUrl: _adminUrl, ...recorded} = existing
    state = recorded
    if (options.port) state = {...state, port: options.port}
  } else {
    action = 'created'
    if (existsSync(paths.data) && existsSync(join(paths.data, 'PG_VERSION'))) {
      throw new CliError(`${paths.data} holds a cluster that singularity did not record`, {
        hint: `choose another --data-dir, or remove ${paths.data} if it is yours to delete`,
      })
    }
    mkdirSync(paths.dir, {recursive: true, mode: 0o755})
    // The server user must be able to enter the directory (mkdtemp makes it 0700).
    if (isRoot()) chmodSync(paths.dir, 0o755)
    for (const dir of [paths.run, paths.data]) {
      mkdirSync(dir, {recursive: true, mode: 0o700})
      ownedByServerUser(dir)
    }
    const password = randomBytes(24).toString('base64url')
    writeFileSync(paths.passwordFile, password + '\n', {mode: 0o600})
    // initdb reads the superuser password from a file the server user can read; removed at once.
    const pwfile = join(paths.run, 'initdb.pw')
    writeFileSync(pwfile, password + '\n', {mode: 0o600})
    ownedByServerUser(pwfile)
    options.progress?.(`initdb ${paths.data}`)
    try {
      await runServerTool(binaries, 'initdb', [
        '-D', paths.data, '-U', 'postgres', `--pwfile=${pwfile}`,
        '--auth-local=scram-sha-256', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C.UTF-8', '--no-instructions',
      ])
    } catch (error) {
      rmSync(paths.data, {recursive: true, force: true})
      throw new CliError(`initdb failed: ${String((error as {all?: string}).all ?? error).split('\n').slice(-2).join(' ')}`, {hint: `see ${paths.log}`})
    } finally {
      rmSync(pwfile, {force: true})
    }
    const version = String((await runServerTool(binaries, 'postgres', ['--version'])).stdout).trim().replace(/^postgres \(PostgreSQL\) /, '')
    state = {port: options.port ?? 0, binDir: binaries.binDir, version, superuser: 'postgres', createdAt: new Date().toISOString()}
    writeFileSync(paths.pgpass, '', {mode: 0o600})
  }

  if (!state.port || (await portInUse(state.port))) {
    if (options.port) throw new CliError(`port ${options.port} is in use`, {hint: 'choose another --port, or omit it for a free one'})
    state = {...state, port: await freePort()}
  }
  state = {...state, maxSlotWalKeepSize: options.maxSlotWalKeepSize ?? state.maxSlotWalKeepSize ?? DEFAULT_SLOT_WAL_CAP}
  const settingsFile = join(paths.data, 'singularity.conf')
  writeFileSync(settingsFile, await productSettings(binaries, state.port, paths.run, state.maxSlotWalKeepSize!))
  ownedByServerUser(settingsFile)
  const mainConf = join(paths.data, 'postgresql.conf')
  const conf = readFileSync(mainConf, 'utf8')
  if (!conf.includes("include_if_exists = 'singularity.conf'")) {
    writeFileSync(mainConf, conf + "\ninclude_if_exists = 'singularity.conf'\n")
  }
  writeFileSync(paths.state, JSON.stringify(state, null, 2) + '\n', {mode: 0o644})
  const password = readFileSync(paths.passwordFile, 'utf8').trim()
  writeFileSync(paths.pgpass, `127.0.0.1:${state.port}:*:${state.superuser}:${password}\nlocalhost:${state.port}:*:${state.superuser}:${password}\n`, {mode: 0o600})

  options.progress?.(`starting PostgreSQL ${state.version} on 127.0.0.1:${state.port}`)
  const started = await runServerTool(binaries, 'pg_ctl', ['-D', paths.data, '-l', paths.log, '-w', '-t', String(options.startTimeoutSeconds ?? 60), 'start'], {reject: false})
  if (started.exitCode !== 0) {
    const tail = existsSync(paths.log) ? readFileSync(paths.log, 'utf8').trim().split('\n').slice(-3).join(' | ') : String(started.all)
    throw new CliError(`the local cluster did not start: ${tail}`, {hint: `see ${paths.log}`, code: 'LOCAL_START_FAILED'})
  }
  return {action, status: await clusterStatus(options.dir)}
}

/**
 * A running cluster made before the cap existed, or given a new one: its settings file is
 * rewritten and the server reloaded (max_slot_wal_keep_size needs no restart).
 */
async function applySlotWalCap(paths: ReturnType<typeof layout>, state: LocalState, options: StartOptions): Promise<void> {
  const cap = options.maxSlotWalKeepSize ?? state.maxSlotWalKeepSize ?? DEFAULT_SLOT_WAL_CAP
  const settingsFile = join(paths.data, 'singularity.conf')
  const binaries = {...findServerBinaries(), binDir: state.binDir}
  const wanted = await productSettings(binaries, state.port, paths.run, cap)
  const current = existsSync(settingsFile) ? readFileSync(settingsFile, 'utf8') : ''
  if (current === wanted && state.maxSlotWalKeepSize === cap) return
  writeFileSync(settingsFile, wanted)
  ownedByServerUser(settingsFile)
  const {adminUrl: _url, ...recorded} = state as LocalState & {adminUrl?: string}
  writeFileSync(paths.state, JSON.stringify({...recorded, maxSlotWalKeepSize: cap}, null, 2) + '\n', {mode: 0o644})
  options.progress?.(`max_slot_wal_keep_size = '${cap}': reloading the running cluster`)
  const reloaded = await runServerTool(binaries, 'pg_ctl', ['-D', paths.data, 'reload'], {reject: false})
  if (reloaded.exitCode !== 0) throw new CliError(`pg_ctl reload failed: ${String(reloaded.all).trim().split('\n').pop()}`, {hint: `see ${paths.log}`})
}

/** Stops the cluster cleanly (fast shutdown: sessions are ended, data is safe). */
export async function stopCluster(dir: string): Promise<{action: 'stopped' | 'not-running' | 'not-created'}> {
  const state = readLocalState(dir)
  if (!state) return {action: 'not-created'}
  const paths = layout(dir)
  if (!postmasterPid(paths.data)) return {action: 'not-running'}
  const binaries = {...findServerBinaries(), binDir: state.binDir}
  const result = await runServerTool(binaries, 'pg_ctl', ['-D', paths.data, '-m', 'fast', '-w', '-t', '60', 'stop'], {reject: false})
  if (result.exitCode !== 0) throw new CliError(`pg_ctl stop failed: ${String(result.all).trim().split('\n').pop()}`, {hint: `see ${paths.log}`})
  return {action: 'stopped'}
}

/** Removes a stopped cluster's files (used by the test harness for throwaway clusters). */
export async function destroyCluster(dir: string): Promise<void> {
  await stopCluster(dir).catch(() => undefined)
  rmSync(dir, {recursive: true, force: true})
}

/** pid, port, data dir, version and extension packages of the local cluster; spawns nothing when not created. */
export async function clusterStatus(dir: string): Promise<ClusterStatus> {
  const paths = layout(dir)
  const state = readLocalState(dir)
  let extensions: ExtensionCheck[] = []
  try {
    extensions = checkExtensionPackages(state ? {...findServerBinaries(), binDir: state.binDir} : findServerBinaries())
  } catch {
    extensions = []
  }
  const running = state ? postmasterPid(paths.data) : undefined
  return {
    dir,
    created: Boolean(state),
    running: Boolean(running),
    pid: running?.pid ?? null,
    port: running?.port ?? state?.port ?? null,
    version: state?.version ?? null,
    dataDir: paths.data,
    logFile: paths.log,
    extensions,
  }
}

export {localUrl}
