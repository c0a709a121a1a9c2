import type pg from 'pg'

import {CliError, UsageError} from '../cli/errors.js'
import {connect, type ConnectOptions} from '../db/connect.js'
import {MAIN_SERVER, type ResolvedConfig, type Target} from '../config/resolve.js'
import {SHARED_QUEUE_DISABLED_REASON} from '../config/shared-queue.js'
import {estate, type ConcreteDatabase, type DatabaseKind, type Estate} from '../../topology.js'
import {disabledParts, noteDisabled} from './disabled.js'

/** The admin connection, or exit 1 saying how to configure one. */
export function adminTarget(config: ResolvedConfig): Target {
  if (config.admin) return config.admin
  throw new CliError('no database configured and no local cluster created', {
    hint: 'run `singularity local start` for the embedded default, or set SINGULARITY_ADMIN_URL / PG* variables',
    code: 'NO_DATABASE',
  })
}

/** The same server as a target, another database. */
export function onDatabase(target: Target, database: string): Target {
  if (!target.url) return {...target, database}
  const url = new URL(target.url)
  url.pathname = `/${encodeURIComponent(database)}`
  return {...target, url: url.toString(), database: undefined}
}

/** The names of the configured servers, `main` first. */
export function serverNames(config: Pick<ResolvedConfig, 'servers'>): string[] {
  const names = Object.keys(config.servers ?? {})
  return [MAIN_SERVER, ...names.filter((n) => n !== MAIN_SERVER)]
}

/** Whether the estate spans more than the admin server. */
export function severalServers(config: Pick<ResolvedConfig, 'servers'>): boolean {
  return serverNames(config).length > 1
}

/** The admin connection of a server by name (`main`: the admin connection). */
export function serverTarget(config: ResolvedConfig, server: string): Target {
  if (server === MAIN_SERVER) return adminTarget(config)
  knownServer(config, server, 'BAD_CONFIG')
  return config.servers![server]
}

/** `server` when the config names it (main always); else exit 2 naming the servers there are. */
export function knownServer(config: Pick<ResolvedConfig, 'servers'>, server: string, code?: string): string {
  const names = serverNames(config)
  if (!names.includes(server)) throw new UsageError(`unknown server '${server}'`, {hint: `choose one of: ${names.join(', ')}`, ...(code ? {code} : {})})
  return server
}

/** The server a database is placed on: by name first, then by kind, else `main`. */
export function placementOf(config: Pick<ResolvedConfig, 'placement'>, db: Pick<ConcreteDatabase, 'kind' | 'name'>): string {
  const placement = config.placement ?? {}
  return placement[db.name] ?? placement[db.kind] ?? MAIN_SERVER
}

/**
 * How to reach one database of the estate: its own variable (DATABASE_URL, GENESIS_DATABASE_URL, …)
 * when set for the default name, else the admin connection of the server it is placed on.
 */
export function databaseTarget(config: ResolvedConfig, db: Pick<ConcreteDatabase, 'kind' | 'name' | 'instance'>): Target {
  const own = config.databases[db.kind]
  if (own && db.instance === undefined) return own
  return onDatabase(serverTarget(config, placementOf(config, db)), db.name)
}

/** The admin connection of a database's server, on that database (for what needs the admin, not the service). */
export function databaseAdminTarget(config: ResolvedConfig, db: Pick<ConcreteDatabase, 'kind' | 'name'>): Target {
  return onDatabase(serverTarget(config, placementOf(config, db)), db.name)
}

/** The estate for this configuration (prefix, instances from flags/env/config; default one instance), each database on its server. */
export function configuredEstate(config: ResolvedConfig, instances?: number): Estate {
  const e = estate({prefix: config.prefix, instances: instances ?? config.instances ?? 1, disabled: disabledKinds(config)})
  noteDisabled(e.disabled.map((d) => ({database: d.name, kind: d.kind, reason: d.reason})))
  return placeEstate(config, e)
}

/** Sets each database's server from the placement. */
export function placeEstate(config: Pick<ResolvedConfig, 'placement'>, e: Estate): Estate {
  return {...e, databases: e.databases.map((db) => ({...db, server: placementOf(config, db)}))}
}

