import type pg from 'pg'

import type {QueueRef} from './catalog.js'

export interface PurgePlan {
  /** messages that would be deleted */
  messages: number
  /** queue purge: the highest msg_id counted (messages sent afterwards are kept) */
  upTo?: number | null
  /** archive prune: archived_at before this instant */
  cutoff?: string
}

/** How many messages a purge of the queue would delete, and the highest msg_id among them. */
export async function planQueuePurge(client: pg.Client, queue: QueueRef): Promise<PurgePlan> {
  const {rows} = await client.query<{n: string; max_id: string | null}>(`SELECT count(*) AS n, max(msg_id) AS max_id FROM ${queue.table}`)
  return {messages: Number(rows[0].n), upTo: rows[0].max_id === null ? null : Number(rows[0].max_id)}
}

/**
 * Deletes the messages counted by planQueuePurge (msg_id <= upTo) in one statement: all of them
 * or, on error, none. Messages sent after the count are kept. The archive is not touched.
 */
export async function purgeQueue(client: pg.Client, queue: QueueRef, plan: PurgePlan): Promise<number> {
  if (plan.upTo === null || plan.upTo === undefined) return 0
  const {rows} = await client.query<{n: string}>(
    `WITH gone AS (DELETE FROM ${queue.table} WHERE msg_id <= $1 RETURNING 1) SELECT count(*) AS n FROM gone`,
    [plan.upTo],
  )
  return Number(rows[0].n)
}

/** How many archived messages are older than `olderThanSec` (archived_at), fixing the cutoff instant. */
export async function planArchivePrune(client: pg.Client, queue: QueueRef, olderThanSec: number): Promise<PurgePlan> {
  const {rows: [at]} = await client.query<{cutoff: Date}>(`SELECT now() - make_interval(secs => $1) AS cutoff`, [olderThanSec])
  if (!queue.archive) return {messages: 0, cutoff: at.cutoff.toISOString()}
  const {rows} = await client.query<{n: string}>(`SELECT count(*) AS n FROM ${queue.archive} WHERE archived_at < $1`, [at.cutoff])
  return {messages: Number(rows[0].n), cutoff: at.cutoff.toISOString()}
}

/**
 * Deletes archived messages older than the plan's cutoff, in batches (each its own transaction,
 * so a long prune never holds locks for long); returns how many were deleted.
 */
export async function pruneArchive(client: pg.Client, queue: QueueRef, plan: PurgePlan, batchSize = 10_000): Promise<number> {
  if (!queue.archive || !plan.cutoff) return 0
  let total = 0
  for (;;) {
    const {rows} = await client.query<{n: string}>(
      `WITH gone AS (
         DELETE FROM ${queue.archive} WHERE msg_id IN (
           SELECT msg_id FROM ${queue.archive} WHERE archived_at < $1 ORDER BY archived_at LIMIT $2)
         RETURNING 1)
       SELECT count(*) AS n FROM gone`,
      [plan.cutoff, batchSize],
    )
    const n = Number(rows[0].n)
    total += n
    if (n < batchSize) return total
  }
}
