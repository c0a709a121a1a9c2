import {CliError, UsageError} from '../cli/errors.js'
import type {Runner} from '../../topology.js'
import type {JobsContext} from './context.js'
import {iso, oneLine, seconds} from './format.js'
import {findObanTable, obanHistory} from './oban.js'
import type {ResolvedJob} from './resolve.js'

/** `jobs history`: the last runs of a job. */

export interface HistoryRun {
  /** several servers: the server whose cron.job_run_details (or database) the run comes from */
  server?: string
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
  const obanJobs = resolved.filter((r): r is Extract<ResolvedJob, {runner: 'oban'}> => r.runner === 'oban')
  // each database's oban_jobs at once (bounded, a deadline each)
  const databases = [...new Set(obanJobs.map((job) => job.database))]
  const visits = await ctx.visit(databases, async (client, db) => {
    const table = await findObanTable(client)
    if (!table) return null
    const byWorker = new Map<string, Awaited<ReturnType<typeof obanHistory>>>()
    for (const job of obanJobs.filter((j) => j.database === db)) byWorker.set(job.worker, await obanHistory(client, table, job.worker, options))
    return byWorker
  })
  for (const job of obanJobs) {
    const visit = visits[databases.indexOf(job.database)]
    if (!visit.ok) {
      notes.push(visit.error.code === 'DATABASE_NOT_FOUND' ? `no oban_jobs table in ${job.database.name}` : `${visit.timedOut ? 'timed out' : 'could not read'} ${job.database.name}: ${visit.error.message.split('\n')[0]}`)
      continue
    }
    if (!visit.value) {
      notes.push(`no oban_jobs table in ${job.database.name}`)
      continue
    }
    for (const j of visit.value.get(job.worker) ?? []) {
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
