import {UsageError} from '../cli/errors.js'

/**
 * The one place where catalog queries and client options differ by PostgreSQL major version,
 * keyed on server_version_num (150018 = 15.18; pg_dump's own version uses the same numbering).
 * Written for PostgreSQL 14 to 17; only 15 runs on the development machine, so the other
 * branches are held by unit tests on the text they produce.
 */

/** The majors the estate is written for. */
export const WRITTEN_FOR = {oldest: 14, newest: 17} as const

/** The major of a server_version_num (10 and later): 150018 → 15, 170002 → 17. */
export function serverMajor(versionNum: number): number {
  return Math.floor(versionNum / 10_000)
}

// ── pg_replication_slots ──────────────────────────────────────────────────────────────────────

/**
 * pg_replication_slots.inactive_since (when the slot was last released) exists from 17 on;
 * before, a slot's idle time is unknown.
 */
export function slotsHaveInactiveSince(versionNum: number): boolean {
  return versionNum >= 170_000
}

/**
 * The columns of pg_replication_slots beyond 14's (slot_name … safe_wal_size, two_phase):
 * 16 adds conflicting; 17 adds inactive_since, invalidation_reason, failover and synced.
 */
export function replicationSlotExtraColumns(versionNum: number): string[] {
  const extra: string[] = []
  if (versionNum >= 160_000) extra.push('conflicting')
  if (versionNum >= 170_000) extra.push('inactive_since', 'invalidation_reason', 'failover', 'synced')
  return extra
}

// ── pg_stat_replication_slots ─────────────────────────────────────────────────────────────────

/** The counters of pg_stat_replication_slots (14 to 17 have the same columns). */
export const SLOT_STATS_COLUMNS = ['spill_txns', 'spill_count', 'spill_bytes', 'stream_txns', 'stream_count', 'stream_bytes', 'total_txns', 'total_bytes'] as const

export interface SlotStatsQuery {
  /** one row per logical slot: slot_name, the counters as text (bigint), stats_reset */
  sql: string
  /** where the counters come from: 14's statistics collector process, 15+'s cumulative statistics in shared memory */
  statistics: 'collector' | 'shared-memory'
}

/** The query for logical decoding's per-slot counters; null before 14 (no such view). */
export function slotStatsQuery(versionNum: number): SlotStatsQuery | null {
  if (versionNum < 140_000) return null
  const counters = SLOT_STATS_COLUMNS.map((c) => `s.${c}::text AS ${c}`).join(', ')
  return {
    sql: `SELECT s.slot_name::text AS slot_name, ${counters}, s.stats_reset FROM pg_catalog.pg_stat_replication_slots s ORDER BY s.slot_name`,
    statistics: versionNum < 150_000 ? 'collector' : 'shared-memory',
  }
}

// ── DROP DATABASE ─────────────────────────────────────────────────────────────────────────────

/** DROP DATABASE … WITH (FORCE) ends the other sessions itself from 13 on. */
export function dropDatabaseForceSupported(versionNum: number): boolean {
  return versionNum >= 130_000
}

// ── pg_dump compression ───────────────────────────────────────────────────────────────────────

export type DumpCompressionMethod = 'gzip' | 'lz4' | 'zstd' | 'none'

export interface DumpCompression {
  method: DumpCompressionMethod
  /** the method's level; absent = pg_dump's default for it */
  level?: number
}

const LEVELS: Record<Exclude<DumpCompressionMethod, 'none'>, [number, number]> = {gzip: [1, 9], lz4: [1, 12], zstd: [1, 22]}

/** Reads "zstd", "zstd:3", "gzip:9", "none" or a bare gzip level "6" / "0" (none); exit 2 otherwise. */
export function parseDumpCompression(text: string): DumpCompression {
  const value = text.trim().toLowerCase()
  if (/^\d+$/.test(value)) return Number(value) === 0 ? {method: 'none'} : checkLevel({method: 'gzip', level: Number(value)})
  const m = /^(gzip|lz4|zstd|none)(?::(\d+))?$/.exec(value)
  if (!m || (m[1] === 'none' && m[2] !== undefined)) {
    throw new UsageError(`invalid compression ${JSON.stringify(text)}`, {hint: 'one of gzip, lz4, zstd or none, with an optional level (zstd:3, gzip:9), or a gzip level 0-9', code: 'BAD_COMPRESSION'})
  }
  return checkLevel({method: m[1] as DumpCompressionMethod, level: m[2] === undefined ? undefined : Number(m[2])})
}

function checkLevel(c: DumpCompression): DumpCompression {
  if (c.method === 'none' || c.level === undefined) return c
  const [low, high] = LEVELS[c.method]
  if (c.level < low || c.level > high) {
    throw new UsageError(`${c.method} compression level ${c.level} is out of range ${low}-${high}`, {code: 'BAD_COMPRESSION'})
  }
  return c
}

/**
 * pg_dump's compression option for a pg_dump of this version (its --version, numbered like
 * server_version_num): 16+ takes --compress=METHOD[:LEVEL] with gzip, lz4, zstd or none; up to
 * 15 only a gzip level, --compress=0..9. lz4/zstd with an older pg_dump are refused (exit 2).
 * No option for gzip at its default level: pg_dump's own default for the custom format.
 */
export function pgDumpCompressionArgs(pgDumpVersionNum: number, compression: DumpCompression): string[] {
  const c = checkLevel(compression)
  if (pgDumpVersionNum >= 160_000) {
    if (c.method === 'gzip' && c.level === undefined) return []
    return [`--compress=${c.method}${c.level === undefined ? '' : `:${c.level}`}`]
  }
  if (c.method === 'none') return ['--compress=0']
  if (c.method === 'gzip') return c.level === undefined ? [] : [`--compress=${c.level}`]
  throw new UsageError(`${c.method} compression needs pg_dump 16+; this pg_dump is ${serverMajor(pgDumpVersionNum)} (gzip only)`, {
    hint: 'use gzip (--compress gzip:N), or install the PostgreSQL 16+ client programs (SINGULARITY_PG_BIN)',
    code: 'COMPRESSION_UNSUPPORTED',
  })
}
