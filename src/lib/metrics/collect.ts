import type pg from 'pg'

import {archiverStatus, type ArchiverStatus} from '../backup/physical/archiver.js'
import {listBackups} from '../backup/store.js'
import {listSlots, type SlotRow} from '../cdc/slots.js'
import {MAIN_SERVER, type ResolvedConfig} from '../config/resolve.js'
import {openJobsContext} from '../cron/context.js'
import {listJobs, type JobRow} from '../cron/jobs.js'
import {listJobsAcrossServers} from '../cron/servers.js'
import {connect} from '../db/connect.js'
import {adminTarget, databaseTarget, discoverEstate, serverNames, severalServers} from '../estate/targets.js'
import {readBound, visitServers, visitWithClient} from '../estate/visit.js'
import {estateStatus} from '../provision/status.js'
import {listQueues} from '../queue/catalog.js'
import {queueStats, type QueueStats} from '../queue/stats.js'
import {maxReadsFor} from '../../queue-policies.js'
import {schedulesFor} from '../../schedules.js'
import type {BackupEntry} from '../backup/store.js'
import type {MetricFamily, Sample} from './exposition.js'

/** One part of a scrape (a queue database, the pg_cron jobs, the slots, …) and whether it answered in time. */
export interface SectionOutcome {
  section: 'queues' | 'cron' | 'slots' | 'backups' | 'databases'
  database?: string
  /** several servers: the server of a server-wide section (pg_cron, slots) */
  server?: string
  up: boolean
  /** why it is down: the error, or the scrape timeout */
  error?: string
}

export interface EstateMetrics {
  families: MetricFamily[]
  sections: SectionOutcome[]
  duration_seconds: number
}

export interface CollectOptions {
  /** every section gets this long; one that takes longer is reported down (its connections closed) */
  timeoutMs: number
  env?: NodeJS.ProcessEnv
  now?: () => Date
}

type Outcome<T> = {ok: true; value: T} | {ok: false; error: string}

/**
 * Runs fn, giving up after ms: on time-out `abandon` closes what fn opened, so nothing is left
 * waiting on a stuck server (statement and lock timeouts of the same length end its queries).
 */
