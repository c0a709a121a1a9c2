import type pg from 'pg'

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
  /** 95th percentile of the seconds between the scheduled minute and the start */
  p95Seconds: number | null
  /** the minute whose last job started latest, with how many started in it */
  worst: {minute: string; jobs: number; maxDelaySeconds: number} | null
}

/**
 * Start delays of the estate's pg_cron jobs over the last `windowMinutes`: a job's delay is its
 * start_time after the minute it was scheduled for (pg_cron starts a job in its minute, or later
 * when cron.max_running_jobs are busy). Interval ('N seconds') jobs have no minute and are left out.
 */
export async function readStartDelays(cron: pg.Client, jobPattern: string, databases: string[], windowMinutes = 60): Promise<StartDelays> {
  const {rows} = await cron.query<{runs: number; p95: number | null; worst: {minute: string; jobs: number; max: number} | null}>(
    `WITH runs AS (
       SELECT date_trunc('minute', d.start_time) AS minute,
              extract(epoch FROM d.start_time - date_trunc('minute', d.start_time))::float8 AS delay
         FROM cron.job_run_details d JOIN cron.job j ON j.jobid = d.jobid
        WHERE d.start_time > now() - make_interval(mins => $3)
          AND j.jobname LIKE $1 AND j.database = ANY($2) AND j.schedule NOT LIKE '%second%'
     )
     SELECT (SELECT count(*) FROM runs)::int AS runs,
            (SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY delay) FROM runs) AS p95,
            (SELECT json_build_object('minute', to_char(minute AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), 'jobs', count(*), 'max', max(delay))
               FROM runs GROUP BY minute ORDER BY max(delay) DESC, minute DESC LIMIT 1) AS worst`,
    [jobPattern, databases, windowMinutes],
  )
  const r = rows[0]
  return {
    runs: r.runs,
    p95Seconds: r.p95 === null ? null : Number(r.p95.toFixed(2)),
    worst: r.worst ? {minute: `${r.worst.minute} UTC`, jobs: r.worst.jobs, maxDelaySeconds: Number(r.worst.max.toFixed(2))} : null,
  }
}

/** The late-start row: warn when the p95 start delay of the last hour exceeds the threshold, naming the minute that stampeded. */
export function startDelayCheck(delays: StartDelays, thresholdSeconds: number): CheckResult {
  const base = {check: 'pg_cron start delay', next: 'singularity jobs history'}
  if (delays.runs === 0 || delays.p95Seconds === null) return {...base, status: 'ok', detail: 'no pg_cron run of the estate in the last hour'}
  const worst = delays.worst ? `; latest minute ${delays.worst.minute}: ${delays.worst.jobs} job(s) started, the last ${delays.worst.maxDelaySeconds.toFixed(1)} s late` : ''
  if (delays.p95Seconds > thresholdSeconds) {
    return {
      ...base,
      status: 'warn',
      detail: `p95 start delay ${delays.p95Seconds.toFixed(1)} s over ${delays.runs} run(s) in the last hour exceeds ${thresholdSeconds} s${worst}: that minute stampedes; raise cron.max_running_jobs or spread the schedules (db init staggers the instances' copies)`,
    }
  }
  return {...base, status: 'ok', detail: `p95 start delay ${delays.p95Seconds.toFixed(1)} s over ${delays.runs} run(s) in the last hour (threshold ${thresholdSeconds} s)${worst}`}
}
