import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {runCli} from '../helpers/cli.js'
import {adminUrl, provisionedEstate, withClient} from '../helpers/db.js'
import {waitFor} from '../helpers/wait.js'

/**
 * Issue 19 at test scale: a 20-instance estate provisioned concurrently by db init, whose pg_cron
 * copies are staggered and whose size outgrows the harness cluster's max_connections; a
 * one-instance estate the cluster fits; and a real pg_cron stampede the doctor names.
 */

const secrets = mkdtempSync(join(tmpdir(), 'sing-scale-'))
type Check = {check: string; status: string; detail: string}
const checkOf = (checks: Check[], name: string) => checks.find((c) => c.check === name)

/** Pauses (or removes) every pg_cron job of a prefix: the estates' jobs must not load the shared test cluster. */
async function cronJobs(prefix: string, what: 'pause' | 'remove'): Promise<void> {
  await withClient(adminUrl(), (c) =>
    c.query(
      what === 'pause'
        ? 'SELECT cron.alter_job(jobid, active := false) FROM cron.job WHERE jobname LIKE $1'
        : 'SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE $1',
      [`singularity:${prefix}%`],
    ),
  )
}

describe('20 instances: db init provisions them concurrently, staggers their jobs, and warns about capacity', {timeout: 900_000}, () => {
  const P = 't_scale_'
  const pw = join(secrets, `${P}pw.json`)
  const init = () => runCli(['db', 'init', '--prefix', P, '--instances', '20', '--queue-engine', 'bundled', '--passwords-file', pw, '--json'], {timeoutMs: 600_000})
  let fresh: Awaited<ReturnType<typeof init>>

  beforeAll(async () => {
    fresh = await init()
    // paused right away (a paused job stays paused and is no drift): forty copies a minute would load the shared cluster
    await cronJobs(P, 'pause')
  })

  afterAll(async () => {
    await cronJobs(P, 'remove')
    await withClient(adminUrl(), (c) => c.query("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE $1 || '%' AND NOT active", [P]))
  })

  it('a fresh init applies every database; the re-run finds nothing to do; stdout is one JSON document', async () => {
    expect(fresh.exitCode, `${fresh.stdout}\n${fresh.stderr.slice(-2000)}`).toBe(0)
    const body = fresh.json()
    expect(body.status).toBe('applied')
    expect(body.databases).toHaveLength(24)
    // the report keeps the estate's order whichever database finished first
    expect(body.databases.map((d: {name: string}) => d.name).filter((n: string) => n.startsWith(`${P}singularity_`))).toEqual(Array.from({length: 20}, (_, i) => `${P}singularity_${i + 1}`))
    // progress is on stderr, one line per database beyond a handful (not one per step)
    expect(fresh.stderr).toMatch(/t_scale_singularity_\d+: \d+ change\(s\) applied \(\d+\/24 databases\)/)
    expect(fresh.stderr).not.toMatch(/t_scale_singularity_7: apply migration/)
    const again = await init()
    expect(again.exitCode, again.stderr).toBe(0)
    expect(again.json().status).toBe('up-to-date')
    expect(again.json().changes).toEqual([])
  })

  it('spreads the 20 instances’ assign-tasks (*/2) over both minutes, ten each', async () => {
    const {rows} = await withClient(adminUrl(), (c) =>
      c.query<{jobname: string; schedule: string; database: string}>("SELECT jobname, schedule, database FROM cron.job WHERE jobname LIKE 'singularity:t_scale_assign-tasks:%'"),
    )
    expect(rows).toHaveLength(20)
    const byInstance = new Map(rows.map((r) => [Number(r.jobname.split(':').at(-1)), r]))
    for (let n = 1; n <= 20; n++) {
      expect(byInstance.get(n)!.database).toBe(`${P}singularity_${n}`)
      expect(byInstance.get(n)!.schedule).toBe(n % 2 === 1 ? '*/2 * * * *' : '1-59/2 * * * *')
    }
    expect(rows.filter((r) => r.schedule === '*/2 * * * *')).toHaveLength(10)
    expect(rows.filter((r) => r.schedule === '1-59/2 * * * *')).toHaveLength(10)
  })

  it('jobs list shows each copy’s offset (JSON field and column) and no drift: the reconcile core plans the staggered schedule', async () => {
    const result = await runCli(['jobs', 'list', '--prefix', P, '--runner', 'pg_cron', '--json'], {timeoutMs: 180_000})
    expect(result.exitCode, result.stderr).toBe(0)
    const jobs = result.json().jobs as {job: string; schedule: string; declaredSchedule: string; offsetMinutes: number; drift: string[]}[]
    const assign = jobs.filter((j) => j.job.startsWith('singularity:t_scale_assign-tasks:'))
    expect(assign).toHaveLength(20)
    for (const j of assign) {
      const n = Number(j.job.split(':').at(-1))
      expect(j.offsetMinutes).toBe((n - 1) % 2)
      expect(j.declaredSchedule).toBe('*/2 * * * *')
      expect(j.drift).toEqual([])
    }
    const hourly = jobs.filter((j) => j.job.startsWith('singularity:t_scale_update-knowledge:')).map((j) => j.offsetMinutes).sort((a, b) => a - b)
    expect(hourly).toEqual(Array.from({length: 20}, (_, k) => k))
    const table = await runCli(['jobs', 'list', '--prefix', P, '--runner', 'pg_cron', '--db', `${P}singularity_2`], {timeoutMs: 180_000, env: {COLUMNS: '250'}})
    expect(table.exitCode, table.stderr).toBe(0)
    expect(table.stdout).toMatch(/OFFSET/)
    expect(table.stdout).toMatch(/\+1 min/)
    // db plan agrees: nothing to change in the cron area
    const plan = await runCli(['db', 'plan', '--prefix', P, '--passwords-file', pw, '--json'], {timeoutMs: 180_000})
    expect(plan.json().summary.byArea.cron ?? 0).toBe(0)
  })

  it('db plan and db status warn that 20 instances need more connections than max_connections allows', async () => {
    const plan = await runCli(['db', 'plan', '--prefix', P, '--passwords-file', pw, '--json'], {timeoutMs: 180_000})
    const body = plan.json()
    expect(body.capacity.connections.total).toBeGreaterThan(body.capacity.connections.available)
    expect(body.warnings.some((w: string) => /needs about \d+ connections .* max_connections is \d+/.test(w))).toBe(true)
    // the jobs fit cron.max_running_jobs at the default late-start threshold (staggered: 48 in the busiest minute)
    expect(body.capacity.cron.jobsInBusiestMinute).toBe(48)
    expect(body.warnings.some((w: string) => w.includes('cron.max_running_jobs'))).toBe(false)
    const status = await runCli(['db', 'status', '--prefix', P], {timeoutMs: 180_000, env: {SINGULARITY_PASSWORDS_FILE: pw}})
    expect(status.stdout).toMatch(/warning: the estate needs about \d+ connections/)
  })

  it('with a tighter late-start threshold the pg_cron capacity warning names the busiest minute', async () => {
    const plan = await runCli(['db', 'plan', '--prefix', P, '--passwords-file', pw, '--json'], {timeoutMs: 180_000, env: {SINGULARITY_LATE_START_SECONDS: '1'}})
    const warning = (plan.json().warnings as string[]).find((w) => w.includes('cron.max_running_jobs'))
    expect(warning).toMatch(/^48 pg_cron jobs of the estate can start in the same minute \(Sun 00:00 UTC\) but cron\.max_running_jobs is \d+/)
    const bad = await runCli(['db', 'plan', '--prefix', P, '--json'], {timeoutMs: 60_000, env: {SINGULARITY_LATE_START_SECONDS: 'soon'}})
    expect(bad.exitCode).toBe(2)
  })
})

