import type pg from 'pg'

import {CliError, NotFoundError, UsageError} from '../cli/errors.js'
import type {ResolvedConfig} from '../config/resolve.js'
import {connect, type ConnectOptions} from '../db/connect.js'
import {disabledParts} from '../estate/disabled.js'
import {adminUnlessDown, configuredEstate, databaseTarget, discoverEstate, estateWithoutAdmin, placementOf, selectDatabases, severalServers} from '../estate/targets.js'
import {readBound, unreadable, visitWithClient, type ReadBound, type SharedClients, type Unreadable} from '../estate/visit.js'
import type {ConcreteDatabase} from '../../topology.js'
import {closestNames, findQueue, listQueues, type QueueCatalog, type QueueRef} from './catalog.js'

/**
 * The databases of the estate that hold queues (shared_queue and each singularity database),
 * narrowed by --db (names or kinds; unknown ones exit 2). Singularity instances are discovered on
 * the server.
 */
export async function queueDatabases(config: ResolvedConfig, wanted: string[] | undefined): Promise<ConcreteDatabase[]> {
  return (await queueDatabasesToRead(config, wanted)).databases
}

/**
 * queueDatabases, and the bound of a command that reads them all (decided on the same admin
 * connection: the server's free connections are read once).
 */
export async function queueDatabasesToRead(config: ResolvedConfig, wanted: string[] | undefined): Promise<{databases: ConcreteDatabase[]; bound: ReadBound}> {
  let estate
  let bound: ReadBound
  if (config.admin || !config.databases.shared_queue) {
    // several servers and the admin server down: its databases are reported unreachable, the others read
    const admin = await adminUnlessDown(config, {statementTimeoutMs: 10_000, applicationName: 'singularity queue'})
    try {
      estate = admin ? await discoverEstate(config, admin) : estateWithoutAdmin(config)
      bound = await readBound(admin, config.read)
    } finally {
      await admin?.end().catch(() => {})
    }
  } else {
    estate = configuredEstate(config)
    bound = await readBound(null, config.read)
  }
  return {databases: selectDatabases(estate.databases, wanted, (db) => db.spec.queues.length > 0), bound}
}

export interface QueueDatabaseRead<T> {
  db: ConcreteDatabase
  catalog: QueueCatalog
  value: T
}

/**
 * Reads each queue database at once, within the bound and each under its deadline: connects,
 * lists its queues and runs `read` there, then closes. A database that does not exist or has no
 * queue engine is `unavailable` (as with openQueueDatabases); one that refuses, fails or does not
 * answer in time is `unreadable` and never holds up the others. Results keep the databases' order.
 */
export async function readQueueDatabases<T>(
  config: ResolvedConfig,
  databases: ConcreteDatabase[],
  read: (client: pg.Client, db: ConcreteDatabase, catalog: QueueCatalog) => Promise<T>,
  options: {bound: Pick<ReadBound, 'concurrency' | 'timeoutMs'>; connect?: ConnectOptions; shared?: SharedClients},
): Promise<{read: QueueDatabaseRead<T>[]; unavailable: Unavailable[]; unreadable: Unreadable[]}> {
  const visits = await visitWithClient(
    databases,
    (db) => databaseTarget(config, db),
    (db) => db.name,
    async (client, db) => {
      const catalog = await listQueues(client)
      return catalog.engine === null ? {catalog, value: null} : {catalog, value: {v: await read(client, db, catalog)}}
    },
    {...options.bound, connect: options.connect, shared: options.shared},
  )
  const out: QueueDatabaseRead<T>[] = []
  const unavailable: Unavailable[] = []
  const unreadableOnes: Unreadable[] = []
  for (const [i, visit] of visits.entries()) {
    const db = databases[i]
    if (visit.ok && visit.value.value === null) unavailable.push({database: db.name, reason: 'no queue engine (schema pgmq) in this database'})
    else if (visit.ok) out.push({db, catalog: visit.value.catalog, value: visit.value.value!.v})
    else if (visit.error.code === 'DATABASE_NOT_FOUND') unavailable.push({database: db.name, reason: 'database does not exist'})
    else unreadableOnes.push(unreadable(db.name, visit))
  }
  return {read: out, unavailable, unreadable: unreadableOnes}
}

/** Connection errors that mean the server did not answer (not a refusal or a missing database). */
const UNREACHABLE_CODES = new Set(['CONNECTION_REFUSED', 'CONNECTION_FAILED', 'CONNECTION_TIMEOUT', 'SERVER_UNREACHABLE', 'HOST_NOT_FOUND', 'SERVER_SHUTTING_DOWN', 'DATABASE_TIMEOUT'])

export interface OpenQueueDatabase {
  db: ConcreteDatabase
  client: pg.Client
  catalog: QueueCatalog
}

export interface Unavailable {
  database: string
  reason: string
  /** the server the database is placed on (several servers) */
  server?: string
  /** its server did not answer (as opposed to: no such database, no queue engine) */
  unreachable?: boolean
}

