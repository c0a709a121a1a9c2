import {mkdtempSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import pg from 'pg'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {validateMessage} from '../../src/lib/queue/contracts.js'
import {SHARED_QUEUE_ACCESS, type RoleKey} from '../../src/topology.js'
import {runCli} from '../helpers/cli.js'
import {connect, provisionedEstate, urlFor, withClient} from '../helpers/db.js'

/**
 * Issue 18, the platform's own flows end to end on a real server: each step as the service's own
 * login with the password db init generated (bundled queue engine, named). What a service must do
 * works; every wrong direction is refused with 42501.
 */

const P = 't_flow_'
const secrets = mkdtempSync(join(tmpdir(), 'sing-flow-'))
const passwordsFile = join(secrets, 'passwords.json')
const SG = `${P}singularity`
const SQ = `${P}shared_queue`
const clients: pg.Client[] = []

/** A session as a service role (its generated password), on one database. */
async function as(role: RoleKey, database: string): Promise<pg.Client> {
  const passwords = JSON.parse(readFileSync(passwordsFile, 'utf8')) as Record<string, string>
  const url = new URL(urlFor(database))
  url.username = P + role
  url.password = encodeURIComponent(passwords[P + role])
  const client = await connect(url.toString())
  clients.push(client)
  return client
}

/** Runs SQL in a transaction that is rolled back: 'ok' or the SQLSTATE it was refused with. */
async function attempt(client: pg.Client, sql: string, params: unknown[] = []): Promise<string> {
  await client.query('BEGIN')
  try {
    await client.query(sql, params)
    return 'ok'
  } catch (error) {
    return (error as {code: string}).code
  } finally {
    await client.query('ROLLBACK')
  }
}

const publish = (c: pg.Client, queue: string) => attempt(c, `SELECT pgmq.send($1, '{"probe": true}'::jsonb)`, [queue])
/** consume: read one message and archive it (UPDATE/DELETE on the queue, INSERT on the archive) */
const consume = (c: pg.Client, queue: string) => attempt(c, `SELECT pgmq.archive($1, msg_id) FROM pgmq.read($1, 30, 1)`, [queue])

async function one<T extends pg.QueryResultRow>(c: pg.Client, sql: string, params: unknown[] = []): Promise<T[]> {
  return (await c.query<T>(sql, params)).rows
}

beforeAll(async () => {
  // the template's copy completed by `db init` (test/helpers/estate-template.ts); throws on failure
  await provisionedEstate(P, passwordsFile)
  // one message waiting in every shared queue, so that a consume attempt has something to move
  await withClient(urlFor(SQ), async (c) => {
    for (const {queue} of SHARED_QUEUE_ACCESS) await c.query(`SELECT pgmq.send($1, '{"seeded": true}'::jsonb)`, [queue])
  })
}, 300_000)

afterAll(async () => {
  await Promise.all(clients.map((c) => c.end().catch(() => {})))
})

describe('the platform flows, each step as the service that does it', () => {
  it('singularity inserts analysis results; the learn job queues them; CentralCloud consumes and archives them', async () => {
    const singularity = await as('singularity', SG)
    await singularity.query(`INSERT INTO agents (id, name, status) VALUES ('agent-1', 'one', 'active')`)
    await singularity.query(`INSERT INTO analysis_results (agent_id, pattern_type, pattern, confidence) VALUES
      ('agent-1', 'retry', '{"name": "retry with backoff"}', 0.9), ('agent-1', 'async', '{"name": "task supervisor"}', 0.8), (NULL, 'loop', '{"name": "orphan"}', NULL)`)

    // the learn job, by the seed's own name, as pg_cron would run it
    const learn = await runCli(['jobs', 'run', 'learn-patterns-every-5min', '--prefix', P, '--json'], {timeoutMs: 120_000})
    expect(learn.exitCode, learn.stderr).toBe(0)
    expect(learn.json()).toMatchObject({name: 'learn-patterns', alias: 'learn-patterns-every-5min', runs: [{ok: true, database: SG, output: {rows: [{patterns_learned: 3, patterns_queued: 3}]}}]})

    // CentralCloud's consumer login reads and archives them, and nothing else there
    const consumer = await as('centralcloud_consumer', SG)
    const read = await one<{msg_id: string; message: Record<string, unknown>}>(consumer, `SELECT msg_id, message FROM pgmq.read('centralcloud-new-patterns', 30, 10)`)
    expect(read).toHaveLength(3)
    for (const m of read) expect(validateMessage('centralcloud-new-patterns', m.message)).toMatchObject({ok: true})
    const archived = await one<{a: boolean}>(consumer, `SELECT pgmq.archive('centralcloud-new-patterns', $1::bigint[]) AS a`, [read.map((m) => m.msg_id)])
    expect(archived).toHaveLength(3)
    const left = await one<{n: number}>(singularity, `SELECT count(*)::int AS n FROM pgmq."q_centralcloud-new-patterns"`)
    expect(left[0].n).toBe(0)
    expect(await consume(consumer, 'agent-sessions')).toBe('ok')
    expect(await publish(consumer, 'centralcloud-new-patterns')).toBe('42501')
    expect(await consume(consumer, 'agent-knowledge-updates')).toBe('42501')
    expect(await attempt(consumer, 'SELECT count(*) FROM public.learned_patterns')).toBe('42501')
    expect(await attempt(consumer, 'SELECT count(*) FROM public.analysis_results')).toBe('42501')
  })

  it('singularity publishes llm_requests; nexus consumes and publishes llm_results; singularity consumes them', async () => {
    const singularity = await as('singularity', SQ)
    const nexus = await as('nexus', SQ)
    const request = {agent_id: 'self-improving-agent', task_type: 'architect', messages: [{role: 'user', content: 'design it'}]}
    const [{send: id}] = await one<{send: string}>(singularity, `SELECT pgmq.send('llm_requests', $1::jsonb) AS send`, [JSON.stringify(request)])
    const got = await one<{msg_id: string; message: unknown}>(nexus, `SELECT msg_id, message FROM pgmq.read('llm_requests', 30, 10) WHERE message->>'agent_id' = 'self-improving-agent'`)
    expect(got.map((m) => m.msg_id)).toEqual([id])
    await nexus.query(`SELECT pgmq.archive('llm_requests', $1::bigint)`, [id])
    await nexus.query(`SELECT pgmq.send('llm_results', $1::jsonb)`, [JSON.stringify({request_id: Number(id), result: 'a plan', model: 'claude-opus'})])
    const results = await one<{msg_id: string; message: {request_id: number}}>(singularity, `SELECT msg_id, message FROM pgmq.read('llm_results', 30, 10) WHERE message ? 'result'`)
    expect(results.map((r) => r.message.request_id)).toEqual([Number(id)])
    await singularity.query(`SELECT pgmq.delete('llm_results', $1::bigint)`, [results[0].msg_id])
  })

  it('genesis consumes job_requests and publishes job_results', async () => {
    const singularity = await as('singularity', SQ)
    const genesis = await as('genesis', SQ)
    await singularity.query(`SELECT pgmq.send('job_requests', '{"id": "j1", "code": "IO.puts 1", "language": "elixir"}')`)
    const jobs = await one<{msg_id: string}>(genesis, `SELECT msg_id FROM pgmq.read('job_requests', 30, 10) WHERE message->>'id' = 'j1'`)
    expect(jobs).toHaveLength(1)
    await genesis.query(`SELECT pgmq.archive('job_requests', $1::bigint)`, [jobs[0].msg_id])
    await genesis.query(`SELECT pgmq.send('job_results', '{"request_id": "j1", "output": "1", "error": null}')`)
    const results = await one<{n: number}>(singularity, `SELECT count(*)::int AS n FROM pgmq.read('job_results', 30, 10) WHERE message->>'request_id' = 'j1'`)
    expect(results[0].n).toBe(1)
  })

  it('CentralCloud publishes template_updates and pattern_messages and consumes instance_heartbeat', async () => {
    const centralcloud = await as('centralcloud', SQ)
    const singularity = await as('singularity', SQ)
    const ts = new Date().toISOString()
    await centralcloud.query(`SELECT pgmq.send('template_updates', $1::jsonb)`, [JSON.stringify({type: 'templates_updated', git_url: 'https://example.invalid/t', updated_files: ['a.json'], timestamp: ts})])
    await centralcloud.query(`SELECT pgmq.send('pattern_messages', $1::jsonb)`, [JSON.stringify({type: 'aggregated_patterns', patterns: [], timestamp: ts, source: 'centralcloud'})])
    await singularity.query(`SELECT pgmq.send('instance_heartbeat', '{"source": "singularity-1"}')`)
    const beats = await one<{msg_id: string}>(centralcloud, `SELECT msg_id FROM pgmq.read('instance_heartbeat', 30, 10) WHERE message->>'source' = 'singularity-1'`)
    expect(beats).toHaveLength(1)
    await centralcloud.query(`SELECT pgmq.archive('instance_heartbeat', $1::bigint)`, [beats[0].msg_id])
    // and the instances pick up the templates
    const updates = await one<{n: number}>(singularity, `SELECT count(*)::int AS n FROM pgmq.read('template_updates', 30, 10) WHERE message->>'type' = 'templates_updated'`)
    expect(updates[0].n).toBe(1)
  })

  it("CentralCloud's CDC login streams learned_patterns changes from the slot, and reads no table", async () => {
    const cdc = await as('centralcloud_cdc', SG)
    const changes = await one<{data: string}>(
      cdc,
      `SELECT data FROM pg_logical_slot_peek_changes($1, NULL, NULL, 'format-version', '2', 'add-tables', 'public.learned_patterns')`,
      [`${SG}_centralcloud_cdc`],
    )
    const inserts = changes.map((c) => JSON.parse(c.data)).filter((d) => d.action === 'I')
    expect(inserts).toHaveLength(3)
    expect(inserts.every((d) => d.table === 'learned_patterns')).toBe(true)
    expect(await attempt(cdc, 'SELECT count(*) FROM public.learned_patterns')).toBe('42501')
    expect(await attempt(cdc, `SELECT * FROM pgmq.read('centralcloud-new-patterns', 30, 1)`)).toBe('42501')
  })

  it('centralcloud_analytics reads the archives and nothing else', async () => {
    const analytics = await as('centralcloud_analytics', SQ)
    const archived = await one<{n: number}>(analytics, `SELECT count(*)::int AS n FROM pgmq.a_llm_requests`)
    expect(archived[0].n).toBeGreaterThanOrEqual(1)
    expect((await one<{n: number}>(analytics, `SELECT count(*)::int AS n FROM pgmq.a_job_requests`))[0].n).toBeGreaterThanOrEqual(1)
    expect(await attempt(analytics, 'SELECT count(*) FROM pgmq.q_llm_requests')).toBe('42501')
    expect(await consume(analytics, 'llm_requests')).toBe('42501')
    expect(await publish(analytics, 'llm_requests')).toBe('42501')
    await expect(as('centralcloud_analytics', SG)).rejects.toMatchObject({code: '42501'})
  })

  it('every wrong direction on shared_queue is refused with 42501, every right one works', async () => {
    const roles: RoleKey[] = ['singularity', 'genesis', 'nexus', 'centralcloud', 'centralcloud_analytics']
    const sessions = Object.fromEntries(await Promise.all(roles.map(async (r) => [r, await as(r, SQ)] as const))) as Record<RoleKey, pg.Client>
    const wrong: string[] = []
    for (const access of SHARED_QUEUE_ACCESS) {
      for (const role of roles) {
        const canPublish = access.publish.includes(role)
        const canConsume = access.consume.includes(role)
        const p = await publish(sessions[role], access.queue)
        const c = await consume(sessions[role], access.queue)
        if (p !== (canPublish ? 'ok' : '42501')) wrong.push(`${role} publish ${access.queue}: ${p}`)
        if (c !== (canConsume ? 'ok' : '42501')) wrong.push(`${role} consume ${access.queue}: ${c}`)
      }
    }
    expect(wrong).toEqual([])
    // the issue's own examples, by name
    expect(await consume(sessions.singularity, 'job_requests')).toBe('42501')
    expect(await publish(sessions.nexus, 'llm_requests')).toBe('42501')
    expect(await consume(sessions.nexus, 'llm_results')).toBe('42501')
    expect(await publish(sessions.centralcloud, 'llm_requests')).toBe('42501')
    expect(await consume(sessions.genesis, 'llm_requests')).toBe('42501')
  })
})
