import type pg from 'pg'

import {formatBytes, formatDuration} from '../cli/format.js'
import type {ResolvedConfig} from '../config/resolve.js'
import type {JobsListResult} from '../cron/jobs.js'
import type {BackupEntry} from '../backup/store.js'
import type {ConcreteDatabase} from '../../topology.js'
import type {CheckResult, DoctorThresholds} from './types.js'

/** pg_cron jobs whose last run failed (with their failure streak), declared jobs missing, Oban runs missed. */
export function jobChecks(jobs: JobsListResult): CheckResult[] {
  const cron = jobs.jobs.filter((j) => j.runner === 'pg_cron')
  const failing = cron.filter((j) => j.lastRun?.status === 'failed')
  const missing = cron.filter((j) => j.drift.includes('missing'))
  const provider = cron.filter((j) => j.drift.includes('provider step'))
  const drifted = cron.filter((j) => j.drift.length > 0 && !j.drift.includes('missing') && !j.drift.includes('provider step'))
  const oban = jobs.jobs.filter((j) => j.runner === 'oban' && (j.missedRuns ?? 0) > 0)
  return [
    {
      check: 'pg_cron jobs',
      status: failing.length > 0 || missing.length > 0 ? 'fail' : drifted.length + provider.length > 0 ? 'warn' : 'ok',
      detail:
        failing.length + missing.length + drifted.length + provider.length === 0
          ? `${cron.length} jobs installed, none failing`
          : [
              failing.length > 0 ? `failing: ${failing.map((j) => `${j.job} (streak ${j.failureStreak ?? 1})`).join(', ')}` : '',
              missing.length > 0 ? `missing: ${missing.map((j) => j.job).join(', ')}` : '',
              drifted.length > 0 ? `drifted: ${drifted.map((j) => j.job).join(', ')}` : '',
              provider.length > 0 ? `${provider.length} to be scheduled by the provider (see db plan)` : '',
            ].filter(Boolean).join('; '),
      next: failing.length > 0 ? `singularity jobs history ${failing[0].job}` : missing.length > 0 ? 'singularity db init' : 'singularity jobs list',
    },
    {
      check: 'Oban schedules',
      status: oban.length > 0 ? 'warn' : 'ok',
      detail: oban.length > 0 ? `missed runs: ${oban.map((j) => `${j.job} (${j.missedRuns})`).join(', ')}` : 'no missed runs (or no oban_jobs table yet)',
      next: 'singularity jobs list --runner oban',
    },
  ]
}

/** Queue backlog and oldest message against thresholds, over every queue database of the estate. */
export async function queueChecks(config: ResolvedConfig, databases: ConcreteDatabase[], thresholds: DoctorThresholds): Promise<CheckResult> {
  const [{openQueueDatabases, closeAll}, {queueStats}] = await Promise.all([import('../queue/locate.js'), import('../queue/stats.js')])
  const {open, unavailable} = await openQueueDatabases(config, databases.filter((d) => d.spec.queues.length > 0), {applicationName: 'singularity doctor', statementTimeoutMs: 15_000})
  try {
    const stats = (await Promise.all(open.map((o) => queueStats(o.client, o.catalog.queues, {database: o.db.name})))).flat()
    const long = stats.filter((s) => s.length > thresholds.maxQueueLength)
    const old = stats.filter((s) => (s.oldest_age_sec ?? 0) > thresholds.maxOldestSeconds)
    const problems = [
      ...long.map((s) => `${s.database}/${s.queue} has ${s.length}${s.estimated ? '~' : ''} messages (> ${thresholds.maxQueueLength})`),
      ...old.map((s) => `${s.database}/${s.queue} oldest message ${formatDuration(s.oldest_age_sec)} old (> ${formatDuration(thresholds.maxOldestSeconds)})`),
      ...unavailable.map((u) => `${u.database}: ${u.reason}`),
    ]
    return {
      check: 'queue backlog',
      status: problems.length > 0 ? 'fail' : 'ok',
      detail: problems.length > 0 ? problems.join('; ') : `${stats.length} queues under ${thresholds.maxQueueLength} messages and ${formatDuration(thresholds.maxOldestSeconds)}`,
      next: long[0] || old[0] ? `singularity queue peek ${(long[0] ?? old[0]).queue} --db ${(long[0] ?? old[0]).database}` : 'singularity queue stats',
    }
  } finally {
    await closeAll(open)
  }
}

/** WAL retained by replication slots against a threshold (a forgotten slot fills the disk). */
export async function slotCheck(admin: pg.Client, estateSlots: string[], thresholds: DoctorThresholds): Promise<CheckResult> {
  const {listSlots} = await import('../cdc/slots.js')
  const report = await listSlots(admin, estateSlots)
  const over = report.slots.filter((s) => (s.retainedBytes ?? 0) > thresholds.maxSlotRetainedBytes)
  const lost = report.slots.filter((s) => s.walStatus === 'lost')
  const missing = estateSlots.filter((name) => !report.slots.some((s) => s.name === name))
  const problems = [
    ...over.map((s) => `${s.name} retains ${formatBytes(s.retainedBytes)} (> ${formatBytes(thresholds.maxSlotRetainedBytes)})`),
    ...lost.map((s) => `${s.name} has lost required WAL`),
  ]
  return {
    check: 'replication slots',
    status: problems.length > 0 ? 'fail' : missing.length > 0 ? 'warn' : 'ok',
    detail: problems.length > 0 ? problems.join('; ') : missing.length > 0 ? `missing CDC slot(s): ${missing.join(', ')}` : `${report.slots.length} slot(s), none over ${formatBytes(thresholds.maxSlotRetainedBytes)}`,
    next: problems.length > 0 ? 'singularity cdc slots' : missing.length > 0 ? 'singularity db init' : 'singularity cdc slots',
  }
}

/** How old the newest verified backup of a kind may be before it is stale (interval plus slack). */
export const BACKUP_MAX_AGE_SECONDS: Record<string, number> = {
  hourly: 2 * 3600,
  daily: 26 * 3600,
  monthly: 38 * 86_400,
}

/** The newest verified backup of each kind in use is younger than its kind's interval. */
export function backupCheck(backups: BackupEntry[], now = new Date()): CheckResult {
  const complete = backups.filter((b) => b.status === 'complete')
  if (complete.length === 0) {
    return {check: 'backups', status: 'warn', detail: 'no backups yet', next: 'singularity backup --kind daily --verify'}
  }
  const problems: string[] = []
  const notes: string[] = []
  for (const [kind, maxAge] of Object.entries(BACKUP_MAX_AGE_SECONDS)) {
    const ofKind = complete.filter((b) => b.kind === kind)
    if (ofKind.length === 0) continue
    const verified = ofKind.filter((b) => b.verified === 'yes').sort((a, b) => b.startedAt.localeCompare(a.startedAt))
    if (verified.length === 0) {
      problems.push(`no verified ${kind} backup`)
      continue
    }
    const age = (now.getTime() - new Date(verified[0].startedAt).getTime()) / 1000
    if (age > maxAge) problems.push(`newest verified ${kind} backup is ${formatDuration(age)} old (> ${formatDuration(maxAge)})`)
    else notes.push(`${kind} ${formatDuration(age)} ago`)
  }
  return {
    check: 'backups',
    status: problems.length > 0 ? 'fail' : 'ok',
    detail: problems.length > 0 ? problems.join('; ') : notes.length > 0 ? `newest verified: ${notes.join(', ')}` : 'only manual backups',
    next: 'singularity backup list',
  }
}
