import {mkdtempSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach, beforeAll, describe, expect, it} from 'vitest'

// in process: the same argv, output and exit codes as a child process, without a node start per run
import {runCliInProcess as runCli} from '../helpers/cli.js'
import {adminUrl, connect, provisionedEstate, urlFor, withClient} from '../helpers/db.js'

/**
 * Each drift of issue 11's list on a real server: `db plan` lists it and exits 3, `db status`
 * exits 3, `db init` fixes it, and the next `db plan` is empty (exit 0). After each test db init
 * runs again, so that a failed test never leaves its drift to the next one.
 */
const P = 't_rec_'
const dir = mkdtempSync(join(tmpdir(), 'sing-reconcile-'))
const passwords = join(dir, 'passwords.json')
const init = (extra: string[] = []) => runCli(['db', 'init', '--prefix', P, '--passwords-file', passwords, '--queue-engine', 'bundled', '--json', ...extra], {timeoutMs: 180_000})
const plan = () => runCli(['db', 'plan', '--prefix', P, '--passwords-file', passwords, '--json'], {timeoutMs: 120_000})
const status = () => runCli(['db', 'status', '--prefix', P, '--json'], {timeoutMs: 120_000})

type Action = {database: string | null; area: string; description: string; sql: string[]; destructive: boolean; privilege: string; reason: string; refused?: boolean; subject?: string; differences?: string[]}

const sql = (database: string, text: string, values: unknown[] = []) => withClient(urlFor(`${P}${database}`), (c) => c.query(text, values))
const admin = (text: string, values: unknown[] = []) => withClient(adminUrl(), (c) => c.query(text, values))

/** db plan lists drift (exit 3), db status says so (exit 3), db init applies it, the next plan is empty (exit 0). Returns the plan's actions. */
async function planFixAndConverge(): Promise<{planned: Action[]; applied: Action[]}> {
  const before = await plan()
  expect(before.exitCode, before.stderr).toBe(3)
  const planned = before.json().actions as Action[]
  const s = await status()
  expect(s.exitCode, s.stderr).toBe(3)
  expect(s.json().verdict).not.toBe('ok')
  const fixed = await init()
  expect(fixed.exitCode, fixed.stdout + fixed.stderr).toBe(0)
  expect(fixed.json().status).toBe('applied')
  const after = await plan()
  expect(after.exitCode, after.stdout).toBe(0)
  expect(after.json()).toMatchObject({status: 'up-to-date', actions: []})
  return {planned, applied: fixed.json().actions}
}

function rolePassword(role: string): string {
  return (JSON.parse(readFileSync(passwords, 'utf8')) as Record<string, string>)[`${P}${role}`]
}

async function asRole(role: string, database: string, text: string): Promise<string> {
  const url = new URL(urlFor(`${P}${database}`))
  url.username = `${P}${role}`
  url.password = encodeURIComponent(rolePassword(role))
  const c = await connect(url.toString())
  try {
    await c.query(text)
    return 'ok'
  } catch (error) {
    return (error as {code: string}).code
  } finally {
    await c.end()
  }
}

