import type pg from 'pg'

import {MAIN_SERVER, resolveConfig, type ResolvedConfig} from '../config/resolve.js'
import {connect} from '../db/connect.js'
import {databaseTarget, discoverEstate, onDatabase, serverTarget, severalServers} from '../estate/targets.js'
import {readBound, visitWithClient, type ReadBound, type SharedClients, type Visit} from '../estate/visit.js'
import type {ConcreteDatabase, Estate} from '../../topology.js'
import {schedulesFor, schedulesForPgCron, type JobSpec} from '../../schedules.js'
import {cronDatabaseInfo, validateSchedules, type CronDatabaseInfo} from './install.js'

/**
 * What the jobs commands work with: the estate as it exists on the server, the declared schedules,
 * a client on the cron database (when pg_cron is there) and a way to open the estate's databases.
 */
export interface JobsContext {
  estate: Estate
  schedules: JobSpec[]
  /** client on the cron database; null when pg_cron is not loaded or not created there */
  cron: pg.Client | null
  cronInfo: CronDatabaseInfo | null
  /** why `cron` is null, for people */
  cronProblem?: string
  /** the admin role's name (the role schedules are installed as) */
  adminUser: string
  /** a client on one database as the admin; null when the database does not exist */
  open(database: string): Promise<pg.Client | null>
  /**
   * Reads estate databases at once within the command's bound, each on its own connection and
   * under its deadline (estate/visit.ts); outcomes in the order given, failures per database.
   */
  visit<T>(databases: ConcreteDatabase[], fn: (client: pg.Client, db: ConcreteDatabase) => Promise<T>): Promise<Visit<T>[]>
  /** the command's bound, decided once on the admin connection */
  bound: ReadBound
  close(): Promise<void>
}

/**
 * The jobs context of one server of the estate (`main`, the admin server, unless `server` names
 * another): its pg_cron and the estate's databases placed there. `estate` is given when the caller
 * discovered it already (several servers: discovery reads the admin server).
 */
export async function openJobsContext(
  config: ResolvedConfig,
  schedules: JobSpec[],
  options: {statementTimeoutMs?: number; bound?: Pick<ReadBound, 'concurrency' | 'timeoutMs'>; server?: string; estate?: Estate; shared?: SharedClients} = {},
): Promise<JobsContext> {
  const server = options.server ?? MAIN_SERVER
  const target = serverTarget(config, server)
  const settings = {statementTimeoutMs: options.statementTimeoutMs ?? 30_000, lockTimeoutMs: 5000, applicationName: 'singularity jobs'}
  const admin = await connect(target, settings)
  const clients: pg.Client[] = [admin]
  const byDatabase = new Map<string, pg.Client | null>()
  try {
    const discovered = options.estate ?? (await discoverEstate(config, admin))
    // several servers: this server's databases only (the others' jobs run on their own pg_cron)
    const estate = severalServers(config) ? {...discovered, databases: discovered.databases.filter((d) => (d.server ?? MAIN_SERVER) === server)} : discovered
    const bound: ReadBound = options.bound ? {...options.bound, freeConnections: null} : await readBound(admin, config.read)
    const adminInfo = await cronDatabaseInfo(admin)
    // a bad declared schedule (expression, name) is bad input: exit 2 before anything runs
    validateSchedules(estate, schedules, adminInfo.cronDatabaseName ?? 'postgres')
    byDatabase.set(adminInfo.database, admin)

    const open = async (database: string): Promise<pg.Client | null> => {
      if (byDatabase.has(database)) return byDatabase.get(database)!
      const {rows} = await admin.query('SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1 AND datallowconn', [database])
      if (rows.length === 0) {
        byDatabase.set(database, null)
        return null
      }
      const client = await connect(onDatabase(target, database), settings)
      clients.push(client)
      byDatabase.set(database, client)
      return client
    }

    let cron: pg.Client | null = null
    let cronInfo: CronDatabaseInfo | null = null
    let cronProblem: string | undefined
    if (adminInfo.cronDatabaseName === null) {
      cronProblem = 'pg_cron is not loaded on this server (shared_preload_libraries)'
    } else {
      cron = await open(adminInfo.cronDatabaseName)
      if (cron) {
        cronInfo = await cronDatabaseInfo(cron)
        if (cronInfo.version === null) {
          cronProblem = `the pg_cron extension is not created in ${cronInfo.database} (run \`singularity db init\`)`
          cron = null
        }
      } else {
        cronProblem = `the cron database ${adminInfo.cronDatabaseName} does not exist`
      }
    }
    return {
      estate,
      // seconds schedules where this pg_cron has them (the version decides what is declared)
      schedules: schedulesForPgCron(schedules, cronInfo?.version),
      cron,
      cronInfo: cronInfo ?? (adminInfo.cronDatabaseName ? {...adminInfo, database: adminInfo.cronDatabaseName, version: null} : null),
      cronProblem,
      adminUser: adminInfo.currentUser,
      open,
      bound,
      visit: (databases, fn) =>
        visitWithClient(databases, (db) => databaseTarget(config, db), (db) => db.name, fn, {
          concurrency: bound.concurrency,
          timeoutMs: bound.timeoutMs,
          connect: {lockTimeoutMs: 5000, applicationName: 'singularity jobs'},
          shared: options.shared,
        }),
      close: async () => {
        await Promise.all(clients.map((c) => c.end().catch(() => {})))
      },
    }
  } catch (error) {
    await Promise.all(clients.map((c) => c.end().catch(() => {})))
    throw error
  }
}

/** The flags a jobs command's config comes from: the connection, the prefix and the read bound. */
export interface JobsFlags {
  'admin-url'?: string
  config?: string
  prefix?: string
  concurrency?: number
  'db-timeout'?: string
}

/** The config of a jobs command, resolved once for both its one-server and several-server paths. */
export function jobsConfig(flags: JobsFlags): ResolvedConfig {
  return resolveConfig({'admin-url': flags['admin-url'], config: flags.config, prefix: flags.prefix, concurrency: flags.concurrency, 'db-timeout': flags['db-timeout']})
}

/** The context for a jobs command (schedules with SHARED_QUEUE_RETENTION_DAYS applied). */
export async function openJobsContextFor(config: ResolvedConfig, options: {statementTimeoutMs?: number} = {}): Promise<JobsContext> {
  return openJobsContext(config, schedulesFor(process.env), options)
}
