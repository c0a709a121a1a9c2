import type pg from 'pg'

import {UsageError} from '../cli/errors.js'
import {deadLetterQueueName} from '../../queue-policies.js'
import type {QueueRef} from './catalog.js'

/** What a dead-letter run would do: counted in one snapshot, nothing changed. */
export interface DeadLetterPlan {
  queue: string
  dead_letter_queue: string
  /** whether <queue>_dlq exists already (it is created on first use) */
  dlq_exists: boolean
  max_reads: number
  /** poison messages not leased by a consumer now: what a run moves */
  movable: number
  /** poison messages a consumer holds now (vt in the future): left to it, moved on a later run if it lets them go */
  leased: number
}

/** pgmq's 47-character limit leaves 43 for a queue that gets a <queue>_dlq. */
export function checkDeadLetterName(queue: string): string {
  const dlq = deadLetterQueueName(queue)
  if (Buffer.byteLength(dlq) > 47) {
    throw new UsageError(`queue '${queue}' has no room for a dead-letter queue: '${dlq}' would be longer than 47 characters`, {
      hint: 'pgmq queue names are at most 47 characters; a queue with a DLQ is at most 43',
      code: 'BAD_NAME',
    })
  }
  return dlq
}

/** Counts the queue's poison messages (read_ct >= maxReads), movable now and leased. */
export async function planDeadLetter(client: pg.Client, queue: QueueRef, dlqExists: boolean, maxReads: number): Promise<DeadLetterPlan> {
  const dlq = checkDeadLetterName(queue.name)
  const {rows: [r]} = await client.query<{movable: string; leased: string}>(
    `SELECT count(*) FILTER (WHERE vt <= clock_timestamp()) AS movable, count(*) FILTER (WHERE vt > clock_timestamp()) AS leased
       FROM ${queue.table} WHERE read_ct >= $1`,
    [maxReads],
  )
  return {queue: queue.name, dead_letter_queue: dlq, dlq_exists: dlqExists, max_reads: maxReads, movable: Number(r.movable), leased: Number(r.leased)}
}

/**
 * Moves the poison messages to <queue>_dlq with public.singularity_dead_letter (sql/queue_ops): one
 * statement, so all of them or none; rows a consumer is reading at that instant are skipped (and
 * stay with it). The DLQ is created on first use with the queue's grants. Returns how many moved.
 */
export async function deadLetter(client: pg.Client, queue: QueueRef, maxReads: number): Promise<{dead_letter_queue: string; moved: number}> {
  checkDeadLetterName(queue.name)
  const {rows: [r]} = await client.query<{dead_letter_queue: string; moved: string}>('SELECT * FROM public.singularity_dead_letter($1, $2)', [queue.name, maxReads])
  return {dead_letter_queue: r.dead_letter_queue, moved: Number(r.moved)}
}
