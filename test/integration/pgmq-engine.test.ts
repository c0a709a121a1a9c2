import {readdirSync, readFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'
import type pg from 'pg'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {connect, createTestDatabase, installComponents, withClient} from '../helpers/db.js'

/**
 * The queue engine against its contract, shared docs pgmq-api.md: every function and overload of
 * the pgmq 1.5 SQL API, on a real PostgreSQL, on both engines: the bundled SQL (sql/pgmq) and the
 * pgmq extension (the test prerequisites install a fixture built from the same SQL, whose queue
 * tables are extension members as in the real pgmq).
 */

const SQL_DIR = fileURLToPath(new URL('../../sql/pgmq/', import.meta.url))

/** Both engines: the bundled SQL, and the pgmq extension (the test fixture, or a real pgmq where installed). */
const ENGINES = ['bundled', 'extension'] as const
type Engine = (typeof ENGINES)[number]

let db: {name: string; url: string}
let c: pg.Client

type Row = Record<string, unknown>

async function rows<T extends Row = Row>(sql: string, params: unknown[] = [], client: pg.Client = c): Promise<T[]> {
  return (await client.query<T>(sql, params)).rows
}

async function one<T extends Row = Row>(sql: string, params: unknown[] = [], client: pg.Client = c): Promise<T> {
  const result = await rows<T>(sql, params, client)
  expect(result).toHaveLength(1)
  return result[0]
}

/** The bigint ids of the first column of a query, as numbers. */
async function ids(sql: string, params: unknown[] = [], client: pg.Client = c): Promise<number[]> {
  const result = await client.query({text: sql, values: params, rowMode: 'array'})
  return result.rows.map((r: unknown[]) => Number(r[0]))
}

type Message = {
  msg_id: string
  read_ct: number
  enqueued_at: Date
  vt: Date
  message: unknown
  headers: unknown
}

/** A queue name of this test's own. */
let counter = 0
function queueName(base: string): string {
  counter += 1
  return `${base}-${counter}`
}

async function createQueue(base: string): Promise<string> {
  const name = queueName(base)
  await c.query('SELECT pgmq.create($1)', [name])
  return name
}

async function sendMany(q: string, n: number): Promise<number[]> {
  return ids('SELECT * FROM pgmq.send_batch($1, array(SELECT jsonb_build_object($$i$$, g) FROM generate_series(1, $2::int) g))', [q, n])
}

/** Seconds between vt and the server's clock now (positive: still invisible). */
async function secondsUntilVisible(q: string, msgId: number): Promise<number> {
  const r = await one<{s: number}>(
    `SELECT extract(epoch FROM vt - clock_timestamp())::float8 AS s FROM pgmq.${'"q_' + q.toLowerCase() + '"'} WHERE msg_id = $1`,
    [msgId],
  )
  return r.s
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The queue engine a test database gets: the bundled SQL through the migration runner, or the pgmq extension. */
async function installEngine(url: string, engine: Engine): Promise<void> {
  if (engine === 'bundled') {
    await installComponents(url, ['pgmq'])
    return
  }
  const available = await withClient(url, (client) => client.query("SELECT 1 FROM pg_available_extensions WHERE name = 'pgmq'"))
  if (available.rowCount === 0) throw new Error('no pgmq extension on the test server: the test prerequisites install the fixture (bash .ci/install-pgmq-fixture.sh)')
  await withClient(url, (client) => client.query('CREATE EXTENSION pgmq'))
}

/** Relations of schema pgmq that are members of extension pgmq (none with the bundled engine). */
async function members(): Promise<string[]> {
  return (
    await rows<{name: string}>(
      `SELECT k.relname AS name FROM pg_depend d JOIN pg_class k ON k.oid = d.objid
        WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'e' AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pgmq')
        ORDER BY 1`,
    )
  ).map((r) => r.name)
}

describe.each(ENGINES)('the pgmq API on the %s engine', (engine) => {
  it('runs on the engine it names', async () => {
    const ext = await one<{ext: boolean}>("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pgmq') AS ext")
    expect(ext.ext).toBe(engine === 'extension')
  })

  it('like the real pgmq, the extension makes a queue\'s tables and sequence members; the bundled engine has none', async () => {
    const q = await createQueue('members')
    const expected = engine === 'extension' ? [`a_${q}`, 'meta', `q_${q}`, `q_${q}_msg_id_seq`] : []
    expect((await members()).filter((m) => m === 'meta' || m.includes(q))).toEqual(expected)
    expect((await one<{ok: boolean}>('SELECT pgmq.drop_queue($1) AS ok', [q])).ok).toBe(true)
    expect((await members()).filter((m) => m.includes(q))).toEqual([])
  })

  beforeAll(async () => {
    db = await createTestDatabase(`pgmq_engine_${engine}`)
    await installEngine(db.url, engine)
    c = await connect(db.url)
  })

  afterAll(async () => {
    await c?.end()
  })

  describe('installation', () => {
    const SIGNATURES = [
      'pgmq.create(text)',
      'pgmq.create_unlogged(text)',
      'pgmq.create_partitioned(text,text,text)',
      'pgmq.send(text,jsonb)',
      'pgmq.send(text,jsonb,jsonb)',
      'pgmq.send(text,jsonb,integer)',
      'pgmq.send(text,jsonb,timestamptz)',
      'pgmq.send(text,jsonb,jsonb,integer)',
      'pgmq.send(text,jsonb,jsonb,timestamptz)',
      'pgmq.send_batch(text,jsonb[])',
      'pgmq.send_batch(text,jsonb[],jsonb[])',
      'pgmq.send_batch(text,jsonb[],integer)',
      'pgmq.send_batch(text,jsonb[],timestamptz)',
      'pgmq.send_batch(text,jsonb[],jsonb[],integer)',
      'pgmq.send_batch(text,jsonb[],jsonb[],timestamptz)',
      'pgmq.read(text,integer,integer,jsonb)',
      'pgmq.read_with_poll(text,integer,integer,integer,integer,jsonb)',
      'pgmq.pop(text)',
      'pgmq.archive(text,bigint)',
      'pgmq.archive(text,bigint[])',
      'pgmq.delete(text,bigint)',
      'pgmq.delete(text,bigint[])',
      'pgmq.set_vt(text,bigint,integer)',
      'pgmq.purge_queue(text)',
      'pgmq.drop_queue(text)',
      'pgmq.detach_archive(text)',
      'pgmq.metrics(text)',
      'pgmq.metrics_all()',
      'pgmq.list_queues()',
    ]

    it('has every function and overload of the contract, with the documented result types', async () => {
      const found = await rows<{sig: string; result: string | null}>(
        `SELECT s AS sig, pg_get_function_result(to_regprocedure(s)) AS result FROM unnest($1::text[]) s`,
        [SIGNATURES],
      )
      const missing = found.filter((f) => f.result === null).map((f) => f.sig)
      expect(missing).toEqual([])
      const result = Object.fromEntries(found.map((f) => [f.sig, f.result]))
      expect(result['pgmq.send(text,jsonb)']).toBe('SETOF bigint')
      expect(result['pgmq.send_batch(text,jsonb[],jsonb[],timestamptz)']).toBe('SETOF bigint')
      expect(result['pgmq.read(text,integer,integer,jsonb)']).toBe('SETOF pgmq.message_record')
      expect(result['pgmq.read_with_poll(text,integer,integer,integer,integer,jsonb)']).toBe('SETOF pgmq.message_record')
      expect(result['pgmq.pop(text)']).toBe('SETOF pgmq.message_record')
      expect(result['pgmq.set_vt(text,bigint,integer)']).toBe('SETOF pgmq.message_record')
      expect(result['pgmq.archive(text,bigint)']).toBe('boolean')
      expect(result['pgmq.archive(text,bigint[])']).toBe('SETOF bigint')
      expect(result['pgmq.delete(text,bigint)']).toBe('boolean')
      expect(result['pgmq.delete(text,bigint[])']).toBe('SETOF bigint')
      expect(result['pgmq.purge_queue(text)']).toBe('bigint')
      expect(result['pgmq.drop_queue(text)']).toBe('boolean')
      expect(result['pgmq.metrics(text)']).toBe('pgmq.metrics_result')
      expect(result['pgmq.metrics_all()']).toBe('SETOF pgmq.metrics_result')
      expect(result['pgmq.list_queues()']).toBe('SETOF pgmq.queue_record')
      expect(result['pgmq.create(text)']).toBe('void')
    })

    it('has the composite types and meta table with the documented columns', async () => {
      const cols = await rows<{rel: string; cols: string}>(
        `SELECT c.relname AS rel, string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum) AS cols
         FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         WHERE c.relnamespace = 'pgmq'::regnamespace AND c.relname IN ('meta', 'message_record', 'queue_record', 'metrics_result')
         GROUP BY c.relname ORDER BY c.relname`,
      )
      expect(Object.fromEntries(cols.map((r) => [r.rel, r.cols]))).toEqual({
        message_record: 'msg_id bigint, read_ct integer, enqueued_at timestamp with time zone, vt timestamp with time zone, message jsonb, headers jsonb',
        meta: 'queue_name character varying, is_partitioned boolean, is_unlogged boolean, created_at timestamp with time zone',
        metrics_result:
          'queue_name text, queue_length bigint, newest_msg_age_sec integer, oldest_msg_age_sec integer, total_messages bigint, scrape_time timestamp with time zone, queue_visible_length bigint',
        queue_record: 'queue_name character varying, is_partitioned boolean, is_unlogged boolean, created_at timestamp with time zone',
      })
    })

    it('every function is SECURITY INVOKER and has a COMMENT', async () => {
      const fns = await rows<{fn: string; secdef: boolean; comment: string | null}>(
        `SELECT p.oid::regprocedure::text AS fn, p.prosecdef AS secdef, obj_description(p.oid, 'pg_proc') AS comment
         FROM pg_proc p WHERE p.pronamespace = 'pgmq'::regnamespace`,
      )
      expect(fns.length).toBeGreaterThanOrEqual(29)
      expect(fns.filter((f) => f.secdef).map((f) => f.fn)).toEqual([])
      expect(fns.filter((f) => !f.comment).map((f) => f.fn)).toEqual([])
    })

    it('procedure files re-apply cleanly (idempotent, no BEGIN/COMMIT) and queues survive it', async () => {
      const q = await createQueue('reapply')
      await c.query(`SELECT pgmq.send($1, '{"keep":1}')`, [q])
      const files = readdirSync(`${SQL_DIR}procedures`).filter((f) => f.endsWith('.sql')).sort()
      expect(files.length).toBeGreaterThan(0)
      for (const file of [...files, ...files]) {
        const sql = readFileSync(`${SQL_DIR}procedures/${file}`, 'utf8')
        expect(sql).not.toMatch(/^\s*(BEGIN|COMMIT|ROLLBACK|START\s+TRANSACTION)\s*;/im)
        await c.query(sql)
      }
      expect(readFileSync(`${SQL_DIR}001_engine.sql`, 'utf8')).not.toMatch(/^\s*(BEGIN|COMMIT|ROLLBACK)\s*;/im)
      expect((await one<{n: number}>('SELECT queue_length::int AS n FROM pgmq.metrics($1)', [q])).n).toBe(1)
      // the runner itself: a second install changes nothing and does not fail (with the extension it skips sql/pgmq)
      await installComponents(db.url, ['pgmq'])
      expect((await one<{n: number}>('SELECT queue_length::int AS n FROM pgmq.metrics($1)', [q])).n).toBe(1)
    })
  })

  describe('create, create_unlogged, create_partitioned', () => {
    it('create makes pgmq.q_<name> and pgmq.a_<name> with the documented columns, indexes and a meta row', async () => {
      await c.query("SELECT pgmq.create('agent-sessions')")
      const tables = await rows<{rel: string; cols: string}>(
        `SELECT c.relname AS rel, string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                  || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
                  || CASE WHEN a.attidentity = 'a' THEN ' identity' ELSE '' END, ', ' ORDER BY a.attnum) AS cols
         FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         WHERE c.relnamespace = 'pgmq'::regnamespace AND c.relname IN ('q_agent-sessions', 'a_agent-sessions')
         GROUP BY c.relname ORDER BY c.relname`,
      )
      expect(tables).toEqual([
        {
          rel: 'a_agent-sessions',
          cols: 'msg_id bigint not null, read_ct integer not null, enqueued_at timestamp with time zone not null, archived_at timestamp with time zone not null, vt timestamp with time zone not null, message jsonb, headers jsonb',
        },
        {
          rel: 'q_agent-sessions',
          cols: 'msg_id bigint not null identity, read_ct integer not null, enqueued_at timestamp with time zone not null, vt timestamp with time zone not null, message jsonb, headers jsonb',
        },
      ])
      const indexes = await rows<{def: string}>(
        `SELECT indexdef AS def FROM pg_indexes WHERE schemaname = 'pgmq' AND tablename IN ('q_agent-sessions', 'a_agent-sessions') ORDER BY indexdef`,
      )
      const defs = indexes.map((i) => i.def).join('\n')
      expect(defs).toMatch(/UNIQUE INDEX .* ON pgmq\."q_agent-sessions" USING btree \(msg_id\)/)
      expect(defs).toMatch(/INDEX .* ON pgmq\."q_agent-sessions" USING btree \(vt\)/)
      expect(defs).toMatch(/UNIQUE INDEX .* ON pgmq\."a_agent-sessions" USING btree \(msg_id\)/)
      expect(defs).toMatch(/INDEX .* ON pgmq\."a_agent-sessions" USING btree \(archived_at\)/)
      const meta = await one<{is_partitioned: boolean; is_unlogged: boolean}>(
        "SELECT is_partitioned, is_unlogged FROM pgmq.meta WHERE queue_name = 'agent-sessions'",
      )
      expect(meta).toEqual({is_partitioned: false, is_unlogged: false})
    })

    it('create is idempotent: a second call is no error and changes nothing', async () => {
      const q = await createQueue('idem')
      const [id] = await ids(`SELECT * FROM pgmq.send($1, '{"a":1}')`, [q])
      await c.query('SELECT pgmq.create($1)', [q])
      await c.query('SELECT pgmq.create($1)', [q])
      expect((await one<{n: number}>('SELECT count(*)::int AS n FROM pgmq.meta WHERE queue_name = $1', [q])).n).toBe(1)
      expect(await ids(`SELECT * FROM pgmq.send($1, '{"a":2}')`, [q])).toEqual([id + 1])
    })

    it('concurrent creates of one queue are serialised: both succeed, one queue', async () => {
      const q = queueName('race')
      const other = await connect(db.url)
      try {
        await c.query('BEGIN')
        await other.query('BEGIN')
        await c.query('SELECT pgmq.create($1)', [q])
        // blocks on the per-queue advisory lock until the first transaction commits
        const second = other.query('SELECT pgmq.create($1)', [q])
        await sleep(200)
        await c.query('COMMIT')
        await second
        await other.query('COMMIT')
      } finally {
        await c.query('ROLLBACK').catch(() => {})
        await other.query('ROLLBACK').catch(() => {})
        await other.end()
      }
      expect((await one<{n: number}>('SELECT count(*)::int AS n FROM pgmq.meta WHERE queue_name = $1', [q])).n).toBe(1)
      const locks = await c.query("SELECT 1 FROM pg_proc WHERE proname = 'acquire_queue_lock' AND prosrc LIKE '%pg_advisory_xact_lock%'")
      expect(locks.rowCount).toBe(1)
    })

    it('create_unlogged makes an UNLOGGED queue table and records is_unlogged', async () => {
      const q = queueName('unlogged')
      await c.query('SELECT pgmq.create_unlogged($1)', [q])
      const rel = await one<{p: string}>('SELECT relpersistence AS p FROM pg_class WHERE oid = to_regclass(format($$pgmq.%I$$, $1::text))', [`q_${q}`])
      expect(rel.p).toBe('u')
      const meta = await one<{is_unlogged: boolean}>('SELECT is_unlogged FROM pgmq.meta WHERE queue_name = $1', [q])
      expect(meta.is_unlogged).toBe(true)
      expect(await ids(`SELECT * FROM pgmq.send($1, '{"u":1}')`, [q])).toEqual([1])
    })

    it('create_partitioned without pg_partman raises a clear error and creates nothing', async () => {
      const installed = await c.query("SELECT 1 FROM pg_extension WHERE extname = 'pg_partman'")
      expect(installed.rowCount).toBe(0)
      await expect(c.query("SELECT pgmq.create_partitioned('parted')")).rejects.toMatchObject({
        message: 'pg_partman is required for partitioned queues',
      })
      expect((await c.query("SELECT 1 FROM pgmq.meta WHERE queue_name = 'parted'")).rowCount).toBe(0)
      expect((await one<{r: string | null}>("SELECT to_regclass('pgmq.q_parted')::text AS r")).r).toBeNull()
    })

    it('create_partitioned with pg_partman partitions by msg_id (numeric) or enqueued_at (time)', async (ctx) => {
      const available = await c.query("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_partman'")
      if (available.rowCount === 0) ctx.skip()
      const pdb = await createTestDatabase(`pgmq_partman_${engine}`)
      await installEngine(pdb.url, engine)
      const p = await connect(pdb.url)
      try {
        await p.query('CREATE SCHEMA partman')
        await p.query('CREATE EXTENSION pg_partman SCHEMA partman')
        await p.query("SELECT pgmq.create_partitioned('by-id')")
        await p.query("SELECT pgmq.create_partitioned('by-id')")
        await p.query("SELECT pgmq.create_partitioned('by_time', '1 day', '7 days')")
        const keys = await rows<{rel: string; key: string}>(
          `SELECT c.relname AS rel, pg_get_partkeydef(c.oid) AS key FROM pg_class c
           WHERE c.relnamespace = 'pgmq'::regnamespace AND c.relkind = 'p' ORDER BY 1`,
          [],
          p,
        )
        expect(keys).toEqual([
          {rel: 'a_by-id', key: 'RANGE (msg_id)'},
          {rel: 'a_by_time', key: 'RANGE (archived_at)'},
          {rel: 'q_by-id', key: 'RANGE (msg_id)'},
          {rel: 'q_by_time', key: 'RANGE (enqueued_at)'},
        ])
        const queues = await rows('SELECT queue_name, is_partitioned FROM pgmq.list_queues()', [], p)
        expect(queues).toEqual([
          {queue_name: 'by-id', is_partitioned: true},
          {queue_name: 'by_time', is_partitioned: true},
        ])
        expect(await ids(`SELECT * FROM pgmq.send_batch('by-id', ARRAY['{"a":1}', '{"a":2}']::jsonb[])`, [], p)).toEqual([1, 2])
        expect(await ids("SELECT msg_id FROM pgmq.read('by-id', 30, 5)", [], p)).toEqual([1, 2])
        expect((await one<{ok: boolean}>("SELECT pgmq.archive('by-id', 1::bigint) AS ok", [], p)).ok).toBe(true)
        expect(await ids(`SELECT * FROM pgmq.send('by_time', '{"t":1}')`, [], p)).toEqual([1])
        expect(await ids("SELECT msg_id FROM pgmq.pop('by_time')", [], p)).toEqual([1])
        const m = await one<{len: number; total: number}>("SELECT queue_length::int AS len, total_messages::int AS total FROM pgmq.metrics('by-id')", [], p)
        expect(m).toEqual({len: 1, total: 2})
        expect((await one<{ok: boolean}>("SELECT pgmq.drop_queue('by-id') AS ok", [], p)).ok).toBe(true)
        expect((await one<{ok: boolean}>("SELECT pgmq.drop_queue('by_time') AS ok", [], p)).ok).toBe(true)
        expect((await p.query('SELECT 1 FROM partman.part_config')).rowCount).toBe(0)
      } finally {
        await p.end()
      }
    })
  })

  describe('send and send_batch', () => {
    it('send: the six overloads return increasing ids and set vt / headers as documented', async () => {
      const q = await createQueue('send')
      const at = new Date(Date.now() + 3_600_000)
      const sent = [
        ...(await ids(`SELECT * FROM pgmq.send($1, '{"n":1}'::jsonb)`, [q])),
        ...(await ids(`SELECT * FROM pgmq.send($1, '{"n":2}'::jsonb, '{"h":2}'::jsonb)`, [q])),
        ...(await ids(`SELECT * FROM pgmq.send($1, '{"n":3}'::jsonb, 30)`, [q])),
        ...(await ids(`SELECT * FROM pgmq.send($1, '{"n":4}'::jsonb, $2::timestamptz)`, [q, at])),
        ...(await ids(`SELECT * FROM pgmq.send($1, '{"n":5}'::jsonb, '{"h":5}'::jsonb, 45)`, [q])),
        ...(await ids(`SELECT * FROM pgmq.send($1, '{"n":6}'::jsonb, '{"h":6}'::jsonb, $2::timestamptz)`, [q, at])),
      ]
      expect(sent).toEqual([1, 2, 3, 4, 5, 6])
      const stored = await rows<{id: number; delay: number; vt: Date; message: unknown; headers: unknown; read_ct: number}>(
        `SELECT msg_id::int AS id, extract(epoch FROM vt - enqueued_at)::float8 AS delay, vt, message, headers, read_ct
         FROM pgmq.${'"q_' + q + '"'} ORDER BY msg_id`,
      )
      expect(stored.map((s) => s.message)).toEqual([1, 2, 3, 4, 5, 6].map((n) => ({n})))
      expect(stored.map((s) => s.headers)).toEqual([null, {h: 2}, null, null, {h: 5}, {h: 6}])
      expect(stored.map((s) => s.read_ct)).toEqual([0, 0, 0, 0, 0, 0])
      // vt = now() + delay seconds (enqueued_at is now() of the same statement), or the given time
      expect(stored[0].delay).toBe(0)
      expect(stored[1].delay).toBe(0)
      expect(stored[2].delay).toBe(30)
      expect(stored[4].delay).toBe(45)
      expect(stored[3].vt.getTime()).toBe(at.getTime())
      expect(stored[5].vt.getTime()).toBe(at.getTime())
      // only the undelayed ones are readable
      expect(await ids('SELECT msg_id FROM pgmq.read($1, 30, 10)', [q])).toEqual([1, 2])
    })

    it('send_batch: the six overloads return one id per message, in input order', async () => {
      const q = await createQueue('batch')
      const at = new Date(Date.now() + 86_400_000)
      const msgs = (from: number, n: number) => Array.from({length: n}, (_, i) => JSON.stringify({n: from + i}))
      const hdrs = (from: number, n: number) => Array.from({length: n}, (_, i) => JSON.stringify({h: from + i}))
      expect(await ids('SELECT * FROM pgmq.send_batch($1, $2::jsonb[])', [q, msgs(1, 3)])).toEqual([1, 2, 3])
      expect(await ids('SELECT * FROM pgmq.send_batch($1, $2::jsonb[], $3::jsonb[])', [q, msgs(4, 2), hdrs(4, 2)])).toEqual([4, 5])
      expect(await ids('SELECT * FROM pgmq.send_batch($1, $2::jsonb[], 20)', [q, msgs(6, 2)])).toEqual([6, 7])
      expect(await ids('SELECT * FROM pgmq.send_batch($1, $2::jsonb[], $3::timestamptz)', [q, msgs(8, 1), at])).toEqual([8])
      expect(await ids('SELECT * FROM pgmq.send_batch($1, $2::jsonb[], $3::jsonb[], 25)', [q, msgs(9, 2), hdrs(9, 2)])).toEqual([9, 10])
      expect(await ids('SELECT * FROM pgmq.send_batch($1, $2::jsonb[], $3::jsonb[], $4::timestamptz)', [q, msgs(11, 1), hdrs(11, 1), at])).toEqual([11])
      const stored = await rows<{id: number; delay: number; vt: Date; message: {n: number}; headers: {h: number} | null}>(
        `SELECT msg_id::int AS id, extract(epoch FROM vt - enqueued_at)::float8 AS delay, vt, message, headers
         FROM pgmq.${'"q_' + q + '"'} ORDER BY msg_id`,
      )
      // message n went to msg_id n: ids follow input order
      expect(stored.map((s) => [s.id, s.message.n])).toEqual(Array.from({length: 11}, (_, i) => [i + 1, i + 1]))
      expect(stored.map((s) => s.headers?.h ?? null)).toEqual([null, null, null, 4, 5, null, null, null, 9, 10, 11])
      expect(stored.map((s) => s.delay).slice(0, 7)).toEqual([0, 0, 0, 0, 0, 20, 20])
      expect([stored[8].delay, stored[9].delay]).toEqual([25, 25])
      expect([stored[7].vt.getTime(), stored[10].vt.getTime()]).toEqual([at.getTime(), at.getTime()])
    })

    it('send_batch keeps input order for a large batch', async () => {
      const q = await createQueue('bigbatch')
      const n = 500
      const sent = await ids(
        'SELECT * FROM pgmq.send_batch($1, array(SELECT jsonb_build_object($$i$$, g) FROM generate_series(1, $2::int) g ORDER BY g))',
        [q, n],
      )
      expect(sent).toEqual(Array.from({length: n}, (_, i) => i + 1))
      const mismatched = await one<{n: number}>(`SELECT count(*)::int AS n FROM pgmq.${'"q_' + q + '"'} WHERE (message->>'i')::bigint <> msg_id`)
      expect(mismatched.n).toBe(0)
    })

    it('send_batch with an empty array sends nothing; headers of another length are refused', async () => {
      const q = await createQueue('batch-edge')
      expect(await ids("SELECT * FROM pgmq.send_batch($1, '{}'::jsonb[])", [q])).toEqual([])
      await expect(c.query(`SELECT * FROM pgmq.send_batch($1, ARRAY['{}']::jsonb[], ARRAY['{}', '{}']::jsonb[])`, [q])).rejects.toThrow(
        /headers must have one element per message/,
      )
      expect((await one<{n: number}>('SELECT queue_length::int AS n FROM pgmq.metrics($1)', [q])).n).toBe(0)
    })
  })

  describe('read, read_with_poll, pop, set_vt', () => {
    it('read returns up to qty visible messages, oldest first, and hides them for vt seconds', async () => {
      const q = await createQueue('read')
      await sendMany(q, 5)
      const first = await rows<Message>('SELECT * FROM pgmq.read($1, 30, 3)', [q])
      expect(first.map((m) => Number(m.msg_id))).toEqual([1, 2, 3])
      expect(first.map((m) => m.read_ct)).toEqual([1, 1, 1])
      expect(first.map((m) => m.message)).toEqual([{i: 1}, {i: 2}, {i: 3}])
      const until = await secondsUntilVisible(q, 1)
      expect(until).toBeGreaterThan(28)
      expect(until).toBeLessThanOrEqual(30)
      // the read ones are invisible: the next read gets the rest, then nothing
      expect(await ids('SELECT msg_id FROM pgmq.read($1, 30, 10)', [q])).toEqual([4, 5])
      expect(await ids('SELECT msg_id FROM pgmq.read($1, 30, 10)', [q])).toEqual([])
    })

    it('a message becomes visible again when its visibility timeout expires, with read_ct + 1', async () => {
      const q = await createQueue('expire')
      await sendMany(q, 2)
      expect(await ids('SELECT msg_id FROM pgmq.read($1, 1, 1)', [q])).toEqual([1])
      expect(await ids('SELECT msg_id FROM pgmq.read($1, 0, 5)', [q])).toEqual([2])
      // vt = 0: visible again at once
      const again = await rows<Message>('SELECT * FROM pgmq.read($1, 60, 5)', [q])
      expect(again.map((m) => [Number(m.msg_id), m.read_ct])).toEqual([[2, 2]])
      await sleep(1200)
      const expired = await rows<Message>('SELECT * FROM pgmq.read($1, 60, 5)', [q])
      expect(expired.map((m) => [Number(m.msg_id), m.read_ct])).toEqual([[1, 2]])
    })

    it('read honours conditional (message @> conditional); {} means no filter', async () => {
      const q = await createQueue('cond')
      await c.query(`SELECT * FROM pgmq.send_batch($1, ARRAY['{"kind":"a","n":1}', '{"kind":"b","n":2}', '{"kind":"a","n":3}', '[1,2]']::jsonb[])`, [q])
      expect(await ids(`SELECT msg_id FROM pgmq.read($1, 30, 10, '{"kind":"a"}')`, [q])).toEqual([1, 3])
      expect(await ids(`SELECT msg_id FROM pgmq.read($1, 30, 10, '{"kind":"zzz"}')`, [q])).toEqual([])
      expect(await ids(`SELECT msg_id FROM pgmq.read($1, 30, 10, '{}')`, [q])).toEqual([2, 4])
    })

    it('two sessions reading at once never get the same message (FOR UPDATE SKIP LOCKED)', async () => {
      const q = await createQueue('skip-locked')
      await sendMany(q, 10)
      const other = await connect(db.url)
      try {
        await c.query('BEGIN')
        const a = await ids('SELECT msg_id FROM pgmq.read($1, 30, 3)', [q])
        // the second session neither waits for the first one's row locks nor returns its messages
        await other.query("SET lock_timeout = '2s'")
        const b = await ids('SELECT msg_id FROM pgmq.read($1, 30, 3)', [q], other)
        expect(a).toEqual([1, 2, 3])
        expect(b).toEqual([4, 5, 6])
        // the first session rolls back: its messages are visible again, not lost
        await c.query('ROLLBACK')
        expect(await ids('SELECT msg_id FROM pgmq.read($1, 30, 10)', [q], other)).toEqual([1, 2, 3, 7, 8, 9, 10])
      } finally {
        await c.query('ROLLBACK').catch(() => {})
        await other.end()
      }
    })

    it('two consumers draining one queue concurrently process every message exactly once', async () => {
      const q = await createQueue('drain')
      const n = 300
      await sendMany(q, n)
      const consumers = await Promise.all([connect(db.url), connect(db.url)])
      try {
        const drain = async (client: pg.Client): Promise<number[]> => {
          const got: number[] = []
          for (;;) {
            await client.query('BEGIN')
            const batch = await ids('SELECT msg_id FROM pgmq.read($1, 60, 4)', [q], client)
            if (batch.length > 0) {
              const archived = await ids('SELECT * FROM pgmq.archive($1, $2::bigint[])', [q, batch], client)
              expect(archived).toEqual(batch)
            }
            await client.query('COMMIT')
            if (batch.length === 0) return got
            got.push(...batch)
          }
        }
        const [x, y] = await Promise.all(consumers.map((cl) => drain(cl)))
        const all = [...x, ...y].sort((p, r) => p - r)
        expect(all).toEqual(Array.from({length: n}, (_, i) => i + 1))
        expect(new Set(x).size + new Set(y).size).toBe(n)
      } finally {
        await Promise.all(consumers.map((cl) => cl.end()))
      }
      const m = await one<{len: number; total: number}>('SELECT queue_length::int AS len, total_messages::int AS total FROM pgmq.metrics($1)', [q])
      expect(m).toEqual({len: 0, total: n})
      expect((await one<{n: number}>(`SELECT count(*)::int AS n FROM pgmq.${'"a_' + q + '"'}`)).n).toBe(n)
    })

    it('read_with_poll waits for a message sent meanwhile, and gives up after max_poll_seconds', async () => {
      const q = await createQueue('poll')
      // nothing arrives: returns empty after about max_poll_seconds
      let started = Date.now()
      expect(await ids('SELECT msg_id FROM pgmq.read_with_poll($1, 30, 5, 1, 50)', [q])).toEqual([])
      expect(Date.now() - started).toBeGreaterThanOrEqual(900)
      // a message sent by another session while polling is returned
      const sender = await connect(db.url)
      try {
        started = Date.now()
        const polled = ids('SELECT msg_id FROM pgmq.read_with_poll($1, 30, 5, 10, 50)', [q])
        await sleep(400)
        await sender.query(`SELECT pgmq.send($1, '{"late":true}')`, [q])
        expect(await polled).toEqual([1])
        expect(Date.now() - started).toBeLessThan(9000)
      } finally {
        await sender.end()
      }
      // a visible message: returned at once, with the defaults (5 s, 100 ms, no filter)
      await c.query(`SELECT pgmq.send_batch($1, ARRAY['{"k":"x"}', '{"k":"y"}']::jsonb[])`, [q])
      const rowsNow = await rows<Message>('SELECT * FROM pgmq.read_with_poll($1, 30, 1)', [q])
      expect(rowsNow.map((m) => [Number(m.msg_id), m.read_ct])).toEqual([[2, 1]])
      // conditional
      expect(await ids(`SELECT msg_id FROM pgmq.read_with_poll($1, 30, 5, 1, 100, '{"k":"y"}')`, [q])).toEqual([3])
    })

    it('pop returns and deletes the oldest visible message; nothing when none is visible', async () => {
      const q = await createQueue('pop')
      await c.query(`SELECT pgmq.send($1, '{"p":1}', '{"h":1}'::jsonb)`, [q])
      await c.query(`SELECT pgmq.send($1, '{"p":2}')`, [q])
      await c.query(`SELECT pgmq.send($1, '{"p":3}', 300)`, [q])
      const popped = await rows<Message>('SELECT * FROM pgmq.pop($1)', [q])
      expect(popped.map((m) => [Number(m.msg_id), m.message, m.headers])).toEqual([[1, {p: 1}, {h: 1}]])
      expect(await ids('SELECT msg_id FROM pgmq.pop($1)', [q])).toEqual([2])
      expect(await ids('SELECT msg_id FROM pgmq.pop($1)', [q])).toEqual([])
      // deleted, not archived
      expect(await ids(`SELECT msg_id FROM pgmq.${'"q_' + q + '"'} ORDER BY 1`)).toEqual([3])
      expect(await ids(`SELECT msg_id FROM pgmq.${'"a_' + q + '"'}`)).toEqual([])
    })

    it('set_vt sets vt = now + vt seconds and returns the updated message; nothing for an absent id', async () => {
      const q = await createQueue('setvt')
      await sendMany(q, 2)
      const updated = await rows<Message>('SELECT * FROM pgmq.set_vt($1, 1, 120)', [q])
      expect(updated.map((m) => [Number(m.msg_id), m.read_ct, m.message])).toEqual([[1, 0, {i: 1}]])
      const until = await secondsUntilVisible(q, 1)
      expect(until).toBeGreaterThan(118)
      expect(until).toBeLessThanOrEqual(120)
      expect(await ids('SELECT msg_id FROM pgmq.read($1, 30, 10)', [q])).toEqual([2])
      // make message 2 visible again at once
      expect(await ids('SELECT msg_id FROM pgmq.set_vt($1, 2, 0)', [q])).toEqual([2])
      expect(await ids('SELECT msg_id FROM pgmq.read($1, 30, 10)', [q])).toEqual([2])
      expect(await rows('SELECT * FROM pgmq.set_vt($1, 999, 10)', [q])).toEqual([])
    })
  })

  describe('archive, delete, purge_queue, drop_queue', () => {
    it('archive(id) moves the message with its fields; false when absent or already archived', async () => {
      const q = await createQueue('archive')
      await c.query(`SELECT pgmq.send($1, '{"a":1}', '{"h":"x"}'::jsonb)`, [q])
      await c.query('SELECT pgmq.read($1, 30, 1)', [q])
      const before = await one<{enqueued_at: Date; vt: Date}>(`SELECT enqueued_at, vt FROM pgmq.${'"q_' + q + '"'} WHERE msg_id = 1`)
      expect((await one<{ok: boolean}>('SELECT pgmq.archive($1, 1::bigint) AS ok', [q])).ok).toBe(true)
      expect((await one<{ok: boolean}>('SELECT pgmq.archive($1, 1::bigint) AS ok', [q])).ok).toBe(false)
      expect((await one<{ok: boolean}>('SELECT pgmq.archive($1, 42::bigint) AS ok', [q])).ok).toBe(false)
      const archived = await one<Message & {archived_at: Date}>(`SELECT * FROM pgmq.${'"a_' + q + '"'}`)
      expect(Number(archived.msg_id)).toBe(1)
      expect(archived.read_ct).toBe(1)
      expect(archived.message).toEqual({a: 1})
      expect(archived.headers).toEqual({h: 'x'})
      expect(archived.enqueued_at.getTime()).toBe(before.enqueued_at.getTime())
      expect(archived.vt.getTime()).toBe(before.vt.getTime())
      expect(archived.archived_at).toBeInstanceOf(Date)
      expect(await ids(`SELECT msg_id FROM pgmq.${'"q_' + q + '"'}`)).toEqual([])
    })

    it('archive(ids[]) returns the ids actually archived', async () => {
      const q = await createQueue('archive-many')
      await sendMany(q, 5)
      expect(await ids('SELECT * FROM pgmq.archive($1, $2::bigint[])', [q, [4, 2, 99]])).toEqual([2, 4])
      expect(await ids('SELECT * FROM pgmq.archive($1, $2::bigint[])', [q, [2, 4]])).toEqual([])
      expect(await ids(`SELECT msg_id FROM pgmq.${'"a_' + q + '"'} ORDER BY 1`)).toEqual([2, 4])
      expect(await ids(`SELECT msg_id FROM pgmq.${'"q_' + q + '"'} ORDER BY 1`)).toEqual([1, 3, 5])
    })

    it('delete(id) is true once, then false; delete(ids[]) returns the ids actually deleted; nothing is archived', async () => {
      const q = await createQueue('delete')
      await sendMany(q, 5)
      expect((await one<{ok: boolean}>('SELECT pgmq.delete($1, 1::bigint) AS ok', [q])).ok).toBe(true)
      expect((await one<{ok: boolean}>('SELECT pgmq.delete($1, 1::bigint) AS ok', [q])).ok).toBe(false)
      expect(await ids('SELECT * FROM pgmq.delete($1, $2::bigint[])', [q, [5, 1, 3, 77]])).toEqual([3, 5])
      expect(await ids(`SELECT msg_id FROM pgmq.${'"q_' + q + '"'} ORDER BY 1`)).toEqual([2, 4])
      expect(await ids(`SELECT msg_id FROM pgmq.${'"a_' + q + '"'}`)).toEqual([])
    })

    it('purge_queue removes every message (not the archive) and returns how many', async () => {
      const q = await createQueue('purge')
      await sendMany(q, 7)
      await c.query('SELECT pgmq.archive($1, 1::bigint)', [q])
      expect((await one<{n: string}>('SELECT pgmq.purge_queue($1) AS n', [q])).n).toBe('6')
      expect((await one<{n: string}>('SELECT pgmq.purge_queue($1) AS n', [q])).n).toBe('0')
      expect(await ids(`SELECT msg_id FROM pgmq.${'"a_' + q + '"'}`)).toEqual([1])
      // ids keep increasing after a purge
      expect(await ids(`SELECT * FROM pgmq.send($1, '{}')`, [q])).toEqual([8])
    })

    it('drop_queue drops both tables and the meta row; false for a queue that does not exist', async () => {
      const q = await createQueue('drop')
      await sendMany(q, 3)
      await c.query('SELECT pgmq.archive($1, 1::bigint)', [q])
      expect((await one<{ok: boolean}>('SELECT pgmq.drop_queue($1) AS ok', [q])).ok).toBe(true)
      const gone = await one<{q: string | null; a: string | null}>(
        'SELECT to_regclass(format($$pgmq.%I$$, $1::text))::text AS q, to_regclass(format($$pgmq.%I$$, $2::text))::text AS a',
        [`q_${q}`, `a_${q}`],
      )
      expect(gone).toEqual({q: null, a: null})
      expect((await c.query('SELECT 1 FROM pgmq.meta WHERE queue_name = $1', [q])).rowCount).toBe(0)
      expect((await one<{ok: boolean}>('SELECT pgmq.drop_queue($1) AS ok', [q])).ok).toBe(false)
      expect((await one<{ok: boolean}>("SELECT pgmq.drop_queue('never-created') AS ok")).ok).toBe(false)
      // created again, it starts from scratch
      await c.query('SELECT pgmq.create($1)', [q])
      expect(await ids(`SELECT * FROM pgmq.send($1, '{}')`, [q])).toEqual([1])
      expect((await one<{total: number}>('SELECT total_messages::int AS total FROM pgmq.metrics($1)', [q])).total).toBe(1)
    })

    it('detach_archive keeps the archive (with the extension: takes it out of the extension)', async () => {
      const q = await createQueue('detach')
      await sendMany(q, 1)
      await c.query('SELECT pgmq.archive($1, 1::bigint)', [q])
      await c.query('SELECT pgmq.detach_archive($1)', [q])
      expect(await ids(`SELECT msg_id FROM pgmq.${'"a_' + q + '"'}`)).toEqual([1])
      expect(await members()).not.toContain(`a_${q}`)
    })
  })

  describe('metrics, metrics_all, list_queues', () => {
    it('metrics: length, visible length, ages and total sent (archived and deleted included)', async () => {
      const q = await createQueue('metrics')
      const empty = await one<Row>('SELECT * FROM pgmq.metrics($1)', [q])
      expect(empty).toMatchObject({
        queue_name: q,
        queue_length: '0',
        queue_visible_length: '0',
        newest_msg_age_sec: null,
        oldest_msg_age_sec: null,
        total_messages: '0',
      })
      await sendMany(q, 6)
      await c.query(`SELECT pgmq.send($1, '{"later":1}', 600)`, [q])
      await c.query('SELECT pgmq.read($1, 600, 1)', [q]) // msg 1 in flight
      await c.query('SELECT pgmq.archive($1, 2::bigint)', [q])
      await c.query('SELECT pgmq.delete($1, 3::bigint)', [q])
      await c.query(`UPDATE pgmq.${'"q_' + q + '"'} SET enqueued_at = now() - interval '100 seconds' WHERE msg_id = 4`)
      await c.query(`UPDATE pgmq.${'"q_' + q + '"'} SET enqueued_at = now() - interval '10 seconds' WHERE msg_id <> 4`)
      const m = await one<{
        queue_name: string
        queue_length: string
        queue_visible_length: string
        newest_msg_age_sec: number
        oldest_msg_age_sec: number
        total_messages: string
        scrape_time: Date
        server_now: Date
      }>('SELECT *, now() AS server_now FROM pgmq.metrics($1)', [q])
      // queue: 1 (in flight), 4, 5, 6, 7 (delayed) -> 5 rows, 3 visible (4, 5, 6)
      expect(m.queue_name).toBe(q)
      expect(m.queue_length).toBe('5')
      expect(m.queue_visible_length).toBe('3')
      expect(m.oldest_msg_age_sec).toBe(100)
      expect(m.newest_msg_age_sec).toBe(10)
      expect(m.total_messages).toBe('7')
      expect(m.scrape_time.getTime()).toBe(m.server_now.getTime())
    })

    it('metrics_all has one row per queue in meta, equal to metrics; list_queues returns the meta rows', async () => {
      const a = await createQueue('all-a')
      const b = queueName('all-b')
      await c.query('SELECT pgmq.create_unlogged($1)', [b])
      await sendMany(a, 3)
      const all = await rows<{queue_name: string; queue_length: string; total_messages: string}>('SELECT * FROM pgmq.metrics_all()')
      const meta = await rows<{queue_name: string}>('SELECT queue_name FROM pgmq.meta ORDER BY 1')
      expect(all.map((r) => r.queue_name).sort()).toEqual(meta.map((r) => r.queue_name).sort())
      expect(all.find((r) => r.queue_name === a)).toMatchObject({queue_length: '3', total_messages: '3'})
      expect(all.find((r) => r.queue_name === b)).toMatchObject({queue_length: '0', total_messages: '0'})
      const listed = await rows<{queue_name: string; is_partitioned: boolean; is_unlogged: boolean; created_at: Date}>('SELECT * FROM pgmq.list_queues()')
      expect(listed).toEqual(await rows('SELECT queue_name, is_partitioned, is_unlogged, created_at FROM pgmq.meta ORDER BY queue_name'))
      expect(listed.find((r) => r.queue_name === b)).toMatchObject({is_partitioned: false, is_unlogged: true})
    })
  })

  describe('queue names', () => {
    const INVALID = ['bad;name', 'bad$name', 'bad--name', "it's", "x'; DROP TABLE pgmq.meta; --"]

    it('hyphens are legal and every identifier is quoted (agent-sessions, centralcloud-new-patterns)', async () => {
      for (const q of ['agent-sessions', 'centralcloud-new-patterns', 'Mixed-Case.Queue', 'with space']) {
        await c.query('SELECT pgmq.create($1)', [q])
        const [id] = await ids(`SELECT * FROM pgmq.send($1, '{"ok":true}')`, [q])
        expect(await ids('SELECT msg_id FROM pgmq.read($1, 30, 1)', [q])).toEqual([id])
        expect((await one<{ok: boolean}>('SELECT pgmq.archive($1, $2::bigint) AS ok', [q, id])).ok).toBe(true)
        expect((await one<{len: string}>('SELECT queue_length AS len FROM pgmq.metrics($1)', [q])).len).toBe('0')
      }
      // table names are lower(prefix || '_' || name)
      expect((await one<{r: string}>(`SELECT to_regclass('pgmq."q_mixed-case.queue"')::text AS r`)).r).toBe('pgmq."q_mixed-case.queue"')
    })

    it('a name with $ ; -- or a quote is refused by every function with the contract message', async () => {
      const calls = [
        'SELECT pgmq.create($1)',
        'SELECT pgmq.create_unlogged($1)',
        'SELECT pgmq.create_partitioned($1)',
        `SELECT * FROM pgmq.send($1, '{}')`,
        `SELECT * FROM pgmq.send_batch($1, ARRAY['{}']::jsonb[])`,
        'SELECT * FROM pgmq.read($1, 1, 1)',
        'SELECT * FROM pgmq.read_with_poll($1, 1, 1, 1)',
        'SELECT * FROM pgmq.pop($1)',
        'SELECT pgmq.archive($1, 1::bigint)',
        'SELECT * FROM pgmq.archive($1, ARRAY[1]::bigint[])',
        'SELECT pgmq.delete($1, 1::bigint)',
        'SELECT * FROM pgmq.delete($1, ARRAY[1]::bigint[])',
        'SELECT * FROM pgmq.set_vt($1, 1, 1)',
        'SELECT pgmq.purge_queue($1)',
        'SELECT pgmq.drop_queue($1)',
        'SELECT pgmq.detach_archive($1)',
        'SELECT * FROM pgmq.metrics($1)',
      ]
      const tablesBefore = await one<{n: number}>("SELECT count(*)::int AS n FROM pg_class WHERE relnamespace = 'pgmq'::regnamespace")
      for (const name of INVALID) {
        for (const sql of calls) {
          await expect(c.query(sql, [name]), `${sql} with ${name}`).rejects.toMatchObject({message: expect.stringMatching(/^queue name contains invalid characters/)})
        }
      }
      const tablesAfter = await one<{n: number}>("SELECT count(*)::int AS n FROM pg_class WHERE relnamespace = 'pgmq'::regnamespace")
      expect(tablesAfter.n).toBe(tablesBefore.n)
      expect((await one<{r: string | null}>("SELECT to_regclass('pgmq.meta')::text AS r")).r).toBe('pgmq.meta')
    })

    it('a name longer than 47 characters is refused; 47 is accepted', async () => {
      const long = 'q'.repeat(48)
      for (const sql of ['SELECT pgmq.create($1)', `SELECT * FROM pgmq.send($1, '{}')`, 'SELECT * FROM pgmq.read($1, 1, 1)', 'SELECT pgmq.drop_queue($1)']) {
        await expect(c.query(sql, [long])).rejects.toMatchObject({message: 'queue name is too long, maximum length is 47 characters'})
      }
      const max = 'm'.repeat(47)
      await c.query('SELECT pgmq.create($1)', [max])
      expect(await ids(`SELECT * FROM pgmq.send($1, '{}')`, [max])).toEqual([1])
      // the archive index name 'archived_at_idx_' || name fits in 63 bytes: no truncation
      const idx = await c.query('SELECT 1 FROM pg_indexes WHERE schemaname = $1 AND indexname = $2', ['pgmq', `archived_at_idx_${max}`])
      expect(idx.rowCount).toBe(1)
    })

    it('an empty or NULL name is refused', async () => {
      for (const name of ['', null]) {
        await expect(c.query('SELECT pgmq.create($1)', [name])).rejects.toMatchObject({message: 'queue name must not be empty'})
        await expect(c.query(`SELECT * FROM pgmq.send($1, '{}')`, [name])).rejects.toMatchObject({message: 'queue name must not be empty'})
      }
    })
  })

  describe('pg_monitor', () => {
    it('a pg_monitor member can read every queue table, meta and the metrics, and cannot write', async () => {
      const suffix = db.name.slice(-8)
      const monitor = `pgmq_mon_${suffix}`
      const service = `pgmq_svc_${suffix}`
      await c.query(`CREATE ROLE ${monitor} NOLOGIN IN ROLE pg_monitor`)
      await c.query(`CREATE ROLE ${service} NOLOGIN`)
      try {
        // a queue created by the installer and one created by another (non-superuser) role
        const q = await createQueue('monitored')
        await sendMany(q, 2)
        await c.query('SELECT pgmq.archive($1, 1::bigint)', [q])
        await c.query(`GRANT USAGE, CREATE ON SCHEMA pgmq TO ${service}`)
        await c.query(`GRANT SELECT, INSERT, DELETE ON pgmq.meta TO ${service}`)
        const svcQueue = queueName('service-made')
        await c.query(`SET ROLE ${service}`)
        if (engine === 'extension') {
          // as with the real pgmq: adding the tables to the extension needs its owner
          await expect(c.query('SELECT pgmq.create($1)', [svcQueue])).rejects.toMatchObject({code: '42501', message: 'must be owner of extension pgmq'})
          await c.query('RESET ROLE')
          await c.query('SELECT pgmq.create($1)', [svcQueue])
          await c.query(`SET ROLE ${service}`)
          await c.query(`RESET ROLE; GRANT INSERT, SELECT, DELETE ON ALL TABLES IN SCHEMA pgmq TO ${service}; GRANT USAGE ON ALL SEQUENCES IN SCHEMA pgmq TO ${service}; SET ROLE ${service}`)
        } else {
          await c.query('SELECT pgmq.create($1)', [svcQueue])
        }
        await c.query(`SELECT pgmq.send($1, '{"s":1}')`, [svcQueue])
        await c.query('RESET ROLE')

        await c.query(`SET ROLE ${monitor}`)
        expect((await one<{n: number}>('SELECT count(*)::int AS n FROM pgmq.meta WHERE queue_name IN ($1, $2)', [q, svcQueue])).n).toBe(2)
        expect(await ids(`SELECT msg_id FROM pgmq.${'"q_' + q + '"'}`)).toEqual([2])
        expect(await ids(`SELECT msg_id FROM pgmq.${'"a_' + q + '"'}`)).toEqual([1])
        expect(await ids(`SELECT msg_id FROM pgmq.${'"q_' + svcQueue + '"'}`)).toEqual([1])
        expect(await ids(`SELECT msg_id FROM pgmq.${'"a_' + svcQueue + '"'}`)).toEqual([])
        expect((await one<{total: number}>('SELECT total_messages::int AS total FROM pgmq.metrics($1)', [svcQueue])).total).toBe(1)
        const all = await rows('SELECT * FROM pgmq.metrics_all()')
        expect(all.length).toBeGreaterThanOrEqual(2)
        expect((await rows('SELECT * FROM pgmq.list_queues()')).length).toBe(all.length)
        await expect(c.query(`SELECT pgmq.send($1, '{}')`, [q])).rejects.toMatchObject({code: '42501'})
        await expect(c.query('SELECT pgmq.purge_queue($1)', [q])).rejects.toMatchObject({code: '42501'})
        await c.query('RESET ROLE')

        // the bundled engine: the role that made a queue drops it; the extension: its owner
        if (engine === 'bundled') await c.query(`SET ROLE ${service}`)
        await c.query('SELECT pgmq.drop_queue($1)', [svcQueue])
        await c.query('RESET ROLE')
      } finally {
        await c.query('RESET ROLE')
        for (const role of [monitor, service]) {
          await c.query(`DROP OWNED BY ${role}`)
          await c.query(`DROP ROLE ${role}`)
        }
      }
    })
  })
})

/** pgmq's own wording (format_table_name), backslash included: clients match on it. */
const INVALID_CHARACTERS = "queue name contains invalid characters: $, ;, --, or \\'"

/** Runs a statement and returns the notices (and warnings) the server sent meanwhile. */
async function notices(sql: string, params: unknown[] = [], client: pg.Client = c): Promise<{severity: string; message: string}[]> {
  const seen: {severity: string; message: string}[] = []
  const listener = (n: {severity?: string; message?: string}) => {
    seen.push({severity: n.severity ?? '', message: n.message ?? ''})
  }
  client.on('notice', listener)
  try {
    await client.query(sql, params)
  } finally {
    client.off('notice', listener)
  }
  return seen
}

describe('pgmq 1.5.1 parity of the bundled engine: create_non_partitioned, convert_archive_partitioned, drop_queue(name, partitioned), notices', () => {
  beforeAll(async () => {
    db = await createTestDatabase('pgmq_parity')
    await installEngine(db.url, 'bundled')
    c = await connect(db.url)
  })

  afterAll(async () => {
    await c?.end()
  })

  it('has the three functions with pgmq\'s result types', async () => {
    const found = await rows<{sig: string; result: string | null}>(
      `SELECT s AS sig, pg_get_function_result(to_regprocedure(s)) AS result FROM unnest($1::text[]) s`,
      [['pgmq.drop_queue(text,boolean)', 'pgmq.create_non_partitioned(text)', 'pgmq.convert_archive_partitioned(text,text,text,integer)']],
    )
    expect(found.map((f) => f.result)).toEqual(['boolean', 'void', 'void'])
  })

  it('refuses invalid characters with pgmq\'s exact text', async () => {
    for (const sql of ['SELECT pgmq.create($1)', `SELECT * FROM pgmq.send($1, '{}')`, 'SELECT pgmq.drop_queue($1)']) {
      await expect(c.query(sql, ['bad;name'])).rejects.toMatchObject({message: INVALID_CHARACTERS})
    }
  })

  it('create_non_partitioned makes a plain queue like create, idempotently', async () => {
    const q = queueName('nonpart')
    await c.query('SELECT pgmq.create_non_partitioned($1)', [q])
    await c.query('SELECT pgmq.create_non_partitioned($1)', [q])
    const kinds = await rows<{rel: string; kind: string}>(
      `SELECT relname AS rel, relkind::text AS kind FROM pg_class WHERE relnamespace = 'pgmq'::regnamespace AND relname IN ($1, $2) ORDER BY 1`,
      [`a_${q}`, `q_${q}`],
    )
    expect(kinds).toEqual([{rel: `a_${q}`, kind: 'r'}, {rel: `q_${q}`, kind: 'r'}])
    expect(await rows('SELECT queue_name, is_partitioned, is_unlogged FROM pgmq.meta WHERE queue_name = $1', [q])).toEqual([{queue_name: q, is_partitioned: false, is_unlogged: false}])
    expect(await ids(`SELECT * FROM pgmq.send($1, '{}')`, [q])).toEqual([1])
    await expect(c.query("SELECT pgmq.create_non_partitioned('bad;name')")).rejects.toMatchObject({message: INVALID_CHARACTERS})
  })

  it('drop_queue(name, partitioned) still works for the clients that call it, with pgmq\'s deprecation warning', async () => {
    const q = await createQueue('olddrop')
    const seen = await notices('SELECT pgmq.drop_queue($1, false)', [q])
    expect(seen).toEqual([
      {severity: 'WARNING', message: 'drop_queue(queue_name, partitioned) is deprecated and will be removed in PGMQ v2.0. Use drop_queue(queue_name) instead'},
    ])
    expect((await c.query('SELECT 1 FROM pgmq.meta WHERE queue_name = $1', [q])).rowCount).toBe(0)
    expect((await one<{r: string | null}>('SELECT to_regclass(format($$pgmq.%I$$, $1::text))::text AS r', [`q_${q}`])).r).toBeNull()
  })

  it('drop_queue of a missing queue returns false with pgmq\'s "does not exist" notice', async () => {
    const result = await c.query("SELECT pgmq.drop_queue('never-made') AS ok")
    expect(result.rows[0].ok).toBe(false)
    expect(await notices("SELECT pgmq.drop_queue('never-made')")).toEqual([{severity: 'NOTICE', message: 'pgmq queue `never-made` does not exist'}])
  })

  it('convert_archive_partitioned without pg_partman raises pgmq\'s error and changes nothing', async () => {
    const q = await createQueue('convert')
    await sendMany(q, 3)
    await c.query(`SELECT pgmq.archive($1, ARRAY[1, 2]::bigint[])`, [q])
    await expect(c.query('SELECT pgmq.convert_archive_partitioned($1)', [q])).rejects.toMatchObject({message: 'pg_partman is required for partitioned queues'})
    expect(await ids(`SELECT msg_id FROM pgmq.${'"a_' + q + '"'} ORDER BY 1`)).toEqual([1, 2])
  })

  it('convert_archive_partitioned with pg_partman partitions the archive by msg_id and keeps its rows; pgmq\'s notices otherwise', async () => {
    const available = await c.query("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_partman'")
    // pg_partman is one of the Debian packages the test prerequisites install (.ci/install-deps.sh)
    expect(available.rowCount, 'pg_partman is available on the test server').toBe(1)
    const pdb = await createTestDatabase('pgmq_convert')
    await installComponents(pdb.url, ['pgmq'])
    const p = await connect(pdb.url)
    try {
      await p.query('CREATE SCHEMA partman')
      await p.query('CREATE EXTENSION pg_partman SCHEMA partman')
      await p.query("SELECT pgmq.create('conv')")
      await p.query(`SELECT pgmq.send_batch('conv', array(SELECT jsonb_build_object('n', g) FROM generate_series(1, 25) g))`)
      await p.query(`SELECT pgmq.archive('conv', array(SELECT g::bigint FROM generate_series(1, 25) g))`)
      await p.query("SELECT pgmq.convert_archive_partitioned('conv', '10')")
      expect(await rows(`SELECT relkind::text AS kind, pg_get_partkeydef(oid) AS key FROM pg_class WHERE oid = 'pgmq.a_conv'::regclass`, [], p)).toEqual([{kind: 'p', key: 'RANGE (msg_id)'}])
      expect(await ids('SELECT msg_id FROM pgmq.a_conv ORDER BY 1', [], p)).toEqual(Array.from({length: 25}, (_, i) => i + 1))
      expect((await p.query("SELECT 1 FROM pg_class WHERE relname = 'a_conv_old'")).rowCount).toBe(0)
      // the archive still works, and is still indexed on archived_at
      await p.query(`SELECT pgmq.send('conv', '{}'); SELECT pgmq.archive('conv', 26::bigint)`)
      expect((await one<{n: number}>('SELECT count(*)::int AS n FROM pgmq.a_conv', [], p)).n).toBe(26)
      expect((await p.query(`SELECT 1 FROM pg_indexes WHERE schemaname = 'pgmq' AND tablename = 'a_conv' AND indexdef LIKE '%(archived_at)%'`)).rowCount).toBe(1)
      expect(await notices("SELECT pgmq.convert_archive_partitioned('conv')", [], p)).toEqual([{severity: 'NOTICE', message: 'Table a_convs is already partitioned'}])
      expect(await notices("SELECT pgmq.convert_archive_partitioned('nope')", [], p)).toEqual([{severity: 'NOTICE', message: 'Table a_nopes doesnot exists'}])
      // dropping the queue forgets pg_partman's configuration of the converted archive
      expect((await one<{ok: boolean}>("SELECT pgmq.drop_queue('conv') AS ok", [], p)).ok).toBe(true)
      expect((await p.query('SELECT 1 FROM partman.part_config')).rowCount).toBe(0)
    } finally {
      await p.end()
    }
  })
})
