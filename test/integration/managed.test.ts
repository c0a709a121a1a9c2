import {spawn} from 'node:child_process'
import {mkdtempSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {runCli} from '../helpers/cli.js'
import {streamingTails} from '../helpers/cdc.js'
import {connect, uniqueSuffix, urlFor, withClient} from '../helpers/db.js'
import {waitFor} from '../helpers/wait.js'
import {queueAccessMatrix} from '../../src/topology.js'

/**
 * A managed server, set up as a provider does: the test's superuser creates an admin role with
 * LOGIN CREATEDB CREATEROLE REPLICATION plus pg_monitor and pg_signal_backend, creates pg_cron in
 * the cron database and grants that role USAGE on schema cron, then steps away. Everything after
 * that runs as the admin, through the CLI.
 */
const P = 't_mgd_'
const ADMIN = `t_mgd_admin_${uniqueSuffix()}`
const ADMIN_PASSWORD = `pw-${uniqueSuffix()}`
const scratch = mkdtempSync(join(tmpdir(), 'sing-managed-'))
const passwords = join(scratch, 'passwords.json')
const backups = join(scratch, 'backups')
const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'run.js')

function managedUrl(database = 'postgres'): string {
  const url = new URL(urlFor(database))
  url.username = ADMIN
  url.password = ADMIN_PASSWORD
  return url.toString()
}

/** The CLI as the managed admin (never the superuser). */
const asAdmin = (args: string[], timeoutMs = 180_000) => runCli(args, {env: {SINGULARITY_ADMIN_URL: managedUrl()}, timeoutMs})
const su = (text: string, database = 'postgres') => withClient(urlFor(database), (c) => c.query(text))

function roleUrl(role: string, database: string): string {
  const all = JSON.parse(readFileSync(passwords, 'utf8')) as Record<string, string>
  const url = new URL(urlFor(database))
  url.username = P + role
  url.password = encodeURIComponent(all[P + role])
  return url.toString()
}

/** Runs sql as a service role: 'ok', or the SQLSTATE PostgreSQL refused it with (connection refusals included). */
async function attempt(url: string, sql: string): Promise<string> {
  let c
  try {
    c = await connect(url)
  } catch (error) {
    return (error as {code: string}).code
  }
  try {
    await c.query(sql)
    return 'ok'
  } catch (error) {
    return (error as {code: string}).code
  } finally {
    await c.end()
  }
}

type PublicAction = {area: string; database: string | null; description: string; privilege: string; sql: string[]; subject?: string}

let cronDatabase = 'postgres'
let pgmqTrusted = false

beforeAll(async () => {
  // the provider's part, as its superuser; then the test never uses the superuser for the flow
  cronDatabase = (await su("SELECT coalesce((SELECT setting FROM pg_settings WHERE name = 'cron.database_name'), 'postgres') AS db")).rows[0].db
  await su(`CREATE ROLE "${ADMIN}" LOGIN CREATEDB CREATEROLE REPLICATION PASSWORD '${ADMIN_PASSWORD}'`)
  await su(`GRANT pg_monitor, pg_signal_backend TO "${ADMIN}"`)
  await su('CREATE EXTENSION IF NOT EXISTS pg_cron', cronDatabase)
  await su(`GRANT USAGE ON SCHEMA cron TO "${ADMIN}"`, cronDatabase)
  const pgmq = await su("SELECT coalesce(bool_or(trusted), false) AS trusted FROM pg_available_extension_versions WHERE name = 'pgmq'")
  pgmqTrusted = pgmq.rows[0].trusted
  const superuser = await withClient(managedUrl(), (c) => c.query('SELECT rolsuper FROM pg_roles WHERE rolname = current_user'))
  expect(superuser.rows[0].rolsuper).toBe(false)
})

afterAll(async () => {
  // the jobs the admin scheduled in the shared cron database are removed with their owner's estate
  await su(`DELETE FROM cron.job WHERE username = '${ADMIN}'`, cronDatabase).catch(() => {})
})

