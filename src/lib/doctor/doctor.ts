import {MAIN_SERVER, type ResolvedConfig} from '../config/resolve.js'
import {connect} from '../db/connect.js'
import {adminUnlessDown, configuredEstate, databaseTarget, onDatabase, serverTarget} from '../estate/targets.js'
import {readBound, SharedClients, unreadable, visitWithClient, type ReadBound, type Unreadable} from '../estate/visit.js'
import {estateStatus, type EstateStatus} from '../provision/status.js'
import {activeKeyCount, cronLauncherCheck, databaseChecks, encryptionKeyCheck} from './estate-checks.js'
import {capacityChecks, readStartDelays, startDelayCheck} from './capacity-checks.js'
import {JOB_PREFIX} from '../../topology.js'
import {backupCheck, jobChecks, queueChecks, slotCheck} from './operations-checks.js'
import {worst, type CheckResult, type CheckStatus, type DoctorThresholds} from './types.js'

export interface DoctorReport {
  verdict: CheckStatus
  checks: CheckResult[]
  /** databases that could not be read (refused, failed, or past the per-database timeout), in estate order, once each */
  unreadable: Unreadable[]
}

/** A check that could not run is itself a failed check, never a crash of the whole verdict. */
async function guarded(check: string, next: string, fn: () => Promise<CheckResult | CheckResult[]>): Promise<CheckResult[]> {
  try {
    const result = await fn()
    return Array.isArray(result) ? result : [result]
  } catch (error) {
    return [{check, status: 'fail', detail: `could not check: ${(error as Error).message.split('\n')[0]}`, next}]
  }
}

/** Several servers: each answers (the databases placed on one that does not are unreachable). */
export function serversCheck(status: EstateStatus): CheckResult {
  const down = status.servers.filter((s) => !s.reachable)
  return {
    check: 'servers',
    status: down.length > 0 ? 'fail' : 'ok',
    detail:
      down.length > 0
        ? down.map((s) => `${s.name} unreachable (${s.error}): ${s.databases.join(', ')} not read`).join('; ')
        : status.servers.map((s) => `${s.name} (PostgreSQL ${s.version}: ${s.databases.length} database${s.databases.length === 1 ? '' : 's'})`).join(', '),
    next: 'singularity db status',
  }
}

/**
 * One on-call verdict: every check a row with ok / warn / fail and the command to look closer.
 * Several servers: a `servers` row, and the server-wide checks (pg_cron, its jobs, slots) once per
 * server that answers, named after it; a server that does not answer is a failed row, the others
 * are still checked.
 */
export async function runDoctor(config: ResolvedConfig, thresholds: DoctorThresholds): Promise<DoctorReport> {
  // the bound of every read below, decided once on the admin server: databases at once, and the deadline of each
  // (several servers and the admin server down: the default bound, and the others are still checked)
  const boundAdmin = await adminUnlessDown(config, {applicationName: 'singularity doctor', statementTimeoutMs: 15_000})
  const bound = await readBound(boundAdmin, config.read).finally(() => boundAdmin?.end().catch(() => {}))
  const unreadableOnes: Unreadable[] = []
  // one connection per database for the checks that read every database (status, Oban jobs,
  // queues, encryption keys): connection set-up, not the queries, is most of what a database costs
  const shared = new SharedClients({applicationName: 'singularity doctor'})
  try {
    return await doctorChecks(config, thresholds, bound, shared, unreadableOnes)
  } finally {
    await shared.close()
  }
}

