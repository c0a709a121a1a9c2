import {NotFoundError, UsageError} from '../cli/errors.js'
import {JOB_PREFIX, type ConcreteDatabase} from '../../topology.js'
import type {JobSpec} from '../../schedules.js'
import type {JobsContext} from './context.js'
import {readCronJobs, type InstalledCronJob} from './install.js'
import {closestNames, cronJobName, isEstateJob, parseCronJobName, plannedCronJobs} from './names.js'

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
