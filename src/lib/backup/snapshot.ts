/**
 * What a dump holds, read in the dump's own snapshot: the exporting transaction stays open while
 * pg_dump runs with `--snapshot`, so the row counts and queue definitions recorded here describe
 * exactly the rows in the archive (what `verify --restore-test` compares a restore with).
 *
 * Queues of the pgmq extension are special: like the real pgmq, the extension makes each queue's
 * tables and msg_id sequence extension members, and pg_dump writes neither their definition nor
 * their rows (pgmq issue #408). Such queues are "carried by the queue file": their rows are copied
 * in the same snapshot into `<db>.queues` (see queue-file.ts) and recreated on restore with pgmq's
 * own functions. Queues whose tables are ordinary tables (the bundled engine) travel in the
 * archive like any table.
 */
import type pg from 'pg'
import {z} from 'zod'

export const queueDefinitionSchema = z.object({
  name: z.string(),
  partitioned: z.boolean(),
  unlogged: z.boolean(),
  createdAt: z.string().nullable(),
  /** pg_partman settings of a partitioned queue (as given to pgmq.create_partitioned) */
  partitionInterval: z.string().nullable(),
  retentionInterval: z.string().nullable(),
  /** messages in pgmq.q_<name> at dump time */
  length: z.number().int().nonnegative(),
  /** rows in pgmq.a_<name> at dump time */
  archived: z.number().int().nonnegative(),
  /** the highest msg_id handed out (sequence or rows, whichever is higher): a restore continues above it */
  lastMsgId: z.number().int().nonnegative(),
  /** 'archive': pg_dump carries the tables; 'queue-file': they are extension members, the queue file carries the rows */
  carriedBy: z.enum(['archive', 'queue-file']),
})

export type QueueDefinition = z.infer<typeof queueDefinitionSchema>

export const contentsSchema = z.object({
  /** 'extension' | 'bundled' | null (no queues) */
  queueEngine: z.enum(['extension', 'bundled']).nullable(),
  /** rows per table (schema.table, quoted as format('%I.%I')) in the dump's snapshot */
  tables: z.record(z.string(), z.number().int().nonnegative()),
  queues: z.array(queueDefinitionSchema),
})

export type DumpContents = z.infer<typeof contentsSchema>

/** Relations pg_dump must leave out: partitions and pg_partman templates of extension-member queues (the queue file carries their rows). */
export interface DumpPlan {
  contents: DumpContents
  excludeTables: {schema: string; name: string}[]
}

/**
 * The tables a dump restores and that a restore can be compared on: ordinary and partitioned
 * tables (partitions are counted through their root), without extension members except the
 * extension's configuration tables dumped whole and the queue tables we carry.
 */
const TABLES_SQL = `
  WITH ext_members AS (
    SELECT d.objid FROM pg_catalog.pg_depend d
    WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.deptype = 'e'
  ), ext_config AS (
    SELECT x.cfg FROM pg_catalog.pg_extension e, unnest(e.extconfig, e.extcondition) AS x(cfg, cond)
    WHERE coalesce(x.cond, '') = ''
  ), queue_tables AS (
    SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'pgmq'
      AND c.relname IN (SELECT lower(p || '_' || m.queue_name) FROM unnest($1::text[]) AS m(queue_name), unnest(ARRAY['q', 'a']) AS p)
  )
  SELECT format('%I.%I', n.nspname, c.relname) AS name, c.oid::bigint AS oid
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
    AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'
    AND (c.oid NOT IN (SELECT objid FROM ext_members) OR c.oid IN (SELECT cfg FROM ext_config) OR c.oid IN (SELECT oid FROM queue_tables))
  ORDER BY 1`

/** The queue names of pgmq.meta, or none. */
async function queueNames(client: pg.Client): Promise<string[]> {
  const {rows} = await client.query<{has: boolean}>("SELECT to_regclass('pgmq.meta') IS NOT NULL AS has")
  if (!rows[0].has) return []
  return (await client.query<{queue_name: string}>('SELECT queue_name FROM pgmq.meta ORDER BY queue_name')).rows.map((r) => r.queue_name)
}

/** Row count of each table a dump restores, keyed schema.table. */
export async function countTables(client: pg.Client): Promise<Record<string, number>> {
  const names = await queueNames(client)
  const {rows} = await client.query<{name: string}>(TABLES_SQL, [names])
  const out: Record<string, number> = {}
  for (const {name} of rows) {
    // name is already quoted by format('%I.%I')
    out[name] = Number((await client.query<{n: string}>(`SELECT count(*) AS n FROM ${name}`)).rows[0].n)
  }
  return out
}

interface QueueRow {
  queue_name: string
  is_partitioned: boolean
  is_unlogged: boolean
  created_at: Date | null
  qtable: string
  atable: string
  member: boolean
}