/** The database kinds configuration switches off: shared_queue with SHARED_QUEUE_ENABLED=false. */
export function disabledKinds(config: Pick<ResolvedConfig, 'sharedQueueEnabled'>): {kind: DatabaseKind; reason: string}[] {
  return config.sharedQueueEnabled === false ? [{kind: 'shared_queue', reason: SHARED_QUEUE_DISABLED_REASON}] : []
}

/**
 * The estate as it exists on the server: the number of singularity instances is read from
 * pg_database (singularity, or singularity_1..N), so operating commands need no --instances.
 */
export async function discoverEstate(
  config: ResolvedConfig,
  admin: {query: (sql: string, values?: unknown[]) => Promise<{rows: {datname: string}[]}>},
): Promise<Estate> {
  if (config.instances) return configuredEstate(config)
  const pattern = `^${config.prefix}singularity(_[0-9]+)?$`
  const names = new Set<string>()
  const {rows} = await admin.query('SELECT datname FROM pg_database WHERE datname ~ $1 ORDER BY datname', [pattern])
  for (const r of rows) names.add(r.datname)
  // several servers: the instances placed elsewhere are counted there (a server that does not answer counts none)
  const others = serverNames(config).filter((n) => n !== MAIN_SERVER)
  if (others.length > 0) {
    const [{visitWithClient}] = await Promise.all([import('./visit.js')])
    const seen = await visitWithClient(others, (name) => serverTarget(config, name), (name) => `server ${name}`, async (client) => (await client.query<{datname: string}>('SELECT datname FROM pg_database WHERE datname ~ $1', [pattern])).rows, {timeoutMs: 5000})
    for (const visit of seen) if (visit.ok) for (const r of visit.value) names.add(r.datname)
  }
  return configuredEstate(config, instancesFrom([...names], config))
}

/**
 * The admin connection; null when it cannot be opened and other servers are configured, so a
 * reader still reads those (with one server, the error is the command's).
 */
export async function adminUnlessDown(config: ResolvedConfig, options: ConnectOptions): Promise<pg.Client | null> {
  try {
    return await connect(adminTarget(config), options)
  } catch (error) {
    if (!severalServers(config)) throw error
    return null
  }
}

/** Several servers: the estate discovered on the admin server when it answers, else from the config (estateWithoutAdmin). */
export async function discoverEstateUnlessDown(config: ResolvedConfig, applicationName: string): Promise<Estate> {
  if (config.instances) return configuredEstate(config)
  const admin = await adminUnlessDown(config, {statementTimeoutMs: 10_000, connectTimeoutMs: 10_000, applicationName})
  if (!admin) return estateWithoutAdmin(config)
  try {
    return await discoverEstate(config, admin)
  } finally {
    await admin.end().catch(() => {})
  }
}

/**
 * The estate without the admin server (several servers, the admin server down): from the config and
 * the placement, so a reader still shows the servers that answer.
 */
export function estateWithoutAdmin(config: ResolvedConfig): Estate {
  return configuredEstate(config, instancesFrom([], config))
}

/**
 * The number of singularity instances from the database names found: the numbered ones
 * (singularity_1..N), at least the highest instance the placement names (its server may be down).
 */
export function instancesFrom(names: string[], config: Pick<ResolvedConfig, 'placement' | 'prefix'>): number {
  const numbered = names.filter((n) => /_\d+$/.test(n)).length
  const placed = Object.keys(config.placement ?? {})
    .map((key) => new RegExp(`^${config.prefix}singularity_([0-9]+)$`).exec(key))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
  return Math.max(1, numbered, ...placed)
}

/** Picks databases by name or kind (--db); all when none given. Unknown names exit 2. */
export function selectDatabases(all: ConcreteDatabase[], wanted: string[] | undefined, filter?: (db: ConcreteDatabase) => boolean): ConcreteDatabase[] {
  const candidates = filter ? all.filter(filter) : all
  if (!wanted || wanted.length === 0) return candidates
  const out: ConcreteDatabase[] = []
  for (const w of wanted) {
    // a disabled database asked for by name or kind: nothing to do there, and the command says why
    if (disabledParts().some((d) => d.database === w || d.kind === w)) continue
    const found = candidates.filter((db) => db.name === w || db.kind === (w as DatabaseKind))
    if (found.length === 0) {
      throw new UsageError(`unknown database '${w}'`, {hint: `choose one of: ${candidates.map((d) => d.name).join(', ')}`})
    }
    for (const db of found) if (!out.includes(db)) out.push(db)
  }
  return out
}