describe('one instance: the cluster fits it; a real pg_cron stampede is named by the doctor', {timeout: 600_000}, () => {
  const P = 't_cap_'
  const pw = join(secrets, `${P}pw.json`)
  const doctor = (extra: string[]) => runCli(['doctor', '--prefix', P, '--backup-dir', secrets, '--json', ...extra], {timeoutMs: 180_000, env: {SINGULARITY_PASSWORDS_FILE: pw}})

  beforeAll(async () => {
    await provisionedEstate(P, pw)
    await cronJobs(P, 'pause')
  })

  afterAll(async () => {
    await cronJobs(P, 'remove')
  })

  it('no capacity warning in db status, db plan or doctor', async () => {
    const status = await runCli(['db', 'status', '--prefix', P, '--json'], {timeoutMs: 180_000, env: {SINGULARITY_PASSWORDS_FILE: pw}})
    const body = status.json()
    expect(body.capacity.warnings).toEqual([])
    expect(body.capacity.connections.total).toBeLessThanOrEqual(body.capacity.connections.available)
    const human = await runCli(['db', 'status', '--prefix', P], {timeoutMs: 180_000, env: {SINGULARITY_PASSWORDS_FILE: pw}})
    expect(human.stdout).not.toMatch(/warning: .*(max_connections|cron\.max_running_jobs)/)
    const report = (await doctor([])).json()
    expect(checkOf(report.checks, 'pg_cron capacity')?.status).toBe('ok')
    expect(checkOf(report.checks, 'connections')?.status).toBe('ok')
    expect(checkOf(report.checks, 'pg_cron start delay')?.status).toBe('ok')
  })

  it('fifteen jobs of four seconds started in one minute through cron.max_running_jobs: doctor warns above the threshold, naming the minute', async () => {
    const db = `${P}singularity`
    const {rows} = await withClient(adminUrl(), (c) => c.query<{n: string}>("SELECT setting AS n FROM pg_settings WHERE name = 'cron.max_running_jobs'"))
    const slots = Number(rows[0].n)
    const count = slots * 3 // three waves: the last starts at least two sleeps late
    await withClient(adminUrl(), async (c) => {
      for (let i = 1; i <= count; i++) await c.query("SELECT cron.schedule_in_database($1, '* * * * *', 'SELECT pg_sleep(4)', $2)", [`singularity:${P}stampede-${i}`, db])
    })
    const minute = await waitFor(`${count} stampede runs started in one minute (cron.job_run_details)`, async () => {
      const {rows: done} = await withClient(adminUrl(), (c) =>
        c.query<{minute: string}>(
          `SELECT to_char(date_trunc('minute', d.start_time) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS minute
             FROM cron.job_run_details d JOIN cron.job j ON j.jobid = d.jobid
            WHERE j.jobname LIKE $1 AND d.status IN ('succeeded', 'failed')
            GROUP BY 1 HAVING count(*) >= $2 ORDER BY 1 LIMIT 1`,
          [`singularity:${P}stampede-%`, count],
        ),
      )
      return done[0]?.minute
    }, {timeoutMs: 240_000, intervalMs: 3000})
    await cronJobs(P, 'pause')

    const late = (await doctor(['--max-start-delay', '5s'])).json()
    const row = checkOf(late.checks, 'pg_cron start delay')!
    expect(row.status).toBe('warn')
    expect(row.detail).toMatch(/^p95 start delay \d+\.\d s over \d+ run\(s\) in the last hour exceeds 5 s; latest minute \d{4}-\d\d-\d\d \d\d:\d\d UTC: \d+ job\(s\) due/)
    expect(row.detail).toContain('stampedes')
    expect(row.detail).toContain(minute.slice(0, 10))

    const relaxed = (await doctor(['--max-start-delay', '60s'])).json()
    expect(checkOf(relaxed.checks, 'pg_cron start delay')?.status).toBe('ok')
    const bad = await doctor(['--max-start-delay', 'soon'])
    expect(bad.exitCode).toBe(2)
  })
})
