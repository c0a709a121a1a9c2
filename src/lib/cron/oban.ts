import type pg from 'pg'

import {UsageError} from '../cli/errors.js'

/**
 * Oban's table as the Elixir applications create it (public.oban_jobs, or <prefix>.oban_jobs):
 * read for `jobs list` / `jobs history`, and written by `jobs run <Worker>` exactly as
 * Oban.insert would (state available, UTC timestamps, priority 0..9).
 */

export const OBAN_STATES = ['available', 'scheduled', 'executing', 'retryable', 'completed', 'discarded', 'cancelled'] as const
export type ObanState = (typeof OBAN_STATES)[number]
/** States of a job whose last attempt failed. */
export const OBAN_FAILED_STATES: readonly string[] = ['retryable', 'discarded']
/** States of a job that has not run yet. */
export const OBAN_WAITING_STATES: readonly string[] = ['available', 'scheduled']

export interface ObanTable {
  /** schema-qualified, quoted: "public"."oban_jobs" */
  qualified: string
  schema: string
  columns: Set<string>
  /** Oban stores utc_datetime_usec as timestamp without time zone */
  naiveTimestamps: boolean
}

/** Finds oban_jobs in this database (public first, else Oban's prefix schema); null when absent. */
export async function findObanTable(client: pg.Client): Promise<ObanTable | null> {
  const {rows} = await client.query<{schema: string; qualified: string}>(
    `SELECT n.nspname AS schema, format('%I.%I', n.nspname, c.relname) AS qualified
       FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relname = 'oban_jobs' AND c.relkind IN ('r', 'p')
      ORDER BY n.nspname <> 'public', n.nspname LIMIT 1`,
  )
  if (rows.length === 0) return null
  const cols = await client.query<{attname: string; type: string}>(
    `SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_catalog.pg_attribute
      WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`,
    [rows[0].qualified],
  )
  const inserted = cols.rows.find((c) => c.attname === 'inserted_at')
  return {
    qualified: rows[0].qualified,
    schema: rows[0].schema,
    columns: new Set(cols.rows.map((c) => c.attname)),
    naiveTimestamps: inserted?.type === 'timestamp without time zone',
  }
}

/** SQL for a timestamp column as timestamptz (Oban's naive timestamps are UTC). */
function ts(table: ObanTable, column: string): string {
  if (!table.columns.has(column)) return 'NULL::timestamptz'
  return table.naiveTimestamps ? `(${column} AT TIME ZONE 'UTC')` : column
}

export interface ObanJobRow {
  id: number
  worker: string
  queue: string
  state: string
  attempt: number
  maxAttempts: number
  priority: number | null
  args: unknown
  insertedAt: Date | null
  scheduledAt: Date | null
  attemptedAt: Date | null
  finishedAt: Date | null
  lastError: string | null
}

function jobColumns(table: ObanTable): string {
  const lastError = table.columns.has('errors') ? `(errors[array_upper(errors, 1)] ->> 'error')` : 'NULL::text'
  const priority = table.columns.has('priority') ? 'priority' : 'NULL::int'
  const finished = ['completed_at', 'discarded_at', 'cancelled_at'].filter((c) => table.columns.has(c)).map((c) => ts(table, c))
  return `id, worker, queue, state::text AS state, attempt, max_attempts, ${priority} AS priority, args,
          ${ts(table, 'inserted_at')} AS inserted_at, ${ts(table, 'scheduled_at')} AS scheduled_at,
          ${ts(table, 'attempted_at')} AS attempted_at,
          ${finished.length > 0 ? `coalesce(${finished.join(', ')})` : 'NULL::timestamptz'} AS finished_at,
          ${lastError} AS last_error`
}

function toJob(r: Record<string, any>): ObanJobRow {
  return {
    id: Number(r.id),
    worker: r.worker,
    queue: r.queue,
    state: r.state,
    attempt: r.attempt,
    maxAttempts: r.max_attempts,
    priority: r.priority,
    args: r.args,
    insertedAt: r.inserted_at,
    scheduledAt: r.scheduled_at,
    attemptedAt: r.attempted_at,
    finishedAt: r.finished_at,
    lastError: r.last_error,
  }
}