async function withDeadline<T>(ms: number, fn: () => Promise<T>, abandon: () => void): Promise<Outcome<T>> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<Outcome<T>>((resolve) => {
    timer = setTimeout(() => {
      abandon()
      resolve({ok: false, error: `no answer within ${ms / 1000}s`})
    }, ms)
  })
  const work = fn().then(
    (value): Outcome<T> => ({ok: true, value}),
    (error: unknown): Outcome<T> => ({ok: false, error: String((error as Error)?.message ?? error).split('\n')[0]}),
  )
  try {
    return await Promise.race([work, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** Closes clients at once, also in the middle of a query (the socket goes; the server ends the backend). */
function hangUp(clients: (pg.Client | undefined)[]): void {
  for (const client of clients) {
    if (!client) continue
    const stream = (client as unknown as {connection?: {stream?: {destroy(): void}}}).connection?.stream
    stream?.destroy()
    client.end().catch(() => {})
  }
}

interface Collected {
  queues: QueueStats[]
  jobs: JobRow[]
  slots: SlotRow[]
  /** pg_stat_archiver (WAL archiving for point-in-time recovery), of each server read (server null: the only one) */
  archivers: {server: string | null; status: ArchiverStatus}[]
  backups: BackupEntry[] | null
  verdicts: {database: string; verdict: string}[]
}

/**
 * Figures of the whole estate for Prometheus, reusing the libraries the commands use (queue stats,
 * jobs list, cdc slots, the backup store, db status): nothing is read twice. Sections run at the
 * same time, each with its own deadline; a database that does not answer in time is reported
 * with singularity_scrape_up 0 and its figures are left out (never a hang, never a stale value).
 */
export async function collectEstateMetrics(config: ResolvedConfig, options: CollectOptions): Promise<EstateMetrics> {
  const started = process.hrtime.bigint()
  const ms = options.timeoutMs
  const settings = {statementTimeoutMs: ms, lockTimeoutMs: ms, applicationName: 'singularity metrics'}
  const sections: SectionOutcome[] = []
  const collected: Collected = {queues: [], jobs: [], slots: [], archivers: [], backups: null, verdicts: []}
  const several = severalServers(config)

  // The estate (instances) and the server-wide figures (slots) from one admin connection.
  let admin: pg.Client | undefined
  const estate = await withDeadline(
    ms,
    async () => {
      admin = await connect(adminTarget(config), settings)
      return discoverEstate(config, admin)
    },
    () => hangUp([admin]),
  )
  if (!estate.ok) {
    hangUp([admin])
    sections.push({section: 'databases', up: false, error: estate.error})
    return {families: families(collected, sections, options, started), sections, duration_seconds: elapsed(started)}
  }

  // every reading below visits the databases within one bound, each under the scrape timeout
  const bound = await readBound(admin ?? null, {concurrency: config.read.concurrency, timeoutMs: ms})
  const queueDatabases = estate.value.databases.filter((d) => d.spec.queues.length > 0)
  const queueWork = (async () => {
    const visits = await visitWithClient(
      queueDatabases,
      (db) => databaseTarget(config, db),
      (db) => db.name,
      async (client, db) => {
        const catalog = await listQueues(client)
        return queueStats(client, catalog.queues, {database: db.name, maxReads: (q) => maxReadsFor(db.kind, q)})
      },
      {...bound, connect: settings},
    )
    for (const [i, visit] of visits.entries()) {
      sections.push({section: 'queues', database: queueDatabases[i].name, up: visit.ok, ...(visit.ok ? {} : {error: visit.error.message.split('\n')[0]})})
      if (visit.ok) collected.queues.push(...visit.value)
    }
  })()

  const cronWork = (async () => {
    if (several) {
      // each server's pg_cron, each job labelled with its server; a server down is its own section
      const across = await withDeadline(ms, () => listJobsAcrossServers(config, schedulesFor(options.env ?? process.env), {runners: ['pg_cron']}), () => {})
      if (!across.ok) {
        sections.push({section: 'cron', up: false, error: across.error})
        return
      }
      for (const s of across.value.servers) sections.push({section: 'cron', server: s.name, up: s.reachable, ...(s.reachable ? {} : {error: s.error})})
      collected.jobs = across.value.jobs
      return
    }
    let close: (() => Promise<void>) | undefined
    const result = await withDeadline(
      ms,
      async () => {
        const ctx = await openJobsContext(config, schedulesFor(options.env ?? process.env), {statementTimeoutMs: ms, bound})
        close = ctx.close
        return listJobs(ctx, {runners: ['pg_cron']})
      },
      () => void close?.(),
    )
    await close?.()
    sections.push({section: 'cron', up: result.ok, ...(result.ok ? {} : {error: result.error})})
    if (result.ok) collected.jobs = result.value.jobs
  })()

  const slotWork = (async () => {
    const slots = estate.value.databases.flatMap((d) => (d.cdcSlot ? [d.cdcSlot] : []))
    if (several) {
      const servers = serverNames(config)
      const slotsOn = (server: string) => estate.value.databases.filter((d) => (d.server ?? MAIN_SERVER) === server && d.cdcSlot).map((d) => d.cdcSlot!)
      const visits = await visitServers(
        config,
        servers,
        async (client, server) => ({slots: (await listSlots(client, slotsOn(server))).slots, archiver: await archiverStatus(client)}),
        {timeoutMs: ms, connect: settings},
      )
      for (const [i, visit] of visits.entries()) {
        const server = servers[i]
        sections.push({section: 'slots', server, up: visit.ok, ...(visit.ok ? {} : {error: visit.error.message.split('\n')[0]})})
        if (!visit.ok) continue
        collected.slots.push(...visit.value.slots.map((slot) => ({...slot, server})))
        collected.archivers.push({server, status: visit.value.archiver})
      }
      return
    }
    const result = await withDeadline(ms, async () => ({slots: (await listSlots(admin!, slots)).slots, archiver: await archiverStatus(admin!)}), () => hangUp([admin]))
    sections.push({section: 'slots', up: result.ok, ...(result.ok ? {} : {error: result.error})})
    if (result.ok) {
      collected.slots = result.value.slots
      collected.archivers = [{server: null, status: result.value.archiver}]
    }
  })()

  // no deadline over the whole status: each database has its own, and one that does not answer is
  // down by itself (singularity_scrape_up{section="databases",database}) while the others are judged
  const statusWork = (async () => {
    try {
      const status = await estateStatus(config, bound)
      sections.push({section: 'databases', up: true})
      for (const u of status.unreadable) sections.push({section: 'databases', database: u.database, up: false, error: u.reason})
      collected.verdicts = status.databases.map((d) => ({database: d.name, verdict: d.verdict}))
    } catch (error) {
      sections.push({section: 'databases', up: false, error: String((error as Error)?.message ?? error).split('\n')[0]})
    }
  })()

  try {
    collected.backups = listBackups(config.backupDir)
    sections.push({section: 'backups', up: true})
  } catch (error) {
    sections.push({section: 'backups', up: false, error: String((error as Error).message).split('\n')[0]})
  }

  await Promise.all([queueWork, cronWork, slotWork, statusWork])
  hangUp([admin])
  return {families: families(collected, sections, options, started), sections, duration_seconds: elapsed(started)}
}

function elapsed(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e9
}

/** WAL archiving (doctor's archive rows), per server read (labelled when there are several): absent where archive_mode is off. */
function archiverFamilies(archivers: Collected['archivers']): MetricFamily[] {
  const on = archivers.filter((a) => a.status.archiveMode !== 'off')
  if (on.length === 0) return []
  const each = (pick: (a: ArchiverStatus) => number | null) =>
    on.flatMap(({server, status}) => {
      const value = pick(status)
      const labels: Record<string, string> = server === null ? {} : {server}
      return value === null ? [] : [{labels, value}]
    })
  return [
    family('singularity_wal_archived_segments_total', 'counter', 'WAL segments archived since the statistics were reset (pg_stat_archiver).', each((a) => a.archivedCount)),
    family('singularity_wal_archive_failures_total', 'counter', 'Failed WAL archive attempts since the statistics were reset (pg_stat_archiver).', each((a) => a.failedCount)),
    family('singularity_wal_archive_failing', 'gauge', 'Whether the newest WAL archive attempt failed (1) or not (0).', each((a) => (a.failing ? 1 : 0))),
    family('singularity_wal_archive_last_success_age_seconds', 'gauge', 'Seconds since the last WAL segment was archived (absent before the first).', each((a) => (a.lastArchivedAgeSeconds === null ? null : Math.round(a.lastArchivedAgeSeconds)))),
  ]
}

function family(name: string, type: MetricFamily['type'], help: string, samples: Sample[]): MetricFamily {
  return {name, type, help, samples}
}

const BACKUP_KINDS = ['hourly', 'daily', 'monthly'] as const

/** The metric families, named per Prometheus conventions (units as suffixes, _total for counters). */
function families(c: Collected, sections: SectionOutcome[], options: CollectOptions, started: bigint): MetricFamily[] {
  const now = (options.now ?? (() => new Date()))()
  const q = (pick: (s: QueueStats) => number) => c.queues.map((s) => ({labels: {database: s.database, queue: s.queue}, value: pick(s)}))
  // several servers: jobs and slots say whose they are
  const server = (row: {server?: string}): Record<string, string> => (row.server ? {server: row.server} : {})
  const job = (j: JobRow) => ({job: j.name, database: j.database ?? '', ...server(j)})
  const slot = (s: SlotRow) => ({slot: s.name, database: s.database ?? '', ...server(s)})
  const sectionLabels = (s: SectionOutcome) => ({section: s.section, ...(s.database ? {database: s.database} : {}), ...server(s)})
  const newestVerified = (kind: string) =>
    (c.backups ?? [])
      .filter((b) => b.kind === kind && b.status === 'complete' && b.verified === 'yes')
      .sort((a, b) => b.startedAt.localeCompare(a.startedAt))[0]
  const sorted = [...sections].sort((a, b) => `${a.section}/${a.server ?? ''}/${a.database ?? ''}`.localeCompare(`${b.section}/${b.server ?? ''}/${b.database ?? ''}`))
  const ran = c.jobs.filter((j) => j.lastRun?.start)
  return [
    family('singularity_scrape_up', 'gauge', 'Whether a section of the scrape answered within the timeout (1) or not (0): a database that does not answer is down.', sorted.map((s) => ({labels: sectionLabels(s), value: s.up ? 1 : 0}))),
    family('singularity_scrape_duration_seconds', 'gauge', 'Wall time of this scrape.', [{labels: {}, value: Math.round(elapsed(started) * 1000) / 1000}]),
    family('singularity_queue_length', 'gauge', 'Messages in the queue (estimated above 10,000; see queue stats).', q((s) => s.length)),
    family('singularity_queue_visible_messages', 'gauge', 'Messages a read would return now (vt has passed).', q((s) => s.visible)),
    family('singularity_queue_in_flight_messages', 'gauge', 'Messages read and not yet visible again.', q((s) => s.in_flight)),
    family('singularity_queue_oldest_message_age_seconds', 'gauge', 'Age of the oldest message; 0 when the queue is empty.', q((s) => s.oldest_age_sec ?? 0)),
    family('singularity_queue_messages_sent_total', 'counter', 'Messages ever sent to the queue (the msg_id sequence).', q((s) => s.total_sent)),
    family('singularity_queue_archived_messages', 'gauge', 'Messages in the queue\'s archive.', q((s) => s.archive_length)),
    family('singularity_queue_poison_messages', 'gauge', 'Messages read at least max_reads times (queue dead-letter moves them aside).', q((s) => s.poison)),
    family('singularity_cron_job_last_run_timestamp_seconds', 'gauge', 'Start of the last run of a pg_cron job (Unix time).', ran.map((j) => ({labels: job(j), value: Math.floor(Date.parse(j.lastRun!.start!) / 1000)}))),
    family('singularity_cron_job_last_run_success', 'gauge', 'Whether the last run of a pg_cron job succeeded (1) or not (0).', ran.map((j) => ({labels: job(j), value: j.lastRun!.status === 'succeeded' ? 1 : 0}))),
    family('singularity_cron_job_failure_streak', 'gauge', 'Consecutive failed runs of a pg_cron job, newest first.', c.jobs.filter((j) => j.failureStreak !== null).map((j) => ({labels: job(j), value: j.failureStreak!}))),
    family('singularity_replication_slot_retained_bytes', 'gauge', 'WAL kept on disk for a replication slot.', c.slots.filter((s) => s.retainedBytes !== null).map((s) => ({labels: slot(s), value: s.retainedBytes!}))),
    ...archiverFamilies(c.archivers),
    family('singularity_replication_slot_active', 'gauge', 'Whether a consumer holds the replication slot (1) or not (0).', c.slots.map((s) => ({labels: slot(s), value: s.active ? 1 : 0}))),
    family(
      'singularity_backup_newest_verified_age_seconds',
      'gauge',
      'Age of the newest verified backup of a kind (absent when there is none).',
      BACKUP_KINDS.flatMap((kind) => {
        const b = newestVerified(kind)
        return b ? [{labels: {kind}, value: Math.max(0, Math.round((now.getTime() - Date.parse(b.startedAt)) / 1000))}] : []
      }),
    ),
    family('singularity_database_verdict', 'gauge', 'The verdict of db status for each database (1 for its current verdict: ok, pending, misowned, drifted, missing, unreachable).', c.verdicts.map((v) => ({labels: {database: v.database, verdict: v.verdict}, value: 1}))),
    family('singularity_database_healthy', 'gauge', 'Whether db status says ok for the database (1) or not (0).', c.verdicts.map((v) => ({labels: {database: v.database}, value: v.verdict === 'ok' ? 1 : 0}))),
  ]
}
