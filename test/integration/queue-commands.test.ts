import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import type pg from 'pg'
import {beforeAll, describe, expect, it} from 'vitest'

import {quoteIdent} from '../../src/lib/sql/quote.js'
// in process: the same argv, output and exit codes as a child process, without a node start per run
import {runCliInProcess as runCli} from '../helpers/cli.js'
import {provisionedEstate, urlFor, withClient} from '../helpers/db.js'
import {waitFor} from '../helpers/wait.js'

/**
 * queue stats / peek / purge / send against the real test server, on an estate of this file's own
 * (prefix t_q_: databases t_q_shared_queue and t_q_singularity, copied from the run's template estate
 * and completed by `db init`: test/helpers/estate-template.ts).
 */
const P = 't_q_'
const SQ = `${P}shared_queue`
const sq = () => urlFor(SQ)
const scratch = mkdtempSync(join(tmpdir(), 'sing-queue-'))
const cli = (args: string[], options: Parameters<typeof runCli>[1] = {}) => runCli([...args, '--prefix', P], options)

/** Stated error of the estimates (after ANALYZE): length and archive within 2%, visible / in flight within 5% of length. */
const LENGTH_ERROR = 0.02
const SPLIT_ERROR = 0.05

async function q<T extends pg.QueryResultRow = any>(url: string, sql: string, values: unknown[] = []): Promise<T[]> {
  return withClient(url, async (c) => (await c.query<T>(sql, values)).rows)
}

/** Fills a queue table directly: n messages, every `inFlightEvery`-th one invisible for an hour. */
async function fill(url: string, queue: string, n: number, inFlightEvery = 0): Promise<void> {
  await q(
    url,
    `INSERT INTO pgmq.${quoteIdent(`q_${queue}`)} (vt, message)
     SELECT CASE WHEN $2 > 0 AND g % $2 = 0 THEN now() + interval '1 hour' ELSE now() END, jsonb_build_object('n', g)
       FROM generate_series(1, $1::int) g`,
    [n, inFlightEvery],
  )
}


async function waitForInserts(url: string, expected: Record<string, number>): Promise<void> {
  await waitFor(`the statistics to count these inserts: ${JSON.stringify(expected)}`, async () => {
    const rows = await q<{relid: string; n: string}>(url, 'SELECT relid::regclass::text AS relid, n_tup_ins AS n FROM pg_stat_user_tables WHERE relid = ANY($1::regclass[])', [Object.keys(expected)])
    return rows.length === Object.keys(expected).length && rows.every((r) => Number(r.n) >= expected[r.relid])
  })
}

/** Every field consumers depend on, to prove peek changed nothing. */
const snapshot = (url: string, queue: string) => q(url, `SELECT msg_id, read_ct, vt, enqueued_at FROM pgmq.${quoteIdent(`q_${queue}`)} ORDER BY msg_id`)

beforeAll(async () => {
  // Set-up failure fails the suite: these tests are about the queues db init makes.
  await provisionedEstate(P, join(scratch, 'passwords.json'))
}, 240_000)

