import type pg from 'pg'

import {JOB_PREFIX, type Runner} from '../../topology.js'
import type {JobSpec} from '../../schedules.js'
import {diffCron, installedByName, matchInstalled} from '../reconcile/cron.js'
import {CRON_IN_OTHER_DATABASES_SQL} from '../reconcile/managed.js'
import {unreadable, type Unreadable} from '../estate/visit.js'
import type {JobsContext} from './context.js'
import {nextEffectiveRun, parseCron, runsBetween} from './expression.js'
import {iso, oneLine, seconds} from './format.js'
import {readCronJobs, type InstalledCronJob} from './install.js'
import {isEstateJob, parseCronJobName, plannedCronJobs, type PlannedCronJob} from './names.js'
import {findObanTable, OBAN_FAILED_STATES, OBAN_WAITING_STATES, recentObanJobs, type ObanJobRow} from './oban.js'

/** `jobs list`: every declared job with its state on the server (last run, streak, next run, drift), plus unknown jobs under our prefix. */

export interface LastRun {
  status: string
  start: string | null
  end: string | null
  durationSeconds: number | null
  message: string | null
}

export interface JobRow {
  runner: Runner
  /** several servers: the server whose pg_cron (or database) the row comes from */
  server?: string
  /** schedule name (declared), or the parsed name of an unknown job */
  name: string
  /** pg_cron job name, Oban worker module, or the host command */
  job: string
  /** as pg_cron runs it: for a singularity instance's copy, the declared schedule staggered (stagger.ts) */
  schedule: string | null
  /** the seeds' schedule, when this copy runs staggered from it */
  declaredSchedule?: string
  /** pg_cron: minutes after the declared time this instance's copy runs (0: as declared; stagger.ts) */
  offsetMinutes?: number
  /** next run in UTC (ISO 8601); null for @reboot (startup) and never-firing schedules */
  nextRun: string | null
  database: string | null
  active: boolean | null
  lastRun: LastRun | null
  /** consecutive failed runs, newest first */
  failureStreak: number | null
  /** [] when the job is as declared (the plan's pg_cron actions): missing | schedule / command / database / user differs | unknown */
  drift: string[]
  /** Oban: scheduled runs since the newest job of this worker that have no job */
  missedRuns?: number | null
  /** Oban: jobs waiting (available or scheduled) */
  waiting?: number
  /** as declared (for unknown jobs: as installed) */
  command: string
  description: string
  /** pg_cron: the installed job */
  installed?: {jobid: number; schedule: string; command: string; database: string; username: string; active: boolean} | null
  note?: string
}

export interface JobsListResult {
  prefix: string
  cronDatabase: string | null
  pgCron: {version: string | null; problem: string | null}
  jobs: JobRow[]
  counts: {jobs: number; failing: number; missing: number; drifted: number; unknown: number}
  /** databases that could not be read (refused, failed, or past the per-database timeout); their rows say so */
  unreadable: Unreadable[]
}

export interface ListOptions {
  runners?: Runner[]
  failing?: boolean
  /** concrete database names to show (default: all) */
  databases?: string[]
  now?: Date
}

function nextRunOf(spec: Pick<JobSpec, 'schedule' | 'maxDayOfMonth'>, now: Date): string | null {
  try {
    return iso(nextEffectiveRun(parseCron(spec.schedule), now, spec.maxDayOfMonth))
  } catch {
    return null
  }
}

interface CronRun {
  jobid: number
  status: string
  message: string | null
  start: Date | null
  end: Date | null
}

async function recentCronRuns(cron: pg.Client, jobids: number[], perJob = 50): Promise<Map<number, CronRun[]>> {
  const out = new Map<number, CronRun[]>()
  if (jobids.length === 0) return out
  const {rows} = await cron.query<{jobid: string; status: string; return_message: string | null; start_time: Date | null; end_time: Date | null}>(
    `SELECT jobid, status, return_message, start_time, end_time FROM (
       SELECT d.*, row_number() OVER (PARTITION BY d.jobid ORDER BY d.runid DESC) AS rn
         FROM cron.job_run_details d WHERE d.jobid = ANY($1::bigint[])
     ) x WHERE rn <= $2 ORDER BY jobid, runid DESC`,
    [jobids, perJob],
  )
  for (const r of rows) {
    const id = Number(r.jobid)
    out.set(id, [...(out.get(id) ?? []), {jobid: id, status: r.status, message: r.return_message, start: r.start_time, end: r.end_time}])
  }
  return out
}

