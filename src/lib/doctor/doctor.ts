import type pg from 'pg'

import type {ResolvedConfig} from '../config/resolve.js'
import {connect} from '../db/connect.js'
import {adminTarget, onDatabase} from '../estate/targets.js'
import {estateStatus} from '../provision/status.js'
import {cronLauncherCheck, databaseChecks, encryptionKeyCheck} from './estate-checks.js'
import {backupCheck, jobChecks, queueChecks, slotCheck} from './operations-checks.js'
import {worst, type CheckResult, type CheckStatus, type DoctorThresholds} from './types.js'

export interface DoctorReport {
  verdict: CheckStatus
  checks: CheckResult[]
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
  const status = await estateStatus(config)
  const checks: CheckResult[] = [...databaseChecks(status)]
  const admin = await connect(adminTarget(config), {applicationName: 'singularity doctor', statementTimeoutMs: 15_000})
  try {
    const {discoverEstate} = await import('../estate/targets.js')
    const estate = await discoverEstate(config, admin)
    const reachable = estate.databases.filter((d) => status.databases.find((s) => s.name === d.name)?.reachable)
    checks.push(...(await guarded('pg_cron running', 'singularity jobs list', () => cronLauncherCheck(admin))))
    checks.push(
      ...(await guarded('pg_cron jobs', 'singularity jobs list', async () => {
        const [{openJobsContext}, {listJobs}, {schedulesFor}] = await Promise.all([import('../cron/context.js'), import('../cron/jobs.js'), import('../../schedules.js')])
        const ctx = await openJobsContext(config, schedulesFor(process.env), {statementTimeoutMs: 15_000})
        try {
          return jobChecks(await listJobs(ctx))
        } finally {
          await ctx.close()
        }
      })),
    )
    checks.push(...(await guarded('queue backlog', 'singularity queue stats', () => queueChecks(config, reachable, thresholds))))
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
        const clients: {name: string; client: pg.Client}[] = []
        try {
          for (const db of reachable.filter((d) => d.kind === 'singularity')) {
            clients.push({name: db.name, client: await connect(onDatabase(adminTarget(config), db.name), {statementTimeoutMs: 15_000})})
          }
          return await encryptionKeyCheck(clients)
        } finally {
          await Promise.all(clients.map((c) => c.client.end().catch(() => {})))
        }
      })),
    )
  } finally {
    await admin.end().catch(() => {})
  }
  return {verdict: worst(checks), checks}
}