describe('queue stats', () => {
  beforeAll(async () => {
    // llm_requests: 30,000 messages, every 4th in flight; 12,000 archived; sent from another session
    // that ends, so the statistics collector has the counts.
    await fill(sq(), 'llm_requests', 30_000, 4)
    await q(sq(), `WITH moved AS (DELETE FROM pgmq.q_llm_requests WHERE msg_id <= 12000 RETURNING *)
                   INSERT INTO pgmq.a_llm_requests (msg_id, read_ct, enqueued_at, vt, message, headers)
                   SELECT msg_id, read_ct, enqueued_at, vt, message, headers FROM moved`)
    await fill(sq(), 'llm_requests', 12_000, 4)
    // job_results: 24,000 messages, half of them in flight: both figures above the count limit.
    await fill(sq(), 'job_results', 24_000, 2)
    // a few small queues, one with an old message
    await q(sq(), `SELECT pgmq.send('question_responses', '{"request_id":"r1","response":"yes"}')`)
    await q(sq(), `INSERT INTO pgmq.q_approval_responses (vt, enqueued_at, message) VALUES (now(), now() - interval '1 hour', '{"request_id":"r","approved":true}')`)
    // ANALYZE once the ended sessions' counts reached the statistics collector (a count flushed
    // after ANALYZE would be added to its figure).
    await waitForInserts(sq(), {'pgmq.q_llm_requests': 42_000, 'pgmq.a_llm_requests': 12_000, 'pgmq.q_job_results': 24_000})
    await q(sq(), 'ANALYZE pgmq.q_llm_requests, pgmq.a_llm_requests, pgmq.q_job_results')
  })

  it('--exact equals the truth (pgmq.metrics and count(*) of the archive), for every queue of both databases', async () => {
    const result = await cli(['queue', 'stats', '--exact', '--json'])
    expect(result.exitCode, result.stderr).toBe(0)
    const stats = result.json()
    expect(stats.exact).toBe(true)
    const byKey = new Map(stats.queues.map((s: any) => [`${s.database}/${s.queue}`, s]))
    // shared_queue's 12, and each singularity database's 3 of seed 000 plus seed 002's 3 CDC bridge queues
    expect(byKey.size).toBe(12 + 3 + 3)
    // the truth of shared_queue (the singularity database's queues may receive messages from its
    // pg_cron jobs while this runs)
    for (const [db, url] of [[SQ, sq()]] as const) {
      const truth = await q(url, 'SELECT * FROM pgmq.metrics_all()')
      for (const t of truth) {
        const s: any = byKey.get(`${db}/${t.queue_name}`)
        expect(s, `${db}/${t.queue_name}`).toBeDefined()
        expect(s.estimated).toBe(false)
        expect(s.length).toBe(Number(t.queue_length))
        expect(s.visible).toBe(Number(t.queue_visible_length))
        expect(s.in_flight).toBe(Number(t.queue_length) - Number(t.queue_visible_length))
        expect(s.total_sent).toBe(Number(t.total_messages))
        if (t.oldest_msg_age_sec === null) expect(s.oldest_age_sec).toBeNull()
        else expect(Math.abs(s.oldest_age_sec - t.oldest_msg_age_sec)).toBeLessThanOrEqual(2)
        if (t.newest_msg_age_sec === null) expect(s.newest_age_sec).toBeNull()
        else expect(Math.abs(s.newest_age_sec - t.newest_msg_age_sec)).toBeLessThanOrEqual(2)
        const [archive] = await q(url, `SELECT count(*)::int AS n FROM pgmq.${quoteIdent(`a_${t.queue_name}`)}`)
        expect(s.archive_length).toBe(archive.n)
      }
    }
    const llm: any = byKey.get(`${SQ}/llm_requests`)
    expect([llm.length, llm.visible, llm.in_flight, llm.total_sent, llm.archive_length]).toEqual([30_000, 22_500, 7500, 42_000, 12_000])
  })

  it('by default stays within the stated error on big queues, says which figures are estimates, and is exact on small ones', async () => {
    const result = await cli(['queue', 'stats', '--db', 'shared_queue', '--json'])
    expect(result.exitCode, result.stderr).toBe(0)
    const stats = result.json()
    expect(stats.exact).toBe(false)
    expect(stats.count_limit).toBe(10_000)
    const get = (name: string) => stats.queues.find((s: any) => s.queue === name)

    const llm = get('llm_requests')
    expect(llm.estimated).toBe(true)
    // 7,500 in flight is under the count limit: counted; length and visible are estimated.
    expect(llm.estimated_fields).toEqual(['length', 'visible', 'poison', 'archive_length'])
    expect(llm.in_flight).toBe(7500)
    expect(Math.abs(llm.length - 30_000)).toBeLessThanOrEqual(30_000 * LENGTH_ERROR)
    expect(Math.abs(llm.visible - 22_500)).toBeLessThanOrEqual(30_000 * SPLIT_ERROR)
    expect(Math.abs(llm.archive_length - 12_000)).toBeLessThanOrEqual(12_000 * LENGTH_ERROR)
    expect(llm.total_sent).toBe(42_000)

    // nothing was read: no poison, also where it is sampled
    expect([llm.poison, llm.max_reads]).toEqual([0, 5])
    const jobs = get('job_results')
    expect(jobs.estimated_fields).toEqual(['length', 'visible', 'in_flight', 'poison'])
    expect(Math.abs(jobs.length - 24_000)).toBeLessThanOrEqual(24_000 * LENGTH_ERROR)
    expect(Math.abs(jobs.visible - 12_000)).toBeLessThanOrEqual(24_000 * SPLIT_ERROR)
    expect(jobs.visible + jobs.in_flight).toBe(jobs.length)

    const small = get('approval_responses')
    expect(small).toMatchObject({estimated: false, estimated_fields: [], length: 1, visible: 1, in_flight: 0, total_sent: 1, archive_length: 0, poison: 0})
    expect(small.oldest_age_sec).toBeGreaterThanOrEqual(3599)

    const human = await cli(['queue', 'stats', '--db', 'shared_queue', '--pattern', 'llm_*'])
    expect(human.exitCode).toBe(0)
    expect(human.stdout).toMatch(/llm_requests\s+~\d{2},\d{3}\s+~\d{2},\d{3}\s+7,500\s/)
    expect(human.stdout).toMatch(/^~ estimate/m)
    expect(human.stdout).not.toMatch(/job_results/)
  })

  it('--pattern and --db narrow the queues; a pattern matching nothing exits 4; an unknown --db exits 2', async () => {
    const sg = await cli(['queue', '--db', 'singularity', '--json']) // `queue` alone is `queue stats`
    expect(sg.exitCode).toBe(0)
    expect(sg.json().queues.map((s: any) => s.queue).sort()).toEqual([
      'agent-knowledge-updates', 'agent-sessions', 'cdc-agent-sessions', 'cdc-learned-patterns', 'cdc-metrics-events', 'centralcloud-new-patterns',
    ])
    const agent = await cli(['queue', 'stats', '--pattern', 'agent-*', '--json'])
    expect(agent.json().queues.map((s: any) => s.queue).sort()).toEqual(['agent-knowledge-updates', 'agent-sessions'])
    const none = await cli(['queue', 'stats', '--pattern', 'llm_reqests'])
    expect(none.exitCode).toBe(4)
    expect(none.stderr).toContain('llm_requests')
    const badDb = await cli(['queue', 'stats', '--db', 'genesis'])
    expect(badDb.exitCode).toBe(2)
    const badPattern = await cli(['queue', 'stats', '--pattern', "x';--"])
    expect(badPattern.exitCode).toBe(2)
  })

  it('--fail-if-length-gt and --fail-if-oldest-gt exit 3 after printing; exact at the threshold', async () => {
    const over = await cli(['queue', 'stats', '--db', 'shared_queue', '--fail-if-length-gt', '29999', '--json'])
    expect(over.exitCode).toBe(3)
    // 30,000 > 29,999 is decided by an exact bounded count, not by the estimate
    expect(over.json().breaches).toEqual([{database: SQ, queue: 'llm_requests', check: 'length', value: 30_000, threshold: 29_999, estimated: false}])
    const at = await cli(['queue', 'stats', '--pattern', 'llm_requests', '--fail-if-length-gt', '30000', '--json'])
    expect(at.exitCode).toBe(0)
    expect(at.json().breaches).toEqual([])

    const old = await cli(['queue', 'stats', '--pattern', 'approval_*', '--fail-if-oldest-gt', '10m'])
    expect(old.exitCode).toBe(3)
    expect(old.stdout).toMatch(/approval_responses/)
    expect(old.stdout).toMatch(/BREACHED .*approval_responses: oldest message 1h/)
    const young = await cli(['queue', 'stats', '--pattern', 'approval_*', '--fail-if-oldest-gt', '2h'])
    expect(young.exitCode).toBe(0)
    const bad = await cli(['queue', 'stats', '--fail-if-oldest-gt', 'soon'])
    expect(bad.exitCode).toBe(2)
  })

  it('estimates the visible/in-flight split from a table sample when the planner statistics are stale', async () => {
    // 2,000 more rows since ANALYZE (more than 2% of the table): the vt histogram is not trusted.
    await fill(sq(), 'job_results', 2000, 2)
    await waitForInserts(sq(), {'pgmq.q_job_results': 26_000})
    const result = await cli(['queue', 'stats', '--pattern', 'job_results', '--json'])
    const [jobs] = result.json().queues
    expect(jobs.estimated_fields).toEqual(['length', 'visible', 'in_flight', 'poison'])
    expect(Math.abs(jobs.length - 26_000)).toBeLessThanOrEqual(26_000 * LENGTH_ERROR)
    expect(Math.abs(jobs.visible - 13_000)).toBeLessThanOrEqual(26_000 * SPLIT_ERROR)
    const exact = (await cli(['queue', 'stats', '--pattern', 'job_results', '--exact', '--json'])).json().queues[0]
    expect(exact).toMatchObject({length: 26_000, visible: 13_000, in_flight: 13_000, estimated: false})
  })
})

