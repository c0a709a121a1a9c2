import type {ResolvedConfig} from '../config/resolve.js'
import {connect} from '../db/connect.js'
import {adminTarget, databaseTarget} from '../estate/targets.js'
import {readBound, SharedClients, unreadable, visitWithClient, type Unreadable} from '../estate/visit.js'
import {estateStatus} from '../provision/status.js'
import {activeKeyCount, cronLauncherCheck, databaseChecks, encryptionKeyCheck} from './estate-checks.js'
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

/** One on-call verdict: every check a row with ok / warn / fail and the command to look closer. */
export async function runDoctor(config: ResolvedConfig, thresholds: DoctorThresholds): Promise<DoctorReport> {
  const admin = await connect(adminTarget(config), {applicationName: 'singularity doctor', statementTimeoutMs: 15_000})
  const checks: CheckResult[] = []
  const unreadableOnes: Unreadable[] = []
  // one connection per database for the checks that read every database (Oban jobs, queues,
  // encryption keys): connection set-up, not the queries, is most of what a database costs
  const shared = new SharedClients({applicationName: 'singularity doctor'})
  try {
    // the bound of every read below, decided once: databases at once, and the deadline of each
    const bound = await readBound(admin, config.read)
    const status = await estateStatus(config, bound, shared)
    unreadableOnes.push(...status.unreadable)
    checks.push(...databaseChecks(status))
    const {discoverEstate} = await import('../estate/targets.js')
    const estate = await discoverEstate(config, admin)
    const reachable = estate.databases.filter((d) => status.databases.find((s) => s.name === d.name)?.reachable)
    checks.push(...(await guarded('pg_cron running', 'singularity jobs list', () => cronLauncherCheck(admin))))
    checks.push(
      ...(await guarded('pg_cron jobs', 'singularity jobs list', async () => {
        const [{openJobsContext}, {listJobs}, {schedulesFor}] = await Promise.all([import('../cron/context.js'), import('../cron/jobs.js'), import('../../schedules.js')])
        const ctx = await openJobsContext(config, schedulesFor(process.env), {statementTimeoutMs: 15_000, bound, shared})
        try {
          const jobs = await listJobs(ctx)
          unreadableOnes.push(...jobs.unreadable)
          return jobChecks(jobs)
        } finally {
          await ctx.close()
        }
      })),
    )
    checks.push(...(await guarded('queue backlog', 'singularity queue stats', () => queueChecks(config, reachable, thresholds, bound, unreadableOnes, shared))))
    checks.push(
      ...(await guarded('replication slots', 'singularity cdc slots', () =>
        slotCheck(
          admin,
          estate.databases.flatMap((d) => [
            ...(d.cdcSlot ? [{name: d.cdcSlot, consumer: d.spec.cdc?.consumer ?? 'its consumer'}] : []),
            ...(d.cdcBridgeSlot ? [{name: d.cdcBridgeSlot, consumer: d.spec.cdcBridge?.consumer ?? 'the cdc-bridge job'}] : []),
          ]),
          thresholds,
        ),
      )),
    )
    checks.push(
      ...(await guarded('backups', 'singularity backup list', async () => {
        const {listBackups} = await import('../backup/store.js')
        return backupCheck(listBackups(config.backupDir))
      })),
    )
    checks.push(
      ...(await guarded('backup encryption', 'singularity backup list', async () => {
        const {unencryptedBackupWarning} = await import('../backup/keys.js')
        const warning = unencryptedBackupWarning(config.backupDir)
        return {check: 'backup encryption', status: warning ? 'warn' : 'ok', detail: warning ?? 'the newest backup is encrypted (AES-256-GCM; the key file lives outside the backup directory)', next: 'singularity backup list'}
      })),
    )
    checks.push(
      ...(await guarded('WAL archiving', 'singularity backup list', async () => {
        const [{archiveChecks}, {readPhysicalSetup}] = await Promise.all([import('./archive-checks.js'), import('../backup/physical/layout.js')])
        return archiveChecks(admin, config.backupDir, readPhysicalSetup(config.backupDir), thresholds.maxArchiveAgeSeconds ?? 300)
      })),
    )
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
  } finally {
    await shared.close()
    await admin.end().catch(() => {})
  }
  return {verdict: worst(checks), checks, unreadable: firstPerDatabase(unreadableOnes)}
}

/** One entry per database (the first reason found), in the order they were found (estate order). */
function firstPerDatabase(list: Unreadable[]): Unreadable[] {
  const seen = new Set<string>()
  return list.filter((u) => !seen.has(u.database) && seen.add(u.database))
}
