import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import type pg from 'pg'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {runCli} from '../helpers/cli.js'
import {adminUrl, connect, uniqueSuffix, urlFor, withClient} from '../helpers/db.js'
import {OBAN_SCHEMA} from '../helpers/oban.js'
import {freeConnections, readBound} from '../../src/lib/estate/visit.js'

/**
 * Issue 19: the reading commands visit an estate of 20 singularity instances concurrently, and one
 * database that cannot be read (refused, or stuck past --db-timeout) is named while the other 19
 * still answer. This file is about many instances, so it runs its own `db init --instances 20`.
 */
const P = `t_rc${uniqueSuffix().slice(0, 6)}_`
const INSTANCES = 20
const secrets = mkdtempSync(join(tmpdir(), 'sing-read-concurrency-'))
const singularity = Array.from({length: INSTANCES}, (_, i) => `${P}singularity_${i + 1}`)
const queueDatabases = [...singularity, `${P}shared_queue`]
const cli = (args: string[]) => runCli([...args, '--prefix', P, '--json'], {timeoutMs: 180_000})

type Unreadable = {database: string; reason: string; timed_out: boolean}

/** The estate's databases that answered a queue read: the databases of its rows. */
const databasesOf = (rows: {database: string}[]) => [...new Set(rows.map((r) => r.database))].sort()
const without = (list: string[], name: string) => list.filter((d) => d !== name).sort()

