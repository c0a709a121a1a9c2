import {spawn} from 'node:child_process'
import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import type pg from 'pg'
import {beforeAll, describe, expect, it} from 'vitest'

import {quoteIdent} from '../../src/lib/sql/quote.js'
// in process: the same argv, output and exit codes as a child process, without a node start per run
import {runCliInProcess as runCli} from '../helpers/cli.js'
import {adminUrl, connect, provisionedEstate, urlFor, withClient} from '../helpers/db.js'

/**
 * Dead letters, redrive and peek filters against the real test server, on an estate of this
 * file's own (prefix t_qo_, copied from the run's template estate and completed by `db init`, bundled engine:
 * test/helpers/estate-template.ts). The queues used here have
 * no dead-letter policy in the topology (llm_requests and job_requests do: their pg_cron jobs would
 * move messages while a test looks), except where the policy itself is under test.
 */
const P = 't_qo_'
const SQ = `${P}shared_queue`
const sq = () => urlFor(SQ)
const scratch = mkdtempSync(join(tmpdir(), 'sing-queue-ops-'))
const passwordsFile = join(scratch, 'passwords.json')
const cli = (args: string[], options: Parameters<typeof runCli>[1] = {}) => runCli([...args, '--prefix', P], options)
const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'run.js')

async function q<T extends pg.QueryResultRow = any>(sql: string, values: unknown[] = [], url = sq()): Promise<T[]> {
  return withClient(url, async (c) => (await c.query<T>(sql, values)).rows)
}
const table = (prefix: 'q' | 'a', queue: string) => `pgmq.${quoteIdent(`${prefix}_${queue}`)}`
const count = async (prefix: 'q' | 'a', queue: string) => (await q<{n: number}>(`SELECT count(*)::int AS n FROM ${table(prefix, queue)}`))[0].n

/** A login role's URL on shared_queue, with a password of this test's own (the role may predate this run). */
async function roleUrl(role: string): Promise<string> {
  const password = `pw-${role}-${process.pid}`
  await q(`ALTER ROLE ${quoteIdent(P + role)} PASSWORD ${"'" + password + "'"}`, [], adminUrl())
  const url = new URL(sq())
  url.username = P + role
  url.password = encodeURIComponent(password)
  return url.toString()
}

/** Privileges of a table as sorted "grantee:privilege" strings (the owner's own left out). */
async function acl(relation: string): Promise<string[]> {
  const rows = await q<{g: string}>(
    `SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END || ':' || a.privilege_type AS g
       FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = $1::regclass AND a.grantee <> c.relowner ORDER BY 1`,
    [relation],
  )
  return rows.map((r) => r.g)
}

beforeAll(async () => {
  // Set-up failure fails the suite.
  await provisionedEstate(P, passwordsFile)
}, 240_000)

describe('poison detection', () => {
  beforeAll(async () => {
    await q(`SELECT pgmq.send('approval_requests', jsonb_build_object('id', 'a' || g, 'file_path', 'f', 'diff', '', 'description', '')) FROM generate_series(1, 10) g`)
    // messages 1..3 read six times (vt 0: visible again at once, and read picks the oldest first)
    for (let i = 0; i < 6; i++) await q(`SELECT * FROM pgmq.read('approval_requests', 0, 3)`)
    // message 4 read five times, then leased by a consumer for an hour
    await q(`UPDATE ${table('q', 'approval_requests')} SET read_ct = 5, vt = now() + interval '1 hour' WHERE msg_id = 4`)
  })

  it('queue stats counts messages read at least max_reads times (5 by default), in fast and exact mode', async () => {
    for (const extra of [[], ['--exact']]) {
      const result = await cli(['queue', 'stats', '--pattern', 'approval_requests', '--json', ...extra])
      expect(result.exitCode, result.stderr).toBe(0)
      const [stats] = result.json().queues
      expect(stats).toMatchObject({queue: 'approval_requests', length: 10, poison: 4, max_reads: 5, estimated: false})
    }
    const human = await cli(['queue', 'stats', '--pattern', 'approval_requests'])
    expect(human.stdout).toMatch(/POISON/)
    expect(human.stdout).toMatch(/approval_requests\s+10\s+9\s+1\s.*\s4\s*$/m)
  })
})