describe('queue peek', () => {
  beforeAll(async () => {
    for (const i of [1, 2, 3]) await q(sq(), `SELECT pgmq.send('job_requests', $1::jsonb)`, [JSON.stringify({id: `j${i}`, code: 'IO.puts 1', language: 'elixir'})])
    await q(sq(), "SELECT * FROM pgmq.read('job_requests', 300, 1)") // msg 1 now in flight, read_ct 1
    await q(sq(), "SELECT pgmq.send('job_requests', '{\"id\":\"j4\",\"code\":\"\",\"language\":\"elixir\"}'); SELECT pgmq.archive('job_requests', 4::bigint)")
  })

  it('shows messages oldest first and leaves vt and read_ct exactly as they were', async () => {
    const before = await snapshot(sq(), 'job_requests')
    const result = await cli(['queue', 'peek', 'job_requests', '--json'])
    expect(result.exitCode, result.stderr).toBe(0)
    const messages = result.json()
    expect(Array.isArray(messages)).toBe(true)
    expect(messages.map((m: any) => m.msg_id)).toEqual([1, 2, 3])
    expect(messages[0]).toMatchObject({database: SQ, queue: 'job_requests', source: 'queue', read_ct: 1, visible: false, message: {id: 'j1'}})
    expect(messages[1]).toMatchObject({read_ct: 0, visible: true, message: {id: 'j2', language: 'elixir'}, headers: null})
    // timestamps exactly as stored (microseconds included)
    const stored = await q(sq(), "SELECT msg_id::int, to_json(vt) #>> '{}' AS vt, to_json(enqueued_at) #>> '{}' AS enqueued_at FROM pgmq.q_job_requests ORDER BY msg_id")
    expect(messages.map((m: any) => ({msg_id: m.msg_id, vt: m.vt, enqueued_at: m.enqueued_at}))).toEqual(stored)

    const visible = await cli(['queue', 'peek', 'job_requests', '--visible-only', '--limit', '1', '--json'])
    expect(visible.json().map((m: any) => m.msg_id)).toEqual([2])
    const human = await cli(['queue', 'peek', 'job_requests'])
    expect(human.exitCode).toBe(0)
    expect(human.stdout).toMatch(/MSG_ID/)
    expect(human.stdout).toContain('"id":"j3"')
    expect(await snapshot(sq(), 'job_requests')).toEqual(before)
  })

  it('--archive shows archived messages with archived_at', async () => {
    const result = await cli(['queue', 'peek', 'job_requests', '--archive', '--json'])
    expect(result.exitCode).toBe(0)
    const [m] = result.json()
    expect(m).toMatchObject({msg_id: 4, source: 'archive', message: {id: 'j4'}})
    expect(typeof m.archived_at).toBe('string')
    const both = await cli(['queue', 'peek', 'job_requests', '--archive', '--visible-only'])
    expect(both.exitCode).toBe(2)
  })

  it('a missing queue exits 4 naming the closest queues', async () => {
    const result = await cli(['queue', 'peek', 'job_request'])
    expect(result.exitCode).toBe(4)
    expect(result.stderr).toMatch(/^error: queue 'job_request' not found/)
    expect(result.stderr).toMatch(/hint: did you mean job_requests/)
    const json = await cli(['queue', 'peek', 'job_request', '--json'])
    expect(json.exitCode).toBe(4)
    expect(json.json().error).toMatchObject({code: 'QUEUE_NOT_FOUND', exitCode: 4})
  })
})

