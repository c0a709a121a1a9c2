/**
 * Retention selection (seed 001: hourly keep 6, daily keep 7, monthly archival keep 12). Pure:
 * no file system, so it is tested on its own.
 */
import type {BackupKind} from './manifest.js'

export interface RetentionPolicy {
  hourly: number
  daily: number
  monthly: number
  /** manual backups (no --kind): undefined keeps them all */
  manual?: number
}

export const DEFAULT_RETENTION: RetentionPolicy = {hourly: 6, daily: 7, monthly: 12}

export type VerifiedState = 'yes' | 'no' | 'failed'

export interface RetentionCandidate {
  id: string
  kind: BackupKind
  /** ISO time the backup started */
  startedAt: string
  verified: VerifiedState
}

export interface RetentionDecision {
  id: string
  kind: BackupKind
  startedAt: string
  action: 'keep' | 'delete'
  reason: string
}

const newestFirst = (a: RetentionCandidate, b: RetentionCandidate) =>
  Date.parse(b.startedAt) - Date.parse(a.startedAt) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0)

/** The newest backup whose last verification passed, if any. */
export function newestVerified(backups: RetentionCandidate[]): RetentionCandidate | undefined {
  return [...backups].sort(newestFirst).find((b) => b.verified === 'yes')
}

/**
 * Decides, for complete backups, which to keep: the newest N of each kind, plus always the newest
 * verified backup (whatever its kind and age) so a prune can never leave nothing restorable.
 * Returned newest first.
 */
export function planRetention(backups: RetentionCandidate[], policy: RetentionPolicy): RetentionDecision[] {
  const protectedId = newestVerified(backups)?.id
  const seen = new Map<BackupKind, number>()
  return [...backups].sort(newestFirst).map((b) => {
    const rank = (seen.get(b.kind) ?? 0) + 1
    seen.set(b.kind, rank)
    const keep = policy[b.kind]
    const base = {id: b.id, kind: b.kind, startedAt: b.startedAt}
    if (keep === undefined) return {...base, action: 'keep', reason: `${b.kind} backups are kept until --keep-${b.kind} is given`}
    if (rank <= keep) return {...base, action: 'keep', reason: `newest ${keep} ${b.kind}`}
    if (b.id === protectedId) return {...base, action: 'keep', reason: 'newest verified backup (never pruned)'}
    return {...base, action: 'delete', reason: `beyond ${b.kind} retention (keep ${keep})`}
  })
}
