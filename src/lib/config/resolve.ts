import {existsSync, readFileSync} from 'node:fs'
import {homedir} from 'node:os'
import {join} from 'node:path'

import {UsageError} from '../cli/errors.js'
import {registerSecret} from '../cli/redact.js'
import {sharedQueueEnabled} from './shared-queue.js'
import {readLocalState, defaultLocalDir} from '../local-cluster/paths.js'
import {concurrency, configFileSchema, dbTimeoutSeconds, instances, namePrefix, port, postgresUrl, SERVER_NAME_RULE, type ConfigFile} from './schema.js'

export type DatabaseKind = 'singularity' | 'genesis' | 'centralcloud' | 'nexus' | 'shared_queue'

/** Where a connection setting came from, for `doctor`/`db status` and error messages. */
export type Source = 'flag' | 'env' | 'config' | 'libpq' | 'local'

export interface Target {
  /** undefined = let libpq's PG* variables / .pgpass decide, as psql does */
  url?: string
  /** database to connect to (overrides the URL's) */
  database?: string
  source: Source
  /** where exactly, e.g. "SINGULARITY_ADMIN_URL" or "--admin-url" */
  origin: string
}

export interface ResolvedConfig {
  admin?: Target
  /** per-kind service URLs set explicitly by env/config */
  databases: Partial<Record<DatabaseKind, Target>>
  localDir: string
  localPort?: number
  instances?: number
  prefix: string
  backupDir: string
  configFile?: string
  /** SHARED_QUEUE_ENABLED (default true) */
  sharedQueueEnabled: boolean
  /** reading commands: databases visited at once and the deadline of each (unset: the defaults of estate/visit.ts) */
  read: {concurrency?: number; timeoutMs?: number}
  /**
   * The servers of the estate by name (config `servers`); `main` is always the admin connection.
   * One entry (`main`) when the config names no servers.
   */
  servers: Record<string, Target>
  /** database name or kind → server name (config `placement`); unplaced databases are on `main` */
  placement: Record<string, string>
}

export interface ConfigFlags {
  'admin-url'?: string
  config?: string
  'data-dir'?: string
  port?: number
  instances?: number
  prefix?: string
  concurrency?: number
  'db-timeout'?: string
}

const DATABASE_ENV: Record<DatabaseKind, string> = {
  singularity: 'DATABASE_URL',
  genesis: 'GENESIS_DATABASE_URL',
  centralcloud: 'CENTRALCLOUD_DATABASE_URL',
  nexus: 'NEXUS_DATABASE_URL',
  shared_queue: 'SHARED_QUEUE_DB_URL',
}

const LIBPQ_TARGET_VARS = ['PGHOST', 'PGHOSTADDR', 'PGPORT', 'PGUSER', 'PGDATABASE', 'PGSERVICE']

/** Validates one value with a zod schema; on failure exits 2 naming the setting, never the value. */
function check<T>(schema: {safeParse(v: unknown): {success: true; data: T} | {success: false; error: {issues: {message: string}[]}}}, value: unknown, name: string): T {
  const result = schema.safeParse(value)
  if (!result.success) {
    throw new UsageError(`invalid ${name}: ${result.error.issues[0]?.message ?? 'bad value'}`, {
      hint: `fix ${name} (its value is not shown, it may hold a password)`,
      code: 'BAD_CONFIG',
    })
  }
  return result.data
}

function rememberPassword(url: string | undefined): void {
  if (!url) return
  try {
    registerSecret(decodeURIComponent(new URL(url).password))
  } catch {
    // not a URL: nothing to remember
  }
}

function loadConfigFile(path: string | undefined, explicit: boolean): {file: ConfigFile; path?: string} {
  if (!path || !existsSync(path)) {
    if (explicit) throw new UsageError(`config file not found: ${path}`, {hint: 'check --config / SINGULARITY_CONFIG'})
    return {file: {}}
  }
  let raw: unknown
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'))
  } catch (error) {
    throw new UsageError(`config file ${path} is not valid JSON: ${(error as Error).message.split('\n')[0]}`)
  }
  const result = configFileSchema.safeParse(raw)
  if (!result.success) {
    const issue = result.error.issues[0]
    throw new UsageError(`invalid config file ${path}: ${issue.path.join('.') || '(root)'}: ${issue.message}`, {code: 'BAD_CONFIG'})
  }
  return {file: result.data, path}
}

/**
 * Resolves connection settings: flags override env, env overrides the config file, then libpq's
 * own PG* variables, then the embedded local cluster (when it has been created).
 */