describe(`reading commands over ${INSTANCES} singularity instances`, () => {
  beforeAll(async () => {
    const init = await runCli(['db', 'init', '--prefix', P, '--instances', String(INSTANCES), '--queue-engine', 'bundled', '--passwords-file', join(secrets, 'pw.json')], {timeoutMs: 600_000})
    expect(init.exitCode, init.stderr).toBe(0)
    // the estate's pg_cron jobs must not run meanwhile: the verdicts depend only on the faults injected here
    await withClient(adminUrl(), (c) => c.query("UPDATE cron.job SET active = false WHERE jobname LIKE 'singularity:' || $1 || '%'", [P]))
  })

  afterAll(async () => {
    await withClient(adminUrl(), async (c) => {
      await c.query(`ALTER DATABASE "${P}singularity_7" ALLOW_CONNECTIONS true`)
      await c.query("SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE 'singularity:' || $1 || '%'", [P])
      await c.query("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE $1 || '%' AND NOT active", [P])
    })
    rmSync(secrets, {recursive: true, force: true})
  })

  it('all 20 answer when nothing is wrong, in estate order', async () => {
    const status = await cli(['db', 'status', '--concurrency', '4'])
    expect(status.exitCode, status.stderr).toBe(0)
    const names = status.json().databases.map((d: {name: string}) => d.name)
    // estate order: singularity_1 … singularity_20 as the topology lists them, whatever answered first
    expect(names.filter((n: string) => n.startsWith(`${P}singularity_`))).toEqual(singularity)
    expect(status.json().unreadable).toEqual([])

    const stats = await cli(['queue', 'stats', '--concurrency', '3'])
    expect(stats.exitCode, stats.stderr).toBe(0)
    expect(databasesOf(stats.json().queues)).toEqual([...queueDatabases].sort())
    expect(stats.json().unreadable).toEqual([])
  })

  it('a database that refuses connections is named by every reading command; the other 19 still answer', async () => {
    const bad = `${P}singularity_7`
    // CONNECTION LIMIT 0 and a revoked CONNECT do not stop a superuser (the test's admin);
    // ALLOW_CONNECTIONS false refuses everyone, the admin included
    await withClient(adminUrl(), async (c) => {
      await c.query(`ALTER DATABASE "${bad}" CONNECTION LIMIT 0`)
      await c.query(`ALTER DATABASE "${bad}" ALLOW_CONNECTIONS false`)
    })
    try {
      const expectNamed = (list: Unreadable[]) => {
        expect(list.map((u) => u.database)).toEqual([bad])
        expect(list[0].timed_out).toBe(false)
        expect(list[0].reason).toMatch(/not currently accepting connections/)
      }

      const doctor = await cli(['doctor'])
      expect(doctor.exitCode, doctor.stderr).toBe(3)
      const report = doctor.json()
      expectNamed(report.unreadable)
      const reachable = report.checks.find((c: {check: string}) => c.check === 'databases reachable')
      expect(reachable.status).toBe('fail')
      expect(reachable.detail).toContain(bad)
      // the other 19 singularity databases were read: their keys are there
      const key = report.checks.find((c: {check: string}) => c.check === 'encryption key')
      expect(key.status).toBe('ok')
      expect(key.detail).toMatch(/active key present in 19 singularity database/)

      const stats = await cli(['queue', 'stats'])
      expect(stats.exitCode, stats.stderr).toBe(1)
      expectNamed(stats.json().unreadable)
      expect(databasesOf(stats.json().queues)).toEqual(without(queueDatabases, bad))
      expect(stats.stderr).toContain(`unreadable: ${bad}`)

      const jobs = await cli(['jobs', 'list'])
      expect(jobs.exitCode, jobs.stderr).toBe(1)
      expectNamed(jobs.json().unreadable)
      const oban = jobs.json().jobs.filter((j: {runner: string}) => j.runner === 'oban')
      expect(oban.filter((j: {note?: string}) => j.note?.includes(`could not read ${bad}`)).length).toBeGreaterThan(0)
      // the other instances' rows are there, with what was read (no oban_jobs table yet)
      const readOban = databasesOf(oban.filter((j: {note?: string}) => j.note?.startsWith('no oban_jobs table')))
      expect(readOban.filter((d) => d.startsWith(`${P}singularity_`))).toEqual(without(singularity, bad))

      const status = await cli(['db', 'status'])
      expect(status.exitCode, status.stderr).toBe(3)
      expectNamed(status.json().unreadable)
      const verdicts = Object.fromEntries(status.json().databases.map((d: {name: string; verdict: string}) => [d.name, d.verdict]))
      expect(verdicts[bad]).toBe('unreachable')
      for (const name of without(singularity, bad)) expect(verdicts[name], name).toBe('ok')

      const plan = await cli(['db', 'plan'])
      expect(plan.exitCode, plan.stderr).toBe(3)
      expectNamed(plan.json().unreadable)

      // server-wide: replication slots are read from the admin connection, untouched by one database
      const slots = await cli(['cdc', 'slots', '--sample', '0'])
      expect(slots.exitCode, slots.stderr).toBe(0)
      expect(slots.json().missing).toEqual([])

      const metrics = await cli(['metrics'])
      expect(metrics.exitCode, metrics.stderr).toBe(0)
      const down = metrics.json().sections.filter((s: {up: boolean}) => !s.up)
      expect(down.map((s: {section: string; database?: string}) => `${s.section}/${s.database}`).sort()).toEqual([`databases/${bad}`, `queues/${bad}`])
      const lengths = metrics.json().families.find((f: {name: string}) => f.name === 'singularity_queue_length')
      expect(databasesOf(lengths.samples.map((s: {labels: {database: string}}) => s.labels))).toEqual(without(queueDatabases, bad))
    } finally {
      await withClient(adminUrl(), async (c) => {
        await c.query(`ALTER DATABASE "${bad}" ALLOW_CONNECTIONS true`)
        await c.query(`ALTER DATABASE "${bad}" CONNECTION LIMIT -1`)
      })
    }
  })

  it('a database stuck behind a lock is reported timed out after --db-timeout; the others answer', async () => {
    const stuck = `${P}singularity_3`
    await withClient(urlFor(stuck), (c) => c.query(OBAN_SCHEMA))
    // what the reads need there: the SQL ledger (db status/plan, doctor), the queue catalog
    // (queue stats, doctor), the key table (doctor) and oban_jobs (jobs list)
    const holder: pg.Client = await connect(urlFor(stuck))
    try {
      await holder.query('BEGIN')
      await holder.query('LOCK TABLE singularity_meta.applied_sql, pgmq.meta, singularity_private.encryption_keys, public.oban_jobs IN ACCESS EXCLUSIVE MODE')
      const expectTimedOut = (list: Unreadable[]) => {
        expect(list.map((u) => u.database)).toEqual([stuck])
        expect(list[0].timed_out).toBe(true)
      }

      const status = await cli(['db', 'status', '--db-timeout', '2s'])
      expect(status.exitCode, status.stderr).toBe(3)
      expectTimedOut(status.json().unreadable)
      const byName = Object.fromEntries(status.json().databases.map((d: {name: string}) => [d.name, d]))
      expect(byName[stuck]).toMatchObject({verdict: 'unreachable', timedOut: true})
      for (const name of without(singularity, stuck)) expect(byName[name].verdict, name).toBe('ok')

      const stats = await cli(['queue', 'stats', '--db-timeout', '2s'])
      expect(stats.exitCode, stats.stderr).toBe(1)
      expectTimedOut(stats.json().unreadable)
      expect(databasesOf(stats.json().queues)).toEqual(without(queueDatabases, stuck))
      expect(stats.stderr).toContain(`timed out: ${stuck}`)

      const jobs = await cli(['jobs', 'list', '--db-timeout', '2s'])
      expect(jobs.exitCode, jobs.stderr).toBe(1)
      expectTimedOut(jobs.json().unreadable)

      // the same setting from the environment
      const doctor = await runCli(['doctor', '--prefix', P, '--json'], {timeoutMs: 180_000, env: {SINGULARITY_DB_TIMEOUT: '2s'}})
      expect(doctor.exitCode, doctor.stderr).toBe(3)
      expectTimedOut(doctor.json().unreadable)
      const reachable = doctor.json().checks.find((c: {check: string}) => c.check === 'databases reachable')
      expect(reachable.detail).toContain(`${stuck} timed out`)
    } finally {
      await holder.query('ROLLBACK').catch(() => {})
      await holder.end()
    }
  })

  it('the bound never takes more than a quarter of the connections the server has free', async () => {
    await withClient(adminUrl(), async (c) => {
      const free = await freeConnections(c)
      const {rows: [s]} = await c.query<{max: number; reserved: number}>("SELECT current_setting('max_connections')::int AS max, current_setting('superuser_reserved_connections')::int AS reserved")
      // this connection is one of the client backends counted
      expect(free).toBeGreaterThan(0)
      expect(free).toBeLessThan(s.max - s.reserved)
      const bound = await readBound(c, {concurrency: 64, timeoutMs: 1000})
      expect(bound).toEqual({concurrency: Math.max(1, Math.min(64, Math.floor(bound.freeConnections! / 4))), timeoutMs: 1000, freeConnections: bound.freeConnections})
      expect(bound.concurrency).toBeLessThanOrEqual(Math.max(1, bound.freeConnections! / 4))
      expect((await readBound(c, {concurrency: 2})).concurrency).toBe(2)
    })
  })

  it('a bad bound is refused before anything connects (exit 2)', async () => {
    const zero = await cli(['queue', 'stats', '--concurrency', '0'])
    expect(zero.exitCode).toBe(2)
    const badTimeout = await cli(['db', 'status', '--db-timeout', 'soon'])
    expect(badTimeout.exitCode).toBe(2)
    expect(badTimeout.json().error.message).toContain('--db-timeout')
    const badEnv = await runCli(['doctor', '--prefix', P, '--json'], {env: {SINGULARITY_CONCURRENCY: 'many'}})
    expect(badEnv.exitCode).toBe(2)
    expect(badEnv.json().error.message).toContain('SINGULARITY_CONCURRENCY')
  })
})
