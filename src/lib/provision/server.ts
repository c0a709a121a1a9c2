import type pg from 'pg'

import {CliError} from '../cli/errors.js'
import {managedPreflightProblems} from '../reconcile/managed.js'

/** Facts about the server that provisioning depends on. */
export interface ServerFacts {
  version: string
  versionNum: number
  superuser: boolean
  /** the admin's other attributes: what a managed server's admin (no superuser) may still do */
  createrole: boolean
  createdb: boolean
  replication: boolean
  user: string
  walLevel: string
  maxReplicationSlots: number
  preload: string[]
  cronDatabase: string
  /** extensions the server could create (pg_available_extensions) with their default versions */
  available: Map<string, string>
  /** available extensions whose default version a non-superuser may create (trusted, or not superuser-only) */
  trusted: Set<string>
  /** whether this build has the output_plugin_libraries setting (not upstream PostgreSQL) */
  outputPluginLibraries: string[] | null
  /** max_slot_wal_keep_size as the server reports it ('-1': unlimited) */
  maxSlotWalKeepSize: string | null
  /** what the capacity checks compare the estate with (absent where not read) */
  capacity?: ServerCapacity
}

/** Connection and pg_cron limits of the server, and what is in use now. */
export interface ServerCapacity {
  maxConnections: number
  /** superuser_reserved_connections: the slots ordinary roles can never take */
  reservedConnections: number
  /** client backends connected now */
  usedConnections: number
  /** cron.max_running_jobs; null when pg_cron is not loaded */
  cronMaxRunningJobs: number | null
  /** cron.use_background_workers: jobs run as background workers instead of opening a connection each */
  cronBackgroundWorkers: boolean
}

export async function serverFacts(client: pg.Client): Promise<ServerFacts> {
  const {rows} = await client.query<{
    version: string; num: string; superuser: boolean; createrole: boolean; createdb: boolean; replication: boolean; usr: string; wal_level: string; slots: string; preload: string; cron_db: string | null; opl: string | null; slot_cap: string | null
    max_connections: number; reserved_connections: number; used_connections: number; cron_max_running: number | null; cron_workers: boolean
  }>(`SELECT current_setting('server_version') AS version,
             current_setting('server_version_num') AS num,
             (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser,
             (SELECT rolcreaterole FROM pg_roles WHERE rolname = current_user) AS createrole,
             (SELECT rolcreatedb FROM pg_roles WHERE rolname = current_user) AS createdb,
             (SELECT rolreplication FROM pg_roles WHERE rolname = current_user) AS replication,
             current_user AS usr,
             current_setting('wal_level') AS wal_level,
             current_setting('max_replication_slots') AS slots,
             -- pg_settings hides superuser-only values from others instead of failing
             coalesce((SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries'), '') AS preload,
             (SELECT setting FROM pg_settings WHERE name = 'cron.database_name') AS cron_db,
             (SELECT setting FROM pg_settings WHERE name = 'output_plugin_libraries') AS opl,
             current_setting('max_slot_wal_keep_size', true) AS slot_cap,
             current_setting('max_connections')::int AS max_connections,
             current_setting('superuser_reserved_connections')::int AS reserved_connections,
             (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int AS used_connections,
             (SELECT setting::int FROM pg_settings WHERE name = 'cron.max_running_jobs') AS cron_max_running,
             coalesce((SELECT setting FROM pg_settings WHERE name = 'cron.use_background_workers'), 'off') = 'on' AS cron_workers`)
  const available = await client.query<{name: string; default_version: string; trusted: boolean}>(
    `SELECT e.name, e.default_version, coalesce(v.trusted OR NOT v.superuser, false) AS trusted
       FROM pg_available_extensions e LEFT JOIN pg_available_extension_versions v ON v.name = e.name AND v.version = e.default_version`,
  )
  const r = rows[0]
  return {
    version: r.version,
    versionNum: Number(r.num),
    superuser: r.superuser,
    createrole: r.createrole,
    createdb: r.createdb,
    replication: r.replication,
    user: r.usr,
    walLevel: r.wal_level,
    maxReplicationSlots: Number(r.slots),
    preload: r.preload.split(',').map((s) => s.trim()).filter(Boolean),
    cronDatabase: r.cron_db || 'postgres',
    available: new Map(available.rows.map((e) => [e.name, e.default_version])),
    trusted: new Set(available.rows.filter((e) => e.trusted).map((e) => e.name)),
    outputPluginLibraries: r.opl === null ? null : r.opl.split(',').map((s) => s.trim()).filter(Boolean),
    maxSlotWalKeepSize: r.slot_cap,
    capacity: {
      maxConnections: r.max_connections,
      reservedConnections: r.reserved_connections,
      usedConnections: r.used_connections,
      cronMaxRunningJobs: r.cron_max_running,
      cronBackgroundWorkers: r.cron_workers,
    },
  }
}

/** What must hold before db init changes anything; each failure names the exact fix. */
export function preflightProblems(facts: ServerFacts): CliError[] {
  // an admin without superuser (a managed server): the server settings become provider steps of the plan
  if (!facts.superuser) return managedPreflightProblems(facts)
  const problems: CliError[] = []
  if (facts.versionNum < 140_000) {
    problems.push(new CliError(`PostgreSQL ${facts.version} is too old`, {hint: 'singularity supports PostgreSQL 14 to 17', code: 'SERVER_TOO_OLD'}))
  }
  if (!facts.preload.includes('pg_cron')) {
    problems.push(new CliError('pg_cron is not preloaded (shared_preload_libraries)', {
      hint: `ALTER SYSTEM SET shared_preload_libraries = '${[...facts.preload, 'pg_cron'].join(',')}'; then restart PostgreSQL (the local cluster has it: singularity local start)`,
      code: 'PG_CRON_NOT_PRELOADED',
    }))
  }
  if (!facts.available.has('pg_cron')) {
    problems.push(new CliError('the pg_cron extension is not installed on the server', {hint: 'apt-get install -y postgresql-15-cron (or your platform package), then restart', code: 'PG_CRON_MISSING'}))
  }
  if (facts.walLevel !== 'logical') {
    problems.push(new CliError(`wal_level is '${facts.walLevel}', change data capture needs 'logical'`, {
      hint: "ALTER SYSTEM SET wal_level = 'logical'; then restart PostgreSQL",
      code: 'WAL_LEVEL',
    }))
  }
  return problems
}