export function resolveConfig(flags: ConfigFlags = {}, env: NodeJS.ProcessEnv = process.env): ResolvedConfig {
  const explicitConfig = flags.config ?? env.SINGULARITY_CONFIG
  const configPath = explicitConfig ?? join(env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'singularity', 'config.json')
  const {file, path: configFile} = loadConfigFile(configPath, explicitConfig !== undefined)

  const localDir = flags['data-dir'] ?? env.SINGULARITY_LOCAL_DIR ?? file.local?.dataDir ?? defaultLocalDir(env)
  const localPort = flags.port ?? (env.SINGULARITY_LOCAL_PORT ? check(port, env.SINGULARITY_LOCAL_PORT, 'SINGULARITY_LOCAL_PORT') : file.local?.port)
  const inst = flags.instances ?? (env.SINGULARITY_INSTANCES ? check(instances, env.SINGULARITY_INSTANCES, 'SINGULARITY_INSTANCES') : file.instances)
  const prefix = flags.prefix ?? (env.SINGULARITY_PREFIX !== undefined ? check(namePrefix, env.SINGULARITY_PREFIX, 'SINGULARITY_PREFIX') : file.prefix ?? '')
  const backupDir = env.SINGULARITY_BACKUP_DIR ?? file.backupDir ?? join(localDir, '..', 'backups')

  const databases: Partial<Record<DatabaseKind, Target>> = {}
  for (const [kind, variable] of Object.entries(DATABASE_ENV) as [DatabaseKind, string][]) {
    const fromEnv = env[variable]
    if (fromEnv) {
      databases[kind] = {url: check(postgresUrl, fromEnv, variable), source: 'env', origin: variable}
    } else if (file.databases?.[kind]) {
      databases[kind] = {url: file.databases[kind], source: 'config', origin: `config databases.${kind}`}
    }
    rememberPassword(databases[kind]?.url)
  }
  if (!databases.shared_queue && env.SHARED_QUEUE_HOST) {
    const sqPort = env.SHARED_QUEUE_PORT ? check(port, env.SHARED_QUEUE_PORT, 'SHARED_QUEUE_PORT') : 5432
    const url = new URL('postgres://localhost/shared_queue')
    url.hostname = env.SHARED_QUEUE_HOST
    url.port = String(sqPort)
    if (env.SHARED_QUEUE_USER) url.username = encodeURIComponent(env.SHARED_QUEUE_USER)
    if (env.SHARED_QUEUE_PASSWORD) {
      url.password = encodeURIComponent(env.SHARED_QUEUE_PASSWORD)
      registerSecret(env.SHARED_QUEUE_PASSWORD)
    }
    databases.shared_queue = {url: url.toString(), source: 'env', origin: 'SHARED_QUEUE_HOST/PORT/USER/PASSWORD'}
  }

  let admin: Target | undefined
  if (flags['admin-url']) admin = {url: check(postgresUrl, flags['admin-url'], '--admin-url'), source: 'flag', origin: '--admin-url'}
  else if (env.SINGULARITY_ADMIN_URL) admin = {url: check(postgresUrl, env.SINGULARITY_ADMIN_URL, 'SINGULARITY_ADMIN_URL'), source: 'env', origin: 'SINGULARITY_ADMIN_URL'}
  else if (file.adminUrl ?? file.servers?.[MAIN_SERVER]) {
    admin = {url: (file.adminUrl ?? file.servers?.[MAIN_SERVER])!, source: 'config', origin: `config ${configFile} ${file.adminUrl ? 'adminUrl' : `servers.${MAIN_SERVER}`}`}
  }
  else if (LIBPQ_TARGET_VARS.some((v) => env[v])) admin = {source: 'libpq', origin: 'PG* environment'}
  else {
    const local = readLocalState(localDir)
    if (local) admin = {url: local.adminUrl, source: 'local', origin: `local cluster ${localDir}`}
  }
  rememberPassword(admin?.url)
  if (env.PGPASSWORD) registerSecret(env.PGPASSWORD)

  for (const url of Object.values(file.servers ?? {})) rememberPassword(url)
  const {servers, placement} = resolveServers(file, configFile, admin, prefix)

  return {admin, databases, localDir, localPort, instances: inst, prefix, backupDir, configFile, sharedQueueEnabled: sharedQueueEnabled(env), read: readSettings(flags, env, file), servers, placement}
}

