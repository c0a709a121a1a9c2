import type pg from 'pg'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {ExitCode} from '../../src/lib/cli/errors.js'
import {installSchedules} from '../../src/lib/cron/install.js'
import {plannedCronJobs} from '../../src/lib/cron/names.js'
import {SCHEDULES, type JobSpec} from '../../src/schedules.js'
import {estate} from '../../src/topology.js'
// in process: the same argv, output and exit codes as a child process, without a node start per run
import {runCliInProcess as runCli} from '../helpers/cli.js'
import {OBAN_SCHEMA} from '../helpers/oban.js'
import {connect, installComponents, urlFor, withClient} from '../helpers/db.js'
import {waitFor} from '../helpers/wait.js'

/**
 * Schedules against a real pg_cron (issue 6): installation from the cron database into the
 * databases the jobs act on, re-install, drift, `jobs list / run / history`, Oban's table.
 * Estate prefixes of this file: t_jobs_ (one instance), t_jobs2_ (two instances), t_jobst_ (jobs
 * pg_cron fires every minute while the other tests run).
 */

const PREFIX = 't_jobs_'
const PREFIX2 = 't_jobs2_'
const PREFIX_TICK = 't_jobst_'
const ROLE = 't_jobs_runner'
const est = estate({prefix: PREFIX})
const est2 = estate({prefix: PREFIX2, instances: 2})
const estTick = estate({prefix: PREFIX_TICK})
const DATABASES = [
  `${PREFIX}singularity`,
  `${PREFIX}shared_queue`,
  `${PREFIX}centralcloud`,
  `${PREFIX2}singularity_1`,
  `${PREFIX2}singularity_2`,
  `${PREFIX2}shared_queue`,
]

let cron: pg.Client

interface CronJobRow {
  jobid: string
  jobname: string
  schedule: string
  command: string
  database: string
  username: string
  active: boolean
}

async function cronJobs(namePrefix: string): Promise<CronJobRow[]> {
  const {rows} = await cron.query<CronJobRow>(
    'SELECT jobid, jobname::text AS jobname, schedule, command, database, username, active FROM cron.job WHERE left(jobname, length($1)) = $1 ORDER BY jobname',
    [namePrefix],
  )
  return rows
}

async function unscheduleAll(namePrefix: string): Promise<void> {
  await cron.query('SELECT cron.unschedule(jobid) FROM cron.job WHERE left(jobname, length($1)) = $1', [namePrefix])
}

const pgCronSpecs = SCHEDULES.filter((s) => s.runner === 'pg_cron')

const tick: JobSpec = {name: 'tick', runner: 'pg_cron', schedule: '* * * * *', database: 'cron', command: "SELECT 'tick' AS tick", description: 'test: fires every minute', source: 'test'}
const broken: JobSpec = {name: 'broken', runner: 'pg_cron', schedule: '* * * * *', database: 'cron', command: 'SELECT 1/0', description: 'test: fails every minute', source: 'test'}

