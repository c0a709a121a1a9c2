import type pg from 'pg'

import {CliError, NotFoundError} from '../cli/errors.js'
import {formatBytes} from '../cli/format.js'
import {validateName} from '../names.js'
import {slotsHaveInactiveSince} from '../db/catalog-version.js'
import {cdcError} from './errors.js'

/** One replication slot with the figures an operator needs before the disk fills. */
export interface SlotRow {
  name: string
  plugin: string | null
  slotType: string
  database: string | null
  temporary: boolean
  active: boolean
  activePid: number | null
  /** application_name of the session holding the slot, when active */
  activeApplication: string | null
  restartLsn: string | null
  confirmedFlushLsn: string | null
  /** WAL kept for this slot: current WAL position − restart_lsn */
  retainedBytes: number | null
  retained: string
  /** changes not yet confirmed by its consumer: current WAL position − confirmed_flush_lsn */
  pendingBytes: number | null
  walStatus: string | null
  safeWalSizeBytes: number | null
  safeWalSize: string | null
  /** when the slot was last released (PostgreSQL 17+ inactive_since); null when active or unknown */
  inactiveSince: string | null
  inactiveSeconds: number | null
  /** one of the estate's persistent slots (db init creates it) */
  estate: boolean
  /**
   * How long its oldest unconsumed change has waited, at least: the age of the WAL segment file
   * that holds the first change after confirmed_flush_lsn (its last write is not older than that
   * change). Null when nothing is pending or the server does not let us read pg_ls_waldir().
   */
  unconsumedForSeconds: number | null
  /** growth of the retained WAL in bytes per second, from two readings (null: one reading only) */
  growthBytesPerSecond: number | null
  /** seconds until the cap invalidates the slot (or the disk is full, see timeLeftUntil) at that growth */
  timeLeftSeconds: number | null
  timeLeftUntil: 'cap' | 'disk' | null
  /** several servers: the server that holds the slot */
  server?: string
}

export interface SlotsReport {
  currentLsn: string | null
  /** when the figures were read (server time, ISO 8601) */
  readAt: string
  /** max_slot_wal_keep_size as set ('-1' is unlimited); null before PostgreSQL 13 */
  capSetting: string | null
  /** the cap in bytes; null when unlimited or unknown */
  capBytes: number | null
  /** free space of the filesystem holding the WAL, where known (the local cluster); null otherwise */
  diskFreeBytes: number | null
  /** the interval of the two readings the growth comes from, in seconds; null for one reading */
  sampleSeconds: number | null
  /** false before PostgreSQL 17: inactive_since does not exist, so inactivity is unknown */
  inactiveSinceAvailable: boolean
  slots: SlotRow[]
}

/** Every replication slot on the server (pg_replication_slots), with retained WAL in bytes. One reading. */
export async function listSlots(client: pg.Client, estateSlots: string[] = []): Promise<SlotsReport> {
  const {rows} = await client.query(
    `WITH pos AS (
       SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END AS lsn
     )
     SELECT to_jsonb(s) AS slot,
            pos.lsn::text AS current_lsn,
            pg_wal_lsn_diff(pos.lsn, s.restart_lsn)::bigint::text AS retained,
            pg_wal_lsn_diff(pos.lsn, s.confirmed_flush_lsn)::bigint::text AS pending,
            a.application_name,
            now() AS now
       FROM pg_replication_slots s CROSS JOIN pos
       LEFT JOIN pg_stat_activity a ON a.pid = s.active_pid
      ORDER BY s.slot_name`,
  )
  let currentLsn: string | null = null
  const server = await client.query<{lsn: string | null; cap: string | null; now: Date; version_num: number}>(
    `SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END)::text AS lsn,
            current_setting('max_slot_wal_keep_size', true) AS cap, now() AS now,
            current_setting('server_version_num')::int AS version_num`,
  )
  if (rows.length === 0) currentLsn = server.rows[0].lsn
  const capSetting = server.rows[0].cap
  const capBytes = capSetting === null || capSetting === '-1' ? null : await sizeInBytes(client, capSetting)
  const waiting = await unconsumedAges(client)
  const inactiveSinceAvailable = slotsHaveInactiveSince(server.rows[0].version_num)
  const slots = rows.map((r): SlotRow => {
    currentLsn = r.current_lsn
    const s = r.slot as Record<string, unknown>
    const retainedBytes = r.retained === null ? null : Number(r.retained)
    const safe = s.safe_wal_size === null || s.safe_wal_size === undefined ? null : Number(s.safe_wal_size)
    const inactiveSince = typeof s.inactive_since === 'string' ? new Date(s.inactive_since).toISOString() : null
    return {
      name: String(s.slot_name),
      plugin: (s.plugin as string | null) ?? null,
      slotType: String(s.slot_type),
      database: (s.database as string | null) ?? null,
      temporary: Boolean(s.temporary),
      active: Boolean(s.active),
      activePid: (s.active_pid as number | null) ?? null,
      activeApplication: s.active ? (r.application_name ?? null) : null,
      restartLsn: (s.restart_lsn as string | null) ?? null,
      confirmedFlushLsn: (s.confirmed_flush_lsn as string | null) ?? null,
      retainedBytes,
      retained: formatBytes(retainedBytes),
      pendingBytes: r.pending === null ? null : Number(r.pending),
      walStatus: (s.wal_status as string | null) ?? null,
      safeWalSizeBytes: safe,
      safeWalSize: safe === null ? null : formatBytes(safe),
      inactiveSince: s.active ? null : inactiveSince,
      inactiveSeconds: !s.active && inactiveSince ? Math.max(0, (new Date(r.now).getTime() - new Date(inactiveSince).getTime()) / 1000) : null,
      estate: estateSlots.includes(String(s.slot_name)),
      unconsumedForSeconds: r.pending !== null && Number(r.pending) > 0 ? (waiting.get(String(s.slot_name)) ?? null) : null,
      growthBytesPerSecond: null,
      timeLeftSeconds: null,
      timeLeftUntil: null,
    }
  })
  return {currentLsn, readAt: new Date(server.rows[0].now).toISOString(), capSetting, capBytes, diskFreeBytes: null, sampleSeconds: null, inactiveSinceAvailable, slots}
}

