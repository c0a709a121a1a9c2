/**
 * Capacity of the server against the estate: how many pg_cron jobs can start in the same minute
 * against cron.max_running_jobs, and the connections the estate needs against max_connections.
 * Pure: reads the server's facts and the planned jobs (already staggered), returns findings.
 */
import {UsageError} from '../cli/errors.js'
import {parseCron} from '../cron/expression.js'
import {DEFAULT_READ_CONCURRENCY} from '../estate/visit.js'
import type {ServerCapacity} from '../provision/server.js'
import type {Estate} from '../../topology.js'

/** doctor and the plan warn when a pg_cron job starts (or would start) later than this after its minute. */
export const DEFAULT_LATE_START_SECONDS = 10

/**
 * Seconds one short pg_cron job holds a running slot (worker start, connect, run, exit): issue 19
 * measured 252 jobs started together through 5 slots, the last 13.1 s late (13.1 / (252 / 5) ≈ 0.26).
 */
export const SECONDS_PER_JOB_START = 0.26

/** Connections each service keeps per database it uses (Ecto's default pool_size, postgres.js's max). */
export const SERVICE_POOL_SIZE = 10

/** Databases each service connects to: its own and shared_queue. */
const POOLS_PER_SERVICE = 2

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat']
const MINUTES_PER_WEEK = 7 * 24 * 60

/** SINGULARITY_LATE_START_SECONDS (default 10): the late-start threshold of the plan's capacity check; exit 2 when not a positive number. */
export function lateStartSecondsFrom(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.SINGULARITY_LATE_START_SECONDS
  if (raw === undefined || raw.trim() === '') return DEFAULT_LATE_START_SECONDS
  const value = Number(raw)
  if (!Number.isFinite(value) || value <= 0) {
    throw new UsageError(`invalid SINGULARITY_LATE_START_SECONDS '${raw}': must be a positive number of seconds`, {code: 'BAD_CONFIG'})
  }
  return value
}

/** The busiest minute of a week of the given schedules, and how many jobs run at startup. */
export interface MinuteLoad {
  /** jobs that can start in the busiest minute */
  jobs: number
  /** that minute, e.g. 'Sun 00:00 UTC' (the first such minute of the week) */
  minute: string | null
  /** @reboot jobs: they all start when PostgreSQL starts */
  atStartup: number
}

/**
 * Counts, for every minute of a week, the jobs that can start in it. A day-of-month restriction is
 * read as "any day" (the check asks what CAN coincide); an interval in seconds fires every minute.
 */
export function busiestMinute(schedules: readonly string[]): MinuteLoad {
  const counts = new Uint32Array(MINUTES_PER_WEEK)
  let atStartup = 0
  let everyMinute = 0
  // the instances' copies share a few staggered forms: each distinct schedule is counted once, times its copies
  const copies = new Map<string, number>()
  for (const schedule of schedules) copies.set(schedule.trim(), (copies.get(schedule.trim()) ?? 0) + 1)
  for (const [schedule, n] of copies) {
    if (/^\d+\s+seconds?$/.test(schedule)) {
      everyMinute += n
      continue
    }
    let cron
    try {
      cron = parseCron(schedule)
    } catch {
      continue
    }
    if (cron.reboot) {
      atStartup += n
      continue
    }
    const days = !cron.dowStar && cron.domStar ? [...cron.daysOfWeek] : [0, 1, 2, 3, 4, 5, 6]
    for (const d of days) for (const h of cron.hours) for (const m of cron.minutes) counts[d * 1440 + h * 60 + m] += n
  }
  let best = 0
  for (let i = 1; i < MINUTES_PER_WEEK; i++) if (counts[i] > counts[best]) best = i
  const jobs = counts[best] + everyMinute
  if (jobs === 0) return {jobs: 0, minute: null, atStartup}
  const pad = (n: number) => String(n).padStart(2, '0')
  const minute = `${DAYS[Math.floor(best / 1440)]} ${pad(Math.floor((best % 1440) / 60))}:${pad(best % 60)} UTC`
  return {jobs, minute, atStartup}
}

