import type pg from 'pg'

import type {QueueRef} from './catalog.js'

/**
 * Queue figures without counting every row.
 *
 * Fast mode (the default), per queue, every statement bounded:
 * - visible and in-flight are counted exactly up to `countLimit` rows each (a LIMITed range scan
 *   on the vt index: `vt <= now()` / `vt > now()`); when both stay under the limit every figure is
 *   exact, and length is their sum;
 * - above the limit, length is estimated from the statistics collector (pg_stat n_live_tup, which
 *   follows inserts and deletes), else pg_class.reltuples scaled to the table's current size (as
 *   the planner does), else the msg_id span; the estimate is clamped between what was counted and
 *   the msg_id span (max − min + 1), an exact upper bound;
 * - when one of visible / in-flight is counted exactly, the other is length minus it; when both are
 *   large, visible is length times the planner's selectivity of `vt <= now()` (EXPLAIN);
 * - oldest/newest age: enqueued_at of the lowest/highest msg_id (primary key index, two rows);
 * - total_sent: the msg_id identity sequence's last value (exact; what pgmq's total_messages is);
 * - archive_length: counted up to the limit, above it estimated like length.
 * Every figure that is an estimate is listed in `estimated_fields`, and `estimated` is true.
 *
 * Exact mode counts every row (what pgmq.metrics does), in one REPEATABLE READ snapshot.
 */
export interface QueueStats {
  database: string
  queue: string
  length: number
  visible: number
  in_flight: number
  /** age in whole seconds of the oldest / newest message; null when the queue is empty */
  oldest_age_sec: number | null
  newest_age_sec: number | null
  total_sent: number
  archive_length: number
  /** true when any figure below is an estimate */
  estimated: boolean
  estimated_fields: EstimatedField[]
}

export type EstimatedField = 'length' | 'visible' | 'in_flight' | 'archive_length'

export interface StatsOptions {
  /** database name reported in each row */
  database: string
  /** count every row */
  exact?: boolean
  /** fast mode: count exactly up to this many rows per figure (default 10,000) */
  countLimit?: number
}

export const DEFAULT_COUNT_LIMIT = 10_000

const num = (v: string | number | null | undefined): number => (v === null || v === undefined ? 0 : Number(v))
const age = (v: string | number | null | undefined): number | null => (v === null || v === undefined ? null : Math.max(0, Math.floor(Number(v))))

/**
 * Figures of the given queues of the database the client is connected to, read in one
 * REPEATABLE READ, READ ONLY transaction (one snapshot, one now()).
 */
export async function queueStats(client: pg.Client, queues: QueueRef[], options: StatsOptions): Promise<QueueStats[]> {
  const out: QueueStats[] = []
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
  try {
    for (const queue of queues) {
      out.push(options.exact ? await exactStats(client, queue, options.database) : await fastStats(client, queue, options.database, options.countLimit ?? DEFAULT_COUNT_LIMIT))
    }
    await client.query('COMMIT')
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {})
    throw error
  }
  return out
}

async function totalSent(client: pg.Client, queue: QueueRef): Promise<number> {
  const {rows} = await client.query<{total: string | null}>(
    `SELECT pg_sequence_last_value(pg_get_serial_sequence($1, 'msg_id')::regclass) AS total`,
    [queue.table],
  )
  return num(rows[0]?.total)
}

async function exactStats(client: pg.Client, queue: QueueRef, database: string): Promise<QueueStats> {
  const {rows} = await client.query<{length: string; visible: string; oldest: string | null; newest: string | null}>(
    `SELECT count(*) AS length,
            count(*) FILTER (WHERE vt <= now()) AS visible,
            extract(epoch FROM now() - min(enqueued_at)) AS oldest,
            extract(epoch FROM now() - max(enqueued_at)) AS newest
       FROM ${queue.table}`,
  )
  const archive = queue.archive ? await client.query<{n: string}>(`SELECT count(*) AS n FROM ${queue.archive}`) : {rows: [{n: '0'}]}
  const r = rows[0]
  return {
    database,
    queue: queue.name,
    length: num(r.length),
    visible: num(r.visible),
    in_flight: num(r.length) - num(r.visible),
    oldest_age_sec: age(r.oldest),
    newest_age_sec: age(r.newest),
    total_sent: await totalSent(client, queue),
    archive_length: num(archive.rows[0].n),
    estimated: false,
    estimated_fields: [],
  }
}

interface Probe {
  visible: string
  in_flight: string
  min_id: string | null
  max_id: string | null
  oldest: string | null
  newest: string | null
  total: string | null
  archive: string | null
}