function cronLastRun(runs: CronRun[] | undefined): {lastRun: LastRun | null; streak: number} {
  if (!runs || runs.length === 0) return {lastRun: null, streak: 0}
  const last = runs[0]
  let streak = 0
  for (const run of runs) {
    if (run.status === 'running' || run.status === 'starting') continue
    if (run.status !== 'failed') break
    streak++
  }
  return {
    lastRun: {status: last.status, start: iso(last.start), end: iso(last.end), durationSeconds: seconds(last.start, last.end), message: oneLine(last.message)},
    streak,
  }
}

/**
 * The drift of each pg_cron job, read from the reconciliation plan's pg_cron actions (the same diff
 * `db plan` and `db init` use): missing, "<field> differs" for schedule/command/database/user, or
 * unknown for one of ours that is no longer declared.
 */
function cronDrift(planned: PlannedCronJob[], installed: InstalledCronJob[], cronDatabase: string, user: string, inOtherDatabases = true): Map<string, string[]> {
  const drift = new Map<string, string[]>()
  for (const action of diffCron({database: cronDatabase, installed: true}, planned, installed, user)) {
    if (!action.subject) continue
    // an admin without superuser cannot schedule into another database (a managed server): the provider's step, not drift
    const providers = !inOtherDatabases && action.reason === 'missing' && action.database !== cronDatabase
    const words = providers ? ['provider step'] : action.reason === 'missing' ? ['missing'] : action.reason === 'extra' ? ['unknown'] : (action.differences ?? []).map((d) => `${d} differs`)
    drift.set(action.subject, [...(drift.get(action.subject) ?? []), ...words])
  }
  return drift
}

/** Whether the admin may schedule pg_cron jobs into other databases (a superuser, or granted cron.schedule_in_database). */
async function schedulesInOtherDatabases(cron: pg.Client): Promise<boolean> {
  const {rows} = await cron.query<{can: boolean}>(`SELECT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) OR ${CRON_IN_OTHER_DATABASES_SQL} AS can`)
  return rows[0].can
}

function selectedDatabase(name: string | null, options: ListOptions): boolean {
  return !options.databases || name === null || options.databases.includes(name)
}

async function pgCronRows(ctx: JobsContext, specs: JobSpec[], options: ListOptions, now: Date): Promise<JobRow[]> {
  const cronDatabase = ctx.cronInfo?.database ?? 'postgres'
  const planned = plannedCronJobs(ctx.estate, specs, cronDatabase)
  let installed: InstalledCronJob[] = []
  if (ctx.cron) {
    installed = (await readCronJobs(ctx.cron, `${JOB_PREFIX}${ctx.estate.prefix}`)).filter((j) => isEstateJob(j, ctx.estate, cronDatabase))
  }
  const runs = ctx.cron ? await recentCronRuns(ctx.cron, installed.map((j) => j.jobid)) : new Map<number, CronRun[]>()
  const rows: JobRow[] = []
  const matched = new Set<number>()
  const drift = cronDrift(planned, installed, cronDatabase, ctx.adminUser, ctx.cron ? await schedulesInOtherDatabases(ctx.cron) : true)
  const byName = installedByName(installed)
  for (const job of planned) {
    const current = matchInstalled(job, byName, ctx.adminUser)
    if (current) matched.add(current.jobid)
    const {lastRun, streak} = cronLastRun(current ? runs.get(current.jobid) : undefined)
    rows.push({
      runner: 'pg_cron',
      name: job.spec.name,
      job: job.jobname,
      schedule: job.schedule,
      declaredSchedule: job.spec.schedule,
      offsetMinutes: job.offsetMinutes,
      nextRun: nextRunOf({schedule: job.schedule, maxDayOfMonth: (job.spec as JobSpec).maxDayOfMonth}, now),
      database: job.database,
      active: current ? current.active : null,
      lastRun,
      failureStreak: current ? streak : null,
      drift: drift.get(job.jobname) ?? [],
      command: job.command,
      description: job.spec.description,
      installed: current ? {jobid: current.jobid, schedule: current.schedule, command: current.command, database: current.database, username: current.username, active: current.active} : null,
      note: ctx.cron ? (job.spec.schedule.startsWith('@reboot') ? 'runs when PostgreSQL starts' : undefined) : ctx.cronProblem,
    })
  }
  for (const job of installed) {
    if (matched.has(job.jobid)) continue
    const {lastRun, streak} = cronLastRun(runs.get(job.jobid))
    rows.push({
      runner: 'pg_cron',
      name: parseCronJobName(job.jobname ?? '', ctx.estate.prefix)?.name ?? job.jobname ?? '',
      job: job.jobname ?? `#${job.jobid}`,
      schedule: job.schedule,
      nextRun: nextRunOf({schedule: job.schedule}, now),
      database: job.database,
      active: job.active,
      lastRun,
      failureStreak: streak,
      drift: ['unknown'],
      command: job.command,
      description: 'not declared: under our prefix but not in the schedules (db init removes it)',
      installed: {jobid: job.jobid, schedule: job.schedule, command: job.command, database: job.database, username: job.username, active: job.active},
    })
  }
  return rows.filter((r) => selectedDatabase(r.database, options))
}

