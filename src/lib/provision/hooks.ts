import type {InitHooks} from './init.js'

/**
 * The provisioning steps owned by other areas, loaded lazily: change capture (a wal2json slot per
 * singularity database) and the pg_cron schedules.
 */
export async function provisionHooks(): Promise<InitHooks> {
  return {}
}
