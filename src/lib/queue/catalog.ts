import type pg from 'pg'

import {closestNames as closest, typoLimit} from '../cli/closest.js'
import {UsageError} from '../cli/errors.js'
import {validateName} from '../names.js'

/**
 * The queues of one database, read from pgmq.meta and pg_class. The same for the real pgmq
 * extension and our bundled engine: queue <name> is table pgmq.q_<name>, its archive pgmq.a_<name>
 * (lower-cased, as pgmq names them). Table names are quoted by the server (format('%I.%I')), so
 * names with hyphens or upper case are safe to splice into statements.
 */
export interface QueueRef {
  /** the queue name as recorded in pgmq.meta */
  name: string
  /** quoted qualified name of the message table, e.g. pgmq."q_agent-sessions" */
  table: string
  /** quoted qualified name of the archive table; null when it is missing */
  archive: string | null
  /** oids (for statistics look-ups) */
  tableOid: number
  archiveOid: number | null
  /** oid of the msg_id identity sequence (total sent); null when there is none */
  sequenceOid: number | null
  partitioned: boolean
  unlogged: boolean
}

export type QueueEngineKind = 'extension' | 'bundled'

export interface QueueCatalog {
  /** null when the database has no queue engine (no pgmq.meta) */
  engine: QueueEngineKind | null
  queues: QueueRef[]
}

/** Lists the queues of the database the client is connected to (sorted by name); one statement. */
export async function listQueues(client: pg.Client): Promise<QueueCatalog> {
  let rows: {
    name: string | null
    table: string
    archive: string | null
    table_oid: string
    archive_oid: string | null
    seq_oid: string | null
    partitioned: boolean
    unlogged: boolean
    ext: boolean
  }[]
  try {
    // One row even without queues (name null), to carry the engine.
    ;({rows} = await client.query(
      `SELECT x.*, EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pgmq') AS ext
         FROM (SELECT 1) one
         LEFT JOIN (
           SELECT m.queue_name::text AS name,
                  format('%I.%I', 'pgmq', q.relname) AS table,
                  CASE WHEN a.oid IS NOT NULL THEN format('%I.%I', 'pgmq', a.relname) END AS archive,
                  q.oid::bigint AS table_oid,
                  a.oid::bigint AS archive_oid,
                  (SELECT d.objid::bigint
                     FROM pg_catalog.pg_depend d
                     JOIN pg_catalog.pg_attribute att ON att.attrelid = q.oid AND att.attname = 'msg_id' AND att.attnum = d.refobjsubid
                    WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.refclassid = 'pg_catalog.pg_class'::regclass
                      AND d.refobjid = q.oid AND d.deptype IN ('i', 'a')
                      AND EXISTS (SELECT 1 FROM pg_catalog.pg_class sq WHERE sq.oid = d.objid AND sq.relkind = 'S')
                    LIMIT 1) AS seq_oid, -- the msg_id identity (or serial) sequence
                  m.is_partitioned AS partitioned,
                  m.is_unlogged AS unlogged
             FROM pgmq.meta m
             JOIN pg_catalog.pg_class q
               ON q.relnamespace = 'pgmq'::regnamespace AND q.relname = lower('q_' || m.queue_name) AND q.relkind IN ('r', 'p')
             LEFT JOIN pg_catalog.pg_class a
               ON a.relnamespace = 'pgmq'::regnamespace AND a.relname = lower('a_' || m.queue_name) AND a.relkind IN ('r', 'p')
         ) x ON true
        ORDER BY x.name`,
    ))
  } catch (error) {
    // no schema pgmq / no pgmq.meta: no queue engine in this database
    if ((error as {code?: string}).code === '42P01' || (error as {code?: string}).code === '3F000') return {engine: null, queues: []}
    throw error
  }
  const engine: QueueEngineKind = rows[0]?.ext ? 'extension' : 'bundled'
  return {
    engine,
    queues: rows
      .filter((r) => r.name !== null)
      .map((r) => ({
        name: r.name!,
        table: r.table,
        archive: r.archive,
        tableOid: Number(r.table_oid),
        archiveOid: r.archive_oid === null ? null : Number(r.archive_oid),
        sequenceOid: r.seq_oid === null ? null : Number(r.seq_oid),
        partitioned: r.partitioned,
        unlogged: r.unlogged,
      })),
  }
}

/** The queue of that name (case-insensitive, as pgmq's table names are), if it exists. */
export function findQueue(queues: QueueRef[], name: string): QueueRef | undefined {
  return queues.find((q) => q.name === name) ?? queues.find((q) => q.name.toLowerCase() === name.toLowerCase())
}

const GLOB = /^[A-Za-z0-9_*?-]{1,100}$/

/** A queue-name glob (* any run, ? one character; case-insensitive) as a RegExp; exit 2 when malformed. */
export function globToRegExp(pattern: string): RegExp {
  if (!GLOB.test(pattern)) {
    throw new UsageError(`invalid --pattern ${JSON.stringify(pattern.length > 60 ? `${pattern.slice(0, 60)}…` : pattern)}`, {
      hint: 'a pattern is letters, digits, _ and -, with * (any run) and ? (one character), e.g. llm_* or agent-*',
      code: 'BAD_PATTERN',
    })
  }
  const body = pattern.replaceAll('-', '\\-').replaceAll('*', '.*').replaceAll('?', '.')
  return new RegExp(`^${body}$`, 'i')
}

/** Queue names close to what was typed, within half its length in edits. */
export function closestNames(name: string, candidates: string[], max = 3): string[] {
  return closest(name, candidates, {count: max, maxDistance: typoLimit(name)})
}

/**
 * validateName('queue', …) plus pgmq's own rule that a name must not contain `--` (pgmq raises
 * "queue name contains invalid characters"): exit 2 with one line before any SQL.
 */
export function validateQueueName(name: string): string {
  validateName('queue', name)
  if (name.includes('--')) {
    throw new UsageError(`invalid queue name ${JSON.stringify(name)}: it contains --`, {
      hint: 'a queue name is letters, digits, _ and - (no --), at most 47 characters',
      code: 'BAD_NAME',
    })
  }
  return name
}