describe('bad queue names exit 2 with one line, before any connection', () => {
  const names = ["llm'requests", 'llm;requests', 'llm--requests', 'q'.repeat(48), 'llm_requ\u0435sts', 'llm_requests\u200b', 'llm requests', '']
  // An unreachable server: a name that reached SQL would fail with exit 1 instead.
  const env = {SINGULARITY_ADMIN_URL: 'postgres://nobody@127.0.0.1:1/postgres'}
  // every kind of bad name on peek; purge and send share the same check (test/unit covers it too)
  for (const [command, tried] of [['peek', names], ['purge', names.slice(0, 3)], ['send', names.slice(2, 5)]] as const) {
    it(`queue ${command}`, async () => {
      for (const name of tried) {
        const args = command === 'send' ? ['queue', command, name, '{}'] : ['queue', command, name]
        const result = await cli(args, {env})
        expect(result.exitCode, `${command} ${JSON.stringify(name)}: ${result.stderr}`).toBe(2)
        const lines = result.stderr.trim().split('\n')
        expect(lines[0]).toMatch(/^error: /)
        expect(lines.length).toBeLessThanOrEqual(2)
        expect(result.stdout).toBe('')
      }
    })
  }
})

describe('queue purge', () => {
  const count = async (table: string) => (await q(sq(), `SELECT count(*)::int AS n FROM pgmq.${table}`))[0].n
  beforeAll(async () => {
    for (let i = 0; i < 5; i++) await q(sq(), `SELECT pgmq.send('question_requests', $1::jsonb)`, [JSON.stringify({id: `q${i}`, question: 'why?', context: {}})])
    for (let i = 0; i < 3; i++) await q(sq(), `SELECT pgmq.send('approval_requests', '{"id":"a","file_path":"f","diff":"","description":""}')`)
    await q(sq(), "SELECT pgmq.archive('question_requests', 5::bigint)")
    // archive of question_responses: 3 archived 100 days ago, 2 recently
    await q(sq(), `INSERT INTO pgmq.a_question_responses (msg_id, vt, archived_at, message)
                   SELECT g, now(), CASE WHEN g <= 3 THEN now() - interval '100 days' ELSE now() - interval '1 day' END, '{}'
                     FROM generate_series(1, 5) g`)
  })

  it('refuses without confirmation when there is no terminal: exit 2, nothing deleted', async () => {
    const refused = await cli(['queue', 'purge', 'question_requests'])
    expect(refused.exitCode).toBe(2)
    expect(refused.stderr).toMatch(/would delete 4 message\(s\) from queue t_q_shared_queue\.question_requests/)
    expect(refused.stderr).toMatch(/--confirm question_requests/)
    const wrong = await cli(['queue', 'purge', 'question_requests', '--confirm', 'approval_requests'])
    expect(wrong.exitCode).toBe(2)
    const dry = await cli(['queue', 'purge', 'question_requests', '--dry-run', '--json'])
    expect(dry.exitCode).toBe(0)
    expect(dry.json()).toMatchObject({dry_run: true, would_delete: 4, deleted: 0, target: 'queue'})
    expect(await count('q_question_requests')).toBe(4)
  })

  it('with --confirm deletes exactly the queue\'s messages (not its archive, not other queues)', async () => {
    const result = await cli(['queue', 'purge', 'question_requests', '--confirm', 'question_requests', '--json'])
    expect(result.exitCode, result.stderr).toBe(0)
    expect(result.json()).toMatchObject({database: SQ, queue: 'question_requests', would_delete: 4, deleted: 4, up_to_msg_id: 4})
    expect(await count('q_question_requests')).toBe(0)
    expect(await count('a_question_requests')).toBe(1)
    expect(await count('q_approval_requests')).toBe(3)
    const again = await cli(['queue', 'purge', 'question_requests', '--confirm', 'question_requests', '--json'])
    expect(again.json()).toMatchObject({would_delete: 0, deleted: 0})
  })

  it('--archive-older-than prunes only archived messages older than the cutoff, also behind --confirm', async () => {
    const dry = await cli(['queue', 'purge', 'question_responses', '--archive-older-than', '90d', '--dry-run', '--json'])
    expect(dry.json()).toMatchObject({target: 'archive', would_delete: 3, deleted: 0, older_than_sec: 90 * 86_400})
    const refused = await cli(['queue', 'purge', 'question_responses', '--archive-older-than', '90d'])
    expect(refused.exitCode).toBe(2)
    expect(await count('a_question_responses')).toBe(5)
    const queued = await count('q_question_responses')
    const done = await cli(['queue', 'purge', 'question_responses', '--archive-older-than', '90d', '--confirm', 'question_responses'])
    expect(done.exitCode, done.stderr).toBe(0)
    expect(done.stdout).toMatch(/deleted 3 message\(s\) archived before/)
    expect(await q(sq(), 'SELECT msg_id::int FROM pgmq.a_question_responses ORDER BY 1')).toEqual([{msg_id: 4}, {msg_id: 5}])
    expect(await count('q_question_responses')).toBe(queued)
    const bad = await cli(['queue', 'purge', 'question_responses', '--archive-older-than', 'ninety days'])
    expect(bad.exitCode).toBe(2)
  })

  it('a missing queue exits 4', async () => {
    const result = await cli(['queue', 'purge', 'nope_queue', '--confirm', 'nope_queue'])
    expect(result.exitCode).toBe(4)
  })
})

