import {UsageError} from '../cli/errors.js'
import {SEED_JOB_ALIASES} from '../../schedules.js'
import {JOB_PREFIX, type ConcreteDatabase, type Estate, type ScheduleSpec} from '../../topology.js'
import {staggerIndex, staggerSchedule} from './stagger.js'

/**
 * pg_cron job names of an estate: JOB_PREFIX + estate prefix + schedule name, plus ":<n>" for
 * singularity instance n when there are several (the name stays under 63 bytes, pg_cron's limit;
 * the instance number names the database singularity_<n>). Schedule names are kebab-case without
 * '_', so one estate's jobs never parse as another's ("singularity:t_x_learn-patterns" is no job
 * of the estate without prefix); a job also belongs to an estate only when it runs in one of the
 * estate's databases (or in the cron database).
 */

/** A schedule name: lower-case kebab-case (no '_', no ':'). */
export const SCHEDULE_NAME = /^[a-z0-9]+(-[a-z0-9]+)*$/

/** pg_cron's jobname column is of type name: longer names would be cut silently. */
export const MAX_JOB_NAME_BYTES = 63

export function cronJobName(prefix: string, name: string, instance?: number): string {
  return `${JOB_PREFIX}${prefix}${name}${instance === undefined ? '' : `:${instance}`}`
}

/** The schedule name (and instance) of a pg_cron job name of this estate prefix; undefined when it is not one. */
export function parseCronJobName(jobname: string, prefix: string): {name: string; instance?: number} | undefined {
  const head = `${JOB_PREFIX}${prefix}`
  if (!jobname.startsWith(head)) return undefined
  const match = /^([a-z0-9]+(?:-[a-z0-9]+)*)(?::([1-9][0-9]*))?$/.exec(jobname.slice(head.length))
  if (!match) return undefined
  return {name: match[1], instance: match[2] === undefined ? undefined : Number(match[2])}
}

/** One pg_cron job as it should be installed. */
export interface PlannedCronJob {
  jobname: string
  spec: ScheduleSpec
  database: string
  /** the concrete database (undefined for the cron database) */
  target?: ConcreteDatabase
  /** the schedule pg_cron runs: the declared one staggered for this instance (stagger.ts) */
  schedule: string
  /** minutes after the declared time this copy runs (0: as declared) */
  offsetMinutes: number
  command: string
}

/** Checks a schedule name; exit 2 when it is not kebab-case. */
export function checkScheduleName(name: string): void {
  if (!SCHEDULE_NAME.test(name)) {
    throw new UsageError(`invalid schedule name ${JSON.stringify(name)}`, {
      hint: 'schedule names are lower-case kebab-case: letters, digits and single hyphens (e.g. learn-patterns)',
      code: 'BAD_NAME',
    })
  }
}

/** The concrete pg_cron jobs of the pg_cron schedules for an estate. */
export function plannedCronJobs(estate: Estate, schedules: ScheduleSpec[], cronDatabase: string): PlannedCronJob[] {
  const out: PlannedCronJob[] = []
  for (const spec of schedules) {
    if (spec.runner !== 'pg_cron') continue
    if (spec.database === 'cron') {
      out.push({jobname: cronJobName(estate.prefix, spec.name), spec, database: cronDatabase, schedule: spec.schedule, offsetMinutes: 0, command: spec.command})
      continue
    }
    for (const db of estate.databases.filter((d) => d.kind === spec.database)) {
      // each instance's copy at its own offset: the instances do not all start in the same minute
      const staggered = staggerSchedule(spec.schedule, staggerIndex(db.instance))
      out.push({
        jobname: cronJobName(estate.prefix, spec.name, db.instance),
        spec,
        database: db.name,
        target: db,
        schedule: staggered.schedule,
        offsetMinutes: staggered.offsetMinutes,
        command: spec.command,
      })
    }
  }
  return out
}

/** Whether an installed pg_cron job belongs to this estate (prefix, name grammar and database). */
export function isEstateJob(job: {jobname: string | null; database: string}, estate: Estate, cronDatabase: string | null): boolean {
  if (!job.jobname || !parseCronJobName(job.jobname, estate.prefix)) return false
  return job.database === cronDatabase || estate.databases.some((d) => d.name === job.database)
}

/** A job name as typed, and the schedule name it stands for when it is one of the seeds' aliases. */
export interface AliasResolution {
  /** the name to resolve: ours */
  name: string
  /** the seed's name as typed, when it was an alias */
  alias?: string
  source?: string
}

/**
 * Maps a seed job name (learn-patterns-every-5min, daily-vacuum-analyze, also with our
 * "singularity:<prefix>" head or an ":<instance>" tail) to our schedule name; other names pass
 * through. An alias that is also a declared schedule name stays that schedule.
 */
export function resolveJobAlias(typed: string, schedules: Pick<ScheduleSpec, 'name'>[], prefix = ''): AliasResolution {
  if (schedules.some((s) => s.name === typed)) return {name: typed}
  const head = `${JOB_PREFIX}${prefix}`
  const bare = typed.startsWith(head) ? typed.slice(head.length) : typed
  const match = /^(.+?)(:[1-9][0-9]*)?$/.exec(bare)
  const alias = match && Object.hasOwn(SEED_JOB_ALIASES, match[1]) ? SEED_JOB_ALIASES[match[1]] : undefined
  if (!alias || !schedules.some((s) => s.name === alias.name)) return {name: typed}
  const name = bare === typed && !match![2] ? alias.name : `${head}${alias.name}${match![2] ?? ''}`
  return {name, alias: typed, source: alias.source}
}

export {closestNames} from '../cli/closest.js'
