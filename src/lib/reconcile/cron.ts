import {quoteLiteral} from '../sql/quote.js'
import type {InstalledCronJob} from '../cron/install.js'
import type {PlannedCronJob} from '../cron/names.js'
import {CRON_EXTENSION} from '../../topology.js'
import {sqlAction, type Action} from './action.js'
import type {CronObservation} from './observe.js'

/** The fields of an installed job that differ from its declaration ("schedule", "command", "database", "user"). */
export function jobDifferences(planned: PlannedCronJob, installed: InstalledCronJob, user: string): string[] {
  const out: string[] = []
  if (installed.schedule !== planned.schedule) out.push('schedule')
  if (installed.command !== planned.command) out.push('command')
  if (installed.database !== planned.database) out.push('database')
  if (installed.username !== user) out.push('user')
  return out
}

/** Installed jobs by name, in their order: what matchInstalled looks in (an estate of 60 instances has ~900 jobs). */
export type InstalledByName = ReadonlyMap<string | null, readonly InstalledCronJob[]>

export function installedByName(installed: readonly InstalledCronJob[]): InstalledByName {
  const byName = new Map<string | null, InstalledCronJob[]>()
  for (const job of installed) {
    const same = byName.get(job.jobname)
    if (same) same.push(job)
    else byName.set(job.jobname, [job])
  }
  return byName
}

/** Of the installed jobs named like a planned one, the one that stands for it (the admin's first). */
export function matchInstalled(planned: PlannedCronJob, installed: InstalledByName, user: string): InstalledCronJob | undefined {
  const same = installed.get(planned.jobname) ?? []
  return same.find((i) => i.username === user) ?? same[0]
}

/**
 * pg_cron jobs: each declared job exists under its name, in its database, as the admin (the user
 * db init installs as), with its schedule and command; a differing one is altered in place
 * (cron.alter_job keeps its id and history); ours that are no longer declared, or duplicates of a
 * name, are unscheduled. `installed` holds only the estate's jobs (prefix, name grammar, our
 * databases): a foreign job is never seen here, so never touched. A job's `active` flag is the
 * operator's: a paused job stays paused and is no drift.
 */
export function diffCron(cron: Pick<CronObservation, 'database' | 'installed'>, planned: PlannedCronJob[], installed: InstalledCronJob[], user: string): Action[] {
  const actions: Action[] = []
  if (!cron.installed) {
    actions.push(
      sqlAction(
        {area: 'cron', database: cron.database, description: `create extension ${CRON_EXTENSION} in ${cron.database}`, destructive: false, privilege: 'superuser', reason: 'missing', subject: CRON_EXTENSION},
        'cron',
        [`CREATE EXTENSION IF NOT EXISTS ${CRON_EXTENSION}`],
      ),
    )
  }
  const kept = new Set<number>()
  const byName = installedByName(installed)
  const plannedNames = new Set<string | null>(planned.map((p) => p.jobname))
  for (const job of planned) {
    const current = matchInstalled(job, byName, user)
    const base = {area: 'cron' as const, database: job.database, destructive: false, privilege: 'superuser' as const, subject: job.jobname}
    if (!current) {
      actions.push(
        sqlAction(
          {...base, description: `schedule pg_cron job ${job.jobname} (${job.schedule}) in ${job.database}`, reason: 'missing'},
          'cron',
          [`SELECT cron.schedule_in_database(${[job.jobname, job.schedule, job.command, job.database, user].map(quoteLiteral).join(', ')})`],
        ),
      )
      continue
    }
    kept.add(current.jobid)
    const differences = jobDifferences(job, current, user)
    if (differences.length > 0) {
      actions.push(
        sqlAction(
          {...base, description: `update pg_cron job ${job.jobname}: ${differences.join(', ')} differ${differences.length === 1 ? 's' : ''}`, reason: 'drifted', differences},
          'cron',
          [`SELECT cron.alter_job(${current.jobid}, ${[job.schedule, job.command, job.database, user].map(quoteLiteral).join(', ')})`],
        ),
      )
    }
  }
  for (const job of installed) {
    if (kept.has(job.jobid)) continue
    const label = job.jobname ?? `#${job.jobid}`
    actions.push(
      sqlAction(
        {
          area: 'cron', database: job.database, destructive: true, privilege: 'superuser', reason: 'extra', subject: label,
          description: `unschedule pg_cron job ${label} (${plannedNames.has(job.jobname) ? `a duplicate under user ${job.username}` : 'no longer declared'})`,
        },
        'cron',
        [`SELECT cron.unschedule(${job.jobid}::bigint)`],
      ),
    )
  }
  return actions
}
