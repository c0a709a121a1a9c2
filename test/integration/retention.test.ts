import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import type pg from 'pg'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

// in process: the same argv, output and exit codes as a child process, without a node start per run
import {runCliInProcess as runCli} from '../helpers/cli.js'
import {connect, createTestDatabase, installComponents, provisionedEstate, urlFor, withClient} from '../helpers/db.js'

/**
 * Issue 18: retention where the seeds imply it, observable: rows older than their window are gone
 * after the job runs, rows inside it stay, the rollups stay. metrics_events with pg_partman (day
 * partitions) and without it (batched deletes); the archives of each singularity database's queues.
 */

const DAY = 86_400_000
/** Raw metrics at these ages (days): 40 and 35 are older than the 30-day window, 29 and 1 inside it. */
const AGES = [40, 35, 31, 29, 1]

async function insertMetrics(c: pg.Client): Promise<void> {
  for (const age of AGES) {
    // two samples a day, of one agent
    await c.query(
      `INSERT INTO metrics_events (metric, value, agent_id, recorded_at)
       VALUES ('agent_cpu', 10, 'a1', now() - make_interval(days => $1)), ('agent_cpu', 30, 'a1', now() - make_interval(days => $1) + interval '1 second')`,
      [age],
    )
  }
}

async function rawAges(c: pg.Client): Promise<number[]> {
  const {rows} = await c.query<{age: number}>(`SELECT DISTINCT round(extract(epoch FROM now() - recorded_at) / 86400)::int AS age FROM metrics_events ORDER BY 1`)
  return rows.map((r) => r.age)
}

/** 1-day rollup of agent_cpu for the day of a sample `age` days old: [sample_count, avg]. */
async function dayRollup(c: pg.Client, age: number): Promise<[number, number] | null> {
  const {rows} = await c.query<{n: string; avg: number}>(
    `SELECT sample_count AS n, avg_value AS avg FROM metrics_rollups
      WHERE resolution = '1day' AND agent_key = '*' AND metric = 'agent_cpu'
        AND bucket_start = date_bin('1 day', now() - make_interval(days => $1), timestamptz '2000-01-01 00:00:00+00')`,
    [age],
  )
  return rows.length === 0 ? null : [Number(rows[0].n), rows[0].avg]
}

async function isPartitioned(c: pg.Client): Promise<boolean> {
  const {rows} = await c.query(`SELECT 1 FROM pg_partitioned_table WHERE partrelid = 'public.metrics_events'::regclass`)
  return rows.length === 1
}

describe('metrics_events retention without pg_partman (batched deletes)', () => {
  let c: pg.Client
  beforeAll(async () => {
    const db = await createTestDatabase('retention_plain')
    c = await connect(db.url)
    await c.query('CREATE EXTENSION IF NOT EXISTS pgcrypto')
    await installComponents(db.url, ['pgmq', 'singularity'])
  })
  afterAll(async () => {
    await c?.end()
  })

  it('the partitions migration is skipped and metrics_events stays one table', async () => {
    expect(await isPartitioned(c)).toBe(false)
    const {rows} = await c.query(`SELECT 1 FROM pg_extension WHERE extname = 'pg_partman'`)
    expect(rows).toEqual([])
  })

  it('drops rows older than 30 days once rolled up; keeps the rest and the rollups', async () => {
    await insertMetrics(c)
    // nothing was rolled up yet: the job rolls up the days about to go first
    expect(await dayRollup(c, 40)).toBeNull()
    const {rows} = await c.query('SELECT * FROM prune_metrics_events(30)')
    expect(rows[0]).toMatchObject({method: 'batched delete', partitions_dropped: 0, rows_deleted: '6', more_left: false})
    expect(rows[0].rolled_up_from).not.toBeNull()
    expect(await rawAges(c)).toEqual([1, 29])
    expect(await dayRollup(c, 40)).toEqual([2, 20])
    expect(await dayRollup(c, 35)).toEqual([2, 20])
    expect(await dayRollup(c, 31)).toEqual([2, 20])
    // a later refresh never rewrites the days whose rows are gone
    await c.query(`SELECT * FROM refresh_metrics_rollups(now() - interval '60 days')`)
    expect(await dayRollup(c, 40)).toEqual([2, 20])
    // a second run has nothing to do
    const again = await c.query('SELECT * FROM prune_metrics_events(30)')
    expect(again.rows[0]).toMatchObject({rows_deleted: '0', rolled_up_from: null, more_left: false})
  })

  it('is bounded per run: batches of a given size, the rest for the next run', async () => {
    await c.query(`INSERT INTO metrics_events (metric, value, recorded_at) SELECT 'm', g, now() - interval '45 days' + g * interval '1 second' FROM generate_series(1, 25) g`)
    const first = await c.query('SELECT * FROM prune_metrics_events(30, 10, 2)')
    expect(first.rows[0]).toMatchObject({rows_deleted: '20', more_left: true})
    const second = await c.query('SELECT * FROM prune_metrics_events(30, 10, 2)')
    expect(second.rows[0]).toMatchObject({rows_deleted: '5', more_left: false})
    const left = await c.query(`SELECT count(*)::int AS n FROM metrics_events WHERE metric = 'm'`)
    expect(left.rows[0].n).toBe(0)
  })
})

