import type pg from 'pg'

import {parseCron, previousRun, type CronExpression} from '../cron/expression.js'
import type {CapacityReport} from '../reconcile/capacity.js'
import type {CheckResult} from './types.js'

/**
 * The doctor's capacity rows: the plan's capacity check (pg_cron jobs per minute against
 * cron.max_running_jobs, connections against max_connections) and the start delays pg_cron
 * actually recorded in the last hour.
 */
export function capacityChecks(capacity: CapacityReport | null): CheckResult[] {
  if (!capacity) return []
  const {cron, connections} = capacity
  const rows: CheckResult[] = []
  if (cron.maxRunningJobs !== null) {
    const late = cron.predictedLateStartSeconds > cron.lateStartThresholdSeconds
    rows.push({
      check: 'pg_cron capacity',
      status: late ? 'warn' : 'ok',
      detail:
        `busiest minute ${cron.busiestMinute ?? '-'}: ${cron.jobsInBusiestMinute} job(s) against cron.max_running_jobs ${cron.maxRunningJobs}` +
        ` (the last starts about ${cron.predictedLateStartSeconds.toFixed(1)} s late; threshold ${cron.lateStartThresholdSeconds} s)` +
        (late ? ': raise cron.max_running_jobs (a restart) or run fewer instances on this server' : ''),
      next: 'singularity jobs list',
    })
  }
  const short = connections.total > connections.available
  rows.push({
    check: 'connections',
    status: short ? 'warn' : 'ok',
    detail:
      `the estate needs about ${connections.total} (services ${connections.services}, pg_cron jobs ${connections.jobs}, this tool ${connections.tool}) of max_connections ${connections.maxConnections}` +
      ` (${connections.reserved} reserved)` +
      (short ? ': raise max_connections, put a pooler in front, or shrink the services’ pools' : ''),
    next: 'singularity db status',
  })
  return rows
}

/** What pg_cron recorded about start delays over a window. */
export interface StartDelays {
  runs: number
  /** 95th percentile of the seconds between the minute a run was due and its start */
  p95Seconds: number | null
  /** the due minute whose last job started latest, with how many runs were due in it */
  worst: {minute: string; jobs: number; maxDelaySeconds: number} | null
}

/**
 * Start delays of the estate's pg_cron jobs over the last `windowMinutes`: a run's delay is its
 * start_time after the minute its job's schedule last fired at or before it (pg_cron records the
 * start, not the minute it was due; a job held up past its minute still counts from that minute).
 * Interval ('N seconds') and @reboot jobs have no minute and are left out; runs still waiting for a
 * slot have no start yet and are not counted.
 */
export async function readStartDelays(cron: pg.Client, jobPattern: string, databases: string[], windowMinutes = 60): Promise<StartDelays> {
  const {rows} = await cron.query<{schedule: string; start_time: Date}>(
    `SELECT j.schedule, d.start_time
       FROM cron.job_run_details d JOIN cron.job j ON j.jobid = d.jobid
      WHERE d.start_time > now() - make_interval(mins => $3)
        AND j.jobname LIKE $1 AND j.database = ANY($2) AND j.schedule NOT LIKE '%second%' AND j.schedule NOT LIKE '@%'`,
    [jobPattern, databases, windowMinutes],
  )
  const parsed = new Map<string, CronExpression | null>()
  const delays: number[] = []
  const byMinute = new Map<number, {jobs: number; max: number}>()
  for (const r of rows) {
    if (!parsed.has(r.schedule)) {
      try {
        parsed.set(r.schedule, parseCron(r.schedule))
      } catch {
        parsed.set(r.schedule, null)
      }
    }
    const expression = parsed.get(r.schedule)
    const due = expression ? previousRun(expression, r.start_time, 24 * 60) : null
    if (!due) continue
    const delay = (r.start_time.getTime() - due.getTime()) / 1000
    delays.push(delay)
    const minute = byMinute.get(due.getTime()) ?? {jobs: 0, max: 0}
    minute.jobs++
    minute.max = Math.max(minute.max, delay)
    byMinute.set(due.getTime(), minute)
  }
  if (delays.length === 0) return {runs: 0, p95Seconds: null, worst: null}
  let worst: [number, {jobs: number; max: number}] | null = null
  for (const entry of byMinute) if (!worst || entry[1].max > worst[1].max || (entry[1].max === worst[1].max && entry[0] > worst[0])) worst = entry
  return {
    runs: delays.length,
    p95Seconds: Number(percentile(delays, 0.95).toFixed(2)),
    worst: worst ? {minute: `${new Date(worst[0]).toISOString().slice(0, 16).replace('T', ' ')} UTC`, jobs: worst[1].jobs, maxDelaySeconds: Number(worst[1].max.toFixed(2))} : null,
  }
}

/** The p-th percentile of values, interpolated between the closest ranks (as percentile_cont). */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  const rank = p * (sorted.length - 1)
  const low = Math.floor(rank)
  const high = Math.ceil(rank)
  return sorted[low] + (sorted[high] - sorted[low]) * (rank - low)
}

/** The late-start row: warn when the p95 start delay of the last hour exceeds the threshold, naming the minute that stampeded. */
export function startDelayCheck(delays: StartDelays, thresholdSeconds: number): CheckResult {
  const base = {check: 'pg_cron start delay', next: 'singularity jobs history'}
  if (delays.runs === 0 || delays.p95Seconds === null) return {...base, status: 'ok', detail: 'no pg_cron run of the estate in the last hour'}
  const worst = delays.worst ? `; latest minute ${delays.worst.minute}: ${delays.worst.jobs} job(s) due, the last ${delays.worst.maxDelaySeconds.toFixed(1)} s late` : ''
  if (delays.p95Seconds > thresholdSeconds) {
    return {
      ...base,
      status: 'warn',
      detail: `p95 start delay ${delays.p95Seconds.toFixed(1)} s over ${delays.runs} run(s) in the last hour exceeds ${thresholdSeconds} s${worst}: that minute stampedes; raise cron.max_running_jobs or spread the schedules (db init staggers the instances' copies)`,
    }
  }
  return {...base, status: 'ok', detail: `p95 start delay ${delays.p95Seconds.toFixed(1)} s over ${delays.runs} run(s) in the last hour (threshold ${thresholdSeconds} s)${worst}`}
}
