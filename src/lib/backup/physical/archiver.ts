/**
 * How WAL archiving stands, from pg_stat_archiver: the last archived segment and its age,
 * whether archive_command is failing now, and whether any WAL is waiting to be archived.
 */
import type pg from 'pg'

export interface ArchiverStatus {
  archiveMode: string
  archivedCount: number
  lastArchivedWal: string | null
  lastArchivedAt: string | null
  /** seconds since the last segment was archived */
  lastArchivedAgeSeconds: number | null
  failedCount: number
  lastFailedWal: string | null
  lastFailedAt: string | null
  /** the newest attempt failed (no success since the last failure) */
  failing: boolean
  /** failed attempts counted since the statistics were reset */
  statsResetAt: string | null
  /** bytes of WAL written after the last archived segment's successor began: > 0 means WAL is waiting */
  pendingBytes: number | null
}

/** Start LSN (as a number) of the segment after `wal` (a WAL file name). */
export function nextSegmentStart(wal: string, segmentSize: number): bigint {
  const log = BigInt(parseInt(wal.slice(8, 16), 16))
  const seg = BigInt(parseInt(wal.slice(16, 24), 16))
  return log * 0x1_0000_0000n + (seg + 1n) * BigInt(segmentSize)
}

export function lsnToNumber(lsn: string): bigint {
  const [hi, lo] = lsn.split('/')
  return BigInt(parseInt(hi, 16)) * 0x1_0000_0000n + BigInt(parseInt(lo, 16))
}

export async function archiverStatus(client: pg.Client): Promise<ArchiverStatus> {
  const {rows} = await client.query<{
    archive_mode: string
    archived_count: string
    last_archived_wal: string | null
    last_archived_time: Date | null
    age: number | null
    failed_count: string
    last_failed_wal: string | null
    last_failed_time: Date | null
    stats_reset: Date | null
    current_lsn: string | null
    segment_size: string
  }>(
    `SELECT current_setting('archive_mode') AS archive_mode,
            a.archived_count, a.last_archived_wal, a.last_archived_time,
            extract(epoch FROM now() - a.last_archived_time)::float8 AS age,
            a.failed_count, a.last_failed_wal, a.last_failed_time, a.stats_reset,
            CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS current_lsn,
            current_setting('wal_segment_size') AS segment_size
       FROM pg_stat_archiver a`,
  )
  const r = rows[0]
  const failing = r.last_failed_time !== null && (r.last_archived_time === null || r.last_failed_time > r.last_archived_time)
  let pendingBytes: number | null = null
  if (r.current_lsn && r.last_archived_wal && /^[0-9A-F]{24}$/.test(r.last_archived_wal)) {
    const size = parseSegmentSize(r.segment_size)
    const diff = lsnToNumber(r.current_lsn) - nextSegmentStart(r.last_archived_wal, size)
    pendingBytes = diff > 0n ? Number(diff) : 0
  }
  return {
    archiveMode: r.archive_mode,
    archivedCount: Number(r.archived_count),
    lastArchivedWal: r.last_archived_wal,
    lastArchivedAt: r.last_archived_time?.toISOString() ?? null,
    lastArchivedAgeSeconds: r.age === null ? null : Math.max(0, Math.round(r.age)),
    failedCount: Number(r.failed_count),
    lastFailedWal: r.last_failed_wal,
    lastFailedAt: r.last_failed_time?.toISOString() ?? null,
    failing,
    statsResetAt: r.stats_reset?.toISOString() ?? null,
    pendingBytes,
  }
}

/** wal_segment_size as pg_settings/current_setting shows it ('16MB') or in bytes. */
function parseSegmentSize(text: string): number {
  const m = /^(\d+)\s*(kB|MB|GB)?$/.exec(text.trim())
  if (!m) return 16 * 1024 * 1024
  const n = Number(m[1])
  return n * ({kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3}[m[2] as 'kB' | 'MB' | 'GB'] ?? 1)
}
