/**
 * The queue file `<db>.queues`: the rows of the queues pg_dump cannot carry (tables that are
 * members of the pgmq extension), copied in the dump's own snapshot.
 *
 * Format (UTF-8 text, one JSON document per line): a header line `#{"queue":…,"table":"q"|"a"}`
 * starts a table's rows; each following line is one row as `row_to_json`; the last line is
 * `#{"end":true,"rows":N}`, so a truncated file is told from a complete one.
 *
 * On restore each queue is recreated with pgmq's own functions (create, create_unlogged,
 * create_partitioned), its rows are loaded with their original msg_ids, and its msg_id sequence
 * is set past the highest id it had handed out.
 */
import {createInterface} from 'node:readline'
import type {Readable, Writable} from 'node:stream'
import type pg from 'pg'

import {CliError} from '../cli/errors.js'
import type {QueueDefinition} from './snapshot.js'

export const QUEUE_FILE_FORMAT = 1
const BATCH_ROWS = 2000
const FETCH_ROWS = 5000

/** File name of a database's queue file inside a backup. */
export const queueFileName = (database: string) => `${database}.queues`

const tableName = (queue: string, kind: 'q' | 'a') => `${kind}_${queue}`.toLowerCase()
const quote = (name: string) => `"${name.replaceAll('"', '""')}"`

function write(out: Writable, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const ok = out.write(text, (error) => (error ? reject(error) : undefined))
    if (ok) resolve()
    else out.once('drain', resolve)
  })
}

/** Writes the rows of the carried queues, read in the client's (snapshot) transaction. Returns the row count. */
export async function writeQueueRows(client: pg.Client, queues: QueueDefinition[], out: Writable): Promise<number> {
  let total = 0
  await write(out, `#${JSON.stringify({format: QUEUE_FILE_FORMAT})}\n`)
  for (const queue of queues.filter((q) => q.carriedBy === 'queue-file')) {
    for (const kind of ['q', 'a'] as const) {
      await write(out, `#${JSON.stringify({queue: queue.name, table: kind})}\n`)
      const cursor = `singularity_queue_rows`
      await client.query(`DECLARE ${cursor} NO SCROLL CURSOR FOR SELECT row_to_json(t)::text AS j FROM pgmq.${quote(tableName(queue.name, kind))} t`)
      try {
        for (;;) {
          const {rows} = await client.query<{j: string}>(`FETCH ${FETCH_ROWS} FROM ${cursor}`)
          if (rows.length === 0) break
          total += rows.length
          await write(out, rows.map((r) => r.j).join('\n') + '\n')
        }
      } finally {
        await client.query(`CLOSE ${cursor}`)
      }
    }
  }
  await write(out, `#${JSON.stringify({end: true, rows: total})}\n`)
  return total
}

/** pgmq's function that makes a queue like the one recorded. */
async function recreateQueue(client: pg.Client, q: QueueDefinition): Promise<void> {
  if (q.partitioned) {
    // The archive's data section restored pg_partman's configuration rows of the old tables; the
    // queue is set up afresh by create_partitioned, which inserts them again.
    const {rows} = await client.query<{schema: string | null}>("SELECT (SELECT extnamespace::regnamespace::text FROM pg_catalog.pg_extension WHERE extname = 'pg_partman') AS schema")
    if (rows[0].schema) {
      await client.query(`DELETE FROM ${quote(rows[0].schema)}.part_config WHERE parent_table = ANY($1::text[])`, [[`pgmq.${tableName(q.name, 'q')}`, `pgmq.${tableName(q.name, 'a')}`]])
    }
    await client.query('SELECT pgmq.create_partitioned($1, $2, $3)', [q.name, q.partitionInterval ?? '10000', q.retentionInterval ?? '100000'])
  } else if (q.unlogged) {
    await client.query('SELECT pgmq.create_unlogged($1)', [q.name])
  } else {
    await client.query('SELECT pgmq.create($1)', [q.name])
  }
  if (q.createdAt) await client.query('UPDATE pgmq.meta SET created_at = $2 WHERE queue_name = $1', [q.name, q.createdAt])
}

async function insertBatch(client: pg.Client, queue: string, kind: 'q' | 'a', lines: string[]): Promise<void> {
  const table = `pgmq.${quote(tableName(queue, kind))}`
  const {rows} = await client.query<{cols: string}>(
    `SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) AS cols FROM pg_catalog.pg_attribute
      WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`,
    [table],
  )
  const cols = rows[0].cols
  await client.query(`INSERT INTO ${table} (${cols}) OVERRIDING SYSTEM VALUE SELECT ${cols} FROM json_populate_recordset(NULL::${table}, $1::json)`, [`[${lines.join(',')}]`])
}

/**
 * Recreates the carried queues in a restored database and loads their rows from the queue file.
 * Runs in one transaction: a failure leaves no half-loaded queue.
 */
export async function restoreQueues(client: pg.Client, queues: QueueDefinition[], input: Readable, file: string): Promise<{queues: number; rows: number}> {
  const carried = queues.filter((q) => q.carriedBy === 'queue-file')
  await client.query('BEGIN')
  try {
    for (const q of carried) await recreateQueue(client, q)
    let section: {queue: string; table: 'q' | 'a'} | undefined
    let batch: string[] = []
    let rows = 0
    let ended: number | undefined
    const flush = async () => {
      if (section && batch.length > 0) await insertBatch(client, section.queue, section.table, batch)
      batch = []
    }
    for await (const line of createInterface({input, crlfDelay: Infinity})) {
      if (line === '') continue
      if (ended !== undefined) throw corrupt(file, 'data after the end marker')
      if (line.startsWith('#')) {
        await flush()
        const header = JSON.parse(line.slice(1)) as {queue?: string; table?: 'q' | 'a'; end?: boolean; rows?: number; format?: number}
        if (header.end) ended = header.rows ?? -1
        else if (header.queue !== undefined) {
          if (!carried.some((q) => q.name === header.queue)) throw corrupt(file, `rows of queue ${header.queue}, which the manifest does not list`)
          section = {queue: header.queue, table: header.table === 'a' ? 'a' : 'q'}
        }
        continue
      }
      if (!section) throw corrupt(file, 'a row before any queue header')
      batch.push(line)
      rows++
      if (batch.length >= BATCH_ROWS) await flush()
    }
    await flush()
    if (ended === undefined) throw corrupt(file, 'it ends before its end marker (truncated)')
    if (ended !== rows) throw corrupt(file, `it holds ${rows} rows, its end marker says ${ended}`)
    // The sequence continues above every id the queue had handed out, also those of deleted messages.
    for (const q of carried) {
      const qt = `pgmq.${quote(tableName(q.name, 'q'))}`
      const at = `pgmq.${quote(tableName(q.name, 'a'))}`
      await client.query(
        `SELECT setval(pg_get_serial_sequence($1, 'msg_id'), v, true)
           FROM (SELECT greatest($2::bigint, (SELECT max(msg_id) FROM ${qt}), (SELECT max(msg_id) FROM ${at})) AS v) s
          WHERE v > 0`,
        [qt, q.lastMsgId],
      )
    }
    await client.query('COMMIT')
    return {queues: carried.length, rows}
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {})
    throw error
  }
}

function corrupt(file: string, why: string): CliError {
  return new CliError(`${file} is damaged: ${why}`, {code: 'BACKUP_CORRUPT', hint: 'verify the backup and choose another'})
}
