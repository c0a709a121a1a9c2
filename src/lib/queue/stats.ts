import type pg from 'pg'

import {DEFAULT_MAX_READS} from '../../queue-policies.js'
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
 *   large, visible is length times the fraction with vt <= now(): the planner's (EXPLAIN: vt
 *   histogram and index end probes) when the table was analyzed and less than 2% of its rows
 *   changed since, else that of a TABLESAMPLE SYSTEM of ~500 random pages;
 * - oldest/newest age: enqueued_at of the lowest/highest msg_id (primary key index, two rows);
 * - total_sent: the msg_id identity sequence's last value (exact; what pgmq's total_messages is);
 * - archive_length: counted up to the limit, above it estimated like length.
 * - poison (read_ct >= the queue's max_reads): counted exactly in a scan that stops after the
 *   limit; a queue with fewer rows is counted exactly, a bigger one gets the poison share of a
 *   ~500-page TABLESAMPLE times its length (never less than what the bounded scan counted). Cost
 *   is bounded either way: at most limit rows plus ~500 pages per queue, whatever its size.
 * Round trips: one statement probes every queue; when something must be estimated, one more
 * (statistics of the big tables and the planner's fractions), plus one TABLESAMPLE per queue
 * whose split must be sampled. With the catalog read, a run is typically three round trips.
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
  visible: string
  in_flight: string
  min_id: string | null
  max_id: string | null
  oldest: string | null
  newest: string | null
  total: string | null
  archive: string | null
  poison: string
  scanned: string
}

/** Integers spliced into SQL text (oids, limits) are checked to be integers. */
function int(n: number): string {
  if (!Number.isSafeInteger(n)) throw new Error(`not an integer: ${n}`)
  return String(n)
}

/**
 * One statement for every queue (one snapshot, one now()): bounded counts (index range scans on
 * vt), the lowest/highest msg_id, the sequence, a bounded count of the archive.
 */
async function probeAll(client: pg.Client, queues: QueueRef[], cap: number, maxReads: number[]): Promise<Probe[]> {
  const parts = queues.map(
    (queue, i) => `(SELECT ${i} AS i,
        (SELECT count(*) FROM (SELECT vt FROM ${queue.table} WHERE vt <= now() ORDER BY vt LIMIT ${int(cap)}) s) AS visible,
        (SELECT count(*) FROM (SELECT vt FROM ${queue.table} WHERE vt > now() ORDER BY vt LIMIT ${int(cap)}) s) AS in_flight,
        lo.msg_id AS min_id, hi.msg_id AS max_id,
        extract(epoch FROM now() - lo.enqueued_at) AS oldest,
        extract(epoch FROM now() - hi.enqueued_at) AS newest,
        ${queue.sequenceOid === null ? 'NULL::bigint' : `pg_sequence_last_value(${int(queue.sequenceOid)}::oid::regclass)`} AS total,
        ${queue.archive ? `(SELECT count(*) FROM (SELECT 1 FROM ${queue.archive} LIMIT ${int(cap)}) s)` : 'NULL::bigint'} AS archive,
        ps.poison, ps.scanned
      FROM (SELECT 1) one
      CROSS JOIN LATERAL (SELECT count(*) FILTER (WHERE read_ct >= ${int(maxReads[i])}) AS poison, count(*) AS scanned
                            FROM (SELECT read_ct FROM ${queue.table} LIMIT ${int(cap)}) s) ps
      LEFT JOIN LATERAL (SELECT msg_id, enqueued_at FROM ${queue.table} ORDER BY msg_id ASC LIMIT 1) lo ON true
      LEFT JOIN LATERAL (SELECT msg_id, enqueued_at FROM ${queue.table} ORDER BY msg_id DESC LIMIT 1) hi ON true)`,
  )
  const {rows} = await client.query<Probe>(parts.join('\nUNION ALL\n'))
  return rows.sort((a, b) => Number(a.i) - Number(b.i))
}

async function fastStats(client: pg.Client, queues: QueueRef[], options: StatsOptions, limit: number): Promise<QueueStats[]> {
  const database = options.database
  const cap = limit + 1
  const maxReads = queues.map((q) => thresholdOf(options, q))
  const probes = await probeAll(client, queues, cap, maxReads)
  // Statistics of the tables whose figures must be estimated, in one more statement (cheaper than
  // reading them for every queue in the probe: planning it grows with every subquery).
  const big = new Set<number>()
  // The planner's visible fraction goes along for the queues whose split must be estimated.
  const split: QueueRef[] = []
  queues.forEach((queue, i) => {
    const p = probes[i]
    if (num(p.visible) >= cap || num(p.in_flight) >= cap) big.add(queue.tableOid)
    if (num(p.visible) >= cap && num(p.in_flight) >= cap) split.push(queue)
    if (queue.archiveOid !== null && num(p.archive) >= cap) big.add(queue.archiveOid)
  })
  const {facts, planned} = await tableFacts(client, [...big], split)

  return Promise.all(
    queues.map(async (queue, i): Promise<QueueStats> => {
      const p = probes[i]
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
        const table = facts.get(queue.tableOid)
        length = clamp(rowEstimate(table) ?? span, counted, Math.max(counted, span))
        estimated.push('length')
        if (inFlightExact) {
          visible = length - inFlight
          estimated.push('visible')
        } else if (visibleExact) {
          inFlight = length - visible
          estimated.push('in_flight')
        } else {
          const fraction = await visibleFraction(client, queue, table, planned.get(queue.table))
          visible = clamp(Math.round(length * fraction), cap, length - cap)
          inFlight = length - visible
          estimated.push('visible', 'in_flight')
        }
      }
      let archiveLength = num(p.archive)
      if (queue.archiveOid !== null && archiveLength >= cap) {
        archiveLength = clamp(rowEstimate(facts.get(queue.archiveOid)) ?? archiveLength, archiveLength, Math.max(archiveLength, totalSentValue))
        estimated.push('archive_length')
      }
      // Poison: counted while the whole table was read (fewer rows than the cap); above, the share
      // of poison in a sample of pages, never below what the bounded scan counted.
      let poison = num(p.poison)
      if (num(p.scanned) >= cap) {
        const share = await poisonShare(client, queue, maxReads[i], facts.get(queue.tableOid))
        poison = clamp(Math.round(length * share), poison, length)
        estimated.push('poison')
      }
      return {
        database,
        queue: queue.name,
        length,
        visible,
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
async function tableFacts(client: pg.Client, oids: number[], split: QueueRef[]): Promise<{facts: Map<number, TableFacts>; planned: Map<string, number>}> {
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
    ...split.flatMap((q) => [`EXPLAIN (FORMAT JSON) SELECT 1 FROM ${q.table}`, `EXPLAIN (FORMAT JSON) SELECT 1 FROM ${q.table} WHERE vt <= now()`]),
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
  const planned = new Map<string, number>()
  split.forEach((q, k) => {
    const [all, visible] = [results[1 + 2 * k], results[2 + 2 * k]].map((r) => (r as PlanRows).rows[0]['QUERY PLAN'][0].Plan['Plan Rows'])
    planned.set(q.table, all ? Math.min(1, Math.max(0, visible / all)) : 0.5)
  })
  return {facts, planned}
}

/** Live rows: the statistics collector's count when it tracks the table, else the planner's; null when neither knows. */
function rowEstimate(facts: TableFacts | undefined): number | null {
  if (!facts) return null
  if (facts.tracked) return facts.live
  return facts.scaled
}

/** Share of a big queue's messages read at least maxReads times, from a TABLESAMPLE SYSTEM of about SAMPLE_PAGES pages. */
async function poisonShare(client: pg.Client, queue: QueueRef, maxReads: number, facts: TableFacts | undefined): Promise<number> {
  const pages = facts?.pages ?? SAMPLE_PAGES
  const percent = pages <= SAMPLE_PAGES ? 100 : (100 * SAMPLE_PAGES) / pages
  const {rows: [sample]} = await client.query<{poison: string; n: string}>(
    `SELECT count(*) FILTER (WHERE read_ct >= $2) AS poison, count(*) AS n FROM ${queue.table} TABLESAMPLE SYSTEM ($1::float8)`,
    [percent, maxReads],
  )
  return Number(sample.n) > 0 ? Number(sample.poison) / Number(sample.n) : 0
}

/** Pages read by the visible-fraction sample (~10 ms; about ±2% absolute standard error in the worst case, when visible and in-flight messages sit in separate pages). */
const SAMPLE_PAGES = 500
/** The planner's statistics are trusted while less than this share of the rows changed since ANALYZE. */
const FRESH_STATS = 0.02

/**
 * Fraction of the queue's messages with vt <= now(). Fresh planner statistics: the planner's
 * selectivity (vt histogram, actual index ends), no table read. Otherwise a TABLESAMPLE SYSTEM of
 * about SAMPLE_PAGES random pages (current data).
 */
async function visibleFraction(client: pg.Client, queue: QueueRef, facts: TableFacts | undefined, planned: number | undefined): Promise<number> {
  if (planned !== undefined && facts && facts.analyzed && facts.modified <= FRESH_STATS * Math.max(facts.live, 1)) return planned
  const pages = facts?.pages ?? SAMPLE_PAGES
  const percent = pages <= SAMPLE_PAGES ? 100 : (100 * SAMPLE_PAGES) / pages
  const {rows: [sample]} = await client.query<{visible: string; n: string}>(
    `SELECT count(*) FILTER (WHERE vt <= now()) AS visible, count(*) AS n FROM ${queue.table} TABLESAMPLE SYSTEM ($1::float8)`,
    [percent],
  )
  return Number(sample.n) > 0 ? Number(sample.visible) / Number(sample.n) : (planned ?? 0.5)
}