describe('metrics_events retention with pg_partman (day partitions)', () => {
  let c: pg.Client
  let url: string
  beforeAll(async () => {
    const db = await createTestDatabase('retention_partman')
    url = db.url
    c = await connect(db.url)
    await c.query('CREATE EXTENSION IF NOT EXISTS pgcrypto')
    await installComponents(db.url, ['pgmq', 'singularity'])
  })
  afterAll(async () => {
    await c?.end()
  })

  it('pg_partman arriving later: db init applies the migration, the rows move into day partitions', async () => {
    await insertMetrics(c)
    const before = await c.query<{n: number; max: string}>('SELECT count(*)::int AS n, max(id) AS max FROM metrics_events')
    await c.query('CREATE SCHEMA partman')
    await c.query('CREATE EXTENSION pg_partman SCHEMA partman')
    await installComponents(url, ['pgmq', 'singularity'])
    expect(await isPartitioned(c)).toBe(true)
    const after = await c.query<{n: number; max: string}>('SELECT count(*)::int AS n, max(id) AS max FROM metrics_events')
    expect(after.rows[0]).toEqual(before.rows[0])
    // rows inside the window sit in day partitions; the older ones in the default partition
    const {rows} = await c.query<{part: string; n: number}>(`SELECT tableoid::regclass::text AS part, count(*)::int AS n FROM metrics_events GROUP BY 1 ORDER BY 1`)
    expect(rows.find((r) => r.part === 'metrics_events_default')?.n).toBe(4)
    expect(rows.filter((r) => /^metrics_events_p\d{4}_\d{2}_\d{2}$/.test(r.part)).reduce((a, r) => a + r.n, 0)).toBe(6)
    // new rows keep their ids unique
    await c.query(`INSERT INTO metrics_events (metric, value) VALUES ('agent_cpu', 1)`)
    const ids = await c.query<{n: number; d: number}>('SELECT count(*)::int AS n, count(DISTINCT id)::int AS d FROM metrics_events')
    expect(ids.rows[0].n).toBe(ids.rows[0].d)
    await c.query(`DELETE FROM metrics_events WHERE value = 1`)
  })

  it('drops the day partitions older than 30 days and the old default rows, once rolled up; rollups kept', async () => {
    const partitionsBefore = (await c.query<{n: number}>(`SELECT count(*)::int AS n FROM pg_inherits WHERE inhparent = 'metrics_events'::regclass`)).rows[0].n
    const {rows} = await c.query('SELECT * FROM prune_metrics_events(30)')
    expect(rows[0].method).toBe('partitions')
    expect(rows[0].partitions_dropped).toBeGreaterThanOrEqual(1)
    expect(rows[0]).toMatchObject({rows_deleted: '6', more_left: false})
    expect(await rawAges(c)).toEqual([1, 29])
    for (const age of [40, 35, 31]) expect(await dayRollup(c, age)).toEqual([2, 20])
    // no partition ending at or before the cutoff is left; days ahead are made
    const {rows: parts} = await c.query<{end: Date}>(
      `SELECT (partman.show_partition_info('public.' || c.relname, p_parent_table := 'public.metrics_events')).child_end_time AS end
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'metrics_events'::regclass AND c.relname <> 'metrics_events_default'`,
    )
    const cutoff = Date.now() - 30 * DAY
    expect(parts.every((p) => p.end.getTime() > cutoff - DAY)).toBe(true)
    expect(Math.max(...parts.map((p) => p.end.getTime()))).toBeGreaterThan(Date.now() + 3 * DAY)
    expect(partitionsBefore).toBeGreaterThan(parts.length)
  })
})

