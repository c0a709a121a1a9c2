import type pg from 'pg'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {validateMessage} from '../../src/lib/queue/contracts.js'
import {CDC_BRIDGE, SINGULARITY_QUEUES} from '../../src/topology.js'
import {connect, createTestDatabase, installComponents} from '../helpers/db.js'

/**
 * Issue 18 / seed 002: the CDC bridge delivers exactly once. N captured changes give N messages
 * across bounded runs, some of them killed half-way (the backend terminated while it waits on a
 * lock in the middle of sending), whatever the slot did meanwhile.
 */

const ROUTES = JSON.stringify(CDC_BRIDGE.queues)
let url: string
let db: string
let c: pg.Client
let slot: string

const run = (client: pg.Client, max: number) =>
  client.query<{messages_sent: number; transactions: number; more_left: boolean}>(`SELECT * FROM cdc_bridge_run($1, $2::jsonb, $3)`, [CDC_BRIDGE.slotSuffix, ROUTES, max])

async function messages(queue: string): Promise<Record<string, any>[]> {
  const {rows} = await c.query<{message: Record<string, any>}>(`SELECT message FROM pgmq.${JSON.stringify(`q_${queue}`)} ORDER BY msg_id`)
  return rows.map((r) => r.message)
}

/** Waits until a backend waits on a lock, or its run ends; fails naming what it waited for. */
async function lockWaitOrEnd(pid: number, ended: () => boolean): Promise<'waiting' | 'ended'> {
  for (let i = 0; i < 600; i++) {
    if (ended()) return 'ended'
    const {rows} = await c.query(`SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'`, [pid])
    if (rows.length === 1) return 'waiting'
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`backend ${pid} (cdc_bridge_run) neither waited on the queue lock nor finished within 30 s`)
}

/**
 * A bridge run killed half-way when its window holds a metrics change: it sends what comes before
 * it, then waits on cdc-metrics-events' lock and is terminated. Returns whether it was killed (a
 * window without metrics changes just runs).
 */
async function killedRun(max: number): Promise<boolean> {
  const blocker = await connect(url)
  const victim = await connect(url)
  try {
    await blocker.query('BEGIN')
    await blocker.query(`LOCK TABLE pgmq."q_cdc-metrics-events" IN ACCESS EXCLUSIVE MODE`)
    const pid = (await victim.query<{pid: number}>('SELECT pg_backend_pid() AS pid')).rows[0].pid
    let outcome: string | undefined
    const running = run(victim, max).then(
      () => (outcome = 'finished'),
      (error: {code?: string}) => (outcome = error.code ?? 'error'),
    )
    if ((await lockWaitOrEnd(pid, () => outcome !== undefined)) === 'ended') {
      await running
      expect(outcome).toBe('finished')
      await blocker.query('ROLLBACK')
      return false
    }
    await c.query('SELECT pg_terminate_backend($1)', [pid])
    await running
    // 57P01: admin_shutdown, the run died and its transaction with it
    expect(outcome).toBe('57P01')
    await blocker.query('ROLLBACK')
    return true
  } finally {
    await blocker.end()
    await victim.end().catch(() => {})
  }
}

beforeAll(async () => {
  const created = await createTestDatabase('cdc_bridge')
  url = created.url
  db = created.name
  slot = `${db}_${CDC_BRIDGE.slotSuffix}`
  c = await connect(url)
  await c.query('CREATE EXTENSION IF NOT EXISTS pgcrypto')
  await installComponents(url, ['pgmq', 'singularity'])
  for (const q of SINGULARITY_QUEUES) await c.query('SELECT pgmq.create($1)', [q])
  await c.query(`SELECT pg_create_logical_replication_slot($1, 'wal2json')`, [slot])
})

afterAll(async () => {
  if (c) {
    await c.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [slot]).catch(() => {})
    await c.end()
  }
})