// generous: each test runs the CLI about six times, on a machine shared with other work
describe('reconciliation: db plan, db status and db init agree on every drift', {timeout: 600_000}, () => {
  beforeAll(async () => {
    // the starting estate: a copy of the run's template completed by `db init` (throws on failure)
    await provisionedEstate(P, passwords)
    const clean = await plan()
    expect(clean.exitCode, clean.stdout).toBe(0)
  })

  afterEach(async () => {
    await init()
  })

  it('1. GRANT CONNECT ON DATABASE genesis TO PUBLIC (and a role given CREATEROLE) is security drift, revoked', async () => {
    await admin(`GRANT CONNECT ON DATABASE ${P}genesis TO PUBLIC`)
    await admin(`ALTER ROLE ${P}nexus CREATEROLE`)
    const {planned, applied} = await planFixAndConverge()
    expect(planned).toContainEqual(expect.objectContaining({
      database: `${P}genesis`, area: 'databases', reason: 'extra', destructive: true, privilege: 'owner', sql: [`REVOKE CONNECT ON DATABASE "${P}genesis" FROM PUBLIC`],
    }))
    expect(planned).toContainEqual(expect.objectContaining({database: null, area: 'roles', reason: 'drifted', destructive: true, differences: ['createrole']}))
    expect(applied.map((a) => a.description)).toContain(`revoke CONNECT on database ${P}genesis from PUBLIC`)
    const {rows} = await admin('SELECT has_database_privilege($1, $2, $3) AS can, (SELECT rolcreaterole FROM pg_roles WHERE rolname = $1) AS cr', [`${P}nexus`, `${P}genesis`, 'CONNECT'])
    expect(rows[0]).toEqual({can: false, cr: false})
  })

  it('2. a queue grant revoked from a service role comes back; a write grant added for centralcloud is revoked', async () => {
    await sql('shared_queue', `REVOKE UPDATE ON pgmq.q_llm_requests FROM ${P}nexus`)
    await sql('shared_queue', `GRANT INSERT ON pgmq.q_llm_requests TO ${P}centralcloud`)
    expect(await asRole('centralcloud', 'shared_queue', "SELECT pgmq.send('llm_requests', '{}')")).toBe('ok') // the drift is real
    const {planned} = await planFixAndConverge()
    expect(planned).toContainEqual(expect.objectContaining({
      database: `${P}shared_queue`, area: 'grants', reason: 'missing', destructive: false, sql: [`GRANT UPDATE ON TABLE "pgmq"."q_llm_requests" TO "${P}nexus"`],
    }))
    expect(planned).toContainEqual(expect.objectContaining({
      database: `${P}shared_queue`, area: 'grants', reason: 'extra', destructive: true, sql: [`REVOKE INSERT ON TABLE "pgmq"."q_llm_requests" FROM "${P}centralcloud"`],
    }))
    expect(await asRole('centralcloud', 'shared_queue', "SELECT pgmq.send('llm_requests', '{}')")).toBe('42501')
    expect(await asRole('nexus', 'shared_queue', "SELECT * FROM pgmq.read('llm_requests', 30, 1)")).toBe('ok')
  })

  it("3. a table grant on singularity's tables to the genesis role is revoked", async () => {
    await sql('singularity', `GRANT SELECT, INSERT ON public.agents, public.learned_patterns TO ${P}genesis`)
    const {planned} = await planFixAndConverge()
    const revoke = planned.find((a) => a.database === `${P}singularity` && a.reason === 'extra')!
    expect(revoke).toMatchObject({area: 'grants', destructive: true})
    expect(revoke.sql[0]).toMatch(new RegExp(`^REVOKE SELECT, INSERT ON TABLE .*"public"."agents".* FROM "${P}genesis"$`))
    const {rows} = await sql('singularity', 'SELECT has_table_privilege($1, $2, $3) AS can', [`${P}genesis`, 'public.agents', 'SELECT'])
    expect(rows[0].can).toBe(false)
  })

  it("4. a dropped queue, a dropped CDC slot and a table's replica identity changed are restored", async () => {
    const slot = `${P}singularity_centralcloud_cdc`
    await sql('shared_queue', "SELECT pgmq.drop_queue('job_results')")
    await admin('SELECT pg_drop_replication_slot($1)', [slot])
    await sql('singularity', 'ALTER TABLE public.learned_patterns REPLICA IDENTITY NOTHING')
    const {planned} = await planFixAndConverge()
    expect(planned).toContainEqual(expect.objectContaining({database: `${P}shared_queue`, area: 'queues', reason: 'missing', sql: ["SELECT pgmq.create('job_results')"]}))
    expect(planned).toContainEqual(expect.objectContaining({database: `${P}singularity`, area: 'cdc', reason: 'missing', privilege: 'replication', subject: slot}))
    expect(planned).toContainEqual(expect.objectContaining({
      database: `${P}singularity`, area: 'cdc', reason: 'drifted', sql: ['ALTER TABLE "public"."learned_patterns" REPLICA IDENTITY DEFAULT'],
    }))
    // the recreated queue has its per-queue grants again: genesis publishes job_results
    expect(await asRole('genesis', 'shared_queue', `SELECT pgmq.send('job_results', '{"request_id":"r1","output":"ok","error":null}')`)).toBe('ok')
    const {rows} = await admin("SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = $1 AND plugin = 'wal2json'", [slot])
    expect(rows[0].n).toBe(1)
  })

  it("5. pg_cron: a job's schedule, command, database or user changed and one unscheduled; plan, jobs list and doctor agree; a foreign job is never touched", async () => {
    const job = (name: string) => `singularity:${P}${name}`
    await admin(`DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 't_rec_stranger') THEN CREATE ROLE t_rec_stranger; END IF; END $$`)
    const foreign = await admin("SELECT cron.schedule_in_database('t_rec_nightly_report', '0 3 * * *', 'SELECT 42', $1) AS id", [`${P}singularity`])
    const ours = async (name: string) => (await admin('SELECT jobid FROM cron.job WHERE jobname = $1', [job(name)])).rows[0].jobid
    try {
      await admin("SELECT cron.alter_job($1, schedule := '7 7 * * *')", [await ours('pagerank')])
      await admin("SELECT cron.alter_job($1, command := 'SELECT 1')", [await ours('cache-cleanup')])
      await admin('SELECT cron.alter_job($1, database := $2)', [await ours('vacuum-analyze'), `${P}genesis`])
      await admin('UPDATE cron.job SET username = $2 WHERE jobid = $1', [await ours('archive-tasks'), `${P}genesis`])
      await admin('SELECT cron.unschedule($1::bigint)', [await ours('vector-stats')])

      const before = await plan()
      expect(before.exitCode).toBe(3)
      const cron = (before.json().actions as Action[]).filter((a) => a.area === 'cron')
      const drift = Object.fromEntries(cron.map((a) => [a.subject, a.reason === 'missing' ? ['missing'] : (a.differences ?? []).map((d) => `${d} differs`)]))
      expect(drift).toEqual({
        [job('pagerank')]: ['schedule differs'],
        [job('cache-cleanup')]: ['command differs'],
        [job('vacuum-analyze')]: ['database differs'],
        [job('archive-tasks')]: ['user differs'],
        [job('vector-stats')]: ['missing'],
      })
      expect(JSON.stringify(before.json())).not.toContain('t_rec_nightly_report')

      // jobs list's drift column is the same plan
      const list = await runCli(['jobs', 'list', '--prefix', P, '--runner', 'pg_cron', '--json'])
      const listed = Object.fromEntries((list.json().jobs as {job: string; drift: string[]}[]).filter((j) => j.drift.length > 0).map((j) => [j.job, j.drift]))
      expect(listed).toEqual(drift)
      expect(JSON.stringify(list.json())).not.toContain('t_rec_nightly_report')

      // doctor's drift row is the same plan, and its pg_cron row names the same jobs
      const doc = await runCli(['doctor', '--prefix', P, '--json'], {timeoutMs: 120_000})
      expect(doc.exitCode).toBe(3)
      const checks = doc.json().checks as {check: string; status: string; detail: string}[]
      const row = checks.find((c) => c.check === 'estate drift')!
      expect(row.status).toBe('fail')
      expect(row.detail).toContain(`${before.json().summary.actions} action(s)`)
      const jobsRow = checks.find((c) => c.check === 'pg_cron jobs')!
      for (const name of Object.keys(drift)) expect(jobsRow.detail).toContain(name)

      expect((await status()).exitCode).toBe(3)
      const fixed = await init()
      expect(fixed.exitCode, fixed.stdout).toBe(0)
      const after = await plan()
      expect(after.exitCode, after.stdout).toBe(0)
      expect((await runCli(['jobs', 'list', '--prefix', P, '--runner', 'pg_cron', '--json'])).json().counts).toMatchObject({missing: 0, drifted: 0, unknown: 0})
      const untouched = await admin('SELECT schedule, command, database FROM cron.job WHERE jobid = $1', [foreign.rows[0].id])
      expect(untouched.rows[0]).toEqual({schedule: '0 3 * * *', command: 'SELECT 42', database: `${P}singularity`})
    } finally {
      await admin('SELECT cron.unschedule($1::bigint)', [foreign.rows[0].id])
    }
  })

  it('6. a changed procedure file is re-applied; a changed migration is refused (exit 1, the file named) until restored', async () => {
    const procedure = 'singularity/procedures/060_cache.sql'
    await sql('singularity', "UPDATE singularity_meta.applied_sql SET sha256 = 'edited' WHERE file = $1", [procedure])
    const {planned, applied} = await planFixAndConverge()
    expect(planned).toContainEqual(expect.objectContaining({database: `${P}singularity`, area: 'sql', reason: 'changed', subject: `sql/${procedure}`}))
    expect(applied.map((a) => a.subject)).toContain(`sql/${procedure}`)

    const migration = 'genesis/001_init.sql'
    const original = (await sql('genesis', 'SELECT sha256 FROM singularity_meta.applied_sql WHERE file = $1', [migration])).rows[0].sha256
    await sql('genesis', "UPDATE singularity_meta.applied_sql SET sha256 = 'edited' WHERE file = $1", [migration])
    try {
      const p = await plan()
      expect(p.exitCode).toBe(3)
      expect(p.json().status).toBe('refused')
      expect(p.json().actions).toContainEqual(expect.objectContaining({database: `${P}genesis`, area: 'sql', reason: 'drifted', refused: true, subject: `sql/${migration}`}))
      const s = await status()
      expect(s.exitCode).toBe(3)
      expect(s.json().databases.find((d: {kind: string}) => d.kind === 'genesis').verdict).toBe('drifted')
      const refused = await init()
      expect(refused.exitCode).toBe(1)
      expect(refused.json().error).toMatchObject({code: 'MIGRATION_DRIFT'})
      expect(refused.json().error.message).toContain(`sql/${migration}`)
    } finally {
      await sql('genesis', 'UPDATE singularity_meta.applied_sql SET sha256 = $2 WHERE file = $1', [migration, original])
    }
    expect((await plan()).exitCode).toBe(0)
  })

  it('db plan --db narrows to one database and prints the plan for people; db init --dry-run prints the same plan', async () => {
    await admin(`GRANT TEMPORARY ON DATABASE ${P}nexus TO PUBLIC`)
    const human = await runCli(['db', 'plan', '--prefix', P, '--db', 'nexus'])
    expect(human.exitCode).toBe(3)
    expect(human.stdout).toContain(`${P}nexus (1 action)`)
    expect(human.stdout).toContain(`REVOKE TEMPORARY ON DATABASE "${P}nexus" FROM PUBLIC`)
    const other = await runCli(['db', 'plan', '--prefix', P, '--db', 'genesis', '--json'])
    expect(other.exitCode).toBe(0)
    const dry = await init(['--dry-run'])
    expect(dry.exitCode).toBe(0)
    expect(dry.json().status).toBe('planned')
    expect(dry.json().actions).toEqual((await plan()).json().actions)
    expect((await runCli(['db', 'plan', '--prefix', P, '--db', ' '])).exitCode).toBe(2)
  })
})
