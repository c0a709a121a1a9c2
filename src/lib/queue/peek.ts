import type pg from 'pg'

import type {QueueRef} from './catalog.js'
import {jsonPathClause} from './redrive.js'

/** One message as it is in the table, untouched. */
export interface PeekedMessage {
  database: string
  queue: string
  /** 'queue' (pgmq.q_<name>) or 'archive' (pgmq.a_<name>) */
  source: 'queue' | 'archive'
  msg_id: number
  read_ct: number
  enqueued_at: string
  vt: string
  /** timestamps: ISO 8601 with microseconds and offset, exactly as stored */
  /** vt <= now(): a read would return it now (always false for archived messages) */
  visible: boolean
  archived_at?: string
  message: unknown
  headers: unknown
}

export interface PeekOptions {
  database: string
  limit: number
  /** read the archive instead of the queue */
  archive?: boolean
  /** only messages a read would return now (vt <= now()) */
  visibleOnly?: boolean
  /** only messages whose message or headers match this SQL/JSON path (checked beforehand: checkJsonPath) */
  where?: string | null
  /** enqueued_at (archived_at for the archive) at or after / before this bound */
  since?: TimeBound
  until?: TimeBound
}

/** A time bound: an instant (ISO 8601), or so many seconds before the server's now(). */
export type TimeBound = {at: string} | {agoSec: number}

/** The WHERE clauses and parameters of the filters, numbered after the first `taken` parameters. */
function filters(options: Omit<PeekOptions, 'limit' | 'database'>, column: string, taken: number): {clauses: string[]; params: unknown[]} {
  const clauses: string[] = []
  const params: unknown[] = []
  const param = (value: unknown) => {
    params.push(value)
    return `$${params.length + taken}`
  }
  if (options.visibleOnly) clauses.push('t.vt <= now()')
  if (options.where) clauses.push(jsonPathClause('t', param(options.where)))
  const bound = (b: TimeBound) => ('at' in b ? `${param(b.at)}::timestamptz` : `now() - make_interval(secs => ${param(b.agoSec)}::float8)`)
  if (options.since) clauses.push(`t.${column} >= ${bound(options.since)}`)
  if (options.until) clauses.push(`t.${column} < ${bound(options.until)}`)
  return {clauses, params}
}

/**
 * How many messages match the filters, without reading them out. With a time bound on the
 * archive the count walks the archived_at index (pgmq and the bundled engine both index it).
 */
export async function countMessages(client: pg.Client, queue: QueueRef, options: Omit<PeekOptions, 'limit' | 'database'>): Promise<number> {
  const archive = Boolean(options.archive)
  if (archive && !queue.archive) return 0
  const {clauses, params} = filters(options, archive ? 'archived_at' : 'enqueued_at', 0)
  const where = clauses.length > 0 ? `WHERE ${clauses.join(' AND ')}` : ''
  await client.query('BEGIN READ ONLY')
  try {
    const {rows} = await client.query<{n: string}>(`SELECT count(*) AS n FROM ${archive ? queue.archive : queue.table} t ${where}`, params)
    await client.query('COMMIT')
    return Number(rows[0].n)
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {})
    throw error
  }
}

const iso = (v: Date | string | null): string => (v instanceof Date ? v.toISOString() : String(v))
/** A timestamp column as ISO 8601 text with its microseconds (a JS Date would keep milliseconds). */
const TS = (column: string) => `to_json(t.${column}) #>> '{}' AS ${column}`

/**
 * Reads messages straight from the queue (oldest msg_id first: what consumers get next) or the
 * archive (most recently archived first), in a READ ONLY transaction with a plain SELECT: unlike
 * pgmq.read it takes no row locks and leaves vt and read_ct exactly as they were.
 */
export async function peekMessages(client: pg.Client, queue: QueueRef, options: PeekOptions): Promise<PeekedMessage[]> {
  const archive = Boolean(options.archive)
  if (archive && !queue.archive) return []
  const table = archive ? queue.archive! : queue.table
  // headers through to_jsonb(): pgmq versions before 1.5 have no headers column.
  const {clauses, params} = filters(options, archive ? 'archived_at' : 'enqueued_at', 1) // $1: the limit
  const where = clauses.length > 0 ? `WHERE ${clauses.join(' AND ')}` : ''
  // The archive newest first along its archived_at index: a time bound is an index range.
  const sql = archive
    ? `SELECT t.msg_id, t.read_ct, ${TS('enqueued_at')}, ${TS('vt')}, false AS visible, ${TS('archived_at')}, t.message, to_jsonb(t) -> 'headers' AS headers
         FROM ${table} t ${where} ORDER BY t.archived_at DESC, t.msg_id DESC LIMIT $1`
    : `SELECT t.msg_id, t.read_ct, ${TS('enqueued_at')}, ${TS('vt')}, t.vt <= now() AS visible, t.message, to_jsonb(t) -> 'headers' AS headers
         FROM ${table} t ${where} ORDER BY t.msg_id ASC LIMIT $1`
  await client.query('BEGIN READ ONLY')
  try {
    const {rows} = await client.query(sql, [options.limit, ...params])
    await client.query('COMMIT')
    return rows.map((r) => ({
      database: options.database,
      queue: queue.name,
      source: archive ? 'archive' : 'queue',
      msg_id: Number(r.msg_id),
      read_ct: Number(r.read_ct),
      enqueued_at: iso(r.enqueued_at),
      vt: iso(r.vt),
      visible: Boolean(r.visible),
      ...(archive ? {archived_at: iso(r.archived_at)} : {}),
      message: r.message,
      headers: r.headers ?? null,
    }))
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {})
    throw error
  }
}