describe('queue send', () => {
  const count = async (queue: string) => (await q(sq(), `SELECT count(*)::int AS n FROM pgmq.${quoteIdent(`q_${queue}`)}`))[0].n

  it('sends a valid message with pgmq.send and returns its msg_id', async () => {
    const message = {agent_id: 'self-improving-agent', task_type: 'architect', messages: [{role: 'user', content: 'plan it'}]}
    const result = await cli(['queue', 'send', 'llm_requests', JSON.stringify(message), '--json'])
    expect(result.exitCode, result.stderr).toBe(0)
    const sent = result.json()
    expect(sent).toMatchObject({database: SQ, queue: 'llm_requests', contract: 'llm_request', dry_run: false})
    const [row] = await q(sq(), 'SELECT message, read_ct FROM pgmq.q_llm_requests WHERE msg_id = $1', [sent.msg_id])
    expect(row).toEqual({message, read_ct: 0})
  })

  it('reads @file, honours --delay and --headers, and checks seed 004 message types by their type', async () => {
    const file = join(scratch, 'pattern.json')
    writeFileSync(file, JSON.stringify({type: 'aggregated_patterns', patterns: [{name: 'genserver'}], timestamp: '2025-10-25T10:00:00.123456Z', source: 'centralcloud'}))
    const result = await cli(['queue', 'send', 'pattern_messages', `@${file}`, '--delay', '1h', '--headers', '{"trace":"t1"}', '--json'])
    expect(result.exitCode, result.stderr).toBe(0)
    const [row] = await q(sq(), "SELECT headers, vt > now() + interval '50 minutes' AS later FROM pgmq.q_pattern_messages WHERE msg_id = $1", [result.json().msg_id])
    expect(row).toEqual({headers: {trace: 't1'}, later: true})
  })

  it('an invalid message exits 2 naming the field, and nothing is sent', async () => {
    const before = await count('llm_requests')
    const cases: [string, unknown, RegExp][] = [
      ['llm_requests', {agent_id: 'a', task_type: 't', messages: [{content: 'x'}]}, /messages\[0\]\.role is required/],
      ['llm_requests', {task_type: 't', messages: []}, /agent_id is required/],
      ['job_results', {request_id: 'r', output: 'ok'}, /: error is required/],
      ['approval_responses', {request_id: 'r', approved: 'yes'}, /approved expected boolean/],
      ['pattern_messages', {type: 'pattern_detected', patterns: []}, /type must be one of 'pattern_detection', 'aggregated_patterns'/],
      ['learned_patterns', {type: 'learned_patterns', source: 's', artifacts: [], usage_count: 5, success_rate: 1.5, timestamp: '2025-10-25T10:00:00Z'}, /success_rate/],
      ['template_updates', {type: 'learning_exported', pr_url: 'not a url', artifacts_count: 1, timestamp: '2025-10-25T10:00:00Z', branch: 'b'}, /pr_url/],
    ]
    for (const [queue, message, reason] of cases) {
      const result = await cli(['queue', 'send', queue, JSON.stringify(message)])
      expect(result.exitCode, `${queue}: ${result.stderr}`).toBe(2)
      expect(result.stderr.split('\n')[0]).toMatch(reason)
    }
    const notJson = await cli(['queue', 'send', 'llm_requests', '{agent_id:'])
    expect(notJson.exitCode).toBe(2)
    expect(notJson.stderr).toMatch(/not valid JSON/)
    const noFile = await cli(['queue', 'send', 'llm_requests', '@/nonexistent/message.json'])
    expect(noFile.exitCode).toBe(2)
    expect(await count('llm_requests')).toBe(before)
  })

  it('a missing queue exits 4; --dry-run sends nothing', async () => {
    const missing = await cli(['queue', 'send', 'llm_request', '{}'])
    expect(missing.exitCode).toBe(4)
    expect(missing.stderr).toMatch(/llm_requests/)
    const before = await count('question_responses')
    const dry = await cli(['queue', 'send', 'question_responses', '{"request_id":7,"response":"no"}', '--dry-run', '--json'])
    expect(dry.exitCode).toBe(0)
    expect(dry.json()).toMatchObject({dry_run: true, msg_id: null, contract: 'question_response'})
    expect(await count('question_responses')).toBe(before)
  })
})
