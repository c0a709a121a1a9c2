/**
 * Pruning: applies the retention policy to complete backups (never the newest verified one) and
 * removes leftovers of killed or failed runs. Planning and applying are separate so --dry-run
 * shows exactly what a real run deletes.
 */
import {rm} from 'node:fs/promises'

import {planRetention, type RetentionDecision, type RetentionPolicy, type VerifiedState} from './retention.js'
import {listBackups, removeBackupDir, staleLeftovers, type BackupStatus} from './store.js'

export interface PruneItem extends RetentionDecision {
  size: number | null
  verified: VerifiedState
}

export interface PrunePlan {
  dir: string
  policy: RetentionPolicy
  backups: PruneItem[]
  leftovers: {name: string; path: string; reason: string}[]
  /** backups prune does not touch: running, or invalid (inspect them by hand) */
  untouched: {id: string; status: BackupStatus; problem: string | null}[]
  deleteIds: string[]
  freedBytes: number
}

export async function planPrune(dir: string, policy: RetentionPolicy): Promise<PrunePlan> {
  const all = listBackups(dir)
  const complete = all.filter((b) => b.status === 'complete')
  const byId = new Map(complete.map((b) => [b.id, b]))
  const decisions = planRetention(
    complete.map((b) => ({id: b.id, kind: b.kind, startedAt: b.startedAt, verified: b.verified})),
    policy,
  )
  const backups = decisions.map((d) => ({...d, size: byId.get(d.id)!.size, verified: byId.get(d.id)!.verified}))
  const deleteIds = backups.filter((b) => b.action === 'delete').map((b) => b.id)
  return {
    dir,
    policy,
    backups,
    leftovers: await staleLeftovers(dir),
    untouched: all.filter((b) => b.status === 'running' || b.status === 'invalid').map((b) => ({id: b.id, status: b.status, problem: b.problem ?? null})),
    deleteIds,
    freedBytes: backups.filter((b) => b.action === 'delete').reduce((s, b) => s + (b.size ?? 0), 0),
  }
}

/** Deletes what the plan says; each backup is renamed away first so it is never seen half-deleted. */
export async function applyPrune(plan: PrunePlan, progress: (message: string) => void = () => {}): Promise<{deleted: string[]; removedLeftovers: string[]}> {
  const deleted: string[] = []
  for (const id of plan.deleteIds) {
    await removeBackupDir(plan.dir, id)
    deleted.push(id)
    progress(`deleted ${id}`)
  }
  const removedLeftovers: string[] = []
  for (const leftover of plan.leftovers) {
    await rm(leftover.path, {recursive: true, force: true})
    removedLeftovers.push(leftover.name)
    progress(`removed ${leftover.name} (${leftover.reason})`)
  }
  return {deleted, removedLeftovers}
}
