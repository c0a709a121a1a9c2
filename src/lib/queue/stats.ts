import type pg from 'pg'

import {DEFAULT_MAX_READS} from '../../queue-policies.js'
import type {QueueRef} from './catalog.js'

/**
 * Queue figures without counting every row.
 *
 * Fast mode (the default), per queue, every statement bounded and the cost flat in queue size:
 * - the msg_id span (highest − lowest id + 1, two primary-key probes) is an exact upper bound of
 *   the length: a queue whose span is under `countLimit` is small, and visible, in-flight and
 *   poison are counted exactly (at most that many rows); so is an archive with a small span;
 * - in a bigger queue only in-flight is counted, up to `countLimit` (a LIMITed range of the vt
 *   index, usually short: few messages are leased at once); visible is counted up to the limit
 *   only when a --fail-if-length-gt threshold raised it;
 * - length is then estimated from the statistics collector (pg_stat n_live_tup, which follows
 *   inserts and deletes), else pg_class.reltuples scaled to the table's current size (as the
 *   planner does), else the msg_id span; clamped between what was counted and the span;
 *   a queue big by its span but small by the statistics (old messages left among many gone) is
 *   counted exactly after all, with bounded counts;
 * - when in-flight was counted exactly, visible is length minus it; otherwise visible is length
 *   times the fraction with vt <= now(): the planner's (EXPLAIN: vt histogram and index end
 *   probes) when the table was analyzed and less than 2% of its rows changed since, else that of
 *   a TABLESAMPLE SYSTEM of ~500 random pages;
 * - poison (read_ct >= the queue's max_reads) in a big queue: length times the planner's
 *   selectivity of read_ct >= max_reads (fresh statistics), else the share in the same sample;
 * - oldest/newest age: enqueued_at of the lowest/highest msg_id (the same two probes);
 * - total_sent: the msg_id identity sequence's last value (exact; what pgmq's total_messages is);
 * - archive_length: exact when the archive's msg_id span is small, else estimated like length
 *   (at most total_sent).
 * Round trips: one statement probes every queue; when something must be estimated, one more
 * (statistics of the big tables and the planner's selectivities, one multi-statement query),
 * plus one TABLESAMPLE per big queue whose statistics are stale. With the catalog read, a run is
 * typically three round trips, and reads at most ~countLimit index entries + ~500 pages per queue.
 * Every figure that is an estimate is listed in `estimated_fields`, and `estimated` is true.
 *
 * Exact mode counts every row (what pgmq.metrics does), in one REPEATABLE READ snapshot.
 */
export interface QueueStats {
  database: string
  /** the server the database is on (only when the estate spans several servers) */
  server?: string
  queue: string
  length: number
  visible: number
  in_flight: number
  /** age in whole seconds of the oldest / newest message; null when the queue is empty */
  oldest_age_sec: number | null
  newest_age_sec: number | null
  total_sent: number
  archive_length: number
  /** messages read at least max_reads times (poison: `queue dead-letter` moves them aside) */
  poison: number
  /** the queue's poison threshold (its policy in the topology, else 5) */
  max_reads: number
  /** true when any figure below is an estimate */
  estimated: boolean
  estimated_fields: EstimatedField[]
}

export type EstimatedField = 'length' | 'visible' | 'in_flight' | 'archive_length' | 'poison'

export interface StatsOptions {
  /** database name reported in each row */
  database: string
  /** count every row */
  exact?: boolean
  /** fast mode: count exactly up to this many rows per figure (default 10,000) */
  countLimit?: number
  /** poison threshold of a queue (default DEFAULT_MAX_READS) */
  maxReads?: (queue: string) => number
}

export const DEFAULT_COUNT_LIMIT = 10_000

const thresholdOf = (options: StatsOptions, queue: QueueRef): number => {
  const n = options.maxReads?.(queue.name) ?? DEFAULT_MAX_READS
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`bad max_reads ${n} for ${queue.name}`)
  return n
}

const num = (v: string | number | null | undefined): number => (v === null || v === undefined ? 0 : Number(v))
const age = (v: string | number | null | undefined): number | null => (v === null || v === undefined ? null : Math.max(0, Math.floor(Number(v))))

/**
 * Figures of the given queues of the database the client is connected to, read in one
 * REPEATABLE READ, READ ONLY transaction (one snapshot, one now()).
 */
