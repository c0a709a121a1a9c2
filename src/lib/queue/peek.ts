import type pg from 'pg'

import type {QueueRef} from './catalog.js'

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
  const sql = archive
    ? `SELECT t.msg_id, t.read_ct, ${TS('enqueued_at')}, ${TS('vt')}, false AS visible, ${TS('archived_at')}, t.message, to_jsonb(t) -> 'headers' AS headers
         FROM ${table} t ORDER BY t.archived_at DESC, t.msg_id DESC LIMIT $1`
    : `SELECT t.msg_id, t.read_ct, ${TS('enqueued_at')}, ${TS('vt')}, t.vt <= now() AS visible, t.message, to_jsonb(t) -> 'headers' AS headers
         FROM ${table} t ${options.visibleOnly ? 'WHERE t.vt <= now()' : ''} ORDER BY t.msg_id ASC LIMIT $1`
  await client.query('BEGIN READ ONLY')
  try {
    const {rows} = await client.query(sql, [options.limit])
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