describe('queue dead-letter', () => {
  it('counts first, refuses without --confirm, and --dry-run changes nothing', async () => {
    const dry = await cli(['queue', 'dead-letter', 'approval_requests', '--dry-run', '--json'])
    expect(dry.exitCode, dry.stderr).toBe(0)
    expect(dry.json()).toMatchObject({queue: 'approval_requests', dead_letter_queue: 'approval_requests_dlq', max_reads: 5, dry_run: true, movable: 3, leased: 1, moved: 0})
    const refused = await cli(['queue', 'dead-letter', 'approval_requests'])
    expect(refused.exitCode).toBe(2)
    expect(refused.stderr).toMatch(/--confirm approval_requests/)
    const wrong = await cli(['queue', 'dead-letter', 'approval_requests', '--confirm', 'approval_responses'])
    expect(wrong.exitCode).toBe(2)
    expect(await count('q', 'approval_requests')).toBe(10)
    expect(await q(`SELECT to_regclass('pgmq.q_approval_requests_dlq') AS t`)).toEqual([{t: null}])
  })

  it('moves the free poison messages to <queue>_dlq, created with the grants of its queue, keeping their origin in headers', async () => {
    const before = await q(`SELECT msg_id::int, read_ct, to_json(enqueued_at) #>> '{}' AS enqueued_at, message FROM ${table('q', 'approval_requests')} WHERE msg_id <= 3 ORDER BY msg_id`)
    const result = await cli(['queue', 'dead-letter', 'approval_requests', '--confirm', 'approval_requests', '--json'])
    expect(result.exitCode, result.stderr).toBe(0)
    expect(result.json()).toMatchObject({database: SQ, moved: 3, leased: 1, dlq_created: true, dead_letter_queue: 'approval_requests_dlq'})
    // the leased poison message stays with its consumer; the rest of the queue is untouched
    expect((await q(`SELECT msg_id::int FROM ${table('q', 'approval_requests')} ORDER BY 1`)).map((r) => r.msg_id)).toEqual([4, 5, 6, 7, 8, 9, 10])
    const dlq = await q(`SELECT message, headers FROM ${table('q', 'approval_requests_dlq')} ORDER BY msg_id`)
    expect(dlq.map((r) => r.message)).toEqual(before.map((r) => r.message))
    dlq.forEach((r, i) => {
      const origin = r.headers.dead_letter
      expect(origin).toMatchObject({queue: 'approval_requests', msg_id: before[i].msg_id, read_ct: 6, max_reads: 5})
      expect(Date.parse(origin.enqueued_at)).toBe(Date.parse(before[i].enqueued_at))
    })
    // a queue like any other: listed in pgmq.meta, same privileges as its queue
    expect(await q(`SELECT queue_name FROM pgmq.meta WHERE queue_name = 'approval_requests_dlq'`)).toHaveLength(1)
    expect(await acl('pgmq.q_approval_requests_dlq')).toEqual(await acl('pgmq.q_approval_requests'))
    expect(await acl('pgmq.a_approval_requests_dlq')).toEqual(await acl('pgmq.a_approval_requests'))
    expect((await acl('pgmq.q_approval_requests')).length).toBeGreaterThan(1)
    // and db init's reconciliation judges the DLQ like its queue: nothing to revoke or grant
    const plan = await cli(['db', 'plan', '--db', 'shared_queue', '--queue-engine', 'bundled', '--json'])
    expect(JSON.stringify(plan.json())).not.toMatch(/approval_requests_dlq/)
  })

  it('the service that consumes the queue may consume its DLQ; an observer of the queue may only read it', async () => {
    const nexus = await withClient(await roleUrl('nexus'), (c) => c.query(`SELECT msg_id FROM pgmq.read('approval_requests_dlq', 30, 1)`))
    expect(nexus.rows).toHaveLength(1)
    const observer = await connect(await roleUrl('centralcloud'))
    try {
      expect((await observer.query(`SELECT count(*)::int AS n FROM pgmq.q_approval_requests_dlq`)).rows[0].n).toBe(3)
      await expect(observer.query(`SELECT pgmq.send('approval_requests_dlq', '{}')`)).rejects.toMatchObject({code: '42501'})
    } finally {
      await observer.end()
    }
  })

  it('nothing to move is no error and creates nothing; a missing queue exits 4', async () => {
    const none = await cli(['queue', 'dead-letter', 'approval_responses', '--confirm', 'approval_responses', '--json'])
    expect(none.exitCode).toBe(0)
    expect(none.json()).toMatchObject({movable: 0, moved: 0, dlq_created: false})
    expect(await q(`SELECT to_regclass('pgmq.q_approval_responses_dlq') AS t`)).toEqual([{t: null}])
    const missing = await cli(['queue', 'dead-letter', 'approval_request', '--confirm', 'approval_request'])
    expect(missing.exitCode).toBe(4)
    const bad = await cli(['queue', 'dead-letter', 'approval_requests', '--max-reads', '0'])
    expect(bad.exitCode).toBe(2)
  })

  it('with 4 consumers reading and archiving concurrently: 0 lost, 0 duplicated, every move counted', async () => {
    const N = 3000
    await q(`SELECT pgmq.send_batch('question_requests', array(SELECT jsonb_build_object('id', 'q' || g, 'question', 'why?', 'context', '{}'::jsonb, 'n', g) FROM generate_series(1, $1::int) g))`, [N])
    let stop = false
    const readers = await Promise.all([0, 1, 2, 3].map(() => connect(sq())))
    const reading = readers.map(async (c) => {
      let reads = 0
      while (!stop) {
        // vt 0: read again at once, so read_ct climbs; every 7th message "succeeds" and is archived
        const {rows} = await c.query(`SELECT msg_id, (message->>'n')::int AS n FROM pgmq.read('question_requests', 0, 25)`)
        reads += rows.length
        const done = rows.filter((r) => r.n % 7 === 0).map((r) => r.msg_id)
        if (done.length > 0) await c.query(`SELECT pgmq.archive('question_requests', $1::bigint[])`, [done])
      }
      return reads
    })
    let moved = 0
    try {
      for (let run = 0; run < 4; run++) {
        const result = await cli(['queue', 'dead-letter', 'question_requests', '--max-reads', '3', '--confirm', 'question_requests', '--json'])
        expect(result.exitCode, result.stderr).toBe(0)
        moved += result.json().moved
      }
    } finally {
      stop = true
      const reads = await Promise.all(reading)
      await Promise.all(readers.map((c) => c.end()))
      expect(reads.every((n) => n > 0)).toBe(true)
    }
    const last = await cli(['queue', 'dead-letter', 'question_requests', '--max-reads', '3', '--confirm', 'question_requests', '--json'])
    moved += last.json().moved
    expect(moved).toBeGreaterThan(0)
    expect(await count('q', 'question_requests_dlq')).toBe(moved)
    // every message is in exactly one place: the queue, its archive or its DLQ
    const places = await q<{n: number; copies: number}>(
      `SELECT n, count(*)::int AS copies FROM (
         SELECT (message->>'n')::int AS n FROM ${table('q', 'question_requests')}
         UNION ALL SELECT (message->>'n')::int FROM ${table('a', 'question_requests')}
         UNION ALL SELECT (message->>'n')::int FROM ${table('q', 'question_requests_dlq')}) x
        GROUP BY n`,
    )
    expect(places).toHaveLength(N)
    expect(places.filter((p) => p.copies !== 1)).toEqual([])
    // what stayed in the queue is not poison any more or is leased; what moved was read 3+ times
    expect(await q(`SELECT count(*)::int AS n FROM ${table('q', 'question_requests_dlq')} WHERE (headers->'dead_letter'->>'read_ct')::int < 3`)).toEqual([{n: 0}])
  })
})