async function doctorChecks(config: ResolvedConfig, thresholds: DoctorThresholds, bound: ReadBound, shared: SharedClients, unreadableOnes: Unreadable[]): Promise<DoctorReport> {
  // the capacity check's late-start threshold is the doctor's --max-start-delay
  const status = await estateStatus(config, bound, thresholds.maxStartDelaySeconds, shared)
  unreadableOnes.push(...status.unreadable)
  const several = status.servers.length > 1 || status.servers.some((s) => s.name !== MAIN_SERVER)
  const checks: CheckResult[] = [...(several ? [serversCheck(status)] : []), ...databaseChecks(status)]
  const estate = configuredEstate(config, status.instances)
  const reachable = estate.databases.filter((d) => status.databases.find((s) => s.name === d.name)?.reachable)
  const servers = several ? status.servers.filter((s) => s.reachable).map((s) => s.name) : [MAIN_SERVER]
  const named = (check: string, server: string) => (several ? `${check} (${server})` : check)
  const perServer = new Map<string, {cron: CheckResult[]; jobs: CheckResult[]; slots: CheckResult[]; archive: CheckResult[]}>()
  for (const server of servers) {
    const admin = await connect(serverTarget(config, server), {applicationName: 'singularity doctor', statementTimeoutMs: 15_000})
    try {
      const here = estate.databases.filter((d) => (d.server ?? MAIN_SERVER) === server)
      const rename = (rows: CheckResult[]) => rows.map((r) => ({...r, check: named(r.check, server)}))
      const cron = rename(await guarded('pg_cron running', 'singularity jobs list', () => cronLauncherCheck(admin)))
      const jobs = rename(
        await guarded('pg_cron jobs', 'singularity jobs list', async () => {
          const [{openJobsContext}, {listJobs}, {schedulesFor}] = await Promise.all([import('../cron/context.js'), import('../cron/jobs.js'), import('../../schedules.js')])
          const ctx = await openJobsContext(config, schedulesFor(process.env), {statementTimeoutMs: 15_000, bound, server, estate, shared})
          try {
            const listed = await listJobs(ctx)
            unreadableOnes.push(...listed.unreadable)
            return jobChecks(listed)
          } finally {
            await ctx.close()
          }
        }),
      )
      const slots = rename(
        await guarded('replication slots', 'singularity cdc slots', () =>
          slotCheck(
            admin,
            here.flatMap((d) => [
              ...(d.cdcSlot ? [{name: d.cdcSlot, consumer: d.spec.cdc?.consumer ?? 'its consumer'}] : []),
              ...(d.cdcBridgeSlot ? [{name: d.cdcBridgeSlot, consumer: d.spec.cdcBridge?.consumer ?? 'the cdc-bridge job'}] : []),
            ]),
            thresholds,
          ),
        ),
      )
      // WAL archiving is the backup host's (the admin server's)
      const archive =
        server === MAIN_SERVER
          ? await guarded('WAL archiving', 'singularity backup list', async () => {
              const [{archiveChecks}, {readPhysicalSetup}] = await Promise.all([import('./archive-checks.js'), import('../backup/physical/layout.js')])
              return archiveChecks(admin, config.backupDir, readPhysicalSetup(config.backupDir), thresholds.maxArchiveAgeSeconds ?? 300)
            })
          : []
      // pg_cron's run history is the admin server's cron database (the estate's start delays)
      const delays =
        server === MAIN_SERVER
          ? await guarded('pg_cron start delay', 'singularity jobs history', async () => {
              if (!status.server.cronPreloaded) return []
              const cron = status.server.cronDatabase === admin.database ? admin : await connect(onDatabase(serverTarget(config, server), status.server.cronDatabase), {statementTimeoutMs: 15_000})
              try {
                const rows = await readStartDelays(cron, `${JOB_PREFIX}${estate.prefix}%`, [status.server.cronDatabase, ...estate.databases.map((d) => d.name)])
                return startDelayCheck(rows, thresholds.maxStartDelaySeconds ?? 10)
              } finally {
                if (cron !== admin) await cron.end().catch(() => {})
              }
            })
          : []
      perServer.set(server, {cron, jobs: [...jobs, ...delays], slots, archive})
    } finally {
      await admin.end().catch(() => {})
    }
  }
  const all = (key: 'cron' | 'jobs' | 'slots' | 'archive') => [...perServer.values()].flatMap((p) => p[key])
  checks.push(...all('cron'), ...all('jobs').filter((c) => !c.check.startsWith('pg_cron start delay')))
  checks.push(...capacityChecks(status.capacity))
  checks.push(...all('jobs').filter((c) => c.check.startsWith('pg_cron start delay')))
  checks.push(...(await guarded('queue backlog', 'singularity queue stats', () => queueChecks(config, reachable, thresholds, bound, unreadableOnes, shared))))
  checks.push(...all('slots'))
  checks.push(
    ...(await guarded('backups', 'singularity backup list', async () => {
      const {listBackups} = await import('../backup/store.js')
      return backupCheck(listBackups(config.backupDir))
    })),
  )
  checks.push(
    ...(await guarded('backup encryption', 'singularity backup list', async () => {
      const {backupEncryptionCheck} = await import('../backup/keys.js')
      return {check: 'backup encryption', ...backupEncryptionCheck(config.backupDir), next: 'singularity backup list'}
    })),
  )
  checks.push(...all('archive'))
  checks.push(
    ...(await guarded('encryption key', 'singularity db init', async () => {
      const singularity = reachable.filter((d) => d.kind === 'singularity')
      const visits = await visitWithClient(singularity, (db) => databaseTarget(config, db), (db) => db.name, activeKeyCount, {
        ...bound,
        connect: {applicationName: 'singularity doctor'},
        shared,
      })
      const read = visits.flatMap((v, i) => (v.ok ? [{name: singularity[i].name, activeKeys: v.value}] : []))
      for (const [i, v] of visits.entries()) if (!v.ok) unreadableOnes.push(unreadable(singularity[i].name, v))
      return encryptionKeyCheck(read, visits.flatMap((v, i) => (v.ok ? [] : [singularity[i].name])))
    })),
  )
  return {verdict: worst(checks), checks, unreadable: firstPerDatabase(unreadableOnes)}
}

/** One entry per database (the first reason found), in the order they were found (estate order). */
function firstPerDatabase(list: Unreadable[]): Unreadable[] {
  const seen = new Set<string>()
  return list.filter((u) => !seen.has(u.database) && seen.add(u.database))
}
