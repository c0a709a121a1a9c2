import type pg from 'pg'

import {formatBytes, formatDuration} from '../cli/format.js'
import type {ResolvedConfig} from '../config/resolve.js'
import type {JobsListResult} from '../cron/jobs.js'
import type {BackupEntry} from '../backup/store.js'
import type {ConcreteDatabase} from '../../topology.js'
import {DEFAULT_DATABASE_TIMEOUT_MS, DEFAULT_READ_CONCURRENCY, type ReadBound, type SharedClients, type Unreadable} from '../estate/visit.js'
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
export async function queueChecks(
  config: ResolvedConfig,
  databases: ConcreteDatabase[],
  thresholds: DoctorThresholds,
  bound?: Pick<ReadBound, 'concurrency' | 'timeoutMs'>,
  unreadableOnes: Unreadable[] = [],
  shared?: SharedClients,
): Promise<CheckResult> {
  const [{readQueueDatabases}, {queueStats}] = await Promise.all([import('../queue/locate.js'), import('../queue/stats.js')])
  const {read, unavailable, unreadable} = await readQueueDatabases(
    config,
    databases.filter((d) => d.spec.queues.length > 0),
    (client, db, catalog) => queueStats(client, catalog.queues, {database: db.name}),
    {bound: bound ?? {concurrency: DEFAULT_READ_CONCURRENCY, timeoutMs: DEFAULT_DATABASE_TIMEOUT_MS}, connect: {applicationName: 'singularity doctor'}, shared},
  )
  unreadableOnes.push(...unreadable)
  const stats = read.flatMap((r) => r.value)
  const long = stats.filter((s) => s.length > thresholds.maxQueueLength)
  const old = stats.filter((s) => (s.oldest_age_sec ?? 0) > thresholds.maxOldestSeconds)
  const problems = [
    ...long.map((s) => `${s.database}/${s.queue} has ${s.length}${s.estimated ? '~' : ''} messages (> ${thresholds.maxQueueLength})`),
    ...old.map((s) => `${s.database}/${s.queue} oldest message ${formatDuration(s.oldest_age_sec)} old (> ${formatDuration(thresholds.maxOldestSeconds)})`),
    ...unavailable.map((u) => `${u.database}: ${u.reason}`),
    ...unreadable.map((u) => `${u.database}: ${u.timed_out ? 'timed out' : 'unreadable'}: ${u.reason}`),
  ]
  return {
    check: 'queue backlog',
    status: problems.length > 0 ? 'fail' : 'ok',
    detail: problems.length > 0 ? problems.join('; ') : `${stats.length} queues under ${thresholds.maxQueueLength} messages and ${formatDuration(thresholds.maxOldestSeconds)}`,
    next: long[0] || old[0] ? `singularity queue peek ${(long[0] ?? old[0]).queue} --db ${(long[0] ?? old[0]).database}` : 'singularity queue stats',
  }
}

/**
 * Replication slots, the classic way a database fills its disk: a slot invalidated by the cap
 * (wal_status = lost) or retaining more than the threshold fails; a slot without a consumer for
 * longer than the idle threshold, one past a fraction of the cap, an unlimited cap, or a missing
 * estate slot warns. Every problem names its slot and the fix.
 */
export async function slotCheck(admin: pg.Client, estateSlots: {name: string; consumer: string}[], thresholds: DoctorThresholds): Promise<CheckResult> {
  const [{listSlots}, {slotCapFinding}] = await Promise.all([import('../cdc/slots.js'), import('../cdc/cap.js')])
  const report = await listSlots(admin, estateSlots.map((s) => s.name))
  const consumerOf = (name: string) => estateSlots.find((s) => s.name === name)?.consumer ?? 'its consumer'
  const failures: string[] = []
  const warnings: string[] = []
  let next = 'singularity cdc slots'
  for (const s of report.slots) {
    if (s.walStatus === 'lost') {
      failures.push(
        `${s.name} is lost: the WAL it needed was removed (max_slot_wal_keep_size ${report.capSetting}); recreate it (\`singularity cdc slots drop ${s.name} --confirm ${s.name}\`, then \`singularity db init\`) and ${consumerOf(s.name)} must resync from a fresh copy`,
      )
      next = `singularity cdc slots drop ${s.name} --confirm ${s.name}`
      continue
    }
    if ((s.retainedBytes ?? 0) > thresholds.maxSlotRetainedBytes) {
      failures.push(`${s.name} retains ${formatBytes(s.retainedBytes)} (> ${formatBytes(thresholds.maxSlotRetainedBytes)}): ${consumerOf(s.name)} must read it, or drop it`)
    } else if (report.capBytes !== null && (s.retainedBytes ?? 0) > thresholds.slotCapWarnFraction * report.capBytes) {
      warnings.push(`${s.name} retains ${formatBytes(s.retainedBytes)}, over ${Math.round(thresholds.slotCapWarnFraction * 100)}% of the ${report.capSetting} cap: past it the slot is lost and ${consumerOf(s.name)} must resync`)
    }
    // PostgreSQL 17 records when the slot was released; before that, how long its oldest unconsumed change has waited.
    const idle = s.active ? null : (s.inactiveSeconds ?? s.unconsumedForSeconds)
    if (idle !== null && idle > thresholds.maxSlotIdleSeconds) {
      warnings.push(`${s.name} has had no consumer for ${s.inactiveSeconds === null ? 'at least ' : ''}${formatDuration(idle)} (> ${formatDuration(thresholds.maxSlotIdleSeconds)}): start ${consumerOf(s.name)}, or drop the slot`)
    }
  }
  const missing = estateSlots.filter((e) => !report.slots.some((s) => s.name === e.name)).map((e) => e.name)
  if (missing.length > 0) warnings.push(`missing CDC slot(s): ${missing.join(', ')} (\`singularity db init\` creates them)`)
  const cap = report.slots.length > 0 ? slotCapFinding({max_slot_wal_keep_size: report.capSetting}) : null
  if (cap) warnings.push(`${cap.message}; fix: ${cap.fix}`)
  if (failures.length === 0 && missing.length > 0 && warnings.length === 1) next = 'singularity db init'
  const largest = Math.max(0, ...report.slots.map((s) => s.retainedBytes ?? 0))
  return {
    check: 'replication slots',
    status: failures.length > 0 ? 'fail' : warnings.length > 0 ? 'warn' : 'ok',
    detail:
      failures.length + warnings.length > 0
        ? [...failures, ...warnings].join('; ')
        : `${report.slots.length} slot(s), at most ${formatBytes(largest)} retained${report.capBytes === null ? '' : ` (cap ${report.capSetting})`}`,
    next,
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
