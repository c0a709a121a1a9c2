import type pg from 'pg'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {validateMessage} from '../../src/lib/queue/contracts.js'
import {connect, createTestDatabase, installComponents} from '../helpers/db.js'

/**
 * Issue 18: the centralcloud-new-patterns contract and its producer, learn_patterns_from_analysis(),
 * as a pair. Every message the producer can emit (an analysis with or without an agent, scored or
 * not) passes the contract; what the contract refuses the producer never emits.
 */

let c: pg.Client

beforeAll(async () => {
  const db = await createTestDatabase('new_pattern_contract')
  c = await connect(db.url)
  await c.query('CREATE EXTENSION IF NOT EXISTS pgcrypto')
  await installComponents(db.url, ['pgmq', 'singularity'])
  await c.query(`SELECT pgmq.create('centralcloud-new-patterns')`)
})

afterAll(async () => {
  await c?.end()
})

describe('centralcloud-new-patterns: producer and contract', () => {
  it('every message learn_patterns_from_analysis() emits passes the newPattern contract, including NULL agent and confidence', async () => {
    await c.query(`INSERT INTO agents (id, name) VALUES ('agent-1', 'one')`)
    await c.query(`INSERT INTO analysis_results (agent_id, pattern_type, pattern, confidence) VALUES
      ('agent-1', 'async', '{"name": "scored with agent"}', 0.9),
      (NULL, 'retry', '{"name": "no agent"}', 0.5),
      ('agent-1', 'loop', '{"name": "unscored"}', NULL),
      (NULL, NULL, '{}', NULL)`)
    // an agent deleted after its analysis: ON DELETE SET NULL leaves agent_id NULL
    await c.query(`INSERT INTO agents (id, name) VALUES ('agent-gone', 'gone')`)
    await c.query(`INSERT INTO analysis_results (agent_id, pattern, confidence) VALUES ('agent-gone', '{"name": "orphan"}', 0.7)`)
    await c.query(`DELETE FROM agents WHERE id = 'agent-gone'`)

    const {rows} = await c.query<{patterns_learned: number; patterns_queued: number}>('SELECT * FROM learn_patterns_from_analysis()')
    expect(rows[0]).toEqual({patterns_learned: 5, patterns_queued: 5})

    const messages = (await c.query<{message: Record<string, unknown>}>(`SELECT message FROM pgmq."q_centralcloud-new-patterns" ORDER BY msg_id`)).rows.map((r) => r.message)
    expect(messages).toHaveLength(5)
    expect(messages.filter((m) => m.agent_id === null)).toHaveLength(3)
    expect(messages.filter((m) => m.confidence === null)).toHaveLength(2)
    for (const message of messages) {
      expect(validateMessage('centralcloud-new-patterns', message)).toEqual({ok: true, contract: 'new_pattern'})
    }
  })

  it('the contract still refuses what the producer never emits', () => {
    const good = {agent_id: null, pattern: {}, confidence: null, learned_at: '2026-01-01T00:00:00.123456+00:00', source: 'singularity-learning'}
    expect(validateMessage('centralcloud-new-patterns', good).ok).toBe(true)
    const {agent_id: _a, ...noAgentKey} = good
    expect(validateMessage('centralcloud-new-patterns', noAgentKey)).toMatchObject({ok: false, path: 'agent_id', message: 'is required'})
    expect(validateMessage('centralcloud-new-patterns', {...good, agent_id: ''})).toMatchObject({ok: false, path: 'agent_id'})
    expect(validateMessage('centralcloud-new-patterns', {...good, confidence: 1.5})).toMatchObject({ok: false, path: 'confidence'})
    expect(validateMessage('centralcloud-new-patterns', {...good, pattern: 'text'})).toMatchObject({ok: false, path: 'pattern'})
    expect(validateMessage('centralcloud-new-patterns', {...good, learned_at: 'yesterday'})).toMatchObject({ok: false, path: 'learned_at'})
  })
})