/** The last `perWorker` jobs of each worker, newest first. */
export async function recentObanJobs(client: pg.Client, table: ObanTable, workers: string[], perWorker = 20): Promise<Map<string, ObanJobRow[]>> {
  const {rows} = await client.query(
    `SELECT * FROM (
       SELECT ${jobColumns(table)}, row_number() OVER (PARTITION BY worker ORDER BY id DESC) AS rn
         FROM ${table.qualified} WHERE worker = ANY($1)
     ) x WHERE rn <= $2 ORDER BY worker, id DESC`,
    [workers, perWorker],
  )
  const out = new Map<string, ObanJobRow[]>()
  for (const r of rows) {
    const job = toJob(r)
    out.set(job.worker, [...(out.get(job.worker) ?? []), job])
  }
  return out
}

/** Jobs of one worker, newest first, optionally since a time. */
export async function obanHistory(client: pg.Client, table: ObanTable, worker: string, options: {limit: number; since?: Date}): Promise<ObanJobRow[]> {
  const {rows} = await client.query(
    `SELECT ${jobColumns(table)} FROM ${table.qualified}
      WHERE worker = $1 AND ($2::timestamptz IS NULL OR ${ts(table, 'inserted_at')} >= $2)
      ORDER BY id DESC LIMIT $3`,
    [worker, options.since ?? null, options.limit],
  )
  return rows.map(toJob)
}

export interface ObanInsert {
  worker: string
  args: Record<string, unknown>
  queue: string
  priority: number
  maxAttempts: number
}

/** Parses --args: a JSON object (Oban's args are a map); exit 2 otherwise. */
export function parseObanArgs(text: string | undefined): Record<string, unknown> {
  if (text === undefined || text.trim() === '') return {}
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    throw new UsageError(`--args is not valid JSON: ${(error as Error).message.split('\n')[0]}`, {hint: `pass a JSON object, e.g. --args '{"type":"hourly"}'`})
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new UsageError('--args must be a JSON object (Oban job args are a map)', {hint: `e.g. --args '{"type":"hourly"}'`})
  }
  return value as Record<string, unknown>
}

/** Checks an insert against Oban's constraints before it reaches SQL; exit 2. */
export function checkObanInsert(insert: ObanInsert): void {
  if (!Number.isInteger(insert.priority) || insert.priority < 0 || insert.priority > 9) {
    throw new UsageError(`--priority ${insert.priority} is out of Oban's range 0..9 (0 is the highest)`)
  }
  if (!Number.isInteger(insert.maxAttempts) || insert.maxAttempts < 1) throw new UsageError('--max-attempts must be at least 1')
  if (insert.queue.length === 0 || insert.queue.length >= 128 || !/^[A-Za-z0-9_.-]+$/.test(insert.queue)) {
    throw new UsageError(`invalid Oban queue ${JSON.stringify(insert.queue)}`, {hint: 'letters, digits, _ . -; fewer than 128 characters'})
  }
  if (insert.worker.length === 0 || insert.worker.length >= 128) throw new UsageError('an Oban worker name has 1 to 127 characters')
}

/** Inserts an available job as Oban.insert would; returns the row. */
export async function insertObanJob(client: pg.Client, table: ObanTable, insert: ObanInsert): Promise<ObanJobRow> {
  checkObanInsert(insert)
  const now = table.naiveTimestamps ? "timezone('UTC', now())" : 'now()'
  const columns = ['state', 'queue', 'worker', 'args', 'attempt', 'max_attempts', 'inserted_at', 'scheduled_at']
  const values = ["'available'", '$1', '$2', '$3::jsonb', '0', '$4', now, now]
  const params: unknown[] = [insert.queue, insert.worker, JSON.stringify(insert.args), insert.maxAttempts]
  const optional: [string, string, unknown][] = [
    ['priority', `$${params.length + 1}`, insert.priority],
    ['errors', 'ARRAY[]::jsonb[]', undefined],
    ['tags', 'ARRAY[]::text[]', undefined],
    ['meta', `jsonb_build_object('enqueued_by', 'singularity jobs run')`, undefined],
  ]
  for (const [column, expression, param] of optional) {
    if (!table.columns.has(column)) continue
    columns.push(column)
    values.push(expression)
    if (param !== undefined) params.push(param)
  }
  const {rows} = await client.query(`INSERT INTO ${table.qualified} (${columns.join(', ')}) VALUES (${values.join(', ')}) RETURNING ${jobColumns(table)}`, params)
  return toJob(rows[0])
}
