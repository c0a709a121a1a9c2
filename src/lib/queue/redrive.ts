import type pg from 'pg'

import {UsageError} from '../cli/errors.js'
import type {QueueRef} from './catalog.js'

export interface RedriveSource {
  queue: QueueRef
  /** read the queue's archive (pgmq.a_<queue>) instead of its messages (a DLQ is a queue) */
  archive: boolean
}

/** A JSON path given by the user, checked by the server's own parser: exit 2 when it is not one. */
export async function checkJsonPath(client: pg.Client, path: string | undefined, flag = '--where'): Promise<string | null> {
  if (path === undefined) return null
  try {
    await client.query('SELECT $1::jsonpath', [path])
  } catch (error) {
    const e = error as {code?: string; message?: string}
    if (e.code?.startsWith('42') || e.code?.startsWith('22')) {
      throw new UsageError(`invalid ${flag} JSON path ${JSON.stringify(path)}: ${e.message}`, {
        hint: `a SQL/JSON path such as '$.type ? (@ == "pattern_detection")' or '$.dead_letter.read_ct ? (@ > 10)' (tested on the message and on its headers)`,
        code: 'BAD_JSONPATH',
      })
    }
    throw error
  }
  return path
}

/** Where a JSON path matches the message or its headers (pgmq 1.5 headers; the clause for `alias`). */
export function jsonPathClause(alias: string, param: string): string {
  return `(jsonb_path_exists(${alias}.message, ${param}::jsonpath) OR jsonb_path_exists(coalesce(to_jsonb(${alias}) -> 'headers', '{}'::jsonb), ${param}::jsonpath))`
}

/** How many messages a redrive would move (those matching, up to the limit). */
export async function planRedrive(client: pg.Client, source: RedriveSource, match: string | null, limit: number | undefined): Promise<number> {
  const table = source.archive ? source.queue.archive : source.queue.table
  if (!table) return 0
  const where = match === null ? '' : `WHERE ${jsonPathClause('s', '$1')}`
  const capped = limit === undefined ? `SELECT 1 FROM ${table} s ${where}` : `SELECT 1 FROM ${table} s ${where} LIMIT ${Math.trunc(limit)}`
  const {rows: [r]} = await client.query<{n: string}>(`SELECT count(*) AS n FROM (${capped}) x`, match === null ? [] : [match])
  return Number(r.n)
}

export interface RedriveOptions {
  match: string | null
  /** move at most this many in all */
  limit?: number
  /** messages per transaction */
  batchSize: number
  /** after each committed batch: moved so far */
  onBatch?: (movedSoFar: number) => void
}

/**
 * Moves messages from a DLQ (a queue) or a queue's archive to another queue, oldest msg_id first,
 * in batches: each batch is one statement of public.singularity_redrive (sql/queue_ops) in its own
 * transaction, deleting from the source and inserting into the target together. A run killed at
 * any point leaves every message in exactly one of the two; running it again moves the rest.
 * headers.redrive records where each message came from (queue/archive, msg_id, read_ct,
 * enqueued_at, time, count). Returns how many moved.
 */
export async function redrive(client: pg.Client, source: RedriveSource, target: QueueRef, options: RedriveOptions): Promise<number> {
  if (source.archive && !source.queue.archive) return 0
  let moved = 0
  for (;;) {
    const want = options.limit === undefined ? options.batchSize : Math.min(options.batchSize, options.limit - moved)
    if (want <= 0) return moved
    const {rows: [r]} = await client.query<{n: string}>('SELECT public.singularity_redrive($1, $2, $3, $4::jsonpath, $5) AS n', [
      source.queue.name,
      target.name,
      source.archive,
      options.match,
      want,
    ])
    const n = Number(r.n)
    moved += n
    options.onBatch?.(moved)
    if (n < want) return moved
  }
}
