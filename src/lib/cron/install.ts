import type pg from 'pg'

import {CliError, UsageError} from '../cli/errors.js'
import {JOB_PREFIX, type Estate, type ScheduleSpec} from '../../topology.js'
import {parseCron} from './expression.js'
import {diffCron} from '../reconcile/cron.js'
import {NEWEST_PG_CRON, validateScheduleFor, validateSchedulesFor} from './pg-cron-version.js'
import {checkScheduleName, isEstateJob, MAX_JOB_NAME_BYTES, plannedCronJobs, type PlannedCronJob} from './names.js'

/** A row of cron.job. */
export interface InstalledCronJob {
  jobid: number
  jobname: string | null
  schedule: string
  command: string
  database: string
  username: string
  active: boolean
}

export interface InstallResult {
  created: string[]
  updated: string[]
  removed: string[]
  unchanged: string[]
}

/** Facts about the cron database a client is connected to. */
export interface CronDatabaseInfo {
  /** current_database() of the client */
  database: string
  /** cron.database_name, null when pg_cron is not preloaded */
  cronDatabaseName: string | null
  /** pg_cron's version in this database, null when the extension is not created here */
  version: string | null
  currentUser: string
}

export async function cronDatabaseInfo(client: pg.Client): Promise<CronDatabaseInfo> {
  const {rows} = await client.query<{database: string; cron_db: string | null; version: string | null; current_user: string}>(
    `SELECT current_database() AS database,
            current_setting('cron.database_name', true) AS cron_db,
            (SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') AS version,
            current_user::text AS current_user`,
  )
  const r = rows[0]
  return {database: r.database, cronDatabaseName: r.cron_db, version: r.version, currentUser: r.current_user}
}

/** Exit 1 with a hint unless the client is on the cron database with pg_cron created. */
export function requirePgCron(info: CronDatabaseInfo): void {
  if (info.cronDatabaseName === null) {
    throw new CliError('pg_cron is not loaded on this server', {
      hint: "add pg_cron to shared_preload_libraries and restart PostgreSQL (`singularity local start` does it)",
      code: 'PG_CRON_MISSING',
    })
  }
  if (info.cronDatabaseName !== info.database) {
    throw new CliError(`connected to database ${info.database}, but pg_cron lives in ${info.cronDatabaseName} (cron.database_name)`, {
      hint: `connect to ${info.cronDatabaseName} to manage schedules`,
      code: 'NOT_CRON_DATABASE',
    })
  }
  if (info.version === null) {
    throw new CliError(`the pg_cron extension is not created in ${info.database}`, {
      hint: `run \`singularity db init\` (or CREATE EXTENSION pg_cron in ${info.database} as a superuser)`,
      code: 'PG_CRON_MISSING',
    })
  }
}

/** The jobs of cron.job whose names start with a prefix (any user). */
export async function readCronJobs(client: pg.Client, namePrefix: string): Promise<InstalledCronJob[]> {
  const {rows} = await client.query<InstalledCronJob & {jobid: string}>(
    `SELECT jobid, jobname::text AS jobname, schedule, command, database, username, active
       FROM cron.job WHERE left(jobname::text, length($1)) = $1 ORDER BY jobname, jobid`,
    [namePrefix],
  )
  return rows.map((r) => ({...r, jobid: Number(r.jobid)}))
}

/** Validates the pg_cron schedules (names, expressions, duplicates, name length) before anything changes; exit 2. */
export function validateSchedules(estate: Estate, schedules: ScheduleSpec[], cronDatabase = 'postgres'): PlannedCronJob[] {
  const seen = new Set<string>()
  for (const spec of schedules) {
    checkScheduleName(spec.name)
    if (seen.has(`${spec.runner}:${spec.name}`)) throw new UsageError(`schedule ${spec.name} is declared twice`, {code: 'DUPLICATE_SCHEDULE'})
    seen.add(`${spec.runner}:${spec.name}`)
    try {
      if (spec.runner === 'pg_cron') validateScheduleFor(NEWEST_PG_CRON, spec.schedule) // the server's version: installSchedules
      else parseCron(spec.schedule)
    } catch (error) {
      throw new UsageError(`schedule ${spec.name}: ${(error as Error).message}`, {hint: (error as CliError).hint, code: 'BAD_CRON_EXPRESSION'})
    }
    if (spec.runner === 'pg_cron' && spec.command.trim() === '') throw new UsageError(`schedule ${spec.name} has an empty command`)
  }
  const planned = plannedCronJobs(estate, schedules, cronDatabase)
  for (const job of planned) {
    if (Buffer.byteLength(job.jobname) > MAX_JOB_NAME_BYTES) {
      throw new UsageError(`pg_cron job name ${job.jobname} is longer than ${MAX_JOB_NAME_BYTES} bytes`, {
        hint: 'use a shorter estate prefix or schedule name',
        code: 'BAD_NAME',
      })
    }
  }
  return planned
}

/**
 * Installs the pg_cron schedules of an estate as named jobs from the cron database into the
 * databases they act on, as the connected (admin) role: the reconciliation plan's pg_cron area
 * (diffCron: create the missing, alter the differing in place so the job id and its history stay,
 * unschedule ours no longer declared) applied in one transaction, serialised by an advisory lock.
 * Jobs without our prefix, and jobs of another estate, are never touched. `apply: false` only reports.
 */
export async function installSchedules(
  cronClient: pg.Client,
  estate: Estate,
  schedules: ScheduleSpec[],
  options: {dryRun?: boolean} = {},
): Promise<InstallResult> {
  const info = await cronDatabaseInfo(cronClient)
  requirePgCron(info)
  validateSchedulesFor(info.version, schedules)
  const planned = validateSchedules(estate, schedules, info.database)

  const databases = [...new Set(planned.map((p) => p.database))]
  const {rows: existing} = await cronClient.query<{datname: string}>('SELECT datname FROM pg_catalog.pg_database WHERE datname = ANY($1)', [databases])
  const missing = databases.filter((d) => !existing.some((e) => e.datname === d))
  if (missing.length > 0) {
    throw new CliError(`database${missing.length > 1 ? 's' : ''} ${missing.join(', ')} do${missing.length > 1 ? '' : 'es'} not exist; no schedule was installed`, {
      hint: '`singularity db init` creates the databases before it installs the schedules',
      code: 'DATABASE_MISSING',
    })
  }

  const apply = !options.dryRun
  if (apply) await cronClient.query('BEGIN')
  try {
    if (apply) await cronClient.query("SELECT pg_advisory_xact_lock(hashtext('singularity.cron-install'))")
    const installed = (await readCronJobs(cronClient, `${JOB_PREFIX}${estate.prefix}`)).filter((j) => isEstateJob(j, estate, info.database))
    const actions = diffCron({database: info.database, installed: true}, planned, installed, info.currentUser)
    if (apply) {
      for (const action of actions) if (action.step.kind === 'sql') for (const statement of action.step.statements) await cronClient.query(statement)
      await cronClient.query('COMMIT')
    }
    const named = (reason: string) => [...new Set(actions.filter((a) => a.reason === reason).map((a) => a.subject!))].sort()
    const changed = new Set(actions.map((a) => a.subject))
    return {
      created: named('missing'),
      updated: named('drifted'),
      removed: named('extra'),
      unchanged: planned.map((p) => p.jobname).filter((n) => !changed.has(n)).sort(),
    }
  } catch (error) {
    if (apply) await cronClient.query('ROLLBACK').catch(() => {})
    throw error
  }
}