async function fastStats(client: pg.Client, queue: QueueRef, database: string, limit: number): Promise<QueueStats> {
  const cap = limit + 1
  const archiveCount = queue.archive ? `(SELECT count(*) FROM (SELECT 1 FROM ${queue.archive} LIMIT $1) s)` : 'NULL::bigint'
  const {rows} = await client.query<Probe>(
    `SELECT (SELECT count(*) FROM (SELECT 1 FROM ${queue.table} WHERE vt <= now() LIMIT $1) s) AS visible,
            (SELECT count(*) FROM (SELECT 1 FROM ${queue.table} WHERE vt > now() LIMIT $1) s) AS in_flight,
            lo.msg_id AS min_id, hi.msg_id AS max_id,
            extract(epoch FROM now() - lo.enqueued_at) AS oldest,
            extract(epoch FROM now() - hi.enqueued_at) AS newest,
            pg_sequence_last_value(pg_get_serial_sequence($2, 'msg_id')::regclass) AS total,
            ${archiveCount} AS archive
       FROM (SELECT 1) one
       LEFT JOIN LATERAL (SELECT msg_id, enqueued_at FROM ${queue.table} ORDER BY msg_id ASC LIMIT 1) lo ON true
       LEFT JOIN LATERAL (SELECT msg_id, enqueued_at FROM ${queue.table} ORDER BY msg_id DESC LIMIT 1) hi ON true`,
    [cap, queue.table],
  )
  const p = rows[0]
  const estimated: EstimatedField[] = []
  let visible = num(p.visible)
  let inFlight = num(p.in_flight)
  const totalSentValue = num(p.total)
  let length: number
  const visibleExact = visible < cap
  const inFlightExact = inFlight < cap
  if (visibleExact && inFlightExact) {
    length = visible + inFlight
  } else {
    // At least `counted` messages exist; at most the msg_id span (ids are unique).
    const counted = visible + inFlight
    const span = p.min_id === null || p.max_id === null ? counted : num(p.max_id) - num(p.min_id) + 1
    const guess = (await estimateRows(client, queue.tableOid)) ?? span
    length = clamp(guess, counted, Math.max(counted, span))
    estimated.push('length')
    if (inFlightExact) {
      visible = length - inFlight
      estimated.push('visible')
    } else if (visibleExact) {
      inFlight = length - visible
      estimated.push('in_flight')
    } else {
      const fraction = await visibleFraction(client, queue)
      visible = clamp(Math.round(length * fraction), cap, length - cap)
      inFlight = length - visible
      estimated.push('visible', 'in_flight')
    }
  }

  let archiveLength = num(p.archive)
  if (queue.archive && queue.archiveOid !== null && archiveLength >= cap) {
    const guess = (await estimateRows(client, queue.archiveOid)) ?? archiveLength
    archiveLength = clamp(guess, archiveLength, Math.max(archiveLength, totalSentValue))
    estimated.push('archive_length')
  }

  return {
    database,
    queue: queue.name,
    length,
    visible,
    in_flight: inFlight,
    oldest_age_sec: age(p.oldest),
    newest_age_sec: age(p.newest),
    total_sent: totalSentValue,
    archive_length: archiveLength,
    estimated: estimated.length > 0,
    estimated_fields: estimated,
  }
}

function clamp(value: number, low: number, high: number): number {
  return Math.round(Math.min(Math.max(value, low), Math.max(low, high)))
}

/**
 * Live rows of a table (summed over its partitions) without reading it: the statistics
 * collector's n_live_tup when it tracks the table, else reltuples scaled to the current number of
 * pages (the planner's own estimate); null when neither knows.
 */
export async function estimateRows(client: pg.Client, oid: number): Promise<number | null> {
  const {rows} = await client.query<{live: string | null; tracked: boolean; scaled: string | null}>(
    `SELECT sum(s.n_live_tup) AS live,
            coalesce(bool_or(s.n_live_tup > 0 OR s.n_tup_ins > 0 OR s.n_tup_del > 0
                     OR s.last_analyze IS NOT NULL OR s.last_autoanalyze IS NOT NULL
                     OR s.last_vacuum IS NOT NULL OR s.last_autovacuum IS NOT NULL), false) AS tracked,
            sum(CASE WHEN c.reltuples < 0 THEN NULL
                     WHEN c.relpages > 0 THEN c.reltuples / c.relpages
                          * (pg_relation_size(c.oid) / current_setting('block_size')::int)
                     ELSE c.reltuples END) AS scaled
       FROM pg_partition_tree($1::oid::regclass) t
       JOIN pg_catalog.pg_class c ON c.oid = t.relid
       LEFT JOIN pg_catalog.pg_stat_all_tables s ON s.relid = c.oid
      WHERE t.isleaf`,
    [oid],
  )
  const r = rows[0]
  if (r?.tracked && r.live !== null) return Number(r.live)
  if (r?.scaled !== null && r?.scaled !== undefined) return Number(r.scaled)
  return null
}

/** The planner's selectivity of `vt <= now()` on the queue (histogram of vt, index end probes). */
async function visibleFraction(client: pg.Client, queue: QueueRef): Promise<number> {
  const plan = async (where: string): Promise<number> => {
    const {rows} = await client.query<{'QUERY PLAN': [{Plan: {'Plan Rows': number}}]}>(`EXPLAIN (FORMAT JSON) SELECT 1 FROM ${queue.table} ${where}`)
    return rows[0]['QUERY PLAN'][0].Plan['Plan Rows']
  }
  const all = await plan('')
  if (!all) return 0.5
  return Math.min(1, Math.max(0, (await plan('WHERE vt <= now()')) / all))
}