/**
 * Connects to each database and lists its queues. A database that does not exist, or has no
 * queue engine, is reported in `unavailable` rather than failing the whole command. Callers end
 * the clients (closeAll).
 */
export async function openQueueDatabases(
  config: ResolvedConfig,
  databases: ConcreteDatabase[],
  options: ConnectOptions,
): Promise<{open: OpenQueueDatabase[]; unavailable: Unavailable[]}> {
  const open: OpenQueueDatabase[] = []
  const unavailable: Unavailable[] = []
  try {
    for (const db of databases) {
      let client: pg.Client
      try {
        client = await connect(databaseTarget(config, db), options)
      } catch (error) {
        if (error instanceof CliError && error.code === 'DATABASE_NOT_FOUND') {
          unavailable.push({database: db.name, reason: 'database does not exist'})
          continue
        }
        // several servers: one that does not answer is reported, the others are still read
        if (severalServers(config) && error instanceof CliError && UNREACHABLE_CODES.has(error.code ?? '')) {
          const server = db.server ?? placementOf(config, db)
          unavailable.push({database: db.name, server, unreachable: true, reason: `server ${server} unreachable: ${error.message.split('\n')[0]}`})
          continue
        }
        throw error
      }
      const catalog = await listQueues(client).catch(async (error: unknown) => {
        await client.end().catch(() => {})
        throw error
      })
      if (catalog.engine === null) {
        unavailable.push({database: db.name, reason: 'no queue engine (schema pgmq) in this database'})
        await client.end().catch(() => {})
        continue
      }
      open.push({db, client, catalog})
    }
  } catch (error) {
    await closeAll(open)
    throw error
  }
  return {open, unavailable}
}

export async function closeAll(open: OpenQueueDatabase[]): Promise<void> {
  await Promise.all(open.map((o) => o.client.end().catch(() => {})))
}

/** Exit 1 when every database that exists could not be read (naming them), 4 when none exists. */
export function requireSomeRead(read: readonly unknown[], unavailable: Unavailable[], unreadableOnes: Unreadable[], prefix: string): void {
  if (read.length > 0) return
  if (unreadableOnes.length > 0) {
    throw new CliError(`no queue database could be read: ${unreadableOnes.map((u) => `${u.database} (${u.reason})`).join(', ')}`, {
      hint: 'check that the server accepts connections to them (pg_stat_activity, CONNECTION LIMIT, CONNECT privileges), or raise --db-timeout',
      code: 'QUEUE_DATABASE_UNREADABLE',
    })
  }
  requireSomeDatabase([], unavailable, prefix)
}

/** Exit 4 when none of the databases could be read at all. */
export function requireSomeDatabase(open: readonly unknown[], unavailable: Unavailable[], prefix: string): void {
  if (open.length > 0) return
  // only disabled databases were asked for (SHARED_QUEUE_ENABLED=false): the command says so and reads nothing
  if (unavailable.length === 0 && disabledParts().length > 0) return
  const names = unavailable.map((u) => `${u.database} (${u.reason})`).join(', ')
  throw new NotFoundError(`no queue database to read: ${names || 'none selected'}`, {
    hint: `run \`singularity db init${prefix ? ` --prefix ${prefix}` : ''}\` to create the estate and its queues, or check --prefix / --db`,
    code: 'QUEUE_DATABASE_NOT_FOUND',
  })
}

/**
 * Finds one queue among the open databases. Missing: exit 4 naming the closest queue names.
 * Present in several databases (the singularity instances share queue names): exit 2 asking for --db.
 * Returns the match; the other clients are left open for the caller's closeAll.
 */
export function locateQueue(open: OpenQueueDatabase[], unavailable: Unavailable[], name: string, prefix: string): {db: OpenQueueDatabase; queue: QueueRef} {
  const matches = open.flatMap((o) => {
    const queue = findQueue(o.catalog.queues, name)
    return queue ? [{db: o, queue}] : []
  })
  if (matches.length === 1) return matches[0]
  if (matches.length > 1) {
    throw new UsageError(`queue '${name}' exists in ${matches.map((m) => m.db.db.name).join(', ')}`, {
      hint: `choose one with --db, e.g. --db ${matches[0].db.db.name}`,
      code: 'QUEUE_AMBIGUOUS',
    })
  }
  requireSomeDatabase(open, unavailable, prefix)
  const all = open.flatMap((o) => o.catalog.queues.map((q) => q.name))
  const close = closestNames(name, all)
  const where = open.map((o) => o.db.name).join(', ')
  throw new NotFoundError(`queue '${name}' not found in ${where}`, {
    hint: close.length > 0 ? `did you mean ${close.join(', ')}?` : all.length > 0 ? `queues there: ${[...new Set(all)].slice(0, 15).join(', ')}` : 'no queues exist there; `singularity db init` creates the estate\'s queues',
    code: 'QUEUE_NOT_FOUND',
  })
}