async function sizeInBytes(client: pg.Client, setting: string): Promise<number | null> {
  const {rows} = await client.query<{bytes: string | null}>('SELECT pg_size_bytes($1)::text AS bytes', [setting])
  return rows[0].bytes === null ? null : Number(rows[0].bytes)
}

/**
 * Per slot with pending changes: the age of the WAL segment file holding its first unconsumed
 * change (pg_ls_waldir needs superuser or pg_monitor; without it the ages are unknown). The +1
 * keeps a position exactly on a segment boundary in the segment that follows it.
 */
async function unconsumedAges(client: pg.Client): Promise<Map<string, number>> {
  try {
    const {rows} = await client.query<{slot: string; age: number}>(
      `SELECT s.slot_name AS slot, extract(epoch FROM now() - w.modification)::float8 AS age
         FROM pg_replication_slots s
         JOIN pg_ls_waldir() w ON w.name = pg_walfile_name(coalesce(s.confirmed_flush_lsn, s.restart_lsn) + 1)
        WHERE NOT pg_is_in_recovery() AND coalesce(s.confirmed_flush_lsn, s.restart_lsn) IS NOT NULL`,
    )
    return new Map(rows.map((r) => [r.slot, Math.max(0, r.age)]))
  } catch {
    return new Map()
  }
}

/**
 * The growth of each slot's retained WAL between two readings, and the time left at that rate
 * until the cap invalidates it (safe_wal_size) or, with no cap, until the disk is full where its
 * free space is known. Pure: `cdc slots` takes two readings; a watch loop passes its last two.
 */
export function withGrowth(previous: SlotsReport, current: SlotsReport): SlotsReport {
  const seconds = (Date.parse(current.readAt) - Date.parse(previous.readAt)) / 1000
  if (!(seconds > 0)) return current
  const slots = current.slots.map((slot): SlotRow => {
    const before = previous.slots.find((s) => s.name === slot.name)
    if (!before || before.retainedBytes === null || slot.retainedBytes === null) return slot
    const growth = (slot.retainedBytes - before.retainedBytes) / seconds
    let timeLeftSeconds: number | null = null
    let timeLeftUntil: SlotRow['timeLeftUntil'] = null
    if (growth > 0 && slot.walStatus !== 'lost') {
      if (slot.safeWalSizeBytes !== null) {
        timeLeftSeconds = Math.max(0, slot.safeWalSizeBytes) / growth
        timeLeftUntil = 'cap'
      } else if (current.capBytes === null && current.diskFreeBytes !== null) {
        timeLeftSeconds = current.diskFreeBytes / growth
        timeLeftUntil = 'disk'
      }
    }
    return {...slot, growthBytesPerSecond: growth, timeLeftSeconds, timeLeftUntil}
  })
  return {...current, sampleSeconds: seconds, slots}
}

/** The slots whose retained WAL is above a threshold (for --fail-if-retained-gt). */
export function slotsOverRetention(report: SlotsReport, thresholdBytes: number): SlotRow[] {
  return report.slots.filter((s) => s.retainedBytes !== null && s.retainedBytes > thresholdBytes)
}

export interface DropResult {
  slot: string
  dropped: boolean
  dryRun: boolean
  /** what the slot held when dropped */
  retained: string
  retainedBytes: number | null
  plugin: string | null
  database: string | null
  estate: boolean
}

/** Reads the slot to drop: unknown exits 4; a slot in use is refused with who holds it (exit 1). */
export async function slotToDrop(client: pg.Client, name: string, estateSlots: string[] = []): Promise<SlotRow> {
  validateName('slot', name)
  const report = await listSlots(client, estateSlots)
  const slot = report.slots.find((s) => s.name === name)
  if (!slot) throw new NotFoundError(`replication slot not found: ${name}`, {hint: 'list the slots with `singularity cdc slots`', code: 'SLOT_NOT_FOUND'})
  if (slot.active) {
    const who = slot.activeApplication ? `PID ${slot.activePid}, application '${slot.activeApplication}'` : `PID ${slot.activePid}`
    throw new CliError(`replication slot ${name} is in use (${who}); an active slot cannot be dropped`, {
      hint: slot.temporary
        ? 'a temporary slot disappears by itself when its session ends'
        : `stop its consumer first (or end the session: SELECT pg_terminate_backend(${slot.activePid})), then drop it`,
      code: 'SLOT_IN_USE',
    })
  }
  return slot
}

/** Drops an inactive slot; the WAL it retained is released at the next checkpoint. */
export async function dropSlot(client: pg.Client, name: string): Promise<void> {
  try {
    await client.query('SELECT pg_drop_replication_slot($1)', [name])
  } catch (error) {
    throw cdcError(error, {slot: name})
  }
}