function obanLastRun(jobs: ObanJobRow[]): {lastRun: LastRun | null; streak: number; waiting: number} {
  const waiting = jobs.filter((j) => OBAN_WAITING_STATES.includes(j.state)).length
  const ran = jobs.filter((j) => !OBAN_WAITING_STATES.includes(j.state))
  let streak = 0
  for (const j of ran) {
    if (j.state === 'executing') continue
    if (!OBAN_FAILED_STATES.includes(j.state)) break
    streak++
  }
  const last = ran[0]
  if (!last) return {lastRun: null, streak, waiting}
  return {
    lastRun: {
      status: last.state,
      start: iso(last.attemptedAt),
      end: iso(last.finishedAt),
      durationSeconds: seconds(last.attemptedAt, last.finishedAt),
      message: oneLine(last.lastError),
    },
    streak,
    waiting,
  }
}

/** Grace before a scheduled Oban run counts as missed (the Cron plugin inserts within the minute). */
const OBAN_GRACE_MS = 5 * 60_000

async function obanRows(ctx: JobsContext, specs: JobSpec[], options: ListOptions, now: Date, unreadableOnes: Unreadable[]): Promise<JobRow[]> {
  const rows: JobRow[] = []
  const kinds = [...new Set(specs.map((s) => s.database))]
  const visited = kinds.flatMap((kind) => ctx.estate.databases.filter((d) => d.kind === kind && selectedDatabase(d.name, options)).map((db) => ({db, kindSpecs: specs.filter((s) => s.database === kind)})))
  // every database's oban_jobs at once (bounded, a deadline each); rows in estate order
  const visits = await ctx.visit(
    visited.map((v) => v.db),
    async (client, db) => {
      const table = await findObanTable(client)
      const commands = [...new Set(visited.find((v) => v.db === db)!.kindSpecs.map((s) => s.command))]
      return {table, recent: table ? await recentObanJobs(client, table, commands) : new Map<string, ObanJobRow[]>()}
    },
  )
  for (const [i, {db, kindSpecs}] of visited.entries()) {
    const visit = visits[i]
    const missing = !visit.ok && visit.error.code === 'DATABASE_NOT_FOUND'
    if (!visit.ok && !missing) unreadableOnes.push(unreadable(db.name, visit))
    const table = visit.ok ? visit.value.table : null
    const recent = visit.ok ? visit.value.recent : new Map<string, ObanJobRow[]>()
    for (const spec of kindSpecs) {
      const base: JobRow = {
        runner: 'oban',
        name: spec.name,
        job: spec.command,
        schedule: spec.schedule,
        nextRun: nextRunOf(spec, now),
        database: db.name,
        active: null,
        lastRun: null,
        failureStreak: null,
        drift: [],
        missedRuns: null,
        command: spec.command,
        description: spec.description,
      }
      if (missing) {
        rows.push({...base, note: `database ${db.name} does not exist`})
        continue
      }
      if (!visit.ok) {
        rows.push({...base, note: `${visit.timedOut ? 'timed out' : 'could not read'} ${db.name}: ${visit.error.message.split('\n')[0]}`})
        continue
      }
      if (!table) {
        rows.push({...base, note: `no oban_jobs table in ${db.name} (the Elixir application's migrations create it)`})
        continue
      }
      const jobs = recent.get(spec.command) ?? []
      const {lastRun, streak, waiting} = obanLastRun(jobs)
      let missedRuns: number | null = null
      let note: string | undefined
      const cron = parseCron(spec.schedule)
      if (cron.reboot) {
        note = 'enqueued when the application starts'
      } else if (jobs.length === 0) {
        note = `no ${spec.command} job in oban_jobs yet`
      } else {
        const newest = jobs.reduce<Date | null>((m, j) => (j.insertedAt && (!m || j.insertedAt > m) ? j.insertedAt : m), null)
        const until = new Date(now.getTime() - OBAN_GRACE_MS)
        missedRuns = newest ? runsBetween(cron, new Date(newest.getTime() + OBAN_GRACE_MS), until, 1000) : null
      }
      rows.push({...base, lastRun, failureStreak: streak, waiting, missedRuns, note})
    }
  }
  return rows
}