describe('queue redrive', () => {
  it('from a DLQ back to its queue, with --where and --limit, recording the redrive in headers', async () => {
    const inDlq = await count('q', 'question_requests_dlq')
    const matching = (await q<{n: number}>(`SELECT count(*)::int AS n FROM ${table('q', 'question_requests_dlq')} WHERE (message->>'n')::int <= 1000`))[0].n
    const dry = await cli(['queue', 'redrive', 'question_requests_dlq', '--to', 'question_requests', '--where', '$.n ? (@ <= 1000)', '--dry-run', '--json'])
    expect(dry.exitCode, dry.stderr).toBe(0)
    expect(dry.json()).toMatchObject({would_move: matching, moved: 0, source: 'queue'})
    const refused = await cli(['queue', 'redrive', 'question_requests_dlq', '--to', 'question_requests'])
    expect(refused.exitCode).toBe(2)
    const limited = await cli(['queue', 'redrive', 'question_requests_dlq', '--to', 'question_requests', '--where', '$.n ? (@ <= 1000)', '--limit', '5', '--confirm', 'question_requests_dlq', '--json'])
    expect(limited.json()).toMatchObject({moved: 5})
    const rest = await cli(['queue', 'redrive', 'question_requests_dlq', '--to', 'question_requests', '--where', '$.n ? (@ <= 1000)', '--batch-size', '7', '--confirm', 'question_requests_dlq', '--json'])
    expect(rest.exitCode, rest.stderr).toBe(0)
    expect(rest.json().moved).toBe(matching - 5)
    expect(await count('q', 'question_requests_dlq')).toBe(inDlq - matching)
    const back = await q(`SELECT read_ct, headers FROM ${table('q', 'question_requests')} WHERE headers ? 'redrive'`)
    expect(back).toHaveLength(matching)
    for (const r of back) {
      expect(r.read_ct).toBe(0)
      expect(r.headers.redrive).toMatchObject({from: 'question_requests_dlq', source: 'queue', count: 1})
      expect(r.headers.dead_letter.queue).toBe('question_requests')
    }
    // the headers match too: --where is tested on headers
    const byHeader = await cli(['queue', 'peek', 'question_requests', '--where', '$.redrive.source ? (@ == "queue")', '--count', '--json'])
    expect(byHeader.json().count).toBe(matching)
  })

  it('refuses a bad JSON path, a missing target and a queue into itself (exit 2/4, nothing moved)', async () => {
    const before = await count('q', 'question_requests_dlq')
    expect((await cli(['queue', 'redrive', 'question_requests_dlq', '--to', 'question_requests', '--where', '$.n ?? 1', '--confirm', 'question_requests_dlq'])).exitCode).toBe(2)
    expect((await cli(['queue', 'redrive', 'question_requests_dlq', '--to', 'question_request', '--confirm', 'question_requests_dlq'])).exitCode).toBe(4)
    expect((await cli(['queue', 'redrive', 'question_requests_dlq', '--to', 'question_requests_dlq', '--confirm', 'question_requests_dlq'])).exitCode).toBe(2)
    expect(await count('q', 'question_requests_dlq')).toBe(before)
  })

  it('from an archive, killed half-way and run again: every message moved exactly once', async () => {
    const N = 20_000
    await q(`INSERT INTO ${table('a', 'instance_heartbeat')} (msg_id, read_ct, enqueued_at, archived_at, vt, message)
             SELECT g, 1, now() - interval '1 day', now() - interval '1 hour', now(), jsonb_build_object('n', g) FROM generate_series(1, $1::int) g`, [N])
    // Slow every insert into the target down, so that the run is surely killed between batches.
    await q(`CREATE FUNCTION public.t_qo_slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.02); RETURN NULL; END $$;
             CREATE TRIGGER t_qo_slow AFTER INSERT ON ${table('q', 'instance_heartbeat')} FOR EACH STATEMENT EXECUTE FUNCTION public.t_qo_slow()`)
    const child = spawn(process.execPath, [BIN, 'queue', 'redrive', 'instance_heartbeat', '--archive', '--to', 'instance_heartbeat', '--batch-size', '100', '--confirm', 'instance_heartbeat', '--prefix', P], {
      env: {...process.env, SINGULARITY_ADMIN_URL: adminUrl()},
      stdio: 'ignore',
    })
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)))
    try {
      let moved = 0
      for (let i = 0; i < 600 && moved < 1000; i++) {
        await new Promise((r) => setTimeout(r, 100))
        moved = await count('q', 'instance_heartbeat')
      }
      expect(moved, 'redrive moved 1,000 messages before it was killed').toBeGreaterThanOrEqual(1000)
      child.kill('SIGKILL')
      expect(await exited).toBe('SIGKILL')
    } finally {
      child.kill('SIGKILL')
      await q(`DROP TRIGGER t_qo_slow ON ${table('q', 'instance_heartbeat')}; DROP FUNCTION public.t_qo_slow()`)
    }
    const half = await count('q', 'instance_heartbeat')
    expect(half).toBeLessThan(N)
    expect(half + (await count('a', 'instance_heartbeat'))).toBe(N)

    const resumed = await cli(['queue', 'redrive', 'instance_heartbeat', '--archive', '--to', 'instance_heartbeat', '--confirm', 'instance_heartbeat', '--json'], {timeoutMs: 120_000})
    expect(resumed.exitCode, resumed.stderr).toBe(0)
    expect(resumed.json()).toMatchObject({source: 'archive', would_move: N - half, moved: N - half})
    expect(await count('a', 'instance_heartbeat')).toBe(0)
    const moved = await q<{n: number; copies: number; origin_ok: boolean}>(
      `SELECT (message->>'n')::int AS n, count(*)::int AS copies,
              bool_and((headers->'redrive'->>'msg_id')::int = (message->>'n')::int AND headers->'redrive'->>'source' = 'archive') AS origin_ok
         FROM ${table('q', 'instance_heartbeat')} GROUP BY 1`,
    )
    expect(moved).toHaveLength(N)
    expect(moved.filter((m) => m.copies !== 1 || !m.origin_ok)).toEqual([])
  })
})

