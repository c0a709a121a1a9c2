export type CheckStatus = 'ok' | 'warn' | 'fail'

/** One row of the doctor's verdict: what was checked, how it stands, and where to look closer. */
export interface CheckResult {
  check: string
  status: CheckStatus
  detail: string
  /** the command to look closer */
  next: string
}

export interface DoctorThresholds {
  /** queue backlog (messages) over which a queue fails */
  maxQueueLength: number
  /** oldest visible message age (seconds) over which a queue fails */
  maxOldestSeconds: number
  /** WAL retained by a slot (bytes) over which it fails */
  maxSlotRetainedBytes: number
  /** a slot without a consumer for longer than this (seconds) warns */
  maxSlotIdleSeconds: number
  /** a slot retaining more than this fraction of max_slot_wal_keep_size warns */
  slotCapWarnFraction: number
  /** seconds since the last archived WAL over which archiving fails (when WAL is waiting) */
  maxArchiveAgeSeconds?: number
  /** p95 start delay (seconds) of pg_cron jobs over the last hour above which the doctor warns; also the capacity check's threshold */
  maxStartDelaySeconds?: number
}

export const DEFAULT_THRESHOLDS: DoctorThresholds = {
  maxQueueLength: 10_000,
  maxOldestSeconds: 3600,
  maxSlotRetainedBytes: 1024 ** 3,
  maxSlotIdleSeconds: 3600,
  slotCapWarnFraction: 0.5,
  maxArchiveAgeSeconds: 300,
  maxStartDelaySeconds: 10,
}

export function worst(results: CheckResult[]): CheckStatus {
  if (results.some((r) => r.status === 'fail')) return 'fail'
  if (results.some((r) => r.status === 'warn')) return 'warn'
  return 'ok'
}
