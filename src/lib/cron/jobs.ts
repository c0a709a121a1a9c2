import type pg from 'pg'

import {CliError, NotFoundError, UsageError} from '../cli/errors.js'
import {JOB_PREFIX, type ConcreteDatabase, type Runner} from '../../topology.js'
import type {JobSpec} from '../../schedules.js'
import {nextEffectiveRun, parseCron, runsBetween} from './expression.js'
import type {JobsContext} from './context.js'
import {isEstateJob, parseCronJobName, plannedCronJobs, closestNames, cronJobName, type PlannedCronJob} from './names.js'
import {readCronJobs, type InstalledCronJob} from './install.js'
import {
  checkObanInsert,
  findObanTable,
  insertObanJob,
  obanHistory,
  OBAN_FAILED_STATES,
  OBAN_WAITING_STATES,
  recentObanJobs,
  type ObanInsert,
  type ObanJobRow,
} from './oban.js'

/** The last run of a job: pg_cron's job_run_details or Oban's newest attempted job. */
export interface LastRun {
  status: string
  start: string | null
  end: string | null
  durationSeconds: number | null
  message: string | null
}

export interface JobRow {
  runner: Runner
  /** schedule name (declared), or the parsed name of an unknown job */
  name: string
  /** pg_cron job name, Oban worker module, or the host command */
  job: string
  schedule: string | null
  /** next run in UTC (ISO 8601); null for @reboot (startup) and never-firing schedules */
  nextRun: string | null
  database: string | null
  active: boolean | null
  lastRun: LastRun | null
  /** consecutive failed runs, newest first */
  failureStreak: number | null
  /** [] when the job is as declared: missing | schedule differs | command differs | database differs | unknown */
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
}

export interface ListOptions {
  runners?: Runner[]
  failing?: boolean
  /** concrete database names to show (default: all) */
  databases?: string[]
  now?: Date
}

const iso = (d: Date | null | undefined): string | null => (d ? d.toISOString() : null)
const seconds = (start: Date | null, end: Date | null): number | null =>
  start && end ? Math.round((end.getTime() - start.getTime()) / 10) / 100 : null
const oneLine = (text: string | null): string | null => (text === null ? null : text.replace(/\s+/g, ' ').trim())

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