beforeAll(async () => {
  cron = await connect(urlFor('postgres'))
  await cron.query('CREATE EXTENSION IF NOT EXISTS pg_cron')
  await unscheduleAll(`singularity:t_jobs`)
  for (const db of DATABASES) {
    await cron.query(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`)
    await cron.query(`CREATE DATABASE "${db}"`)
  }
  await cron.query(`DROP ROLE IF EXISTS ${ROLE}`)
  await cron.query(`CREATE ROLE ${ROLE} LOGIN`)
  await installComponents(urlFor(`${PREFIX}shared_queue`), ['pgmq', 'shared_queue'])
  // pg_cron fires these while the other tests run; the last tests read what it recorded
  const cronOnly = SCHEDULES.filter((s) => s.database === 'cron')
  await installSchedules(cron, estTick, [...cronOnly, tick, broken])
})

afterAll(async () => {
  if (!cron) return
  await unscheduleAll(`singularity:t_jobs`)
  await cron.query("DELETE FROM cron.job_run_details WHERE command = 'SELECT 1/0' OR command LIKE 'SELECT ''tick''%'").catch(() => {})
  for (const db of DATABASES) await cron.query(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`).catch(() => {})
  await cron.query(`DROP ROLE IF EXISTS ${ROLE}`).catch(() => {})
  await cron.end()
})

describe('installSchedules', () => {
  it('installs every declared pg_cron job into the database it acts on, named under our prefix', async () => {
    const result = await installSchedules(cron, est, SCHEDULES)
    const planned = plannedCronJobs(est, SCHEDULES, 'postgres')
    expect(planned).toHaveLength(pgCronSpecs.length)
    expect(result.created).toEqual(planned.map((p) => p.jobname).sort())
    expect(result.updated).toEqual([])
    expect(result.removed).toEqual([])

    const {rows} = await cron.query<{user: string}>('SELECT current_user AS user')
    const installed = await cronJobs(`singularity:${PREFIX}`)
    expect(installed).toHaveLength(pgCronSpecs.length)
    for (const spec of pgCronSpecs) {
      const job = installed.find((j) => j.jobname === `singularity:${PREFIX}${spec.name}`)
      expect(job, spec.name).toBeDefined()
      expect(job!.schedule).toBe(spec.schedule)
      expect(job!.command).toBe(spec.command)
      const database = spec.database === 'cron' ? 'postgres' : `${PREFIX}${spec.database}`
      expect(job!.database).toBe(database)
      expect(job!.username).toBe(rows[0].user)
      expect(job!.active).toBe(true)
    }
    // spot checks against seed 000's table
    expect(installed.find((j) => j.jobname.endsWith('learn-patterns'))).toMatchObject({schedule: '*/5 * * * *', database: `${PREFIX}singularity`})
    expect(installed.find((j) => j.jobname.endsWith('prune-queue-archives'))).toMatchObject({database: `${PREFIX}shared_queue`})
  })

  it('re-installing is a no-op: same jobs, same ids', async () => {
    const before = await cronJobs(`singularity:${PREFIX}`)
    const result = await installSchedules(cron, est, SCHEDULES)
    expect(result.created).toEqual([])
    expect(result.updated).toEqual([])
    expect(result.removed).toEqual([])
    expect(result.unchanged).toHaveLength(pgCronSpecs.length)
    expect(await cronJobs(`singularity:${PREFIX}`)).toEqual(before)
  })

  it('updates a changed schedule in place, unschedules a removed one, never touches foreign jobs', async () => {
    await cron.query("SELECT cron.schedule_in_database('nightly-foreign-vacuum', '0 4 * * *', 'VACUUM', $1)", [`${PREFIX}singularity`])
    await cron.query("SELECT cron.schedule_in_database('singularity:t_other_learn-patterns', '*/5 * * * *', 'SELECT 1', $1)", [`${PREFIX}singularity`])
    const foreignBefore = (await cron.query("SELECT * FROM cron.job WHERE jobname IN ('nightly-foreign-vacuum', 'singularity:t_other_learn-patterns') ORDER BY jobid")).rows
    const learnBefore = (await cronJobs(`singularity:${PREFIX}learn-patterns`))[0]

    const changed = SCHEDULES.filter((s) => s.name !== 'cache-cleanup').map((s) => (s.name === 'learn-patterns' ? {...s, schedule: '*/7 * * * *'} : s))
    const result = await installSchedules(cron, est, changed)
    expect(result.updated).toEqual([`singularity:${PREFIX}learn-patterns`])
    expect(result.removed).toEqual([`singularity:${PREFIX}cache-cleanup`])
    expect(result.created).toEqual([])

    const learnAfter = (await cronJobs(`singularity:${PREFIX}learn-patterns`))[0]
    expect(learnAfter.schedule).toBe('*/7 * * * *')
    expect(learnAfter.jobid).toBe(learnBefore.jobid) // altered, not re-created: its history stays
    expect(await cronJobs(`singularity:${PREFIX}cache-cleanup`)).toEqual([])
    const foreignAfter = (await cron.query("SELECT * FROM cron.job WHERE jobname IN ('nightly-foreign-vacuum', 'singularity:t_other_learn-patterns') ORDER BY jobid")).rows
    expect(foreignAfter).toEqual(foreignBefore)

    const back = await installSchedules(cron, est, SCHEDULES)
    expect(back).toMatchObject({created: [`singularity:${PREFIX}cache-cleanup`], updated: [`singularity:${PREFIX}learn-patterns`], removed: []})
    expect((await cron.query("SELECT count(*)::int AS n FROM cron.job WHERE jobname IN ('nightly-foreign-vacuum', 'singularity:t_other_learn-patterns')")).rows[0].n).toBe(2)
    await cron.query("SELECT cron.unschedule('nightly-foreign-vacuum')")
    await cron.query("SELECT cron.unschedule('singularity:t_other_learn-patterns')")
  })

  it('--dry-run reports without changing anything', async () => {
    await cron.query("SELECT cron.alter_job(jobid, schedule => '1 1 * * *') FROM cron.job WHERE jobname = $1", [`singularity:${PREFIX}pagerank`])
    const before = await cronJobs(`singularity:${PREFIX}`)
    const result = await installSchedules(cron, est, SCHEDULES.filter((s) => s.name !== 'vector-stats'), {dryRun: true})
    expect(result.updated).toEqual([`singularity:${PREFIX}pagerank`])
    expect(result.removed).toEqual([`singularity:${PREFIX}vector-stats`])
    expect(await cronJobs(`singularity:${PREFIX}`)).toEqual(before)
    expect((await installSchedules(cron, est, SCHEDULES)).updated).toEqual([`singularity:${PREFIX}pagerank`])
  })

  it('refuses bad input before changing anything: invalid cron expression, bad name, missing database (exit 2 / 1)', async () => {
    const before = await cronJobs('singularity:t_jobs')
    const bad = SCHEDULES.map((s) => (s.name === 'pagerank' ? {...s, schedule: '0 25 * * *'} : s))
    await expect(installSchedules(cron, est, bad)).rejects.toMatchObject({exitCode: ExitCode.usage, message: expect.stringContaining('pagerank')})
    const badName: JobSpec = {...tick, name: "x'; DROP TABLE cron.job; --"}
    await expect(installSchedules(cron, est, [badName])).rejects.toMatchObject({exitCode: ExitCode.usage})
    await expect(installSchedules(cron, estate({prefix: 't_jobs_nodb_'}), SCHEDULES)).rejects.toMatchObject({exitCode: ExitCode.failure, code: 'DATABASE_MISSING'})
    expect(await cronJobs('singularity:t_jobs')).toEqual(before)
  })

  it('with several singularity instances: one job per instance database, named with the instance', async () => {
    const result = await installSchedules(cron, est2, SCHEDULES)
    const perInstance = pgCronSpecs.filter((s) => s.database === 'singularity').length
    expect(result.created).toHaveLength(perInstance * 2 + pgCronSpecs.length - perInstance)
    const jobs = await cronJobs(`singularity:${PREFIX2}`)
    expect(jobs.find((j) => j.jobname === `singularity:${PREFIX2}assign-tasks:1`)?.database).toBe(`${PREFIX2}singularity_1`)
    expect(jobs.find((j) => j.jobname === `singularity:${PREFIX2}assign-tasks:2`)?.database).toBe(`${PREFIX2}singularity_2`)
    expect(jobs.find((j) => j.jobname === `singularity:${PREFIX2}prune-queue-archives`)?.database).toBe(`${PREFIX2}shared_queue`)
    // the estate without prefix, and t_jobs_, see none of these as theirs
    expect((await installSchedules(cron, est, SCHEDULES)).removed).toEqual([])

    const list = await runCli(['jobs', 'list', '--prefix', PREFIX2, '--runner', 'pg_cron', '--json'])
    expect(list.exitCode).toBe(0)
    const rows = list.json().jobs as {job: string; database: string; drift: string[]}[]
    expect(rows).toHaveLength(jobs.length)
    expect(rows.filter((r) => r.drift.length > 0)).toEqual([])
    expect(rows.filter((r) => r.job.endsWith('learn-patterns:2')).map((r) => r.database)).toEqual([`${PREFIX2}singularity_2`])

    const removed = await installSchedules(cron, est2, [])
    expect(removed.removed).toHaveLength(jobs.length)
    expect(await cronJobs(`singularity:${PREFIX2}`)).toEqual([])
  })
})

describe('jobs list', () => {
  it('shows every declared job with runner, schedule, next run, database and no drift after install', async () => {
    const r = await runCli(['jobs', 'list', '--prefix', PREFIX, '--json'])
    expect(r.exitCode).toBe(0)
    const out = r.json()
    expect(out.cronDatabase).toBe('postgres')
    expect(out.pgCron.version).toMatch(/^1\./)
    const names = out.jobs.map((j: {name: string}) => j.name)
    for (const s of SCHEDULES) expect(names, s.name).toContain(s.name)
    const learn = out.jobs.find((j: {name: string}) => j.name === 'learn-patterns')
    expect(learn).toMatchObject({runner: 'pg_cron', job: `singularity:${PREFIX}learn-patterns`, schedule: '*/5 * * * *', database: `${PREFIX}singularity`, active: true, drift: []})
    expect(new Date(learn.nextRun).getUTCMinutes() % 5).toBe(0)
    expect(new Date(learn.nextRun).getTime()).toBeGreaterThan(Date.now() - 60_000)
    const monthly = out.jobs.find((j: {name: string}) => j.name === 'backup-monthly')
    expect(monthly.runner).toBe('system-cron')
    expect(new Date(monthly.nextRun).getUTCDay()).toBe(0)
    expect(new Date(monthly.nextRun).getUTCDate()).toBeLessThanOrEqual(7)
    expect(out.counts).toMatchObject({missing: 0, unknown: 0})

    const human = await runCli(['jobs', '--prefix', PREFIX])
    expect(human.exitCode).toBe(0)
    expect(human.stdout).toMatch(/JOB\s+STATUS\s+SCHEDULE\s+STREAK\s+DRIFT\s+NEXT RUN \(UTC\)/)
    expect(human.stdout).toContain(`singularity:${PREFIX}learn-patterns`)
  })

  it('shows drift: schedule or command differs, missing, unknown under our prefix; exit 3 with --fail-on-error', async () => {
    await cron.query("SELECT cron.alter_job(jobid, schedule => '*/3 * * * *') FROM cron.job WHERE jobname = $1", [`singularity:${PREFIX}sync-learning`])
    await cron.query("SELECT cron.alter_job(jobid, command => 'SELECT 42') FROM cron.job WHERE jobname = $1", [`singularity:${PREFIX}pagerank`])
    await cron.query('SELECT cron.unschedule($1)', [`singularity:${PREFIX}table-statistics`])
    await cron.query("SELECT cron.schedule_in_database($1, '0 0 1 1 *', 'SELECT 1', $2)", [`singularity:${PREFIX}leftover`, `${PREFIX}singularity`])
    await cron.query("SELECT cron.schedule_in_database('foreign-job', '0 0 1 1 *', 'SELECT 1', $1)", [`${PREFIX}singularity`])

    const r = await runCli(['jobs', 'list', '--prefix', PREFIX, '--runner', 'pg_cron', '--json'])
    expect(r.exitCode).toBe(0)
    const jobs = r.json().jobs as {name: string; job: string; drift: string[]}[]
    const drift = (name: string) => jobs.find((j) => j.name === name)?.drift
    expect(drift('sync-learning')).toEqual(['schedule differs'])
    expect(drift('pagerank')).toEqual(['command differs'])
    expect(drift('table-statistics')).toEqual(['missing'])
    expect(drift('leftover')).toEqual(['unknown'])
    expect(jobs.some((j) => j.job === 'foreign-job')).toBe(false)
    expect(r.json().counts).toMatchObject({missing: 1, unknown: 1, drifted: 4})

    const failing = await runCli(['jobs', 'list', '--prefix', PREFIX, '--runner', 'pg_cron', '--fail-on-error'])
    expect(failing.exitCode).toBe(ExitCode.unhealthy)
    expect(failing.stdout).toContain('schedule differs')
    expect(failing.stdout).toContain('missing')

    const fixed = await installSchedules(cron, est, SCHEDULES)
    expect(fixed).toMatchObject({
      created: [`singularity:${PREFIX}table-statistics`],
      updated: [`singularity:${PREFIX}pagerank`, `singularity:${PREFIX}sync-learning`],
      removed: [`singularity:${PREFIX}leftover`],
    })
    expect((await cron.query("SELECT count(*)::int AS n FROM cron.job WHERE jobname = 'foreign-job'")).rows[0].n).toBe(1)
    await cron.query("SELECT cron.unschedule('foreign-job')")
    // (not the exit code: pg_cron may meanwhile have run a job whose procedure this test database lacks)
    expect((await runCli(['jobs', 'list', '--prefix', PREFIX, '--runner', 'pg_cron', '--json'])).json().counts).toMatchObject({missing: 0, drifted: 0, unknown: 0})
  })

  it('bad input exits 2 with one line: unknown --db, unknown runner', async () => {
    const db = await runCli(['jobs', 'list', '--prefix', PREFIX, '--db', 'nope'])
    expect(db.exitCode).toBe(ExitCode.usage)
    expect(db.stderr.trim().split('\n')[0]).toMatch(/^error: unknown database 'nope'/)
    const runner = await runCli(['jobs', 'list', '--runner', 'systemd'])
    expect(runner.exitCode).toBe(ExitCode.usage)
  })
})

describe('jobs run', () => {
  it("runs a job's command now in its database and prints what it returned (archive retention prune)", async () => {
    await withClient(urlFor(`${PREFIX}shared_queue`), async (c) => {
      await c.query("SELECT pgmq.create('llm_requests'), pgmq.create('job_results')")
      await c.query("SELECT pgmq.send('llm_requests', jsonb_build_object('i', g)) FROM generate_series(1, 5) g")
      await c.query("SELECT pgmq.send('job_results', '{}'::jsonb) FROM generate_series(1, 2)")
      await c.query("SELECT pgmq.archive('llm_requests', msg_id) FROM pgmq.q_llm_requests")
      await c.query("SELECT pgmq.archive('job_results', msg_id) FROM pgmq.q_job_results")
      await c.query("UPDATE pgmq.a_llm_requests SET archived_at = now() - interval '100 days' WHERE msg_id <= 3")
      await c.query("UPDATE pgmq.a_job_results SET archived_at = now() - interval '91 days'")
    })
    const r = await runCli(['jobs', 'run', 'prune-queue-archives', '--prefix', PREFIX, '--json'])
    expect(r.exitCode).toBe(0)
    const run = r.json().runs[0]
    expect(run).toMatchObject({runner: 'pg_cron', job: `singularity:${PREFIX}prune-queue-archives`, database: `${PREFIX}shared_queue`, ok: true, dryRun: false})
    expect(run.output.rows).toEqual([{singularity_prune_queue_archives: '5'}])
    expect(typeof run.durationMs).toBe('number')
    const left = await withClient(urlFor(`${PREFIX}shared_queue`), (c) =>
      c.query<{a: number; b: number}>('SELECT (SELECT count(*)::int FROM pgmq.a_llm_requests) AS a, (SELECT count(*)::int FROM pgmq.a_job_results) AS b'),
    )
    expect(left.rows[0]).toEqual({a: 2, b: 0})

    const human = await runCli(['jobs', 'run', 'cron-history-cleanup', '--prefix', PREFIX])
    expect(human.exitCode).toBe(0)
    expect(human.stdout).toMatch(new RegExp(`singularity:${PREFIX}cron-history-cleanup in postgres as \\S+: DELETE \\d+ in [\\d.]+ ms`))

    const vacuum = await runCli(['jobs', 'run', 'vacuum-analyze', '--prefix', PREFIX])
    expect(vacuum.exitCode).toBe(0)
    expect(vacuum.stdout).toContain('VACUUM')
  })

  it('reports a failing command: exit 1, the error on stderr, ok=false under --json', async () => {
    await cron.query("SELECT cron.schedule_in_database($1, '0 0 1 1 *', 'SELECT 1/0', $2)", [`singularity:${PREFIX}divide`, `${PREFIX}singularity`])
    const r = await runCli(['jobs', 'run', 'divide', '--prefix', PREFIX])
    expect(r.exitCode).toBe(ExitCode.failure)
    expect(r.stdout).toContain('FAILED')
    expect(r.stderr).toMatch(/^error: .*division by zero/m)
    const j = await runCli(['jobs', 'run', `singularity:${PREFIX}divide`, '--prefix', PREFIX, '--json'])
    expect(j.exitCode).toBe(ExitCode.failure)
    expect(j.json().runs[0]).toMatchObject({ok: false, error: {message: 'division by zero', code: '22012'}})
    await cron.query('SELECT cron.unschedule($1)', [`singularity:${PREFIX}divide`])
  })

  it("runs as the job's user (SET ROLE) when that is not the admin", async () => {
    await cron.query("SELECT cron.schedule_in_database($1, '0 0 1 1 *', 'SELECT current_user::text AS who, session_user::text AS via', $2, $3)", [
      `singularity:${PREFIX}whoami`,
      `${PREFIX}singularity`,
      ROLE,
    ])
    const r = await runCli(['jobs', 'run', 'whoami', '--prefix', PREFIX, '--json'])
    expect(r.exitCode).toBe(0)
    expect(r.json().runs[0]).toMatchObject({username: ROLE, ok: true})
    expect(r.json().runs[0].output.rows[0].who).toBe(ROLE)
    await cron.query('SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname = $1', [`singularity:${PREFIX}whoami`])
  })

  it('--dry-run shows what would run and runs nothing', async () => {
    await cron.query("SELECT cron.schedule_in_database($1, '0 0 1 1 *', 'CREATE TABLE dry_run_marker ()', $2)", [`singularity:${PREFIX}marker`, `${PREFIX}singularity`])
    const r = await runCli(['jobs', 'run', 'marker', '--prefix', PREFIX, '--dry-run'])
    expect(r.exitCode).toBe(0)
    expect(r.stdout).toContain('would run')
    expect(r.stdout).toContain('CREATE TABLE dry_run_marker ()')
    const exists = await withClient(urlFor(`${PREFIX}singularity`), (c) => c.query("SELECT to_regclass('dry_run_marker') IS NOT NULL AS e"))
    expect(exists.rows[0].e).toBe(false)
    await cron.query('SELECT cron.unschedule($1)', [`singularity:${PREFIX}marker`])
  })

  it('unknown job: exit 4 with the closest names; SQL in a name or a system-cron job: exit 2', async () => {
    const r = await runCli(['jobs', 'run', 'lern-patterns', '--prefix', PREFIX])
    expect(r.exitCode).toBe(ExitCode.notFound)
    expect(r.stderr).toContain('error: no job named lern-patterns')
    expect(r.stderr).toMatch(/hint: closest: learn-patterns/)
    const j = await runCli(['jobs', 'run', 'nope', '--prefix', PREFIX, '--json'])
    expect(j.json().error).toMatchObject({code: 'JOB_NOT_FOUND', exitCode: 4})

    const sql = await runCli(['jobs', 'run', "x'; DROP TABLE cron.job; --", '--prefix', PREFIX])
    expect(sql.exitCode).toBe(ExitCode.usage)
    expect(sql.stderr.split('\n')[0]).toMatch(/^error: invalid job name/)
    const history = await runCli(['jobs', 'history', 'a;b', '--prefix', PREFIX])
    expect(history.exitCode).toBe(ExitCode.usage)

    const backup = await runCli(['jobs', 'run', 'backup-daily', '--prefix', PREFIX])
    expect(backup.exitCode).toBe(ExitCode.usage)
    expect(backup.stderr).toContain('singularity backup --kind daily')
  })
})


describe('Oban workers', () => {
  beforeAll(async () => {
    await withClient(urlFor(`${PREFIX}singularity`), async (c) => {
      await c.query(OBAN_SCHEMA)
      const utc = "timezone('UTC', now())"
      await c.query(`INSERT INTO oban_jobs (state, queue, worker, attempt, inserted_at, scheduled_at, attempted_at, completed_at) VALUES
        ('completed', 'default', 'Singularity.Jobs.TemplateSyncWorker', 1, ${utc} - interval '10 minutes', ${utc} - interval '10 minutes', ${utc} - interval '10 minutes', ${utc} - interval '9 minutes 58 seconds')`)
      await c.query(`INSERT INTO oban_jobs (state, worker, attempt, max_attempts, errors, inserted_at, scheduled_at, attempted_at, discarded_at) VALUES
        ('completed', 'Singularity.Jobs.CacheClearWorker', 1, 3, ARRAY[]::jsonb[], ${utc} - interval '3 days', ${utc} - interval '3 days', ${utc} - interval '3 days', NULL),
        ('discarded', 'Singularity.Jobs.CacheClearWorker', 3, 3, ARRAY['{"at":"x","attempt":3,"error":"** (RuntimeError) cache locked"}'::jsonb], ${utc} - interval '2 days', ${utc} - interval '2 days', ${utc} - interval '2 days', ${utc} - interval '2 days'),
        ('discarded', 'Singularity.Jobs.CacheClearWorker', 3, 3, ARRAY['{"at":"x","attempt":1,"error":"first"}'::jsonb, '{"at":"y","attempt":3,"error":"** (RuntimeError) disk full"}'::jsonb], ${utc} - interval '1 day', ${utc} - interval '1 day', ${utc} - interval '1 day', ${utc} - interval '1 day')`)
      await c.query(`INSERT INTO oban_jobs (state, worker, attempt, inserted_at, scheduled_at, attempted_at, completed_at) VALUES
        ('completed', 'Singularity.Jobs.RegistrySyncWorker', 1, ${utc} - interval '5 days', ${utc} - interval '5 days', ${utc} - interval '5 days', ${utc} - interval '5 days')`)
    })
  })

  it('lists the newest state per worker, failure streak and missed runs; says where oban_jobs is absent', async () => {
    const r = await runCli(['jobs', 'list', '--prefix', PREFIX, '--runner', 'oban', '--json'])
    expect(r.exitCode).toBe(0)
    const rows = r.json().jobs as {name: string; job: string; database: string; lastRun: any; failureStreak: number | null; missedRuns: number | null; note?: string}[]
    expect(rows.every((x) => x.job && x.database)).toBe(true)
    const sync = rows.find((x) => x.job === 'Singularity.Jobs.TemplateSyncWorker')!
    expect(sync.lastRun).toMatchObject({status: 'completed', durationSeconds: 2})
    expect(Math.abs(new Date(sync.lastRun.start).getTime() - (Date.now() - 10 * 60_000))).toBeLessThan(5 * 60_000) // UTC read as UTC
    expect(sync.failureStreak).toBe(0)
    const clear = rows.find((x) => x.job === 'Singularity.Jobs.CacheClearWorker')!
    expect(clear.lastRun).toMatchObject({status: 'discarded', message: '** (RuntimeError) disk full'})
    expect(clear.failureStreak).toBe(2)
    const registry = rows.find((x) => x.job === 'Singularity.Jobs.RegistrySyncWorker')!
    expect(registry.missedRuns).toBeGreaterThanOrEqual(4) // daily 04:00, newest job 5 days old
    const embed = rows.find((x) => x.job === 'Singularity.Jobs.TemplateEmbedWorker')!
    expect(embed.note).toMatch(/no Singularity.Jobs.TemplateEmbedWorker job in oban_jobs yet/)
    const central = rows.filter((x) => x.database === `${PREFIX}centralcloud`)
    expect(central.length).toBeGreaterThan(0)
    expect(central.every((x) => /no oban_jobs table in t_jobs_centralcloud/.test(x.note ?? ''))).toBe(true)

    const failing = await runCli(['jobs', 'list', '--prefix', PREFIX, '--runner', 'oban', '--failing', '--json', '--fail-on-error'])
    expect(failing.exitCode).toBe(ExitCode.unhealthy)
    expect(failing.json().jobs.map((x: {job: string}) => x.job)).toEqual(['Singularity.Jobs.CacheClearWorker'])
  })

  it("enqueues an available job respecting Oban's constraints (UTC timestamps, state, priority)", async () => {
    const r = await runCli(['jobs', 'run', 'Singularity.Jobs.TemplateSyncWorker', '--prefix', PREFIX, '--args', '{"force":true}', '--priority', '3', '--json'])
    expect(r.exitCode).toBe(0)
    const id = r.json().runs[0].obanJob.id
    const row = await withClient(urlFor(`${PREFIX}singularity`), (c) =>
      c.query(
        `SELECT state::text, queue, worker, args, attempt, max_attempts, priority, errors, meta,
                abs(extract(epoch FROM inserted_at - timezone('UTC', now()))) < 120 AS inserted_utc,
                scheduled_at = inserted_at AS scheduled_now
           FROM oban_jobs WHERE id = $1`,
        [id],
      ),
    )
    expect(row.rows[0]).toMatchObject({
      state: 'available',
      queue: 'default',
      worker: 'Singularity.Jobs.TemplateSyncWorker',
      args: {force: true},
      attempt: 0,
      max_attempts: 20,
      priority: 3,
      errors: [],
      inserted_utc: true,
      scheduled_now: true,
    })

    const human = await runCli(['jobs', 'run', 'registry-sync', '--prefix', PREFIX, '--queue', 'sync'])
    expect(human.exitCode).toBe(0)
    expect(human.stdout).toMatch(/enqueued Singularity.Jobs.RegistrySyncWorker in t_jobs_singularity: oban job \d+, queue sync, state available/)
  })

  it('refuses invalid args, priority or queue with exit 2 and inserts nothing; --dry-run inserts nothing', async () => {
    const count = async () => (await withClient(urlFor(`${PREFIX}singularity`), (c) => c.query('SELECT count(*)::int AS n FROM oban_jobs'))).rows[0].n
    const before = await count()
    for (const extra of [['--priority', '12'], ['--args', '[1,2]'], ['--args', '{bad json'], ['--queue', "x'; --"], ['--max-attempts', '0']]) {
      const r = await runCli(['jobs', 'run', 'Singularity.Jobs.TemplateSyncWorker', '--prefix', PREFIX, ...extra])
      expect(r.exitCode, extra.join(' ')).toBe(ExitCode.usage)
      expect(r.stderr.trim().split('\n').length, extra.join(' ')).toBeLessThanOrEqual(2)
    }
    const dry = await runCli(['jobs', 'run', 'Singularity.Jobs.TemplateSyncWorker', '--prefix', PREFIX, '--dry-run'])
    expect(dry.exitCode).toBe(0)
    expect(dry.stdout).toContain('would run')
    expect(await count()).toBe(before)

    const absent = await runCli(['jobs', 'run', 'CentralCloud.Jobs.StatisticsJob', '--prefix', PREFIX])
    expect(absent.exitCode).toBe(ExitCode.failure)
    expect(absent.stderr).toContain('no oban_jobs table in t_jobs_centralcloud')
  })

  it("jobs history of a worker: its newest oban_jobs rows", async () => {
    const r = await runCli(['jobs', 'history', 'Singularity.Jobs.CacheClearWorker', '--prefix', PREFIX, '--json'])
    expect(r.exitCode).toBe(0)
    expect(r.json().runs.map((x: {status: string}) => x.status)).toEqual(['discarded', 'discarded', 'completed'])
    const limited = await runCli(['jobs', 'history', 'code-analysis-cache-clear', '--prefix', PREFIX, '--limit', '1', '--json'])
    expect(limited.json().runs).toHaveLength(1)
  })
})

describe('pg_cron itself', () => {
  it('fires a job every minute and `jobs history` shows the run; a failing job shows in list and --fail-on-error', async () => {
    // t_jobst_tick and t_jobst_broken were installed in beforeAll; wait until pg_cron recorded both
    await waitFor(
      'pg_cron to record a finished run of both the tick and the broken job',
      async () => {
        const {rows} = await cron.query<{jobname: string; n: number}>(
          `SELECT j.jobname::text AS jobname, count(*) FILTER (WHERE d.status IN ('succeeded', 'failed'))::int AS n
             FROM cron.job j LEFT JOIN cron.job_run_details d ON d.jobid = j.jobid
            WHERE j.jobname IN ($1, $2) GROUP BY j.jobname`,
          [`singularity:${PREFIX_TICK}tick`, `singularity:${PREFIX_TICK}broken`],
        )
        const seen = {tick: rows.find((x) => x.jobname.endsWith('tick'))?.n ?? 0, broken: rows.find((x) => x.jobname.endsWith('broken'))?.n ?? 0}
        return seen.tick > 0 && seen.broken > 0 && seen
      },
      {timeoutMs: 130_000, intervalMs: 1000},
    )

    const history = await runCli(['jobs', 'history', 'tick', '--prefix', PREFIX_TICK, '--since', '1h', '--json'])
    expect(history.exitCode).toBe(0)
    const run = history.json().runs.find((x: {status: string}) => x.status === 'succeeded')
    expect(run).toMatchObject({job: `singularity:${PREFIX_TICK}tick`, database: 'postgres', status: 'succeeded', message: 'SELECT 1'})
    expect(run.durationSeconds).toBeGreaterThanOrEqual(0)
    const human = await runCli(['jobs', 'history', `singularity:${PREFIX_TICK}tick`, '--prefix', PREFIX_TICK, '--limit', '1'])
    expect(human.stdout).toMatch(/RUN\s+STATUS\s+START \(UTC\)\s+DURATION\s+MESSAGE/)
    expect(human.stdout).toContain('succeeded')
    const old = await runCli(['jobs', 'history', 'tick', '--prefix', PREFIX_TICK, '--since', '2000-01-01T00:00:00Z', '--limit', '1', '--json'])
    expect(old.json().runs).toHaveLength(1)
    const bad = await runCli(['jobs', 'history', 'tick', '--prefix', PREFIX_TICK, '--since', 'yesterday'])
    expect(bad.exitCode).toBe(ExitCode.usage)

    const list = await runCli(['jobs', 'list', '--prefix', PREFIX_TICK, '--db', 'postgres', '--json'])
    expect(list.exitCode).toBe(0)
    const rows = list.json().jobs as {name: string; lastRun: any; failureStreak: number; drift: string[]}[]
    expect(rows.find((x) => x.name === 'broken')).toMatchObject({lastRun: {status: 'failed', message: expect.stringContaining('division by zero')}, drift: ['unknown']})
    expect(rows.find((x) => x.name === 'broken')!.failureStreak).toBeGreaterThanOrEqual(1)
    expect(rows.find((x) => x.name === 'tick')!.failureStreak).toBe(0)
    expect(rows.find((x) => x.name === 'cron-history-cleanup')!.drift).toEqual([])

    const failing = await runCli(['jobs', 'list', '--prefix', PREFIX_TICK, '--db', 'postgres', '--failing', '--fail-on-error'])
    expect(failing.exitCode).toBe(ExitCode.unhealthy)
    expect(failing.stdout).toContain(`singularity:${PREFIX_TICK}broken`)
    expect(failing.stdout).not.toContain(`singularity:${PREFIX_TICK}tick`)
  }, 180_000)
})