/** --concurrency / SINGULARITY_CONCURRENCY / concurrency, and --db-timeout / SINGULARITY_DB_TIMEOUT / dbTimeout. */
function readSettings(flags: ConfigFlags, env: NodeJS.ProcessEnv, file: ConfigFile): ResolvedConfig['read'] {
  const wanted = flags.concurrency ?? (env.SINGULARITY_CONCURRENCY ? check(concurrency, env.SINGULARITY_CONCURRENCY, 'SINGULARITY_CONCURRENCY') : file.concurrency)
  const timeoutText = flags['db-timeout'] ?? env.SINGULARITY_DB_TIMEOUT ?? file.dbTimeout
  const origin = flags['db-timeout'] !== undefined ? '--db-timeout' : env.SINGULARITY_DB_TIMEOUT !== undefined ? 'SINGULARITY_DB_TIMEOUT' : 'config dbTimeout'
  let timeoutMs: number | undefined
  if (timeoutText !== undefined) {
    const seconds = dbTimeoutSeconds(timeoutText)
    if (seconds === undefined) throw new UsageError(`invalid ${origin} ${JSON.stringify(timeoutText)}`, {hint: 'a duration between 100ms and 10m, e.g. 10s or 2s', code: 'BAD_CONFIG'})
    timeoutMs = Math.round(seconds * 1000)
  }
  return {concurrency: wanted, timeoutMs}
}

/** The server unplaced databases go to: the admin connection. */
export const MAIN_SERVER = 'main'

const KINDS: readonly DatabaseKind[] = ['singularity', 'genesis', 'centralcloud', 'nexus', 'shared_queue']

/** Whether a placement key names a database of an estate with this prefix (a kind, a name, or an instance singularity_<n>). */
export function placementKeyValid(key: string, prefix: string): boolean {
  if ((KINDS as readonly string[]).includes(key)) return true
  if (KINDS.some((kind) => key === `${prefix}${kind}`)) return true
  const instance = new RegExp(`^${prefix}singularity_([1-9][0-9]?)$`).exec(key)
  return instance !== null && Number(instance[1]) <= 64
}

/**
 * Servers and placement from the config file, validated (exit 2 with a hint): server names are
 * short words, `servers.main` and `adminUrl` may not disagree, every placement names a database of
 * the estate and a configured server. `main` is the admin connection (flag, env, file, libpq, local).
 */
function resolveServers(file: ConfigFile, configFile: string | undefined, admin: Target | undefined, prefix: string): {servers: Record<string, Target>; placement: Record<string, string>} {
  const where = `config file ${configFile ?? ''}`.trim()
  const declared = file.servers ?? {}
  for (const name of Object.keys(declared)) {
    if (!SERVER_NAME_RULE.test(name)) {
      throw new UsageError(`invalid server name '${name}' in ${where}`, {hint: 'server names are lower-case letters, digits, - or _ (at most 30), starting with a letter', code: 'BAD_CONFIG'})
    }
  }
  if (file.adminUrl && declared[MAIN_SERVER] && file.adminUrl !== declared[MAIN_SERVER]) {
    throw new UsageError(`${where} gives both adminUrl and servers.${MAIN_SERVER}, and they differ`, {hint: `keep one: servers.${MAIN_SERVER} is the admin connection`, code: 'BAD_CONFIG'})
  }
  const servers: Record<string, Target> = {}
  if (admin) servers[MAIN_SERVER] = admin
  for (const [name, url] of Object.entries(declared)) {
    if (name !== MAIN_SERVER) servers[name] = {url, source: 'config', origin: `config ${configFile} servers.${name}`}
  }
  const known = [MAIN_SERVER, ...Object.keys(declared).filter((n) => n !== MAIN_SERVER)]
  const placement: Record<string, string> = {}
  for (const [key, server] of Object.entries(file.placement ?? {})) {
    if (!placementKeyValid(key, prefix)) {
      throw new UsageError(`placement of an unknown database '${key}' in ${where}`, {
        hint: `place a kind (${KINDS.join(', ')}) or a database name of the estate${prefix ? ` with prefix '${prefix}'` : ''} (e.g. ${prefix}shared_queue, ${prefix}singularity_2)`,
        code: 'BAD_CONFIG',
      })
    }
    if (!known.includes(server)) {
      throw new UsageError(`placement of ${key} names an unknown server '${server}' in ${where}`, {hint: `name one of the servers: ${known.join(', ')} (declare others under "servers")`, code: 'BAD_CONFIG'})
    }
    placement[key] = server
  }
  return {servers, placement}
}