function cronDrift(planned: PlannedCronJob, installed: InstalledCronJob | undefined): string[] {
  if (!installed) return ['missing']
  const drift: string[] = []
  if (installed.schedule !== planned.schedule) drift.push('schedule differs')
  if (installed.command !== planned.command) drift.push('command differs')
  if (installed.database !== planned.database) drift.push('database differs')
  return drift
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
  for (const job of planned) {
    const same = installed.filter((i) => i.jobname === job.jobname)
    const current = same.find((i) => i.username === ctx.adminUser) ?? same[0]
    if (current) matched.add(current.jobid)
    const {lastRun, streak} = cronLastRun(current ? runs.get(current.jobid) : undefined)
    rows.push({
      runner: 'pg_cron',
      name: job.spec.name,
      job: job.jobname,
      schedule: job.schedule,
      nextRun: nextRunOf(job.spec as JobSpec, now),
      database: job.database,
      active: current ? current.active : null,
      lastRun,
      failureStreak: current ? streak : null,
      drift: cronDrift(job, current),
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

async function obanRows(ctx: JobsContext, specs: JobSpec[], options: ListOptions, now: Date): Promise<JobRow[]> {
  const rows: JobRow[] = []
  const kinds = [...new Set(specs.map((s) => s.database))]
  for (const kind of kinds) {
    const kindSpecs = specs.filter((s) => s.database === kind)
    for (const db of ctx.estate.databases.filter((d) => d.kind === kind && selectedDatabase(d.name, options))) {
      const client = await ctx.open(db.name)
      const table = client ? await findObanTable(client) : null
      const recent = client && table ? await recentObanJobs(client, table, [...new Set(kindSpecs.map((s) => s.command))]) : new Map<string, ObanJobRow[]>()
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
        if (!client) {
          rows.push({...base, note: `database ${db.name} does not exist`})
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
export async function listJobs(ctx: JobsContext, options: ListOptions = {}): Promise<JobsListResult> {
  const now = options.now ?? new Date()
  const want = (r: Runner) => !options.runners || options.runners.length === 0 || options.runners.includes(r)
  const by = (r: Runner) => ctx.schedules.filter((s) => s.runner === r)
  let jobs: JobRow[] = [
    ...(want('pg_cron') ? await pgCronRows(ctx, by('pg_cron'), options, now) : []),
    ...(want('oban') ? await obanRows(ctx, by('oban'), options, now) : []),
    ...(want('system-cron') && !options.databases ? systemCronRows(by('system-cron'), now) : []),
  ]
  if (options.failing) jobs = jobs.filter((r) => isFailing(r) || (r.failureStreak ?? 0) > 0)
  return {
    prefix: ctx.estate.prefix,
    cronDatabase: ctx.cronInfo?.database ?? null,
    pgCron: {version: ctx.cron ? ctx.cronInfo?.version ?? null : null, problem: ctx.cronProblem ?? null},
    jobs,
    counts: {
      jobs: jobs.length,
      failing: jobs.filter(isFailing).length,
      missing: jobs.filter((r) => r.drift.includes('missing')).length,
      drifted: jobs.filter((r) => r.drift.length > 0).length,
      unknown: jobs.filter((r) => r.drift.includes('unknown')).length,
    },
  }
}

// ─────────────────────────────────────────────── resolving a name ──

export type ResolvedJob =
  | {runner: 'pg_cron'; spec?: JobSpec; jobname: string; database: string; target?: ConcreteDatabase; installed?: InstalledCronJob; command: string; username: string}
  | {runner: 'oban'; spec: JobSpec; worker: string; database: ConcreteDatabase}
  | {runner: 'system-cron'; spec: JobSpec}

/**
 * The jobs a name means: a schedule name (learn-patterns), a pg_cron job name
 * (singularity:learn-patterns, …:2), an Oban worker module or a system-cron schedule name.
 * A singularity job with several instances means one job per instance (narrowed by --db).
 * Unknown names exit 4 with the closest names.
 */
export async function resolveJob(ctx: JobsContext, name: string, databases?: string[]): Promise<ResolvedJob[]> {
  const cronDatabase = ctx.cronInfo?.database ?? 'postgres'
  const planned = plannedCronJobs(ctx.estate, ctx.schedules, cronDatabase)
  const installed = ctx.cron
    ? (await readCronJobs(ctx.cron, `${JOB_PREFIX}${ctx.estate.prefix}`)).filter((j) => isEstateJob(j, ctx.estate, cronDatabase))
    : []
  const inDb = (db: string) => !databases || databases.includes(db)
  const out: ResolvedJob[] = []

  const cronMatches = planned.filter((p) => p.spec.name === name || p.jobname === name || cronJobName(ctx.estate.prefix, p.spec.name) === name)
  for (const p of cronMatches) {
    if (!inDb(p.database)) continue
    const same = installed.filter((i) => i.jobname === p.jobname)
    const current = same.find((i) => i.username === ctx.adminUser) ?? same[0]
    out.push({
      runner: 'pg_cron',
      spec: p.spec as JobSpec,
      jobname: p.jobname,
      database: current?.database ?? p.database,
      target: p.target,
      installed: current,
      command: current?.command ?? p.command,
      username: current?.username ?? ctx.adminUser,
    })
  }
  if (cronMatches.length === 0) {
    for (const job of installed) {
      const parsed = parseCronJobName(job.jobname ?? '', ctx.estate.prefix)
      if (job.jobname !== name && parsed?.name !== name) continue
      if (!inDb(job.database)) continue
      out.push({runner: 'pg_cron', jobname: job.jobname!, database: job.database, installed: job, command: job.command, username: job.username})
    }
  }
  for (const spec of ctx.schedules.filter((s) => s.runner === 'oban' && (s.name === name || s.command === name))) {
    for (const db of ctx.estate.databases.filter((d) => d.kind === spec.database && inDb(d.name))) {
      // one worker declared twice (startup and weekly) is one worker to run
      if (out.some((o) => o.runner === 'oban' && o.worker === spec.command && o.database.name === db.name)) continue
      out.push({runner: 'oban', spec, worker: spec.command, database: db})
    }
  }
  for (const spec of ctx.schedules.filter((s) => s.runner === 'system-cron' && s.name === name)) out.push({runner: 'system-cron', spec})

  if (out.length === 0) {
    const known = [
      ...ctx.schedules.map((s) => s.name),
      ...ctx.schedules.filter((s) => s.runner === 'oban').map((s) => s.command),
      ...installed.map((j) => j.jobname ?? ''),
    ].filter(Boolean)
    const matchesElsewhere = cronMatches.length > 0 || known.includes(name)
    if (matchesElsewhere && databases) {
      throw new UsageError(`job ${name} does not run in ${databases.join(', ')}`, {hint: 'drop --db, or see `singularity jobs list` for where it runs'})
    }
    throw new NotFoundError(`no job named ${name}`, {
      hint: `closest: ${closestNames(name, known).join(', ')} (see \`singularity jobs list\`)`,
      code: 'JOB_NOT_FOUND',
    })
  }
  return out
}

// ─────────────────────────────────────────────── jobs run ──

export interface RunOutcome {
  runner: Runner
  job: string
  database: string | null
  username?: string
  command: string
  dryRun: boolean
  ok: boolean
  durationMs: number | null
  /** what the command returned: the last statement's tag, row count and (first 50) rows */
  output?: {commandTag: string | null; rowCount: number | null; columns: string[]; rows: Record<string, unknown>[]; notices: string[]}
  /** Oban: the inserted job */
  obanJob?: ObanJobRow
  error?: {message: string; code: string | null}
  note?: string
}

/** Runs a pg_cron job's command now, in its database, as its user (SET ROLE when not the admin). */
export async function runCronJob(ctx: JobsContext, job: Extract<ResolvedJob, {runner: 'pg_cron'}>, options: {dryRun?: boolean} = {}): Promise<RunOutcome> {
  const outcome: RunOutcome = {
    runner: 'pg_cron',
    job: job.jobname,
    database: job.database,
    username: job.username,
    command: job.command,
    dryRun: Boolean(options.dryRun),
    ok: true,
    durationMs: null,
    note: job.installed ? undefined : 'not installed in pg_cron: ran the declared command as the admin',
  }
  const client = await ctx.open(job.database)
  if (!client) {
    throw new CliError(`database ${job.database} does not exist`, {hint: 'run `singularity db init`', code: 'DATABASE_MISSING'})
  }
  if (options.dryRun) return outcome
  const notices: string[] = []
  const onNotice = (n: {message?: string}) => {
    if (n.message) notices.push(n.message)
  }
  client.on('notice', onNotice)
  const role = job.username !== ctx.adminUser
  try {
    await client.query('SET statement_timeout = 0')
    if (role) {
      const {rows} = await client.query<{sql: string}>('SELECT format($$SET ROLE %I$$, $1::text) AS sql', [job.username])
      await client.query(rows[0].sql)
    }
    const started = performance.now()
    try {
      const raw = (await client.query(job.command)) as unknown as pg.QueryResult | pg.QueryResult[]
      outcome.durationMs = Math.round((performance.now() - started) * 10) / 10
      const results = Array.isArray(raw) ? raw : [raw]
      const last = [...results].reverse().find((r) => r.fields && r.fields.length > 0) ?? results[results.length - 1]
      outcome.output = {
        commandTag: last?.command ? `${last.command}${last.rowCount === null || last.rowCount === undefined ? '' : ` ${last.rowCount}`}` : null,
        rowCount: last?.rowCount ?? null,
        columns: last?.fields?.map((f) => f.name) ?? [],
        rows: (last?.rows ?? []).slice(0, 50),
        notices,
      }
    } catch (error) {
      outcome.durationMs = Math.round((performance.now() - started) * 10) / 10
      const e = error as Error & {code?: string}
      outcome.ok = false
      outcome.error = {message: e.message.split('\n')[0], code: e.code ?? null}
      outcome.output = {commandTag: null, rowCount: null, columns: [], rows: [], notices}
    }
  } finally {
    client.off('notice', onNotice)
    if (role) await client.query('RESET ROLE').catch(() => {})
  }
  return outcome
}

/** Inserts an available Oban job for a worker, as Oban.insert would. */
export async function runObanJob(
  ctx: JobsContext,
  job: Extract<ResolvedJob, {runner: 'oban'}>,
  insert: Omit<ObanInsert, 'worker'>,
  options: {dryRun?: boolean} = {},
): Promise<RunOutcome> {
  checkObanInsert({...insert, worker: job.worker})
  const outcome: RunOutcome = {
    runner: 'oban',
    job: job.worker,
    database: job.database.name,
    command: `INSERT INTO oban_jobs (state, queue, worker, args, priority, max_attempts) VALUES ('available', ${JSON.stringify(insert.queue)}, ${JSON.stringify(job.worker)}, ${JSON.stringify(insert.args)}, ${insert.priority}, ${insert.maxAttempts})`,
    dryRun: Boolean(options.dryRun),
    ok: true,
    durationMs: null,
  }
  const client = await ctx.open(job.database.name)
  if (!client) throw new CliError(`database ${job.database.name} does not exist`, {hint: 'run `singularity db init`', code: 'DATABASE_MISSING'})
  const table = await findObanTable(client)
  if (!table) {
    throw new CliError(`no oban_jobs table in ${job.database.name}: Oban is not installed there`, {
      hint: "the Elixir application's migrations create oban_jobs; start it once, then retry",
      code: 'OBAN_ABSENT',
    })
  }
  if (options.dryRun) return outcome
  const started = performance.now()
  outcome.obanJob = await insertObanJob(client, table, {...insert, worker: job.worker})
  outcome.durationMs = Math.round((performance.now() - started) * 10) / 10
  return outcome
}

// ─────────────────────────────────────────────── jobs history ──

export interface HistoryRun {
  job: string
  database: string | null
  runid: number
  status: string
  start: string | null
  end: string | null
  durationSeconds: number | null
  message: string | null
  username?: string
  /** Oban */
  attempt?: number
  queue?: string
}

export interface HistoryResult {
  runner: Runner
  jobs: string[]
  runs: HistoryRun[]
  note?: string
}

/** The last runs of a job: cron.job_run_details for pg_cron, oban_jobs rows for an Oban worker. */
export async function jobHistory(ctx: JobsContext, resolved: ResolvedJob[], options: {limit: number; since?: Date}): Promise<HistoryResult> {
  const first = resolved[0]
  if (first.runner === 'system-cron') {
    throw new UsageError(`${first.spec.name} runs from the host's crontab; PostgreSQL keeps no history of it`, {
      hint: first.spec.command.includes('backup') ? 'see `singularity backup list`' : 'see the host system log',
    })
  }
  if (first.runner === 'pg_cron') {
    const jobs = resolved.filter((r): r is Extract<ResolvedJob, {runner: 'pg_cron'}> => r.runner === 'pg_cron')
    if (!ctx.cron) throw new CliError(ctx.cronProblem ?? 'pg_cron is not available', {code: 'PG_CRON_MISSING'})
    const ids = jobs.map((j) => j.installed?.jobid).filter((id): id is number => id !== undefined)
    if (ids.length === 0) {
      return {runner: 'pg_cron', jobs: jobs.map((j) => j.jobname), runs: [], note: 'not installed in pg_cron (run `singularity db init`)'}
    }
    const {rows} = await ctx.cron.query<{
      runid: string
      jobname: string
      database: string | null
      username: string | null
      status: string
      return_message: string | null
      start_time: Date | null
      end_time: Date | null
    }>(
      `SELECT d.runid, j.jobname::text AS jobname, d.database, d.username, d.status, d.return_message, d.start_time, d.end_time
         FROM cron.job_run_details d JOIN cron.job j ON j.jobid = d.jobid
        WHERE d.jobid = ANY($1::bigint[]) AND ($2::timestamptz IS NULL OR d.start_time >= $2)
        ORDER BY d.start_time DESC NULLS LAST, d.runid DESC LIMIT $3`,
      [ids, options.since ?? null, options.limit],
    )
    return {
      runner: 'pg_cron',
      jobs: jobs.map((j) => j.jobname),
      runs: rows.map((r) => ({
        job: r.jobname,
        database: r.database,
        runid: Number(r.runid),
        status: r.status,
        start: iso(r.start_time),
        end: iso(r.end_time),
        durationSeconds: seconds(r.start_time, r.end_time),
        message: oneLine(r.return_message),
        username: r.username ?? undefined,
      })),
    }
  }
  const runs: HistoryRun[] = []
  const notes: string[] = []
  for (const job of resolved.filter((r): r is Extract<ResolvedJob, {runner: 'oban'}> => r.runner === 'oban')) {
    const client = await ctx.open(job.database.name)
    const table = client ? await findObanTable(client) : null
    if (!client || !table) {
      notes.push(`no oban_jobs table in ${job.database.name}`)
      continue
    }
    for (const j of await obanHistory(client, table, job.worker, options)) {
      runs.push({
        job: j.worker,
        database: job.database.name,
        runid: j.id,
        status: j.state,
        start: iso(j.attemptedAt ?? j.scheduledAt),
        end: iso(j.finishedAt),
        durationSeconds: seconds(j.attemptedAt, j.finishedAt),
        message: oneLine(j.lastError),
        attempt: j.attempt,
        queue: j.queue,
      })
    }
  }
  runs.sort((a, b) => (b.start ?? '').localeCompare(a.start ?? '') || b.runid - a.runid)
  return {runner: 'oban', jobs: [...new Set(resolved.map((r) => (r.runner === 'oban' ? r.worker : '')))], runs: runs.slice(0, options.limit), note: notes.join('; ') || undefined}
}