describe('a managed server: the whole flow as an admin without superuser', () => {
  it('db plan lists the provider steps in plain words and needs no superuser for the rest', async () => {
    const plan = await asAdmin(['db', 'plan', '--prefix', P, '--passwords-file', passwords, '--json'], 120_000)
    expect(plan.exitCode, plan.stderr).toBe(3)
    const doc = plan.json()
    expect(doc.server).toMatchObject({user: ADMIN, superuser: false})
    expect(doc.lacking).toEqual([])
    for (const a of doc.actions as PublicAction[]) expect(['createrole', 'createdb', 'owner', 'replication'], a.description).toContain(a.privilege)
    const steps = (doc.providerSteps as PublicAction[]).map((s) => s.description)
    expect(steps).toContain(`grant the REPLICATION attribute to role ${P}centralcloud_cdc (it reads the change data capture slot)`)
    expect(steps).toContain(`allow the extension pg_prewarm in database ${P}singularity`)
    expect(steps.some((s) => s.startsWith(`schedule pg_cron job singularity:${P}learn-patterns (*/5 * * * *) in ${P}singularity, run as ${ADMIN}: grant ${ADMIN} EXECUTE on cron.schedule_in_database`))).toBe(true)
    for (const s of doc.providerSteps as PublicAction[]) expect(s.privilege).toBe('provider')
    // the managed equivalents: pgcrypto is trusted, so the admin creates it; databases after joining their owner
    expect(doc.actions).toContainEqual(expect.objectContaining({area: 'extensions', database: `${P}genesis`, subject: 'pgcrypto', privilege: 'owner'}))
    expect(doc.actions).toContainEqual(expect.objectContaining({area: 'databases', privilege: 'createdb', sql: [`GRANT "${P}genesis" TO "${ADMIN}"`, `CREATE DATABASE "${P}genesis" OWNER "${P}genesis"`]}))
    expect(plan.stdout).not.toContain('"privilege": "superuser"')
  })

  it('db init goes as far as the admin can, exit 0, and lists what the provider must do', async () => {
    const init = await asAdmin(['db', 'init', '--prefix', P, '--passwords-file', passwords, '--json'])
    expect(init.exitCode, init.stdout + init.stderr).toBe(0)
    const result = init.json()
    expect(result.status).toBe('applied')
    const engine = pgmqTrusted ? 'extension' : 'bundled' // the bundled engine where pgmq cannot be created by the admin
    expect(result.databases.find((d: {kind: string}) => d.kind === 'shared_queue').queueEngine).toBe(engine)
    expect(result.providerSteps.length).toBeGreaterThan(0)
    expect(result.actions).toContainEqual(expect.objectContaining({area: 'cdc', privilege: 'replication'}))
    const human = await asAdmin(['db', 'init', '--prefix', P, '--passwords-file', passwords])
    expect(human.exitCode, human.stderr).toBe(0)
    expect(human.stdout).toContain('db init: up to date')
    expect(human.stdout).toContain(`provider steps (${result.providerSteps.length}): '${ADMIN}' is not a superuser`)
    const again = await asAdmin(['db', 'plan', '--prefix', P, '--passwords-file', passwords, '--json'], 120_000)
    expect(again.exitCode, again.stdout).toBe(0)
    expect(again.json()).toMatchObject({status: 'up-to-date', actions: []})
    const status = await asAdmin(['db', 'status', '--prefix', P, '--json'], 120_000)
    expect(status.exitCode, status.stdout).toBe(0)
    expect(status.json().verdict).toBe('ok')
    expect(status.json().plan.providerSteps).toHaveLength(result.providerSteps.length)
  })

  it("holds seed 003's isolation matrix cell by cell", async () => {
    const kinds = ['singularity', 'genesis', 'centralcloud', 'nexus', 'shared_queue']
    const allowed: Record<string, string[]> = {
      singularity: ['singularity', 'shared_queue'],
      genesis: ['genesis', 'shared_queue'],
      centralcloud: ['centralcloud', 'shared_queue'],
      nexus: ['nexus', 'shared_queue'],
      centralcloud_analytics: ['shared_queue'],
      centralcloud_consumer: ['singularity'],
    }
    for (const [role, dbs] of Object.entries(allowed)) {
      for (const kind of kinds) {
        expect(await attempt(roleUrl(role, `${P}${kind}`), 'SELECT 1'), `${role} → ${kind}`).toBe(dbs.includes(kind) ? 'ok' : '42501')
      }
    }
  })

  it("queues: each service role sends, reads and archives as the topology's directions say, and is refused the rest", async () => {
    const sq = `${P}shared_queue`
    for (const row of queueAccessMatrix().filter((r) => r.database === 'shared_queue')) {
      const url = roleUrl(row.role, sq)
      const label = `${row.role} ${row.direction} ${row.queue}`
      if (row.direction === 'publish') {
        expect(await attempt(url, `SELECT pgmq.send('${row.queue}', '{"from":"${row.role}"}')`), label).toBe('ok')
      }
      if (row.direction === 'consume') {
        await withClient(roleUrl(queueAccessMatrix().find((r) => r.queue === row.queue && r.direction === 'publish')!.role, sq), (c) => c.query(`SELECT pgmq.send('${row.queue}', '{}')`))
        const c = await connect(url)
        try {
          const read = await c.query(`SELECT msg_id FROM pgmq.read('${row.queue}', 30, 1)`)
          expect(read.rows, label).toHaveLength(1)
          const archived = await c.query(`SELECT pgmq.archive('${row.queue}', $1::bigint) AS ok`, [read.rows[0].msg_id])
          expect(archived.rows[0].ok, label).toBe(true)
        } finally {
          await c.end()
        }
      }
      if (row.direction === 'observe') {
        expect(await attempt(url, `SELECT count(*) FROM pgmq.q_${row.queue}`), label).toBe('ok')
        expect(await attempt(url, `SELECT pgmq.send('${row.queue}', '{}')`), label).toBe('42501')
      }
    }
    const stats = await asAdmin(['queue', 'stats', '--prefix', P, '--json'], 60_000)
    expect(stats.exitCode, stats.stderr).toBe(0)
  })

  it('pg_cron 1.4: the job of the cron database is scheduled as the admin; jobs in other databases are provider steps', async () => {
    const jobs = await asAdmin(['jobs', 'list', '--prefix', P, '--json'], 60_000)
    expect(jobs.exitCode, jobs.stderr).toBe(0)
    const rows = jobs.json().jobs as {job: string; runner: string; database: string; drift: string[]; installed: {username: string; database: string} | null}[]
    const inCron = rows.find((r) => r.job === `singularity:${P}cron-history-cleanup`)!
    expect(inCron.installed).toMatchObject({username: ADMIN, database: cronDatabase})
    expect(inCron.drift).toEqual([])
    const elsewhere = rows.filter((r) => r.runner === 'pg_cron' && r.database !== cronDatabase)
    expect(elsewhere.length).toBeGreaterThan(0)
    for (const r of elsewhere) expect(r.drift, r.job).toEqual(['provider step'])
    // pg_cron itself refuses the admin what db init left to the provider
    expect(await attempt(managedUrl(cronDatabase), `SELECT cron.schedule_in_database('x', '* * * * *', 'SELECT 1', '${P}genesis')`)).toBe('42501')
  })

  it('cdc tail streams a change as the admin (REPLICATION), and the estate slot exists', async () => {
    const slots = await su(`SELECT slot_name FROM pg_replication_slots WHERE slot_name = '${P}singularity_centralcloud_cdc'`)
    expect(slots.rows).toHaveLength(1)
    const env: Record<string, string> = {}
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(PG|SINGULARITY_|DATABASE_URL$)/.test(k)) env[k] = v
    Object.assign(env, {SINGULARITY_ADMIN_URL: managedUrl(), SINGULARITY_LOCAL_DIR: '/nonexistent/x', XDG_CONFIG_HOME: '/nonexistent/y'})
    const child = spawn(process.execPath, [BIN, 'cdc', 'tail', '--prefix', P, '--json', '--table', 'learned_patterns', '--limit', '1', '--timeout', '120s'], {env, stdio: ['ignore', 'pipe', 'pipe']})
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    const done = new Promise<number | null>((resolve) => child.on('close', resolve))
    // the line a script waits for: the stream has started (what commits before it is not streamed)
    await waitFor(`cdc tail's "tailing" line on stderr`, () => /^tailing /m.test(err), {timeoutMs: 60_000}).catch((error: Error) => {
      throw new Error(`${error.message}; its stderr: ${err}`)
    })
    expect(await withClient(urlFor('postgres'), (c) => streamingTails(c, `${P}singularity`))).toBe(1)
    expect(await attempt(roleUrl('singularity', `${P}singularity`), `INSERT INTO learned_patterns (pattern, confidence) VALUES ('{"managed":true}', 0.5)`)).toBe('ok')
    expect(await done, err).toBe(0)
    const line = JSON.parse(out.trim().split('\n')[0])
    expect(line).toMatchObject({action: 'insert', schema: 'public', table: 'learned_patterns'})
  })

  it('backup without superuser: every database, roles without passwords (said in the manifest); restore as a copy', async () => {
    const taken = await asAdmin(['backup', '--prefix', P, '--dir', backups, '--json'])
    expect(taken.exitCode, taken.stderr).toBe(0)
    const result = taken.json()
    expect(result.status).toBe('complete')
    expect(result.databases.map((d: {name: string}) => d.name).sort()).toEqual(['centralcloud', 'genesis', 'nexus', 'shared_queue', 'singularity'].map((k) => P + k).sort())
    const manifest = JSON.parse(readFileSync(join(result.path, 'manifest.json'), 'utf8'))
    expect(manifest.globals.rolePasswords).toBe(false)
    expect(taken.stderr).toContain('without passwords: not a superuser')
    const copy = `${P}shared_queue_copy`
    const restored = await asAdmin(['backup', 'restore', result.id, '--db', `${P}shared_queue`, '--as', copy, '--dir', backups, '--json'])
    expect(restored.exitCode, restored.stderr).toBe(0)
    try {
      const count = (db: string) => withClient(urlFor(db), (c) => c.query("SELECT count(*)::int AS n FROM pgmq.a_job_requests")).then((r) => r.rows[0].n)
      expect(await count(copy)).toBe(await count(`${P}shared_queue`))
    } finally {
      await su(`DROP DATABASE IF EXISTS "${copy}"`)
    }
  })

  it('doctor is healthy (warnings: the provider steps, no failure)', async () => {
    const doctor = await asAdmin(['doctor', '--prefix', P, '--backup-dir', backups, '--json'], 120_000)
    expect(doctor.exitCode, doctor.stdout + doctor.stderr).toBe(0)
    const report = doctor.json()
    expect(report.verdict).not.toBe('fail')
    const checks = report.checks as {check: string; status: string; detail: string}[]
    expect(checks.filter((c) => c.status === 'fail')).toEqual([])
    expect(checks.find((c) => c.check === 'pg_cron jobs')).toMatchObject({status: 'warn', detail: expect.stringContaining('to be scheduled by the provider')})
    expect(checks.find((c) => c.check === 'estate drift')!.status).toBe('ok')
  })
})

describe('an admin without CREATEROLE', () => {
  it('db init refuses from the plan, exit 1, before changing anything', async () => {
    const weak = `t_mgd_weak_${uniqueSuffix()}`
    await su(`CREATE ROLE "${weak}" LOGIN CREATEDB PASSWORD 'weakpw'`)
    const url = new URL(urlFor('postgres'))
    url.username = weak
    url.password = 'weakpw'
    const prefix = 't_mgw_'
    const init = await runCli(['db', 'init', '--prefix', prefix, '--passwords-file', join(scratch, 'weak.json'), '--json'], {env: {SINGULARITY_ADMIN_URL: url.toString()}, timeoutMs: 120_000})
    expect(init.exitCode, init.stdout + init.stderr).toBe(1)
    expect(init.stderr + init.stdout).toContain('ADMIN_LACKS_PRIVILEGE')
    expect(init.stderr + init.stdout).toContain('needs createrole')
    const left = await su(`SELECT (SELECT count(*) FROM pg_database WHERE datname LIKE '${prefix}%')::int AS dbs, (SELECT count(*) FROM pg_roles WHERE rolname LIKE '${prefix}%')::int AS roles`)
    expect(left.rows[0]).toEqual({dbs: 0, roles: 0})
  })
})
