import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {beforeAll, describe, expect, it} from 'vitest'

import {runCli} from '../helpers/cli.js'
import {watchCli} from '../helpers/watch.js'
import {adminUrl, provisionedEstate, urlFor, withClient} from '../helpers/db.js'

/**
 * --watch on queue stats, jobs list, cdc slots and doctor: NDJSON ticks (with --json or a pipe),
 * rates from deltas, a lost connection shown and retried, Ctrl-C exiting 130. Estate prefix t_w_.
 */
const P = 't_w_'
const SQ = `${P}shared_queue`
const scratch = mkdtempSync(join(tmpdir(), 'sing-watch-'))

/** A running `--watch` command on this file's estate. */
const watch = (args: string[]) => watchCli([...args, '--prefix', P])

beforeAll(async () => {
  // Set-up failure fails the suite.
  await provisionedEstate(P, join(scratch, 'passwords.json'))
}, 240_000)

describe('--watch', () => {
  it('queue stats --json: one document per tick, sent/s from the difference, a lost connection shown then reconnected, Ctrl-C exits 130', async () => {
    const w = watch(['queue', 'stats', '--db', 'shared_queue', '--pattern', 'job_results', '--watch', '1s', '--json'])
    try {
      const first = await w.waitFor('job_results', (d) => d.queues?.length === 1)
      expect(first).toMatchObject({interval_sec: 1, lost: []})
      expect(first.queues[0]).toMatchObject({database: SQ, queue: 'job_results', sent_per_sec: null, archived_per_sec: null})
      expect(Number.isNaN(Date.parse(first.at))).toBe(false)
      const seen = w.docs().length

      await withClient(urlFor(SQ), (c) => c.query(`SELECT pgmq.send_batch('job_results', array(SELECT jsonb_build_object('request_id', g, 'output', '', 'error', null) FROM generate_series(1, 30) g))`))
      const moved = await w.waitFor('the 30 messages sent', (d) => d.queues?.[0]?.total_sent === 30, seen)
      // the tick before it saw 0 sent, so the rate is positive (its value depends on the tick's length)
      const before = w.docs()[moved._index - 1]
      expect(before.queues[0].total_sent).toBe(0)
      expect(moved.queues[0].sent_per_sec).toBeGreaterThan(0)
      expect(moved.queues[0].length).toBe(30)

      // the watch's own session is killed: the tick says so, and a later tick reconnects
      const killedAt = w.docs().length
      await withClient(adminUrl(), (c) =>
        c.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'singularity queue stats --watch' AND datname = $1`, [SQ]),
      )
      const lost = await w.waitFor('the lost connection', (d) => d.lost?.length > 0, killedAt)
      expect(lost.lost[0].database).toBe(SQ)
      expect(lost.queues).toEqual([])
      await w.waitFor('a reconnected tick', (d) => d.lost?.length === 0 && d.queues?.length === 1, lost._index + 1)

      const end = await w.interrupt()
      expect(end).toEqual({code: 130, signal: null})
      expect(w.stderr).not.toMatch(/Error|at .*\.js/)
    } finally {
      w.kill()
    }
  })

  it('jobs list into a pipe (no --json): NDJSON ticks with the jobs; exit 130', async () => {
    const w = watch(['jobs', 'list', '--runner', 'pg_cron', '--watch', '1s'])
    try {
      const tick = await w.waitFor('the pg_cron jobs', (d) => Array.isArray(d.jobs))
      expect(tick.jobs.length).toBeGreaterThan(0)
      expect(tick.jobs.every((j: any) => j.runner === 'pg_cron')).toBe(true)
      await w.waitFor('a second tick', () => true, 1)
      expect((await w.interrupt()).code).toBe(130)
    } finally {
      w.kill()
    }
  })

  it('cdc slots --json: ticks with WAL growth per second from the second tick on; exit 130', async () => {
    const w = watch(['cdc', 'slots', '--watch', '1s', '--json'])
    try {
      const first = await w.waitFor('the slots', (d) => Array.isArray(d.slots))
      expect(first.wal_bytes_per_sec).toBeNull()
      const slot = first.slots.find((s: any) => s.name === `${P}singularity_centralcloud_cdc`)
      expect(slot).toMatchObject({retained_bytes_per_sec: null})
      const second = await w.waitFor('a second tick', (d) => Array.isArray(d.slots), 1)
      expect(typeof second.wal_bytes_per_sec).toBe('number')
      expect(second.wal_bytes_per_sec).toBeGreaterThanOrEqual(0)
      expect(typeof second.slots.find((s: any) => s.name === slot.name).retained_bytes_per_sec).toBe('number')
      expect((await w.interrupt()).code).toBe(130)
    } finally {
      w.kill()
    }
  })

  it('doctor --json: a verdict per tick; exit 130', async () => {
    const w = watch(['doctor', '--watch', '--json'])
    try {
      const tick = await w.waitFor('a verdict', (d) => typeof d.verdict === 'string')
      expect(tick.checks.map((c: any) => c.check)).toContain('queue backlog')
      expect((await w.interrupt()).code).toBe(130)
    } finally {
      w.kill()
    }
  })

  it('a bad interval exits 2; --watch does not combine with --fail-* thresholds', async () => {
    for (const args of [['queue', 'stats', '--watch', 'often'], ['cdc', 'slots', '--watch', '0s'], ['queue', 'stats', '--watch', '--fail-if-length-gt', '5'], ['cdc', 'slots', '--watch', '--fail-if-retained-gt', '1GB']]) {
      const result = await runCli([...args, '--prefix', P])
      expect(result.exitCode, args.join(' ')).toBe(2)
    }
  })
})