describe('CDC bridge (seed 002)', () => {
  it('N changes give N messages across bounded runs, some killed half-way', async () => {
    const before = (await c.query<{lsn: string}>('SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1', [slot])).rows[0].lsn
    await c.query(`INSERT INTO agents (id, name) VALUES ('a1', 'one')`)
    // transactions that mix the tables: learned patterns first, then metrics (the killed runs
    // have sent the patterns when they block on the metrics queue)
    let patterns = 0
    let metrics = 0
    for (let t = 0; t < 6; t++) {
      await c.query('BEGIN')
      await c.query(`INSERT INTO learned_patterns (agent_id, pattern, confidence) SELECT 'a1', jsonb_build_object('n', g), 0.5 FROM generate_series(1, 3) g`)
      await c.query(`INSERT INTO metrics_events (metric, value, agent_id) SELECT 'agent_cpu', g, 'a1' FROM generate_series(1, 2) g`)
      await c.query('COMMIT')
      patterns += 3
      metrics += 2
    }
    // one transaction far larger than a run's bound
    await c.query(`INSERT INTO learned_patterns (pattern) SELECT jsonb_build_object('big', g) FROM generate_series(1, 40) g`)
    patterns += 40
    // sessions (the trigger encrypts the state; the bridge sees the row as stored)
    for (let s = 0; s < 5; s++) await c.query(`INSERT INTO agent_sessions (agent_id, state) VALUES ('a1', '{"secret": "x"}')`)
    // an update and a delete are changes too
    await c.query(`UPDATE learned_patterns SET confidence = 0.9 WHERE pattern = '{"n": 1}' AND agent_id = 'a1' AND id = (SELECT min(id) FROM learned_patterns)`)
    await c.query(`DELETE FROM metrics_events WHERE id = (SELECT max(id) FROM metrics_events)`)
    const expected = {'cdc-learned-patterns': patterns + 1, 'cdc-agent-sessions': 5, 'cdc-metrics-events': metrics + 1}

    // runs of at most 7 changes; every second one killed half-way when it reaches a metrics change
    let finished = 0
    let killed = 0
    for (let i = 0; i < 100; i++) {
      if (i % 2 === 1) {
        if (await killedRun(7)) killed++
        continue
      }
      const {rows} = await run(c, 7)
      expect(rows[0].messages_sent).toBeLessThanOrEqual(7)
      if (!rows[0].more_left && rows[0].messages_sent === 0) {
        finished = i
        break
      }
    }
    expect(finished, 'the bridge drained the slot within 100 runs').toBeGreaterThan(0)
    expect(killed, 'runs killed half-way').toBeGreaterThanOrEqual(3)

    for (const [queue, n] of Object.entries(expected)) {
      const got = await messages(queue)
      expect(got, queue).toHaveLength(n)
      for (const m of got) expect(validateMessage(queue, m), queue).toMatchObject({ok: true})
    }
    // exactly once: every learned pattern inserted once, no duplicate
    const inserts = (await messages('cdc-learned-patterns')).filter((m) => m.kind === 'insert')
    const ids = inserts.map((m) => m.values[m.columns.indexOf('id')])
    expect(new Set(ids).size).toBe(patterns)
    const {rows: all} = await c.query<{n: number}>('SELECT count(*)::int AS n FROM learned_patterns')
    expect(ids.length).toBe(all[0].n)
    const kinds = (await messages('cdc-learned-patterns')).map((m) => m.kind)
    expect(kinds.filter((k) => k === 'update')).toHaveLength(1)
    expect((await messages('cdc-metrics-events')).filter((m) => m.kind === 'delete')).toHaveLength(1)
    // the session's state left the database encrypted only
    for (const m of await messages('cdc-agent-sessions')) expect(JSON.stringify(m)).not.toContain('secret')

    // the cursor agrees, and the slot released the WAL of what was sent
    const cursor = (await c.query('SELECT messages_sent, last_complete FROM singularity_private.cdc_bridge_cursor WHERE slot_name = $1', [slot])).rows[0]
    expect(cursor).toEqual({messages_sent: String(patterns + 1 + 5 + metrics + 1), last_complete: true})
    await run(c, 7)
    const after = (await c.query<{lsn: string; later: boolean}>('SELECT confirmed_flush_lsn::text AS lsn, confirmed_flush_lsn > $2::pg_lsn AS later FROM pg_replication_slots WHERE slot_name = $1', [slot, before])).rows[0]
    expect(after.later).toBe(true)
  })

  it('a busy slot makes a second run return at once', async () => {
    await c.query(`INSERT INTO metrics_events (metric, value) VALUES ('m', 1)`)
    const other = await connect(url)
    try {
      await other.query('BEGIN')
      await run(other, 100)
      // the first run holds the slot's lock until it commits: a concurrent run does nothing
      const {rows} = await run(c, 100)
      expect(rows[0]).toMatchObject({messages_sent: 0, transactions: 0})
      await other.query('COMMIT')
    } finally {
      await other.end()
    }
    const last = (await messages('cdc-metrics-events')).at(-1)!
    expect(last).toMatchObject({kind: 'insert', table: 'metrics_events', partition: null})
    expect(last.values[last.columns.indexOf('metric')]).toBe('m')
  })

  it('why the cursor: moving a slot is not undone by ROLLBACK', async () => {
    const probe = `${db}_probe`
    await c.query(`SELECT pg_create_logical_replication_slot($1, 'wal2json')`, [probe])
    try {
      await c.query(`INSERT INTO metrics_events (metric, value) VALUES ('probe', 1)`)
      const lsn = async () => (await c.query<{l: string}>('SELECT confirmed_flush_lsn::text AS l FROM pg_replication_slots WHERE slot_name = $1', [probe])).rows[0].l
      const before = await lsn()
      await c.query('BEGIN')
      await c.query('SELECT pg_replication_slot_advance($1, pg_current_wal_lsn())', [probe])
      await c.query('ROLLBACK')
      expect(await lsn()).not.toBe(before)
    } finally {
      await c.query('SELECT pg_drop_replication_slot($1)', [probe])
    }
  })

  it('refuses a slot that does not exist, naming it', async () => {
    await expect(c.query(`SELECT * FROM cdc_bridge_run('no_such_suffix', '{}'::jsonb, 10)`)).rejects.toMatchObject({code: '42704'})
  })
})