describe('retention jobs in a provisioned estate', () => {
  const P = 't_ret_'
  const secrets = mkdtempSync(join(tmpdir(), 'sing-ret-'))
  beforeAll(async () => {
    // a copy of the run's template estate completed by `db init` (throws on failure)
    await provisionedEstate(P, join(secrets, 'pw.json'))
  })

  it('db init partitions metrics_events with pg_partman (the server has it) and names it in the features', async () => {
    await withClient(urlFor(`${P}singularity`), async (c) => {
      expect(await isPartitioned(c)).toBe(true)
      const {rows} = await c.query(`SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_partman'`)
      expect(rows).toEqual([{nspname: 'partman'}])
    })
  })

  it('jobs run prune-metrics-events and prune-instance-queue-archives: old rows gone, recent kept', async () => {
    await withClient(urlFor(`${P}singularity`), async (c) => {
      await insertMetrics(c)
      // archived messages of this instance's queues: one 100 days old, one 10 days old
      for (const age of [100, 10]) {
        await c.query(`SELECT pgmq.archive('agent-sessions', pgmq.send('agent-sessions', jsonb_build_object('age', $1::int)))`, [age])
        await c.query(`UPDATE pgmq."a_agent-sessions" SET archived_at = now() - make_interval(days => $1) WHERE (message->>'age')::int = $1`, [age])
      }
    })
    const metrics = await runCli(['jobs', 'run', 'prune-metrics-events', '--prefix', P, '--json'], {timeoutMs: 120_000})
    expect(metrics.exitCode, metrics.stderr).toBe(0)
    expect(metrics.json().runs[0]).toMatchObject({ok: true, database: `${P}singularity`, output: {rows: [expect.objectContaining({method: 'partitions', rows_deleted: '6'})]}})
    const archives = await runCli(['jobs', 'run', 'prune-instance-queue-archives', '--prefix', P, '--json'], {timeoutMs: 120_000})
    expect(archives.exitCode, archives.stderr).toBe(0)
    expect(archives.json().runs[0].output.rows[0]).toEqual({singularity_prune_queue_archives: '1'})
    await withClient(urlFor(`${P}singularity`), async (c) => {
      expect(await rawAges(c)).toEqual([1, 29])
      const {rows} = await c.query(`SELECT (message->>'age')::int AS age FROM pgmq."a_agent-sessions" ORDER BY 1`)
      expect(rows).toEqual([{age: 10}])
    })
  })

  it("the seeds' job names resolve in jobs run and jobs history", async () => {
    const run = await runCli(['jobs', 'run', 'daily-vacuum-analyze', '--prefix', P, '--json'], {timeoutMs: 120_000})
    expect(run.exitCode, run.stderr).toBe(0)
    expect(run.json()).toMatchObject({name: 'vacuum-analyze', alias: 'daily-vacuum-analyze', runs: [{ok: true, job: `singularity:${P}vacuum-analyze`}]})
    const history = await runCli(['jobs', 'history', 'learn-patterns-every-5min', '--prefix', P, '--json'])
    expect(history.exitCode, history.stderr).toBe(0)
    expect(history.json()).toMatchObject({runner: 'pg_cron', jobs: [`singularity:${P}learn-patterns`], alias: 'learn-patterns-every-5min'})
    const human = await runCli(['jobs', 'history', `singularity:${P}daily-vacuum-analyze`, '--prefix', P])
    expect(human.exitCode, human.stderr).toBe(0)
    expect(human.stdout).toContain(`singularity:${P}daily-vacuum-analyze is the seeds' name of singularity:${P}vacuum-analyze`)
  })

  it('SINGULARITY_QUEUE_RETENTION_DAYS sets the window; a bad value exits 2', async () => {
    const list = await runCli(['jobs', 'list', '--prefix', P, '--json', '--runner', 'pg_cron'], {env: {SINGULARITY_QUEUE_RETENTION_DAYS: '7'}})
    expect(list.exitCode, list.stderr).toBe(0)
    const job = list.json().jobs.find((j: {name: string}) => j.name === 'prune-instance-queue-archives')
    expect(job.command).toBe('SELECT public.singularity_prune_queue_archives(7)')
    expect(job.drift).toEqual(['command differs'])
    const bad = await runCli(['jobs', 'list', '--prefix', P, '--json'], {env: {SINGULARITY_QUEUE_RETENTION_DAYS: 'ninety'}})
    expect(bad.exitCode).toBe(2)
    expect(bad.json().error.message).toContain('SINGULARITY_QUEUE_RETENTION_DAYS')
  })
})
