/**
 * Poison policies of the estate's queues, as data (kept apart from topology.ts so that
 * schedules.ts can read it while topology.ts loads).
 */
import type {DatabaseKind} from './topology.js'

/** A message read at least this many times is poison, unless the queue's policy says otherwise. */
export const DEFAULT_MAX_READS = 5

/**
 * Poison policy of one queue: a message read at least `maxReads` times is poison (`queue stats`
 * counts it, `queue dead-letter` moves it to <queue>_dlq). With `deadLetterEvery` a pg_cron job
 * (dead-letter-<queue>, in schedules.ts) moves the poison messages on that schedule.
 */
export interface QueuePolicy {
  database: DatabaseKind
  queue: string
  maxReads: number
  /** cron expression (UTC) of the dead-letter job; none: only by hand */
  deadLetterEvery?: string
}

/** seed 003: the request queues of shared_queue are consumed by services that may crash on a message; after 5 reads it goes aside. */
export const QUEUE_POLICIES: readonly QueuePolicy[] = [
  {database: 'shared_queue', queue: 'llm_requests', maxReads: 5, deadLetterEvery: '*/5 * * * *'},
  {database: 'shared_queue', queue: 'job_requests', maxReads: 5, deadLetterEvery: '*/5 * * * *'},
]

/** The poison threshold of a queue in a database of this kind (its policy, else DEFAULT_MAX_READS). */
export function maxReadsFor(kind: DatabaseKind, queue: string): number {
  return QUEUE_POLICIES.find((p) => p.database === kind && p.queue.toLowerCase() === queue.toLowerCase())?.maxReads ?? DEFAULT_MAX_READS
}

/** The dead-letter queue of a queue: <queue>_dlq (pgmq names are at most 47 characters, so queues up to 43 have one). */
export function deadLetterQueueName(queue: string): string {
  return `${queue}_dlq`
}