function systemCronRows(specs: JobSpec[], now: Date): JobRow[] {
  return specs.map((spec) => ({
    runner: 'system-cron' as const,
    name: spec.name,
    job: spec.command,
    schedule: spec.schedule,
    nextRun: nextRunOf(spec, now),
    database: null,
    active: null,
    lastRun: null,
    failureStreak: null,
    drift: [],
    command: spec.command,
    description: spec.description,
    note: `host crontab line: ${spec.schedule} ${spec.command}`,
  }))
}

/** A row whose last run failed. */
export function isFailing(row: JobRow): boolean {
  if (!row.lastRun) return false
  return row.runner === 'oban' ? OBAN_FAILED_STATES.includes(row.lastRun.status) : row.lastRun.status === 'failed'
}

/** Every declared job with its state on the server, plus unknown jobs under our prefix. */
/** The summary counts of a jobs list (one server's or the whole estate's). */
export function jobCounts(jobs: JobRow[]): JobsListResult['counts'] {
  return {
    jobs: jobs.length,
    failing: jobs.filter(isFailing).length,
    missing: jobs.filter((r) => r.drift.includes('missing')).length,
    drifted: jobs.filter((r) => r.drift.length > 0).length,
    unknown: jobs.filter((r) => r.drift.includes('unknown')).length,
  }
}

export async function listJobs(ctx: JobsContext, options: ListOptions = {}): Promise<JobsListResult> {
  const now = options.now ?? new Date()
  const want = (r: Runner) => !options.runners || options.runners.length === 0 || options.runners.includes(r)
  const by = (r: Runner) => ctx.schedules.filter((s) => s.runner === r)
  const unreadableOnes: Unreadable[] = []
  let jobs: JobRow[] = [
    ...(want('pg_cron') ? await pgCronRows(ctx, by('pg_cron'), options, now) : []),
    ...(want('oban') ? await obanRows(ctx, by('oban'), options, now, unreadableOnes) : []),
    ...(want('system-cron') && !options.databases ? systemCronRows(by('system-cron'), now) : []),
  ]
  if (options.failing) jobs = jobs.filter((r) => isFailing(r) || (r.failureStreak ?? 0) > 0)
  return {
    prefix: ctx.estate.prefix,
    cronDatabase: ctx.cronInfo?.database ?? null,
    pgCron: {version: ctx.cron ? ctx.cronInfo?.version ?? null : null, problem: ctx.cronProblem ?? null},
    jobs,
    counts: jobCounts(jobs),
    unreadable: unreadableOnes,
  }
}
