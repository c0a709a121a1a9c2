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
      return {changes, warnings: result.warnings, detail: result}
    },
  }
}