describe('queue peek filters', () => {
  beforeAll(async () => {
    // archive of learned_patterns: one message archived per hour over 10 days, every 3rd with a header
    await q(`INSERT INTO ${table('a', 'learned_patterns')} (msg_id, enqueued_at, archived_at, vt, message, headers)
             SELECT g, now() - make_interval(hours => g + 1), now() - make_interval(hours => g), now(),
                    jsonb_build_object('type', 'learned_patterns', 'n', g),
                    CASE WHEN g % 3 = 0 THEN '{"trace": "t3"}'::jsonb END
               FROM generate_series(1, 240) g`)
  })

  it('--since/--until bound archived_at on the archive (durations or ISO times), --count counts', async () => {
    const day = await cli(['queue', 'peek', 'learned_patterns', '--archive', '--since', '24h', '--count', '--json'])
    expect(day.exitCode, day.stderr).toBe(0)
    // archived 1h..24h ago; the bound is inclusive and now() moves on, so 23 or 24
    expect(day.json()).toMatchObject({database: SQ, queue: 'learned_patterns', source: 'archive'})
    expect([23, 24]).toContain(day.json().count)
    const window = await cli(['queue', 'peek', 'learned_patterns', '--archive', '--since', '48h', '--until', '24h', '--json', '--limit', '100'])
    const ns = window.json().map((m: any) => m.message.n)
    expect(ns.length).toBeGreaterThanOrEqual(23)
    expect(ns.every((n: number) => n >= 24 && n <= 48)).toBe(true)
    // newest archived first
    expect(ns).toEqual([...ns].sort((a, b) => a - b))
    const [oldest] = await q(`SELECT to_json(archived_at) #>> '{}' AS t FROM ${table('a', 'learned_patterns')} WHERE msg_id = 240`)
    const iso = await cli(['queue', 'peek', 'learned_patterns', '--archive', '--until', oldest.t, '--count', '--json'])
    expect(iso.json().count).toBe(0)
    const human = await cli(['queue', 'peek', 'learned_patterns', '--archive', '--since', '5h', '--count'])
    expect(human.stdout).toMatch(/^\d+ message\(s\) in the archive of t_qo_shared_queue\.learned_patterns match$/m)
  })

  it('--where matches the message or the headers; filters combine', async () => {
    const headers = await cli(['queue', 'peek', 'learned_patterns', '--archive', '--where', '$.trace ? (@ == "t3")', '--count', '--json'])
    expect(headers.json().count).toBe(80)
    const message = await cli(['queue', 'peek', 'learned_patterns', '--archive', '--where', '$.n ? (@ > 230)', '--json'])
    expect(message.json().map((m: any) => m.message.n)).toEqual([231, 232, 233, 234, 235, 236, 237, 238, 239, 240])
    const both = await cli(['queue', 'peek', 'learned_patterns', '--archive', '--where', '$.trace', '--since', '30h', '--count', '--json'])
    expect([9, 10]).toContain(both.json().count)
    const none = await cli(['queue', 'peek', 'learned_patterns', '--archive', '--where', '$.n ? (@ > 1000)'])
    expect(none.exitCode).toBe(0)
    expect(none.stdout).toMatch(/is empty of messages matching the filters/)
  })

  it('bad --since / --until / --where exit 2 before reading anything', async () => {
    for (const args of [['--since', 'yesterday'], ['--until', '2025-13-45T99:00'], ['--where', 'not a path (']]) {
      const result = await cli(['queue', 'peek', 'learned_patterns', '--archive', ...args])
      expect(result.exitCode, args.join(' ')).toBe(2)
      expect(result.stderr).toMatch(/^error: invalid --(since|until|where)/)
    }
  })
})