export async function queueStats(client: pg.Client, queues: QueueRef[], options: StatsOptions): Promise<QueueStats[]> {
  if (queues.length === 0) return []
  // Fast mode reads one statement (one snapshot, one now()); exact mode one transaction.
  if (!options.exact) return fastStats(client, queues, options, options.countLimit ?? DEFAULT_COUNT_LIMIT)
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
  try {
    const out: QueueStats[] = []
    for (const queue of queues) out.push(await exactStats(client, queue, options.database, thresholdOf(options, queue)))
    await client.query('COMMIT')
    return out
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {})
    throw error
  }
}

async function totalSent(client: pg.Client, queue: QueueRef): Promise<number> {
  if (queue.sequenceOid === null) return 0
  const {rows} = await client.query<{total: string | null}>('SELECT pg_sequence_last_value($1::oid::regclass) AS total', [queue.sequenceOid])
  return num(rows[0]?.total)
}

async function exactStats(client: pg.Client, queue: QueueRef, database: string, maxReads: number): Promise<QueueStats> {
  const {rows} = await client.query<{length: string; visible: string; poison: string; oldest: string | null; newest: string | null}>(
    `SELECT count(*) AS length,
            count(*) FILTER (WHERE vt <= now()) AS visible,
            count(*) FILTER (WHERE read_ct >= ${int(maxReads)}) AS poison,
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
    poison: num(r.poison),
    max_reads: maxReads,
    estimated: false,
    estimated_fields: [],
  }
}

interface Probe {
  i: number
  /** null when not counted (the msg_id span says the queue is big) */
  visible: string | null
  in_flight: string
  min_id: string | null
  max_id: string | null
  oldest: string | null
  newest: string | null
  total: string | null
  /** null when not counted (big archive) */
  archive: string | null
  /** null when not counted (big queue) */
  poison: string | null
}

/** Integers spliced into SQL text (oids, limits) are checked to be integers. */
function int(n: number): string {
  if (!Number.isSafeInteger(n)) throw new Error(`not an integer: ${n}`)
  return String(n)
}

/**
 * One statement for every queue (one snapshot, one now()). The msg_id span (highest − lowest + 1,
 * two index probes) bounds the number of rows from above: a queue whose span is under the cap is
 * small and counted exactly (visible, poison); a bigger one is not read beyond the bounded count of
 * its in-flight messages (an index range on vt, usually short). Same for the archive and its span.
 * So the cost does not grow with the size of a queue. `countVisible` counts visible messages up to
 * the cap also in big queues (a --fail-if-length-gt threshold needs an exact count up to it).
 */
async function probeAll(client: pg.Client, queues: QueueRef[], cap: number, maxReads: number[], countVisible: boolean): Promise<Probe[]> {
  const parts = queues.map((queue, i) => {
    const small = `coalesce(hi.msg_id - lo.msg_id + 1, 0) < ${int(cap)}`
    return `(SELECT ${i} AS i,
        CASE WHEN ${countVisible ? 'true' : small} THEN (SELECT count(*) FROM (SELECT vt FROM ${queue.table} WHERE vt <= now() ORDER BY vt LIMIT ${int(cap)}) s) END AS visible,
        (SELECT count(*) FROM (SELECT vt FROM ${queue.table} WHERE vt > now() ORDER BY vt LIMIT ${int(cap)}) s) AS in_flight,
        lo.msg_id AS min_id, hi.msg_id AS max_id,
        extract(epoch FROM now() - lo.enqueued_at) AS oldest,
        extract(epoch FROM now() - hi.enqueued_at) AS newest,
        ${queue.sequenceOid === null ? 'NULL::bigint' : `pg_sequence_last_value(${int(queue.sequenceOid)}::oid::regclass)`} AS total,
        ${
          queue.archive
            ? `CASE WHEN coalesce((SELECT max(msg_id) FROM ${queue.archive}) - (SELECT min(msg_id) FROM ${queue.archive}) + 1, 0) < ${int(cap)}
                    THEN (SELECT count(*) FROM ${queue.archive}) END`
            : '0::bigint'
        } AS archive,
        CASE WHEN ${small} THEN (SELECT count(*) FROM ${queue.table} WHERE read_ct >= ${int(maxReads[i])}) END AS poison
      FROM (SELECT 1) one
      LEFT JOIN LATERAL (SELECT msg_id, enqueued_at FROM ${queue.table} ORDER BY msg_id ASC LIMIT 1) lo ON true
      LEFT JOIN LATERAL (SELECT msg_id, enqueued_at FROM ${queue.table} ORDER BY msg_id DESC LIMIT 1) hi ON true)`
  })
  const {rows} = await client.query<Probe>(parts.join('\nUNION ALL\n'))
  return rows.sort((a, b) => Number(a.i) - Number(b.i))
}

/** Bounded exact counts of a queue that looked big by its span but is small by the statistics. */
async function boundedCounts(client: pg.Client, queue: QueueRef, cap: number, maxReads: number): Promise<{visible: number; inFlight: number; poison: number; archive: number | null}> {
  const {rows: [r]} = await client.query<{visible: string; in_flight: string; poison: string; n: string; archive: string | null}>(
    `SELECT (SELECT count(*) FROM (SELECT 1 FROM ${queue.table} WHERE vt <= now() LIMIT ${int(cap)}) s) AS visible,
            (SELECT count(*) FROM (SELECT 1 FROM ${queue.table} WHERE vt > now() LIMIT ${int(cap)}) s) AS in_flight,
            (SELECT count(*) FROM (SELECT read_ct FROM ${queue.table} LIMIT ${int(2 * cap)}) s WHERE read_ct >= ${int(maxReads)}) AS poison,
            ${queue.archive ? `(SELECT count(*) FROM (SELECT 1 FROM ${queue.archive} LIMIT ${int(cap)}) s)` : 'NULL'} AS archive`,
  )
  return {visible: num(r.visible), inFlight: num(r.in_flight), poison: num(r.poison), archive: r.archive === null ? null : num(r.archive)}
}

async function fastStats(client: pg.Client, queues: QueueRef[], options: StatsOptions, limit: number): Promise<QueueStats[]> {
  const database = options.database
  const cap = limit + 1
  const maxReads = queues.map((q) => thresholdOf(options, q))
  const probes = await probeAll(client, queues, cap, maxReads, limit > DEFAULT_COUNT_LIMIT)
  // Statistics of the tables whose figures must be estimated, in one more statement (cheaper than
  // reading them for every queue in the probe: planning it grows with every subquery).
  const big = new Set<number>()
  // The planner's fractions go along for the big queues.
  const split: {queue: QueueRef; maxReads: number}[] = []
  queues.forEach((queue, i) => {
    const p = probes[i]
    if (p.visible === null || num(p.visible) >= cap || num(p.in_flight) >= cap) {
      big.add(queue.tableOid)
      split.push({queue, maxReads: maxReads[i]})
    }
    if (queue.archiveOid !== null && p.archive === null) big.add(queue.archiveOid)
  })
  const {facts, planned} = await tableFacts(client, [...big], split)
  const samples = new Map<QueueRef, Promise<Fractions>>()

  return Promise.all(
    queues.map(async (queue, i): Promise<QueueStats> => {
      const p = probes[i]
      const estimated: EstimatedField[] = []
      const table = facts.get(queue.tableOid)
      let visible = p.visible === null ? null : num(p.visible)
      let inFlight = num(p.in_flight)
      let poison = p.poison === null ? null : num(p.poison)
      let archiveLength = p.archive === null ? null : num(p.archive)
      const totalSentValue = num(p.total)
      // Big by its span, small by the statistics (a few old messages left among many gone): count it.
      if (visible === null && (rowEstimate(table) ?? Infinity) < 2 * cap) {
        const counted = await boundedCounts(client, queue, cap, maxReads[i])
        if (counted.visible < cap && counted.inFlight < cap) {
          ;({visible, inFlight, poison} = counted)
          if (archiveLength === null && counted.archive !== null && counted.archive < cap) archiveLength = counted.archive
        }
      }
      let length: number
      const visibleExact = visible !== null && visible < cap
      const inFlightExact = inFlight < cap
      if (visibleExact && inFlightExact) {
        length = visible! + inFlight
      } else {
        // At least `counted` messages exist; at most the msg_id span (ids are unique).
        const counted = (visible ?? 0) + inFlight
        const span = p.min_id === null || p.max_id === null ? counted : num(p.max_id) - num(p.min_id) + 1
        length = clamp(rowEstimate(table) ?? span, counted, Math.max(counted, span))
        estimated.push('length')
        if (inFlightExact) {
          visible = length - inFlight
          estimated.push('visible')
        } else if (visibleExact) {
          inFlight = length - visible!
          estimated.push('in_flight')
        } else {
          const fractions = await sampledFractions(client, queue, maxReads[i], table, planned.get(queue.table), samples)
          visible = clamp(Math.round(length * fractions.visible), visible === null ? 0 : Math.min(cap, length - cap), length - cap)
          inFlight = length - visible
          estimated.push('visible', 'in_flight')
        }
      }
      // Poison in a big queue: the planner's (or a sample's) share of read_ct >= max_reads times its length.
      if (poison === null) {
        const fractions = await sampledFractions(client, queue, maxReads[i], table, planned.get(queue.table), samples)
        poison = clamp(Math.round(length * fractions.poison), 0, length)
        estimated.push('poison')
      }
      if (archiveLength === null) {
        archiveLength = clamp(rowEstimate(facts.get(queue.archiveOid!)) ?? 0, 0, totalSentValue)
        estimated.push('archive_length')
      }
      return {
        database,
        queue: queue.name,
        length,
        visible: visible!,
        in_flight: inFlight,
        poison,
        max_reads: maxReads[i],
        oldest_age_sec: age(p.oldest),
        newest_age_sec: age(p.newest),
        total_sent: totalSentValue,
        archive_length: archiveLength,
        estimated: estimated.length > 0,
        estimated_fields: estimated,
      }
    }),
  )
}

function clamp(value: number, low: number, high: number): number {
  return Math.round(Math.min(Math.max(value, low), Math.max(low, high)))
}

/** What PostgreSQL knows about a table (summed over its partitions) without reading it. */
interface TableFacts {
  /** statistics collector: live rows, and whether it tracks the table at all */
  live: number
  tracked: boolean
  /** pg_class.reltuples scaled to the current number of pages (the planner's estimate); null when never analyzed */
  scaled: number | null
  pages: number
  /** rows inserted, updated or deleted since the last ANALYZE */
  modified: number
  analyzed: boolean
}

type PlanRows = {rows: {'QUERY PLAN': [{Plan: {'Plan Rows': number}}]}[]}

/**
 * Facts of several tables by oid, summed over their leaf partitions, and the planner's fraction
 * of vt <= now() for the given queues (EXPLAIN, no table read): one round trip (simple protocol,
 * several statements; only integers and server-quoted names are spliced in).
 */
async function tableFacts(client: pg.Client, oids: number[], split: {queue: QueueRef; maxReads: number}[]): Promise<{facts: Map<number, TableFacts>; planned: Map<string, Fractions>}> {
  if (oids.length === 0) return {facts: new Map(), planned: new Map()}
  const statements = [
    `SELECT r.root::bigint AS root,
            sum(pg_stat_get_live_tuples(c.oid)) AS live,
            bool_or(pg_stat_get_live_tuples(c.oid) > 0 OR pg_stat_get_tuples_inserted(c.oid) > 0
                    OR pg_stat_get_tuples_deleted(c.oid) > 0
                    OR pg_stat_get_last_analyze_time(c.oid) IS NOT NULL OR pg_stat_get_last_autoanalyze_time(c.oid) IS NOT NULL
                    OR pg_stat_get_last_vacuum_time(c.oid) IS NOT NULL OR pg_stat_get_last_autovacuum_time(c.oid) IS NOT NULL) AS tracked,
            sum(CASE WHEN c.reltuples < 0 THEN NULL
                     WHEN c.relpages > 0 THEN c.reltuples / c.relpages
                          * (pg_relation_size(c.oid) / current_setting('block_size')::int)
                     ELSE c.reltuples END) AS scaled,
            sum(pg_relation_size(c.oid))::bigint / current_setting('block_size')::int AS pages,
            sum(pg_stat_get_mod_since_analyze(c.oid)) AS modified,
            bool_and(pg_stat_get_last_analyze_time(c.oid) IS NOT NULL OR pg_stat_get_last_autoanalyze_time(c.oid) IS NOT NULL) AS analyzed
       FROM unnest(ARRAY[${oids.map(int).join(', ')}]::oid[]) AS r(root)
      CROSS JOIN LATERAL (
            SELECT p.relid FROM pg_partition_tree(r.root::regclass) p WHERE p.isleaf
            UNION ALL -- a table outside any partition tree is its own leaf
            SELECT r.root::regclass WHERE NOT EXISTS (SELECT 1 FROM pg_partition_tree(r.root::regclass))) t
       JOIN pg_catalog.pg_class c ON c.oid = t.relid
      GROUP BY r.root`,
    ...split.flatMap(({queue: q, maxReads}) => [
      `EXPLAIN (FORMAT JSON) SELECT 1 FROM ${q.table}`,
      `EXPLAIN (FORMAT JSON) SELECT 1 FROM ${q.table} WHERE vt <= now()`,
      `EXPLAIN (FORMAT JSON) SELECT 1 FROM ${q.table} WHERE read_ct >= ${int(maxReads)}`,
    ]),
  ]
  const raw = (await client.query(statements.join(';\n'))) as unknown
  const results = (Array.isArray(raw) ? raw : [raw]) as {rows: unknown[]}[]
  const rows = results[0].rows as {root: string; live: string | null; tracked: boolean; scaled: string | null; pages: string; modified: string | null; analyzed: boolean}[]
  const facts = new Map(
    rows.map((r) => [
      Number(r.root),
      {live: num(r.live), tracked: Boolean(r.tracked), scaled: r.scaled === null ? null : Number(r.scaled), pages: num(r.pages), modified: num(r.modified), analyzed: Boolean(r.analyzed)},
    ]),
  )
  const planned = new Map<string, Fractions>()
  split.forEach(({queue: q}, k) => {
    const [all, visible, poison] = [results[1 + 3 * k], results[2 + 3 * k], results[3 + 3 * k]].map((r) => (r as PlanRows).rows[0]['QUERY PLAN'][0].Plan['Plan Rows'])
    // the planner never estimates fewer than one row: an estimate of one in a big table is "none"
    planned.set(q.table, all ? {visible: Math.min(1, Math.max(0, visible / all)), poison: poison <= 1 ? 0 : Math.min(1, poison / all)} : {visible: 0.5, poison: 0})
  })
  return {facts, planned}
}

/** Live rows: the statistics collector's count when it tracks the table, else the planner's; null when neither knows. */
function rowEstimate(facts: TableFacts | undefined): number | null {
  if (!facts) return null
  if (facts.tracked) return facts.live
  return facts.scaled
}

interface Fractions {
  /** share of the messages with vt <= now() */
  visible: number
  /** share of the messages read at least max_reads times */
  poison: number
}

/** Pages read by the sample (~10 ms; about ±2% absolute standard error in the worst case, when visible and in-flight messages sit in separate pages). */
const SAMPLE_PAGES = 500
/** The planner's statistics are trusted while less than this share of the rows changed since ANALYZE. */
const FRESH_STATS = 0.02

/**
 * Shares of visible and of poison messages in a big queue. Fresh planner statistics: the planner's
 * selectivities (vt and read_ct histograms, actual index ends), no table read. Otherwise one
 * TABLESAMPLE SYSTEM of about SAMPLE_PAGES random pages (current data), shared by both figures.
 */
async function sampledFractions(client: pg.Client, queue: QueueRef, maxReads: number, facts: TableFacts | undefined, planned: Fractions | undefined, sampled: Map<QueueRef, Promise<Fractions>>): Promise<Fractions> {
  if (planned !== undefined && facts && facts.analyzed && facts.modified <= FRESH_STATS * Math.max(facts.live, 1)) return planned
  let pending = sampled.get(queue)
  if (!pending) {
    const pages = facts?.pages ?? SAMPLE_PAGES
    const percent = pages <= SAMPLE_PAGES ? 100 : (100 * SAMPLE_PAGES) / pages
    pending = client
      .query<{visible: string; poison: string; n: string}>(
        `SELECT count(*) FILTER (WHERE vt <= now()) AS visible, count(*) FILTER (WHERE read_ct >= $2) AS poison, count(*) AS n
           FROM ${queue.table} TABLESAMPLE SYSTEM ($1::float8)`,
        [percent, maxReads],
      )
      .then(({rows: [r]}) => (Number(r.n) > 0 ? {visible: Number(r.visible) / Number(r.n), poison: Number(r.poison) / Number(r.n)} : (planned ?? {visible: 0.5, poison: 0})))
    sampled.set(queue, pending)
  }
  return pending
}
