import type {InitHooks} from './init.js'

/**
 * The provisioning steps owned by other areas, loaded lazily: change capture (a wal2json slot per
 * singularity database) and the pg_cron schedules.
 */
export async function provisionHooks(): Promise<InitHooks> {
  return {
    async cdc(client, db, dryRun) {
      if (dryRun || !db.cdcSlot) return {changes: [], warnings: []}
      const {ensureCdcSlot} = await import('../cdc/ensure.js')
      const result = await ensureCdcSlot(client, db)
      const changes = [
        ...(result.created ? [`created replication slot ${result.slot} (wal2json) on ${db.name}`] : []),
        ...result.replicaIdentityFixed.map((fix) => `${db.name}: ${fix}`),
      ]
      const warnings = [...result.warnings]
      let bridge
      if (db.cdcBridgeSlot && db.spec.cdcBridge) {
        // seed 002's bridge reads its own slot: the same checks, its own tables
        bridge = await ensureCdcSlot(client, {...db, cdcSlot: db.cdcBridgeSlot, spec: {...db.spec, cdc: db.spec.cdcBridge}})
        if (bridge.created) changes.push(`created replication slot ${bridge.slot} (wal2json, CDC bridge) on ${db.name}`)
        changes.push(...bridge.replicaIdentityFixed.map((fix) => `${db.name}: ${fix}`))
        warnings.push(...bridge.warnings.filter((w) => !warnings.includes(w)))
      }
      return {changes, warnings, detail: bridge ? {...result, bridge} : result}
    },
    async schedules(client, estate, dryRun) {
      const [{installSchedules, cronDatabaseInfo}, {schedulesFor, schedulesForPgCron}] = await Promise.all([import('../cron/install.js'), import('../../schedules.js')])
      const schedules = schedulesForPgCron(schedulesFor(process.env), (await cronDatabaseInfo(client)).version)
      let result
      try {
        result = await installSchedules(client, estate, schedules, {dryRun})
      } catch (error) {
        // A dry run before the databases exist: every job is still to be scheduled.
        if (dryRun && (error as {code?: string}).code === 'DATABASE_MISSING') {
          return {changes: [], warnings: [], detail: {planned: ['schedule every pg_cron job once the databases exist']}}
        }
        throw error
      }
      const verb = dryRun ? 'would ' : ''
      const changes = dryRun
        ? []
        : [
            ...result.created.map((j) => `scheduled pg_cron job ${j}`),
            ...result.updated.map((j) => `updated pg_cron job ${j}`),
            ...result.removed.map((j) => `unscheduled pg_cron job ${j} (no longer declared)`),
          ]
      const planned = dryRun ? [...result.created.map((j) => `${verb}schedule ${j}`), ...result.updated.map((j) => `${verb}update ${j}`), ...result.removed.map((j) => `${verb}unschedule ${j}`)] : []
      return {changes, warnings: [], detail: {...result, planned}}
    },
  }
}