describe('the dead-letter policy of the topology', () => {
  it('is installed as pg_cron jobs in shared_queue and shown by jobs list', async () => {
    const jobs = await q<{jobname: string; command: string}>(`SELECT jobname, command FROM cron.job WHERE jobname LIKE $1 ORDER BY 1`, [`singularity:${P}dead-letter-%`], adminUrl())
    expect(jobs.map((j) => j.jobname)).toEqual([`singularity:${P}dead-letter-job-requests`, `singularity:${P}dead-letter-llm-requests`])
    const list = await cli(['jobs', 'list', '--json'])
    expect(list.exitCode, list.stderr).toBe(0)
    const names = list.json().jobs.map((j: any) => j.name)
    expect(names).toEqual(expect.arrayContaining(['dead-letter-llm-requests', 'dead-letter-job-requests']))
  })

  it('its command moves the poison messages of llm_requests (run as pg_cron runs it)', async () => {
    const [job] = await q<{command: string}>(`SELECT command FROM cron.job WHERE jobname = $1`, [`singularity:${P}dead-letter-llm-requests`], adminUrl())
    await q(`SELECT pgmq.send('llm_requests', '{"agent_id":"a","task_type":"t","messages":[{"role":"user","content":"x"}]}')`)
    await q(`UPDATE ${table('q', 'llm_requests')} SET read_ct = 5`)
    const [result] = await q(job.command)
    expect(result).toMatchObject({dead_letter_queue: 'llm_requests_dlq'})
    // (pg_cron itself may have run the job meanwhile: the end state is what counts)
    expect(await count('q', 'llm_requests')).toBe(0)
    expect(await q(`SELECT headers->'dead_letter'->>'queue' AS origin FROM ${table('q', 'llm_requests_dlq')}`)).toEqual([{origin: 'llm_requests'}])
  })
})