/** The seconds the last of `jobs` started together waits for a running slot, `slots` at a time. */
export function predictedLateStart(jobs: number, slots: number): number {
  if (slots <= 0) return Infinity
  return Math.max(0, Math.ceil(jobs / slots) - 1) * SECONDS_PER_JOB_START
}

export interface ConnectionNeed {
  /** the services' pools: (singularity instances + genesis, centralcloud, nexus) × 2 databases × pool size */
  services: number
  /** pg_cron: the jobs running at once (connections of their own unless cron.use_background_workers) */
  jobs: number
  /** this tool: the bounded visit of the estate plus its admin connection */
  tool: number
  total: number
  /** what ordinary roles can use: max_connections - superuser_reserved_connections */
  available: number
}

/** What the estate's connections add up to, against what the server allows. */
export function connectionNeed(estate: Estate, capacity: ServerCapacity, peakJobs: number): ConnectionNeed {
  const services = new Set(estate.databases.filter((d) => d.kind !== 'shared_queue').map((d) => d.name)).size
  const servicePools = services * POOLS_PER_SERVICE * SERVICE_POOL_SIZE
  const running = Math.min(peakJobs, capacity.cronMaxRunningJobs ?? 0)
  const jobs = capacity.cronBackgroundWorkers ? 0 : running + (capacity.cronMaxRunningJobs === null ? 0 : 1)
  const tool = DEFAULT_READ_CONCURRENCY + 1
  return {services: servicePools, jobs, tool, total: servicePools + jobs + tool, available: capacity.maxConnections - capacity.reservedConnections}
}

/** The capacity figures of an estate on a server, with a warning for each limit the estate outgrows. */
export interface CapacityReport {
  cron: {maxRunningJobs: number | null; busiestMinute: string | null; jobsInBusiestMinute: number; predictedLateStartSeconds: number; atStartup: number; lateStartThresholdSeconds: number}
  connections: ConnectionNeed & {maxConnections: number; reserved: number}
  warnings: string[]
}

export function capacityReport(estate: Estate, capacity: ServerCapacity, schedules: readonly string[], lateStartSeconds = DEFAULT_LATE_START_SECONDS): CapacityReport {
  const load = busiestMinute(schedules)
  const slots = capacity.cronMaxRunningJobs
  const late = slots === null ? 0 : predictedLateStart(load.jobs, slots)
  const lateAtStartup = slots === null ? 0 : predictedLateStart(load.atStartup, slots)
  const need = connectionNeed(estate, capacity, load.jobs)
  const warnings: string[] = []
  if (slots !== null && late > lateStartSeconds) {
    warnings.push(
      `${load.jobs} pg_cron jobs of the estate can start in the same minute (${load.minute}) but cron.max_running_jobs is ${slots}: ` +
        `the last would start about ${late.toFixed(0)} s late (threshold ${lateStartSeconds} s); raise cron.max_running_jobs (a restart) or run fewer instances on this server`,
    )
  }
  if (slots !== null && lateAtStartup > lateStartSeconds) {
    warnings.push(`${load.atStartup} pg_cron @reboot jobs start together when PostgreSQL starts but cron.max_running_jobs is ${slots}: the last would start about ${lateAtStartup.toFixed(0)} s late`)
  }
  if (need.total > need.available) {
    warnings.push(
      `the estate needs about ${need.total} connections (services ${need.services}: ${need.services / (POOLS_PER_SERVICE * SERVICE_POOL_SIZE)} services × ${POOLS_PER_SERVICE} databases × pool ${SERVICE_POOL_SIZE}; pg_cron jobs ${need.jobs}; this tool ${need.tool}) ` +
        `but max_connections is ${capacity.maxConnections} (${capacity.reservedConnections} reserved for superusers): raise max_connections (a restart), put a pooler (PgBouncer) in front, or shrink the services' pools`,
    )
  }
  return {
    cron: {maxRunningJobs: slots, busiestMinute: load.minute, jobsInBusiestMinute: load.jobs, predictedLateStartSeconds: Number(late.toFixed(2)), atStartup: load.atStartup, lateStartThresholdSeconds: lateStartSeconds},
    connections: {...need, maxConnections: capacity.maxConnections, reserved: capacity.reservedConnections},
    warnings,
  }
}