/** The queues of a database (pgmq.meta) with their partition settings, sizes and last msg_id. */
export async function readQueues(client: pg.Client): Promise<{engine: 'extension' | 'bundled' | null; queues: QueueDefinition[]; excludeTables: {schema: string; name: string}[]}> {
  const {rows: eng} = await client.query<{ext: boolean; meta: boolean; partman: string | null}>(
    `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pgmq') AS ext,
            to_regclass('pgmq.meta') IS NOT NULL AS meta,
            (SELECT extnamespace::regnamespace::text FROM pg_catalog.pg_extension WHERE extname = 'pg_partman') AS partman`,
  )
  const engine = eng[0].ext ? 'extension' : eng[0].meta ? 'bundled' : null
  if (!eng[0].meta) return {engine, queues: [], excludeTables: []}
  const {rows} = await client.query<QueueRow>(
    `SELECT m.queue_name, m.is_partitioned, m.is_unlogged, m.created_at,
            lower('q_' || m.queue_name) AS qtable, lower('a_' || m.queue_name) AS atable,
            EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                    WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.deptype = 'e'
                      AND d.refclassid = 'pg_catalog.pg_extension'::regclass
                      AND d.objid = to_regclass(format('pgmq.%I', lower('q_' || m.queue_name)))) AS member
       FROM pgmq.meta m ORDER BY m.queue_name`,
  )
  const queues: QueueDefinition[] = []
  const excludeTables: {schema: string; name: string}[] = []
  for (const r of rows) {
    const q = `pgmq.${quote(r.qtable)}`
    const a = `pgmq.${quote(r.atable)}`
    const sizes = await client.query<{length: string; archived: string; max_q: string | null; max_a: string | null}>(
      `SELECT (SELECT count(*) FROM ${q}) AS length, (SELECT count(*) FROM ${a}) AS archived,
              (SELECT max(msg_id) FROM ${q}) AS max_q, (SELECT max(msg_id) FROM ${a}) AS max_a`,
    )
    // pg_sequences.last_value is null until the first nextval (and for readers without USAGE)
    const seq = await client.query<{v: string | null}>(
      `SELECT (SELECT s.last_value FROM pg_catalog.pg_sequences s
                WHERE format('%I.%I', s.schemaname, s.sequencename) = pg_get_serial_sequence($1, 'msg_id')) AS v`,
      [q],
    )
    let partitionInterval: string | null = null
    let retentionInterval: string | null = null
    if (r.is_partitioned && eng[0].partman) {
      const cfg = await client.query<{partition_interval: string; retention: string | null}>(
        `SELECT partition_interval, retention FROM ${quote(eng[0].partman)}.part_config WHERE parent_table = $1`,
        [`pgmq.${r.qtable}`],
      )
      partitionInterval = cfg.rows[0]?.partition_interval ?? null
      retentionInterval = cfg.rows[0]?.retention ?? null
    }
    const s = sizes.rows[0]
    const lastMsgId = Math.max(Number(s.max_q ?? 0), Number(s.max_a ?? 0), Number(seq.rows[0]?.v ?? 0))
    queues.push({
      name: r.queue_name,
      partitioned: r.is_partitioned,
      unlogged: r.is_unlogged,
      createdAt: r.created_at ? r.created_at.toISOString() : null,
      partitionInterval,
      retentionInterval,
      length: Number(s.length),
      archived: Number(s.archived),
      lastMsgId,
      carriedBy: r.member ? 'queue-file' : 'archive',
    })
    if (r.member) {
      // pg_dump would write the partitions of a member parent with an ATTACH to a table it does not
      // create, and pg_partman's template would collide with the one create_partitioned makes.
      const {rows: extra} = await client.query<{schema: string; name: string}>(
        `WITH RECURSIVE parts AS (
           SELECT i.inhrelid AS oid FROM pg_catalog.pg_inherits i WHERE i.inhparent IN (to_regclass($1), to_regclass($2))
           UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN parts p ON i.inhparent = p.oid)
         SELECT n.nspname AS schema, c.relname AS name FROM parts p JOIN pg_catalog.pg_class c ON c.oid = p.oid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p')
         ORDER BY 1, 2`,
        [q, a],
      )
      excludeTables.push(...extra)
    }
  }
  return {engine, queues, excludeTables}
}

/** Reads what the dump about to run in this snapshot will hold. */
export async function planDump(client: pg.Client): Promise<DumpPlan> {
  const {engine, queues, excludeTables} = await readQueues(client)
  const tables = await countTables(client)
  // rows of excluded partitions are counted through their root (a carried queue table)
  return {contents: {queueEngine: engine, tables, queues}, excludeTables}
}

/** pg_dump's pattern for exactly one table: quoted parts match literally. */
export function exactTablePattern(t: {schema: string; name: string}): string {
  return `${quote(t.schema)}.${quote(t.name)}`
}

function quote(name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}
