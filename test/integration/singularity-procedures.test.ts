import {readdirSync, readFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'

import type pg from 'pg'
import {afterAll, beforeAll, beforeEach, describe, expect, it} from 'vitest'

import {connect, createTestDatabase, installComponents, uniqueSuffix} from '../helpers/db.js'
import {quoteIdent} from '../../src/lib/sql/quote.js'

/**
 * Issue 5: the singularity schema, its autonomous procedures and seed 002's SQL helpers, on a real
 * PostgreSQL with the bundled pgmq engine, on real rows with exact expected results.
 */

const QUEUES = ['centralcloud-new-patterns', 'agent-sessions', 'agent-knowledge-updates'] as const
const ULID = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/
const PROCEDURES_DIR = fileURLToPath(new URL('../../sql/singularity/procedures/', import.meta.url))

let url: string
let c: pg.Client

/** Messages of a pgmq queue in send order (read straight from its table, nothing consumed). */
async function queueMessages(queue: string): Promise<Record<string, unknown>[]> {
  const {rows} = await c.query<{message: Record<string, unknown>}>(
    `SELECT message FROM pgmq.${quoteIdent(`q_${queue}`)} ORDER BY msg_id`,
  )
  return rows.map((r) => r.message)
}


async function one<T extends pg.QueryResultRow>(client: pg.Client, sql: string, params: unknown[] = []): Promise<T> {
  const {rows} = await client.query<T>(sql, params)
  expect(rows).toHaveLength(1)
  return rows[0]
}

/** Runs fn with n extra sessions on the test database, ended afterwards. */
async function withSessions<T>(n: number, fn: (clients: pg.Client[]) => Promise<T>): Promise<T> {
  const clients = await Promise.all(Array.from({length: n}, () => connect(url)))
  try {
    return await fn(clients)
  } finally {
    await Promise.all(clients.map((s) => s.end()))
  }
}

beforeAll(async () => {
  const db = await createTestDatabase('singularity_procs')
  url = db.url
  c = await connect(url)
  // db init creates extensions and queues; here the test does it (cube + earthdistance: the geo fallback)
  for (const extension of ['pgcrypto', 'cube', 'earthdistance']) await c.query(`CREATE EXTENSION IF NOT EXISTS ${extension}`)
  await installComponents(url, ['pgmq', 'singularity'])
  for (const q of QUEUES) await c.query('SELECT pgmq.create($1)', [q])
})

afterAll(async () => {
  await c?.end()
})

beforeEach(async () => {
  await c.query(`TRUNCATE agents, agent_sessions, analysis_results, learned_patterns, tasks, tasks_archive, artifacts,
    sync_log, metrics_events, metrics_rollups, package_registry, code_chunks, code_embeddings, graph_nodes,
    graph_edges, cache_entries, work_plan, table_statistics, vector_statistics RESTART IDENTITY CASCADE`)
  for (const q of QUEUES) await c.query('SELECT pgmq.purge_queue($1)', [q])
})

describe('installation', () => {
  it('re-applies every procedures file cleanly (idempotent), twice', async () => {
    const files = readdirSync(PROCEDURES_DIR).filter((f) => f.endsWith('.sql')).sort()
    expect(files.length).toBeGreaterThan(5)
    for (let pass = 0; pass < 2; pass++) {
      for (const f of files) await c.query(readFileSync(PROCEDURES_DIR + f, 'utf8'))
    }
    const triggers = await c.query("SELECT tgname FROM pg_trigger WHERE tgrelid = 'agent_sessions'::regclass AND NOT tgisinternal ORDER BY 1")
    expect(triggers.rows.map((r) => r.tgname)).toEqual(['agent_sessions_persist_insert', 'agent_sessions_persist_update'])
  })

  it('comments every function of schema public and singularity_private', async () => {
    const {rows} = await c.query<{fn: string}>(`
      SELECT p.oid::regprocedure::text AS fn
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      LEFT JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
      WHERE n.nspname IN ('public', 'singularity_private') AND d.objid IS NULL
        AND obj_description(p.oid, 'pg_proc') IS NULL`)
    expect(rows.map((r) => r.fn)).toEqual([])
  })

  it('reports which implementation of each optional feature is live', async () => {
    const {rows} = await c.query<{feature: string; implementation: string}>('SELECT * FROM singularity_feature_implementations()')
    const byFeature = Object.fromEntries(rows.map((r) => [r.feature, r.implementation]))
    expect(Object.keys(byFeature)).toEqual(expect.arrayContaining(['queue_engine', 'ulid', 'encryption', 'pattern_similarity', 'metrics_rollups', 'cache_prewarm']))
    expect(byFeature.queue_engine).toMatch(/pgmq/)
    expect(byFeature.encryption).toMatch(/^pgcrypto/)
    expect(byFeature.ulid).toMatch(/plpgsql/)
  })
})

describe('learn_patterns_from_analysis()', () => {
  it('learns 100 results per call, queues each pattern with the documented shape, then stops', async () => {
    await c.query("INSERT INTO agents (id, status) VALUES ('agent-1', 'active')")
    await c.query(`INSERT INTO analysis_results (agent_id, pattern_type, pattern, code_snippet, confidence, created_at)
      SELECT 'agent-1', 'retry', jsonb_build_object('n', g), 'snippet ' || g, g / 200.0, now() - (200 - g) * interval '1 second'
      FROM generate_series(1, 150) g`)

    expect(await one(c, 'SELECT * FROM learn_patterns_from_analysis()')).toEqual({patterns_learned: 100, patterns_queued: 100})
    // the oldest 100 first
    const first = await one<{max: number}>(c, 'SELECT max((pattern->>\'n\')::int) AS max FROM learned_patterns')
    expect(first.max).toBe(100)
    expect(await one(c, 'SELECT * FROM learn_patterns_from_analysis()')).toEqual({patterns_learned: 50, patterns_queued: 50})
    expect(await one(c, 'SELECT * FROM learn_patterns_from_analysis()')).toEqual({patterns_learned: 0, patterns_queued: 0})

    const counts = await one<{patterns: number; results: number; unlearned: number}>(c, `SELECT
      (SELECT count(DISTINCT analysis_result_id)::int FROM learned_patterns) AS patterns,
      (SELECT count(*)::int FROM analysis_results) AS results,
      (SELECT count(*)::int FROM analysis_results WHERE NOT learned OR learned_at IS NULL) AS unlearned`)
    expect(counts).toEqual({patterns: 150, results: 150, unlearned: 0})

    const messages = await queueMessages('centralcloud-new-patterns')
    expect(messages).toHaveLength(150)
    const row = await one<{id: string; learned_at: Date}>(c, 'SELECT id, learned_at FROM learned_patterns WHERE analysis_result_id = 7')
    const message = messages.find((m) => m.analysis_result_id === 7)!
    expect(message).toEqual({
      pattern_id: Number(row.id),
      analysis_result_id: 7,
      agent_id: 'agent-1',
      pattern_type: 'retry',
      pattern: {n: 7},
      confidence: 0.035,
      learned_at: expect.any(String),
      source: 'singularity-learning',
    })
    expect(new Date(message.learned_at as string).getTime()).toBe(row.learned_at.getTime())
    expect(await queueMessages('agent-sessions')).toHaveLength(0)
  })

  it('two sessions at the same time take disjoint batches (SKIP LOCKED), without waiting', async () => {
    await c.query("INSERT INTO analysis_results (pattern) SELECT jsonb_build_object('n', g) FROM generate_series(1, 250) g")
    await withSessions(2, async ([a, b]) => {
      await b.query("SET statement_timeout = '5s'")
      await a.query('BEGIN')
      expect(await one(a, 'SELECT * FROM learn_patterns_from_analysis()')).toEqual({patterns_learned: 100, patterns_queued: 100})
      // a holds its 100 rows; b does not wait for them and does not take them
      expect(await one(b, 'SELECT * FROM learn_patterns_from_analysis()')).toEqual({patterns_learned: 100, patterns_queued: 100})
      await a.query('COMMIT')
      expect(await one(b, 'SELECT * FROM learn_patterns_from_analysis()')).toEqual({patterns_learned: 50, patterns_queued: 50})
      expect(await one(a, 'SELECT * FROM learn_patterns_from_analysis()')).toEqual({patterns_learned: 0, patterns_queued: 0})
    })
    const r = await one(c, 'SELECT count(*)::int AS n, count(DISTINCT analysis_result_id)::int AS distinct_results FROM learned_patterns')
    expect(r).toEqual({n: 250, distinct_results: 250})
    expect(await queueMessages('centralcloud-new-patterns')).toHaveLength(250)
  })

  it('four sessions draining 3,000 results concurrently learn each exactly once', async () => {
    await c.query("INSERT INTO analysis_results (pattern) SELECT jsonb_build_object('n', g) FROM generate_series(1, 3000) g")
    const learned = await withSessions(4, (clients) =>
      Promise.all(
        clients.map(async (s) => {
          let total = 0
          for (;;) {
            const r = await one<{patterns_learned: number; patterns_queued: number}>(s, 'SELECT * FROM learn_patterns_from_analysis()')
            expect(r.patterns_queued).toBe(r.patterns_learned)
            if (r.patterns_learned === 0) break
            total += r.patterns_learned
          }
          return total
        }),
      ),
    )
    expect(learned.reduce((x, y) => x + y, 0)).toBe(3000)
    const r = await one(c, `SELECT count(*)::int AS n, count(DISTINCT analysis_result_id)::int AS distinct_results,
      (SELECT count(*)::int FROM analysis_results WHERE NOT learned) AS unlearned FROM learned_patterns`)
    expect(r).toEqual({n: 3000, distinct_results: 3000, unlearned: 0})
    const ids = (await queueMessages('centralcloud-new-patterns')).map((m) => m.analysis_result_id)
    expect(ids).toHaveLength(3000)
    expect(new Set(ids).size).toBe(3000)
  })
})

describe('persist_agent_session() trigger', () => {
  const role = `svc_test_${uniqueSuffix()}`

  afterAll(async () => {
    await c.query(`DROP OWNED BY ${role}`).catch(() => {})
    await c.query(`DROP ROLE IF EXISTS ${role}`)
  })

  it('encrypts the state, queues the session, sets last_synced_at; decrypt round-trips', async () => {
    await c.query("INSERT INTO agents (id) VALUES ('agent-7')")
    const state = {step: 4, secret: 'correct horse battery staple', plan: ['a', 'b']}
    const inserted = await one<{id: string; state: unknown; state_encrypted: Buffer; last_synced_at: Date | null}>(
      c,
      "INSERT INTO agent_sessions (agent_id, state, confidence) VALUES ('agent-7', $1, 0.85) RETURNING id, state, state_encrypted, last_synced_at",
      [JSON.stringify(state)],
    )
    expect(inserted.id).toMatch(ULID)
    expect(inserted.state).toBeNull()
    expect(inserted.last_synced_at).toBeInstanceOf(Date)
    expect(inserted.state_encrypted.length).toBeGreaterThan(20)
    expect(inserted.state_encrypted.includes(Buffer.from('correct horse'))).toBe(false)
    expect(inserted.state_encrypted.equals(Buffer.from(JSON.stringify(state)))).toBe(false)

    const dec = await one<{state: unknown}>(c, 'SELECT singularity_private.decrypt_session_state($1) AS state', [inserted.id])
    expect(dec.state).toEqual(state)

    let messages = await queueMessages('agent-sessions')
    expect(messages).toHaveLength(1)
    expect(messages[0]).toEqual({
      agent_id: 'agent-7',
      session_id: inserted.id,
      status: 'active',
      confidence: 0.85,
      synced_at: expect.any(String),
      session_state: {encrypted: true, algorithm: 'pgp-sym-aes256', key_id: 1, ciphertext: inserted.state_encrypted.toString('base64')},
    })
    expect(new Date(messages[0].synced_at as string).getTime()).toBe(inserted.last_synced_at!.getTime())

    // confidence change: queued again; an unrelated update: not queued; new state: re-encrypted
    await c.query('UPDATE agent_sessions SET confidence = 0.9 WHERE id = $1', [inserted.id])
    await c.query("UPDATE agent_sessions SET started_at = started_at - interval '1 minute' WHERE id = $1", [inserted.id])
    await c.query(`UPDATE agent_sessions SET state = '{"step": 5}' WHERE id = $1`, [inserted.id])
    messages = await queueMessages('agent-sessions')
    expect(messages.map((m) => m.confidence)).toEqual([0.85, 0.9, 0.9])
    expect(await one(c, 'SELECT singularity_private.decrypt_session_state($1) AS state', [inserted.id])).toEqual({state: {step: 5}})
    // plaintext can never be stored, even with the trigger disabled
    await c.query('ALTER TABLE agent_sessions DISABLE TRIGGER agent_sessions_persist_insert')
    try {
      await expect(c.query(`INSERT INTO agent_sessions (id, agent_id, state) VALUES ('x', 'agent-7', '{"a":1}')`)).rejects.toThrow(/agent_sessions_state_never_stored/)
    } finally {
      await c.query('ALTER TABLE agent_sessions ENABLE TRIGGER agent_sessions_persist_insert')
    }
  })

  it('a service role granted the public tables and functions cannot read the key or decrypt, yet its writes are encrypted', async () => {
    await c.query("INSERT INTO agents (id) VALUES ('agent-8')")
    await c.query(`CREATE ROLE ${role} LOGIN`)
    await c.query(`GRANT USAGE ON SCHEMA public TO ${role}`)
    await c.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role}`)
    await c.query(`GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO ${role}`)
    await c.query(`SET ROLE ${role}`)
    try {
      await expect(c.query('SELECT key FROM singularity_private.encryption_keys')).rejects.toThrow(/permission denied/)
      await expect(c.query("SELECT singularity_private.decrypt_session_state('x')")).rejects.toThrow(/permission denied/)
      await expect(c.query("SELECT singularity_private.decrypt('\\x0000000100'::bytea)")).rejects.toThrow(/permission denied/)
      const row = await one<{id: string; state: unknown; enc: boolean}>(
        c,
        `INSERT INTO agent_sessions (agent_id, state) VALUES ('agent-8', '{"token": "t0p"}') RETURNING id, state, state_encrypted IS NOT NULL AS enc`,
      )
      expect(row).toMatchObject({state: null, enc: true})
      const secret = await one<{ct: Buffer}>(c, "SELECT encrypt_secret('api-key-123') AS ct")
      await c.query('RESET ROLE')
      expect(await one(c, 'SELECT singularity_private.decrypt($1) AS pt', [secret.ct])).toEqual({pt: 'api-key-123'})
      expect(await one(c, 'SELECT singularity_private.decrypt_session_state($1) AS s', [row.id])).toEqual({s: {token: 't0p'}})
    } finally {
      await c.query('RESET ROLE')
    }
    // the key is 32 random bytes generated on the server, one active
    expect(await one(c, 'SELECT count(*)::int AS n, min(octet_length(key)) AS len FROM singularity_private.encryption_keys WHERE retired_at IS NULL')).toEqual({n: 1, len: 32})
  })
})

describe('update_agent_knowledge()', () => {
  it('puts each agent\'s last-24h patterns and average confidence into agents and queues a summary', async () => {
    await c.query("INSERT INTO agents (id, known_patterns) VALUES ('a1', '[]'), ('a2', '[]'), ('a3', '[{\"old\": true}]'), ('a4', '[]')")
    await c.query(`INSERT INTO learned_patterns (agent_id, pattern_type, pattern, confidence, learned_at) VALUES
      ('a1', 'p', '{"k": 1}', 0.6, now() - interval '1 hour'),
      ('a1', 'p', '{"k": 2}', 0.8, now() - interval '2 hours'),
      ('a1', 'q', '{"k": 3}', 1.0, now() - interval '23 hours'),
      ('a2', 'p', '{"k": 4}', 0.5, now() - interval '10 minutes'),
      ('a2', 'p', '{"k": 5}', 0.1, now() - interval '30 hours'),
      ('a3', 'p', '{"k": 6}', 0.9, now() - interval '25 hours'),
      (NULL, 'p', '{"k": 7}', 0.9, now())`)
    expect(await one(c, 'SELECT * FROM update_agent_knowledge()')).toEqual({agents_updated: 2, total_patterns: 4})
    const {rows} = await c.query<{id: string; known_patterns: {pattern: {k: number}}[]; pattern_confidence: number | null}>(
      'SELECT id, known_patterns, pattern_confidence FROM agents ORDER BY id',
    )
    expect(rows.map((r) => [r.id, r.known_patterns.map((p) => p.pattern.k), r.pattern_confidence])).toEqual([
      ['a1', [1, 2, 3], expect.closeTo(0.8, 12)],
      ['a2', [4], 0.5],
      ['a3', [], null],
      ['a4', [], null],
    ])
    const messages = await queueMessages('agent-knowledge-updates')
    expect(messages).toEqual([{agents_updated: 2, total_patterns: 4, updated_at: expect.any(String)}])
  })
})

describe('sync_learning_to_centralcloud()', () => {
  it('returns a ULID batch id and the count of patterns pending in the queue, and logs the batch', async () => {
    for (let i = 0; i < 7; i++) await c.query("SELECT pgmq.send('centralcloud-new-patterns', $1::jsonb)", [JSON.stringify({i})])
    const first = await one<{batch_id: string; pattern_count: number}>(c, 'SELECT * FROM sync_learning_to_centralcloud()')
    expect(first.batch_id).toMatch(ULID)
    expect(first.pattern_count).toBe(7)
    await c.query(`SELECT pgmq.delete('centralcloud-new-patterns', (SELECT min(msg_id) FROM pgmq."q_centralcloud-new-patterns"))`)
    const second = await one<{batch_id: string; pattern_count: number}>(c, 'SELECT * FROM sync_learning_to_centralcloud()')
    expect(second.pattern_count).toBe(6)
    expect(second.batch_id > first.batch_id).toBe(true)
    const {rows} = await c.query('SELECT batch_id, pattern_count, status, queue_name FROM sync_log ORDER BY id')
    expect(rows).toEqual([
      {batch_id: first.batch_id, pattern_count: 7, status: 'queued', queue_name: 'centralcloud-new-patterns'},
      {batch_id: second.batch_id, pattern_count: 6, status: 'queued', queue_name: 'centralcloud-new-patterns'},
    ])
    const age = await one<{age: number}>(c, 'SELECT ulid_age_seconds($1) AS age', [first.batch_id])
    expect(Math.abs(age.age)).toBeLessThan(60)
    // cleanup keeps recent rows, removes old ones
    await c.query("UPDATE sync_log SET created_at = now() - interval '31 days' WHERE batch_id = $1", [first.batch_id])
    expect(await one(c, 'SELECT cleanup_sync_log() AS n')).toEqual({n: 1})
  })
})

describe('assign_pending_tasks()', () => {
  it('fills agents with capacity, at most 10 per call, highest priority first, never over capacity', async () => {
    await c.query(`INSERT INTO agents (id, status, capacity) VALUES
      ('a', 'active', 5), ('b', 'idle', 30), ('c', 'offline', 10), ('d', 'active', 0), ('e', 'paused', 10)`)
    // a already runs 2 tasks
    await c.query("INSERT INTO tasks (title, status, assigned_agent_id, assigned_at) VALUES ('r1', 'running', 'a', now()), ('r2', 'assigned', 'a', now())")
    await c.query("INSERT INTO tasks (title, priority, created_at) SELECT 't' || g, g % 4, now() - g * interval '1 second' FROM generate_series(1, 40) g")

    expect(await one(c, 'SELECT * FROM assign_pending_tasks()')).toEqual({tasks_assigned: 13, agents_assigned: 2})
    // the 13 assigned are the 13 first in (priority desc, created_at) order
    const top = await c.query(`SELECT id FROM tasks WHERE title LIKE 't%' ORDER BY priority DESC, created_at, id LIMIT 13`)
    const assigned = await c.query(`SELECT id FROM tasks WHERE title LIKE 't%' AND status = 'assigned' ORDER BY id`)
    expect(assigned.rows.map((r) => r.id).sort()).toEqual(top.rows.map((r) => r.id).sort())

    expect(await one(c, 'SELECT * FROM assign_pending_tasks()')).toEqual({tasks_assigned: 10, agents_assigned: 1})
    expect(await one(c, 'SELECT * FROM assign_pending_tasks()')).toEqual({tasks_assigned: 10, agents_assigned: 1})
    // everybody is full: 7 tasks stay pending
    expect(await one(c, 'SELECT * FROM assign_pending_tasks()')).toEqual({tasks_assigned: 0, agents_assigned: 0})
    const load = await c.query<{agent: string; n: number}>(`SELECT assigned_agent_id AS agent, count(*)::int AS n FROM tasks
      WHERE status IN ('assigned', 'running') GROUP BY 1 ORDER BY 1`)
    expect(load.rows).toEqual([{agent: 'a', n: 5}, {agent: 'b', n: 30}])
    expect(await one(c, "SELECT count(*)::int AS n FROM tasks WHERE status = 'pending'")).toEqual({n: 7})
    const stamped = await one(c, "SELECT count(*)::int AS n FROM tasks WHERE status = 'assigned' AND assigned_at IS NULL")
    expect(stamped).toEqual({n: 0})
  })

  it('a second caller never waits for, nor double-assigns, what the first one holds', async () => {
    await c.query("INSERT INTO agents (id, status, capacity) SELECT 'ag' || g, 'active', 4 FROM generate_series(1, 5) g")
    await c.query("INSERT INTO tasks (title) SELECT 't' || g FROM generate_series(1, 30) g")
    await withSessions(2, async ([a, b]) => {
      await b.query("SET statement_timeout = '5s'")
      await a.query('BEGIN')
      expect(await one(a, 'SELECT * FROM assign_pending_tasks()')).toEqual({tasks_assigned: 20, agents_assigned: 5})
      // all agents are locked by a: b assigns nothing rather than over-filling them
      expect(await one(b, 'SELECT * FROM assign_pending_tasks()')).toEqual({tasks_assigned: 0, agents_assigned: 0})
      await a.query('COMMIT')
      // after a's commit b sees the agents full
      expect(await one(b, 'SELECT * FROM assign_pending_tasks()')).toEqual({tasks_assigned: 0, agents_assigned: 0})
      await c.query("UPDATE tasks SET status = 'completed', completed_at = now() WHERE assigned_agent_id = 'ag1'")
      expect(await one(b, 'SELECT * FROM assign_pending_tasks()')).toEqual({tasks_assigned: 4, agents_assigned: 1})
    })
  })

  it('four concurrent callers with completions in between: no double assignment, never over capacity', async () => {
    await c.query("INSERT INTO agents (id, status, capacity) SELECT 'ag' || g, 'active', 1 + g % 15 FROM generate_series(1, 100) g")
    await c.query("INSERT INTO tasks (title, priority) SELECT 't' || g, g % 5 FROM generate_series(1, 4000) g")
    const assignedPerCaller = await withSessions(5, async ([completer, ...callers]) => {
      let running = true
      const completing = (async () => {
        while (running) {
          await completer.query(`UPDATE tasks SET status = 'completed', completed_at = now()
            WHERE id IN (SELECT id FROM tasks WHERE status = 'assigned' ORDER BY id LIMIT 25 FOR UPDATE SKIP LOCKED)`)
        }
      })()
      const totals = await Promise.all(
        callers.map(async (s) => {
          let total = 0
          for (let i = 0; i < 40; i++) {
            const r = await one<{tasks_assigned: number}>(s, 'SELECT * FROM assign_pending_tasks()')
            total += r.tasks_assigned
            const over = await one<{n: number}>(s, `SELECT count(*)::int AS n FROM (SELECT a.id FROM agents a
              JOIN tasks t ON t.assigned_agent_id = a.id AND t.status IN ('assigned', 'running')
              GROUP BY a.id, a.capacity HAVING count(*) > a.capacity) x`)
            expect(over.n).toBe(0)
          }
          return total
        }),
      )
      running = false
      await completing
      return totals
    })
    const everAssigned = await one<{n: number}>(c, "SELECT count(*)::int AS n FROM tasks WHERE status <> 'pending'")
    // a task assigned twice would be counted twice by the callers but once in the table
    expect(assignedPerCaller.reduce((x, y) => x + y, 0)).toBe(everAssigned.n)
    expect(everAssigned.n).toBeGreaterThan(1000)
  }, 120_000)
})

describe('ULIDs', () => {
  it('100,000 from one call are unique, strictly increasing and sort by their timestamps', async () => {
    const before = await one<{t: Date}>(c, "SELECT date_trunc('milliseconds', clock_timestamp()) AS t")
    const {rows} = await c.query<{u: string; ms: string}>(`SELECT u, (extract(epoch FROM ulid_timestamp(u)) * 1000)::bigint::text AS ms
      FROM ulid_generate_batch(100000) WITH ORDINALITY AS g(u, n) ORDER BY n`)
    const after = await one<{t: Date}>(c, 'SELECT clock_timestamp() AS t')
    expect(rows).toHaveLength(100_000)
    const ids = rows.map((r) => r.u)
    expect(new Set(ids).size).toBe(100_000)
    for (let i = 1; i < ids.length; i++) {
      if (!(ids[i - 1] < ids[i])) throw new Error(`not increasing at ${i}: ${ids[i - 1]} >= ${ids[i]}`)
      if (Number(rows[i - 1].ms) > Number(rows[i].ms)) throw new Error(`timestamps go back at ${i}`)
    }
    expect(ids.every((u) => ULID.test(u))).toBe(true)
    expect(Number(rows[0].ms)).toBeGreaterThanOrEqual(before.t.getTime())
    expect(Number(rows.at(-1)!.ms)).toBeLessThanOrEqual(after.t.getTime())
    // the session's next ULID continues the sequence
    const next = await one<{u: string}>(c, 'SELECT ulid_generate() AS u')
    expect(next.u > ids.at(-1)!).toBe(true)
  }, 60_000)

  it('decodes the spec example and rejects malformed input', async () => {
    expect(await one(c, "SELECT (extract(epoch FROM ulid_timestamp('01ARZ3NDEKTSV4RRFFQ69G5FAV')) * 1000)::bigint::text AS ms")).toEqual({ms: '1469922850259'})
    expect(await one(c, "SELECT ulid_is_recent(ulid_generate()) AS recent, ulid_is_recent('01ARZ3NDEKTSV4RRFFQ69G5FAV') AS old")).toEqual({recent: true, old: false})
    await expect(c.query("SELECT ulid_timestamp('not-a-ulid')")).rejects.toThrow(/not a ULID/)
  })
})

/** PageRank by solving (I - d·P) r = (1 - d)/n · 1 exactly (Gaussian elimination), dangling nodes linking to all. */
function pagerankBySolve(n: number, edges: [number, number, number][], d = 0.85): number[] {
  const out = new Array<number>(n).fill(0)
  for (const [s, , w] of edges) out[s] += w
  // P[i][j]: share of j's rank that flows to i
  const P = Array.from({length: n}, () => new Array<number>(n).fill(0))
  for (const [s, t, w] of edges) P[t][s] += w / out[s]
  for (let j = 0; j < n; j++) if (out[j] === 0) for (let i = 0; i < n; i++) P[i][j] = 1 / n
  const A = Array.from({length: n}, (_, i) => [...P[i].map((p, j) => (i === j ? 1 : 0) - d * p), (1 - d) / n])
  for (let col = 0; col < n; col++) {
    let pivot = col
    for (let r = col + 1; r < n; r++) if (Math.abs(A[r][col]) > Math.abs(A[pivot][col])) pivot = r
    ;[A[col], A[pivot]] = [A[pivot], A[col]]
    for (let r = 0; r < n; r++) {
      if (r === col) continue
      const f = A[r][col] / A[col][col]
      for (let k = col; k <= n; k++) A[r][k] -= f * A[col][k]
    }
  }
  return A.map((row, i) => row[n] / row[i])
}

describe('dependency graph', () => {
  it('populates nodes and edges from code chunks\' declared dependencies, idempotently', async () => {
    await c.query(`INSERT INTO code_chunks (file_path, chunk_index, module_name, content, dependencies) VALUES
      ('lib/a.ex', 0, 'A', 'defmodule A', '{B,C}'),
      ('lib/a.ex', 1, 'A', 'more of A', '{C,Ecto}'),
      ('lib/b.ex', 0, 'B', 'defmodule B', '{C}'),
      ('lib/c.ex', 0, 'C', 'defmodule C', '{}'),
      ('scripts/x.exs', 0, NULL, 'x', '{A,scripts/x.exs}')`)
    expect(await one(c, 'SELECT * FROM populate_graph_dependencies_report()')).toEqual({nodes_added: 5, edges_added: 5, edges_removed: 0})
    expect(await one(c, 'SELECT * FROM populate_graph_dependencies_report()')).toEqual({nodes_added: 0, edges_added: 0, edges_removed: 0})
    const edges = await c.query(`SELECT s.node_key AS source, t.node_key AS target FROM graph_edges e
      JOIN graph_nodes s ON s.id = e.source_id JOIN graph_nodes t ON t.id = e.target_id ORDER BY 1, 2`)
    expect(edges.rows.map((r) => `${r.source}->${r.target}`)).toEqual(['A->B', 'A->C', 'A->Ecto', 'B->C', 'scripts/x.exs->A'])
    const kinds = await c.query("SELECT node_key, kind FROM graph_nodes WHERE kind = 'external'")
    expect(kinds.rows).toEqual([{node_key: 'Ecto', kind: 'external'}])
    await c.query("UPDATE code_chunks SET dependencies = '{}' WHERE file_path = 'lib/b.ex'")
    expect(await one(c, 'SELECT * FROM populate_graph_dependencies_report()')).toEqual({nodes_added: 0, edges_added: 0, edges_removed: 1})
    // seed 001's runbook form: CALL populate_graph_dependencies(); returns the same report
    await c.query("UPDATE code_chunks SET dependencies = '{C}' WHERE file_path = 'lib/b.ex'")
    expect(await one(c, 'CALL populate_graph_dependencies()')).toEqual({nodes_added: 0, edges_added: 1, edges_removed: 0})
    expect(await one(c, 'CALL populate_graph_dependencies()')).toEqual({nodes_added: 0, edges_added: 0, edges_removed: 0})
  })

  it('PageRank equals the exact solution computed independently within 1e-6', async () => {
    const keys = ['n0', 'n1', 'n2', 'n3', 'n4', 'n5', 'n6', 'n7']
    // weighted, with parallel edge kinds, a cycle, a dangling node (n5) and an isolated one (n7)
    const edges: [number, number, number, string][] = [
      [0, 1, 1, 'depends_on'], [0, 2, 2, 'depends_on'], [1, 2, 1, 'depends_on'], [2, 0, 1, 'depends_on'],
      [2, 3, 1, 'depends_on'], [3, 4, 1, 'depends_on'], [4, 2, 1, 'depends_on'], [4, 5, 3, 'depends_on'],
      [6, 5, 1, 'depends_on'], [6, 5, 1, 'calls'], [6, 0, 1, 'depends_on'], [1, 3, 0.5, 'depends_on'],
    ]
    await c.query('INSERT INTO graph_nodes (id, node_key) SELECT i - 1, k FROM unnest($1::text[]) WITH ORDINALITY AS u(k, i)', [keys])
    for (const [s, t, w, kind] of edges) {
      await c.query('INSERT INTO graph_edges (source_id, target_id, weight, kind) VALUES ($1, $2, $3, $4)', [s, t, w, kind])
    }
    const run = await one<{nodes: number; iterations: number; converged: boolean; delta: number}>(c, 'SELECT * FROM compute_pagerank()')
    expect(run.nodes).toBe(8)
    expect(run.converged).toBe(true)
    expect(run.delta).toBeLessThan(1e-10)
    const {rows} = await c.query<{id: string; pagerank: number}>('SELECT id, pagerank FROM graph_nodes ORDER BY id')
    const expected = pagerankBySolve(8, edges.map(([s, t, w]) => [s, t, w]))
    expect(expected.reduce((x, y) => x + y, 0)).toBeCloseTo(1, 12)
    rows.forEach((r, i) => expect(Math.abs(r.pagerank - expected[i])).toBeLessThan(1e-6))
  })
})

describe('metrics', () => {
  it('5 min / 1 h / 1 day rollups equal percentile_cont over the raw rows', async () => {
    await c.query(`INSERT INTO metrics_events (metric, value, agent_id, recorded_at)
      SELECT CASE WHEN g % 2 = 0 THEN 'task_duration_ms' ELSE 'agent_cpu' END,
             round((random() * 1000)::numeric, 3)::float8,
             CASE g % 3 WHEN 0 THEN NULL WHEN 1 THEN 'a1' ELSE 'a2' END,
             now() - random() * interval '30 hours'
      FROM generate_series(1, 6000) g`)
    const refreshed = await c.query<{target: string; rows_written: string}>("SELECT * FROM refresh_metrics('-infinity')")
    expect(refreshed.rows.map((r) => r.target)).toEqual(['agent_performance_5min', 'metrics_rollups_5min', 'metrics_rollups_1h', 'metrics_rollups_1day'])
    for (const [resolution, width] of [['5min', '5 minutes'], ['1h', '1 hour'], ['1day', '1 day']]) {
      const diff = await one<{raw_groups: number; rollups: number; mismatches: number}>(
        c,
        `WITH raw AS (
           SELECT date_bin($2::interval, recorded_at, '2000-01-01 00:00:00+00') AS b, metric, coalesce(agent_id, '-') AS agent,
                  count(*) AS n, avg(value) AS avg, min(value) AS min, max(value) AS max,
                  percentile_cont(0.5) WITHIN GROUP (ORDER BY value) AS p50,
                  percentile_cont(0.95) WITHIN GROUP (ORDER BY value) AS p95,
                  percentile_cont(0.99) WITHIN GROUP (ORDER BY value) AS p99
           FROM metrics_events GROUP BY 1, 2, 3
           UNION ALL
           SELECT date_bin($2::interval, recorded_at, '2000-01-01 00:00:00+00'), metric, '*', count(*), avg(value), min(value), max(value),
                  percentile_cont(0.5) WITHIN GROUP (ORDER BY value), percentile_cont(0.95) WITHIN GROUP (ORDER BY value),
                  percentile_cont(0.99) WITHIN GROUP (ORDER BY value)
           FROM metrics_events GROUP BY 1, 2
         ), expected AS (SELECT * FROM raw WHERE agent <> '-'),
         got AS (SELECT * FROM metrics_rollups WHERE resolution = $1)
         SELECT (SELECT count(*)::int FROM expected) AS raw_groups, (SELECT count(*)::int FROM got) AS rollups,
                (SELECT count(*)::int FROM expected e FULL JOIN got g
                   ON g.bucket_start = e.b AND g.metric = e.metric AND g.agent_key = e.agent
                 WHERE g.metric IS NULL OR e.metric IS NULL OR g.sample_count <> e.n OR abs(g.avg_value - e.avg) > 1e-9
                    OR g.min_value <> e.min OR g.max_value <> e.max OR abs(g.p50 - e.p50) > 1e-9
                    OR abs(g.p95 - e.p95) > 1e-9 OR abs(g.p99 - e.p99) > 1e-9) AS mismatches`,
        [resolution, width],
      )
      expect(diff.mismatches, resolution).toBe(0)
      expect(diff.rollups).toBe(diff.raw_groups)
      expect(diff.rollups).toBeGreaterThan(0)
    }
    // one bucket checked against percentiles computed here (linear interpolation, as percentile_cont)
    const bucket = await one<{values: number[]; p95: number; p50: number}>(c, `
      SELECT (SELECT array_agg(value ORDER BY value) FROM metrics_events e
              WHERE e.metric = r.metric AND date_bin('1 day', e.recorded_at, '2000-01-01 00:00:00+00') = r.bucket_start) AS values,
             r.p95, r.p50
      FROM metrics_1d r WHERE r.agent_key = '*' ORDER BY r.sample_count DESC LIMIT 1`)
    const pct = (xs: number[], p: number) => {
      const pos = p * (xs.length - 1)
      const lo = Math.floor(pos)
      return xs[lo] + (xs[Math.min(lo + 1, xs.length - 1)] - xs[lo]) * (pos - lo)
    }
    expect(bucket.p95).toBeCloseTo(pct(bucket.values, 0.95), 9)
    expect(bucket.p50).toBeCloseTo(pct(bucket.values, 0.5), 9)

    // a later refresh of the recent window leaves older buckets and the totals intact
    await c.query('SELECT * FROM refresh_metrics_rollups()')
    expect(await one(c, "SELECT sum(sample_count)::int AS n FROM metrics_rollups WHERE resolution = '1h' AND agent_key = '*'")).toEqual({n: 6000})
  })

  it('refreshes agent_performance_5min from finished tasks of the last 24 hours', async () => {
    await c.query("INSERT INTO agents (id) VALUES ('a1')")
    await c.query(`INSERT INTO tasks (title, status, assigned_agent_id, assigned_at, started_at, completed_at) VALUES
      ('x', 'completed', 'a1', '2000-01-01', date_bin('5 minutes', now(), '2000-01-01 00:00:00+00') - interval '10 min', date_bin('5 minutes', now(), '2000-01-01 00:00:00+00') - interval '4 min'),
      ('y', 'failed', 'a1', '2000-01-01', date_bin('5 minutes', now(), '2000-01-01 00:00:00+00') - interval '6 min', date_bin('5 minutes', now(), '2000-01-01 00:00:00+00') - interval '3 min'),
      ('z', 'completed', 'a1', '2000-01-01', now() - interval '3 days', now() - interval '2 days')`)
    await c.query('SELECT * FROM refresh_metrics()')
    const {rows} = await c.query('SELECT agent_id, tasks_completed, tasks_failed, avg_duration_ms::float8 AS avg FROM agent_performance_5min')
    expect(rows).toEqual([{agent_id: 'a1', tasks_completed: 1, tasks_failed: 1, avg: 270_000}])
  })
})

describe('maintenance, cache, registry, similarity, work plan', () => {
  it('archives finished tasks past the retention and leaves the rest', async () => {
    await c.query("INSERT INTO agents (id) VALUES ('a1')")
    await c.query(`INSERT INTO tasks (title, status, assigned_agent_id, assigned_at, completed_at) VALUES
      ('old-done', 'completed', 'a1', now() - interval '3 days', now() - interval '2 days'),
      ('old-failed', 'failed', 'a1', now() - interval '3 days', now() - interval '2 days'),
      ('new-done', 'completed', 'a1', now(), now()),
      ('running', 'running', 'a1', now(), NULL)`)
    expect(await one(c, 'SELECT archive_completed_tasks() AS n')).toEqual({n: 2})
    const live = await c.query('SELECT title FROM tasks ORDER BY title')
    const archived = await c.query('SELECT title, status FROM tasks_archive ORDER BY title')
    expect(live.rows.map((r) => r.title)).toEqual(['new-done', 'running'])
    expect(archived.rows).toEqual([{title: 'old-done', status: 'completed'}, {title: 'old-failed', status: 'failed'}])
  })

  it('cleans up old artifacts and stale code chunks; Oban cleanup is a no-op without oban_jobs', async () => {
    await c.query(`INSERT INTO artifacts (kind, name, pinned, created_at) VALUES
      ('report', 'old', false, now() - interval '40 days'), ('report', 'pinned', true, now() - interval '40 days'), ('report', 'new', false, now())`)
    expect(await one(c, 'SELECT cleanup_old_artifacts() AS n')).toEqual({n: 1})
    await c.query(`INSERT INTO code_chunks (file_path, content, ingested_at) VALUES ('a', 'x', now() - interval '60 days'), ('b', 'y', now())`)
    await c.query("INSERT INTO code_embeddings (chunk_id, model, embedding) SELECT id, 'm', '{1,2}' FROM code_chunks")
    expect(await one(c, 'SELECT cleanup_old_code_chunks() AS n')).toEqual({n: 1})
    expect(await one(c, 'SELECT count(*)::int AS n FROM code_embeddings')).toEqual({n: 1})
    expect(await one(c, 'SELECT cleanup_old_oban_jobs() AS n')).toEqual({n: 0})
  })

  it('records table and vector statistics; the reindex dry run names candidates without rebuilding', async () => {
    await c.query("INSERT INTO code_chunks (id, file_path, content) VALUES (1, 'a', 'x'), (2, 'b', 'y')")
    await c.query("INSERT INTO code_embeddings (chunk_id, model, embedding) VALUES (1, 'm', '{3,4}'), (2, 'm', '{0,1}')")
    const stats = await c.query('SELECT * FROM refresh_vector_stats()')
    expect(stats.rows.find((r) => r.table_name === 'code_embeddings')).toEqual({
      table_name: 'code_embeddings', column_name: 'embedding', row_count: '2', vectors: '2', min_dims: 2, max_dims: 2, avg_norm: 3,
    })
    expect(await one(c, "SELECT count(*)::int AS n FROM vector_statistics WHERE table_name = 'code_embeddings'")).toEqual({n: 1})
    const tables = await one<{n: number}>(c, 'SELECT collect_table_statistics() AS n')
    expect(tables.n).toBeGreaterThanOrEqual(19)
    const reindex = await c.query('SELECT * FROM reindex_bloated_indexes(0.3, 0, true)')
    for (const r of reindex.rows) expect(r.action).toBe('would reindex')
  })

  it('cache: get counts hits, refresh extends hot entries, cleanup removes expired ones; prewarm skips without pg_prewarm', async () => {
    await c.query(`SELECT cache_put('hot', '{"v": 1}', interval '10 minutes'), cache_put('cold', '{"v": 2}', interval '10 minutes'),
      cache_put('gone', '{"v": 3}', interval '1 hour')`)
    await c.query("UPDATE cache_entries SET expires_at = now() - interval '1 second' WHERE key = 'gone'")
    for (let i = 0; i < 5; i++) expect(await one(c, "SELECT cache_get('hot') AS v")).toEqual({v: {v: 1}})
    expect(await one(c, "SELECT cache_get('gone') AS v")).toEqual({v: null})
    const before = await one<{e: Date}>(c, "SELECT expires_at AS e FROM cache_entries WHERE key = 'hot'")
    await c.query("UPDATE cache_entries SET expires_at = now() + interval '1 minute' WHERE key IN ('hot', 'cold')")
    expect(await one(c, 'SELECT refresh_cache(5) AS n')).toEqual({n: 1})
    const after = await one<{e: Date; hits: string}>(c, "SELECT expires_at AS e, hit_count AS hits FROM cache_entries WHERE key = 'hot'")
    expect(after.e.getTime()).toBeGreaterThanOrEqual(before.e.getTime() - 1000)
    expect(after.hits).toBe('0')
    expect(await one(c, 'SELECT cleanup_expired_cache() AS n')).toEqual({n: 1})
    const hasPrewarm = await one<{n: number}>(c, "SELECT count(*)::int AS n FROM pg_extension WHERE extname = 'pg_prewarm'")
    const prewarm = await c.query('SELECT * FROM prewarm_cache()')
    if (hasPrewarm.n === 0) expect(prewarm.rows).toEqual([])
    else expect(prewarm.rows.length).toBeGreaterThan(0)
  })

  it('package registry cache: fresh under 24 h, expiry listing oldest first', async () => {
    await c.query(`INSERT INTO package_registry (ecosystem, name, version, fetched_at) VALUES
      ('npm', 'react', '18.2.0', now() - interval '1 hour'),
      ('cargo', 'tokio', '1.0.0', now() - interval '30 hours'),
      ('hex', 'phoenix', '1.7.0', now() - interval '25 hours')`)
    expect(await one(c, `SELECT package_cache_is_fresh('npm', 'react') AS react, package_cache_is_fresh('cargo', 'tokio') AS tokio,
      package_cache_is_fresh('pypi', 'django') AS django`)).toEqual({react: true, tokio: false, django: false})
    const expired = await c.query('SELECT ecosystem, name FROM package_cache_expired()')
    expect(expired.rows).toEqual([{ecosystem: 'cargo', name: 'tokio'}, {ecosystem: 'hex', name: 'phoenix'}])
    const stats = await c.query('SELECT ecosystem, packages::int, fresh::int, expired::int FROM package_cache_stats()')
    expect(stats.rows).toEqual([
      {ecosystem: 'cargo', packages: 1, fresh: 0, expired: 1},
      {ecosystem: 'hex', packages: 1, fresh: 0, expired: 1},
      {ecosystem: 'npm', packages: 1, fresh: 1, expired: 0},
    ])
  })

  it('pattern similarity: nearest neighbours by L2 distance, thresholds and duplicates', async () => {
    await c.query(`INSERT INTO agents (id) VALUES ('a1'), ('a2')`)
    await c.query(`INSERT INTO learned_patterns (id, agent_id, pattern_type, embedding) VALUES
      (1, 'a1', 'x', '{1,0,0}'), (2, 'a1', 'y', '{0.99,0.01,0}'), (3, 'a2', 'z', '{0,1,0}'), (4, 'a2', 'w', '{0,0,1,0}')`)
    const near = await c.query<{pattern_id: string; distance: number; similarity_score: number}>(
      "SELECT pattern_id, distance, similarity_score FROM search_similar_patterns('{1,0,0}', 3)",
    )
    expect(near.rows.map((r) => r.pattern_id)).toEqual(['1', '2', '3'])
    expect(near.rows[1].distance).toBeCloseTo(Math.hypot(0.01, 0.01), 6)
    expect(near.rows[2].similarity_score).toBeCloseTo(1 - Math.SQRT2 / 2, 9)
    const within = await c.query("SELECT pattern_id FROM search_similar_patterns('{0,1,0}', 5, 0.5)")
    expect(within.rows.map((r) => r.pattern_id)).toEqual(['3'])
    const ofAgent = await c.query("SELECT pattern_id FROM search_similar_patterns('{1,0,0}', 5, NULL, 'a2')")
    expect(ofAgent.rows.map((r) => r.pattern_id)).toEqual(['3'])
    const neighbours = await c.query('SELECT pattern_id FROM pattern_neighbors(1, 1)')
    expect(neighbours.rows.map((r) => r.pattern_id)).toEqual(['2'])
    const dups = await c.query('SELECT pattern_id, duplicate_of FROM find_duplicate_patterns(0.95)')
    expect(dups.rows).toEqual([{pattern_id: '2', duplicate_of: '1'}])
  })

  it('crypto helpers: bcrypt, HMAC sign/verify, tokens', async () => {
    const r = await one<{ok: boolean; bad: boolean; sig: string; good: boolean; forged: boolean; token: string}>(c, `
      WITH h AS (SELECT hash_password('hunter2') AS h)
      SELECT verify_password('hunter2', h.h) AS ok, verify_password('hunter3', h.h) AS bad,
             sign_message('k', 'm') AS sig, verify_message('k', 'm', sign_message('k', 'm')) AS good,
             verify_message('k', 'm2', sign_message('k', 'm')) AS forged, generate_token() AS token
      FROM h`)
    expect(r).toMatchObject({ok: true, bad: false, good: true, forged: false})
    const {createHmac} = await import('node:crypto')
    expect(r.sig).toBe(createHmac('sha256', 'k').update('m').digest('hex'))
    expect(r.token).toMatch(/^[A-Za-z0-9_-]{43}$/)
  })

  it('seed_work_plan() inserts the roadmap once and never overwrites edits', async () => {
    const first = await one<{n: number}>(c, 'SELECT seed_work_plan() AS n')
    expect(first.n).toBeGreaterThan(5)
    await c.query("UPDATE work_plan SET status = 'done' WHERE key = 'planning-seed'")
    expect(await one(c, 'SELECT seed_work_plan() AS n')).toEqual({n: 0})
    expect(await one(c, "SELECT status FROM work_plan WHERE key = 'planning-seed'")).toEqual({status: 'done'})
    expect(await one(c, 'SELECT count(*)::int AS n FROM work_plan')).toEqual({n: first.n})
  })
})
