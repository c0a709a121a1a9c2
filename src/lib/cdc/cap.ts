/**
 * The cap that keeps a forgotten replication slot from filling the disk: max_slot_wal_keep_size.
 * Unlimited (-1, PostgreSQL's default) means a slot nobody reads keeps every WAL segment until the
 * disk is full and the primary stops. Pure, so every area that reads server settings (doctor, the
 * plan's server-settings area) reports it the same way.
 */

export interface SlotCapFinding {
  setting: 'max_slot_wal_keep_size'
  /** the value as the server reports it ('-1' is unlimited); null when the server has no such setting */
  current: string | null
  severity: 'warn'
  message: string
  /** the exact change to make */
  fix: string
}

/** The cap every embedded cluster gets unless told otherwise (`local start --max-slot-wal-keep-size`). */
export const DEFAULT_SLOT_WAL_CAP = '4GB'

/** A warning when a server's replication slots are not capped; null when they are. */
export function slotCapFinding(settings: Record<string, string | null | undefined>): SlotCapFinding | null {
  const current = settings.max_slot_wal_keep_size
  if (current === undefined || current === null) {
    return {
      setting: 'max_slot_wal_keep_size',
      current: null,
      severity: 'warn',
      message: 'this server cannot cap the WAL a replication slot retains (max_slot_wal_keep_size needs PostgreSQL 13+): a slot nobody reads can fill the disk',
      fix: 'upgrade to PostgreSQL 13 or newer, and watch `singularity cdc slots` until then',
    }
  }
  if (current.trim() !== '-1') return null
  return {
    setting: 'max_slot_wal_keep_size',
    current,
    severity: 'warn',
    message: 'max_slot_wal_keep_size is unlimited (-1): a replication slot nobody reads keeps WAL until the disk is full and the server stops',
    fix: `ALTER SYSTEM SET max_slot_wal_keep_size = '${DEFAULT_SLOT_WAL_CAP}'; SELECT pg_reload_conf();  (a reload is enough; size it below the free space of the WAL disk)`,
  }
}
