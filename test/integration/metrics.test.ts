import {spawn} from 'node:child_process'
import {mkdtempSync, readdirSync, readFileSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {beforeAll, describe, expect, it} from 'vitest'

import {runCli} from '../helpers/cli.js'
import {promtool} from '../helpers/promtool.js'
import {adminUrl, connect, provisionedEstate, urlFor, withClient} from '../helpers/db.js'

/**
 * `singularity metrics` on an estate of this file's own (prefix t_m_), validated by a real
 * exposition parser: promtool (Debian's prometheus package, installed by the test prerequisites).
 */
const P = 't_m_'
const SQ = `${P}shared_queue`
const SG = `${P}singularity`
const scratch = mkdtempSync(join(tmpdir(), 'sing-metrics-'))
const cli = (args: string[], options: Parameters<typeof runCli>[1] = {}) => runCli([...args, '--prefix', P], options)
const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'run.js')

/** The value of one sample, by metric name and exact label set text, e.g. {queue="x"}. */
function sample(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `))
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1))
}

beforeAll(async () => {
  // Set-up failure fails the suite.
  await provisionedEstate(P, join(scratch, 'passwords.json'))
  await withClient(urlFor(SQ), async (c) => {
    await c.query(`SELECT pgmq.send_batch('question_responses', array(SELECT jsonb_build_object('request_id', g, 'response', 'ok') FROM generate_series(1, 7) g))`)
    await c.query(`SELECT * FROM pgmq.read('question_responses', 0, 2)`)
    for (let i = 0; i < 5; i++) await c.query(`SELECT * FROM pgmq.read('question_responses', 0, 1)`)
    await c.query(`SELECT pgmq.archive('question_responses', 7::bigint)`)
  })
}, 240_000)

describe('singularity metrics', () => {
  it('prints the estate in the exposition format that promtool accepts', async () => {
    const result = await cli(['metrics'])
    expect(result.exitCode, result.stderr).toBe(0)
    const check = promtool(result.stdout)
    expect(check.output).toBe('')
    expect(check.status).toBe(0)
    const text = result.stdout
    const q = `{database="${SQ}",queue="question_responses"}`
    expect(sample(text, 'singularity_queue_length', q)).toBe(6)
    expect(sample(text, 'singularity_queue_messages_sent_total', q)).toBe(7)
    expect(sample(text, 'singularity_queue_archived_messages', q)).toBe(1)
    // message 1 was read six times (poison at 5); the others at most twice
    expect(sample(text, 'singularity_queue_poison_messages', q)).toBe(1)
    expect(sample(text, 'singularity_queue_visible_messages', q)).toBe(6)
    expect(sample(text, 'singularity_queue_in_flight_messages', q)).toBe(0)
    expect(text).toMatch(/^# TYPE singularity_queue_messages_sent_total counter$/m)
    expect(text).toMatch(/^# TYPE singularity_queue_oldest_message_age_seconds gauge$/m)
    // the estate's databases and their sections
    for (const db of [SQ, SG]) expect(sample(text, 'singularity_scrape_up', `{section="queues",database="${db}"}`)).toBe(1)
    expect(sample(text, 'singularity_database_healthy', `{database="${SQ}"}`)).toBe(1)
    expect(sample(text, 'singularity_database_verdict', `{database="${SQ}",verdict="ok"}`)).toBe(1)
    // pg_cron jobs of the estate: a failure streak per installed job
    expect(sample(text, 'singularity_cron_job_failure_streak', `{job="dead-letter-llm-requests",database="${SQ}"}`)).toBe(0)
    // the wal2json slot db init makes for each singularity database
    expect(sample(text, 'singularity_replication_slot_active', `{slot="${SG}_centralcloud_cdc",database="${SG}"}`)).toBe(0)
    expect(sample(text, 'singularity_replication_slot_retained_bytes', `{slot="${SG}_centralcloud_cdc",database="${SG}"}`)).toBeGreaterThanOrEqual(0)
  })

  it('--json gives the same figures as data', async () => {
    const result = await cli(['metrics', '--json'])
    expect(result.exitCode, result.stderr).toBe(0)
    const data = result.json()
    const length = data.families.find((f: any) => f.name === 'singularity_queue_length')
    expect(length.samples).toContainEqual({labels: {database: SQ, queue: 'question_responses'}, value: 6})
    expect(data.sections.every((s: any) => s.up)).toBe(true)
  })

  it('--output writes the file atomically (readable by node_exporter, nothing left behind) and promtool accepts it', async () => {
    const dir = mkdtempSync(join(scratch, 'textfile-'))
    const file = join(dir, 'singularity.prom')
    const result = await cli(['metrics', '--output', file])
    expect(result.exitCode, result.stderr).toBe(0)
    expect(result.stdout).toMatch(/^wrote \d+ samples to .*singularity\.prom/)
    expect(readdirSync(dir)).toEqual(['singularity.prom'])
    expect(statSync(file).mode & 0o777).toBe(0o644)
    const check = promtool(readFileSync(file, 'utf8'))
    expect(check.status, check.output).toBe(0)
    const bad = await cli(['metrics', '--output', join(scratch, 'no-such-dir', 'x.prom')])
    expect(bad.exitCode).toBe(1)
    expect(bad.stderr).toMatch(/^error: cannot write/)
  })

  it('bad --listen / --timeout exit 2', async () => {
    for (const args of [['--listen', 'nowhere:port'], ['--listen', '70000'], ['--timeout', 'soon']]) {
      const result = await cli(['metrics', ...args])
      expect(result.exitCode, args.join(' ')).toBe(2)
    }
  })

  it('--listen serves /metrics on 127.0.0.1, reports a stuck database down within the timeout, and exits 130 on Ctrl-C', async () => {
    const child = spawn(process.execPath, [BIN, 'metrics', '--listen', '0', '--timeout', '3s', '--prefix', P], {
      env: {...process.env, SINGULARITY_ADMIN_URL: adminUrl()},
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stderr = ''
    child.stderr.on('data', (d) => (stderr += d))
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    const locker = await connect(urlFor(SQ))
    try {
      let url: string | undefined
      for (let i = 0; i < 300 && !url; i++) {
        url = /serving (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(stderr)?.[1]
        if (!url) await new Promise((r) => setTimeout(r, 100))
      }
      expect(url, `the "serving http://127.0.0.1:<port>/metrics" line on stderr (got: ${stderr})`).toBeDefined()

      const ok = await fetch(url!)
      expect(ok.status).toBe(200)
      expect(ok.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8')
      const body = await ok.text()
      expect(promtool(body).status).toBe(0)
      expect(sample(body, 'singularity_scrape_up', `{section="queues",database="${SQ}"}`)).toBe(1)
      expect((await fetch(url!.replace('/metrics', '/nope'))).status).toBe(404)

      // A queue table held by an exclusive lock: its database cannot answer; the scrape still does.
      await locker.query('BEGIN')
      await locker.query('LOCK TABLE pgmq.q_question_responses IN ACCESS EXCLUSIVE MODE')
      const stuck = await fetch(url!, {signal: AbortSignal.timeout(60_000)})
      expect(stuck.status).toBe(200)
      const text = await stuck.text()
      expect(promtool(text).status).toBe(0)
      expect(sample(text, 'singularity_scrape_up', `{section="queues",database="${SQ}"}`)).toBe(0)
      expect(sample(text, 'singularity_scrape_up', `{section="queues",database="${SG}"}`)).toBe(1)
      expect(sample(text, 'singularity_queue_length', `{database="${SQ}",queue="question_responses"}`)).toBeUndefined()
      await locker.query('ROLLBACK')

      const again = await (await fetch(url!)).text()
      expect(sample(again, 'singularity_scrape_up', `{section="queues",database="${SQ}"}`)).toBe(1)

      child.kill('SIGINT')
      expect(await exited).toBe(130)
    } finally {
      child.kill('SIGKILL')
      await locker.end()
    }
  })
})
