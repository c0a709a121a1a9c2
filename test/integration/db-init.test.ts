import {mkdtempSync, readFileSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {spawn} from 'node:child_process'
import {beforeAll, describe, expect, it} from 'vitest'

import {runCli} from '../helpers/cli.js'
import {adminUrl, connect, urlFor, withClient} from '../helpers/db.js'

const secrets = mkdtempSync(join(tmpdir(), 'sing-init-'))
const passwordsFile = (prefix: string) => join(secrets, `${prefix}passwords.json`)
const init = (prefix: string, extra: string[] = []) =>
  runCli(['db', 'init', '--prefix', prefix, '--passwords-file', passwordsFile(prefix), ...extra], {timeoutMs: 180_000})

async function catalog(prefix: string): Promise<{databases: string[]; roles: string[]}> {
  return withClient(adminUrl(), async (c) => {
    const dbs = await c.query<{datname: string}>("SELECT datname FROM pg_database WHERE datname LIKE $1 || '%' ORDER BY 1", [prefix])
    const roles = await c.query<{rolname: string}>("SELECT rolname FROM pg_roles WHERE rolname LIKE $1 || '%' ORDER BY 1", [prefix])
    return {databases: dbs.rows.map((r) => r.datname), roles: roles.rows.map((r) => r.rolname)}
  })
}

/** The URL of a database, logged in as a service role with its password. */
function roleUrl(prefix: string, role: string, database: string): string {
  const passwords = JSON.parse(readFileSync(passwordsFile(prefix), 'utf8')) as Record<string, string>
  const url = new URL(urlFor(database))
  url.username = prefix + role
  url.password = encodeURIComponent(passwords[prefix + role])
  return url.toString()
}

async function canConnect(url: string): Promise<boolean> {
  try {
    const c = await connect(url)
    await c.end()
    return true
  } catch (error) {
    expect((error as {code?: string}).code).toBe('42501') // refused by PostgreSQL: no CONNECT privilege
    return false
  }
}

/** Runs sql as a role in a database: 'ok', or the SQLSTATE PostgreSQL refused it with. */
async function attempt(url: string, sql: string): Promise<string> {
  const c = await connect(url)
  try {
    await c.query(sql)
    return 'ok'
  } catch (error) {
    return (error as {code: string}).code
  } finally {
    await c.end()
  }
}

const ROLES = ['centralcloud', 'centralcloud_analytics', 'centralcloud_cdc', 'centralcloud_consumer', 'genesis', 'nexus', 'singularity']

describe('db init --dry-run', {timeout: 300_000}, () => {
  it('on an empty server prints the plan (the same as db plan) and changes nothing in the catalog', async () => {
    const P = 't_dry_'
    const before = await catalog(P)
    const result = await init(P, ['--dry-run', '--json'])
    expect(result.exitCode, result.stdout + result.stderr).toBe(0)
    const plan = result.json()
    expect(plan.status).toBe('planned')
    expect(plan.databases.map((d: {name: string}) => d.name)).toEqual([`${P}singularity`, `${P}genesis`, `${P}centralcloud`, `${P}nexus`, `${P}shared_queue`])
    expect(plan.roles.every((r: {exists: boolean}) => !r.exists)).toBe(true)
    const creates = plan.actions.filter((a: {area: string; reason: string; sql: string[]}) => a.area === 'databases' && a.reason === 'missing' && a.sql[0].startsWith('CREATE DATABASE'))
    expect(creates).toHaveLength(5)
    expect(plan.actions.filter((a: {area: string}) => a.area === 'sql').length).toBeGreaterThan(10)
    for (const a of plan.actions) expect(a).toEqual(expect.objectContaining({description: expect.any(String), sql: expect.any(Array), destructive: expect.any(Boolean), privilege: expect.any(String), reason: expect.any(String)}))
    expect(JSON.stringify(plan)).not.toMatch(/SCRAM-SHA-256/)
    const viaPlan = await runCli(['db', 'plan', '--prefix', P, '--passwords-file', passwordsFile(P), '--instances', '1', '--json'])
    expect(viaPlan.exitCode).toBe(3)
    // pg_cron's own extension is server-wide: another test file may create it in between
    const mine = (actions: {area: string; subject?: string; description: string}[]) => actions.filter((a) => !(a.area === 'cron' && a.subject === 'pg_cron')).map((a) => a.description)
    expect(mine(viaPlan.json().actions)).toEqual(mine(plan.actions))
    expect(await catalog(P)).toEqual(before)
  })
})

describe('db init', {timeout: 300_000}, () => {
  const P = 't_init_'
  let fresh: {exitCode: number | null; stdout: string; stderr: string; body: any}

  beforeAll(async () => {
    const result = await init(P, ['--queue-engine', 'bundled', '--json'])
    fresh = {exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr, body: result.exitCode === 0 ? result.json() : null}
    expect(result.exitCode, result.stdout + result.stderr).toBe(0)
  })

  it('a fresh init creates the five databases, the roles, the queues; the password file is 0600 and no password is printed', async () => {
    expect(fresh.body.status).toBe('applied')
    expect(fresh.body.actions.length).toBe(fresh.body.changes.length)
    const {databases, roles} = await catalog(P)
    expect(databases).toEqual([`${P}centralcloud`, `${P}genesis`, `${P}nexus`, `${P}shared_queue`, `${P}singularity`])
    expect(roles).toEqual(ROLES.map((r) => P + r))
    expect(statSync(passwordsFile(P)).mode & 0o777).toBe(0o600)
    for (const pw of Object.values(JSON.parse(readFileSync(passwordsFile(P), 'utf8')) as Record<string, string>)) {
      expect(fresh.stdout + fresh.stderr).not.toContain(pw)
    }
    const queues = await withClient(urlFor(`${P}shared_queue`), (c) => c.query<{queue_name: string}>('SELECT queue_name FROM pgmq.meta ORDER BY 1'))
    expect(queues.rows.map((r) => r.queue_name)).toHaveLength(12)
    const own = await withClient(urlFor(`${P}singularity`), (c) => c.query<{queue_name: string}>('SELECT queue_name FROM pgmq.meta ORDER BY 1'))
    // seed 000's three and seed 002's CDC bridge queues
    expect(own.rows.map((r) => r.queue_name)).toEqual([
      'agent-knowledge-updates', 'agent-sessions', 'cdc-agent-sessions', 'cdc-learned-patterns', 'cdc-metrics-events', 'centralcloud-new-patterns',
    ])
  })

  it('a second init changes nothing and says up to date; db plan is empty (exit 0); db status is ok (exit 0)', async () => {
    const result = await init(P, ['--json'])
    expect(result.exitCode).toBe(0)
    expect(result.json()).toMatchObject({status: 'up-to-date', changes: [], actions: []})
    const human = await init(P)
    expect(human.stdout).toContain('up to date')
    const plan = await runCli(['db', 'plan', '--prefix', P, '--json'])
    expect(plan.exitCode, plan.stdout).toBe(0)
    expect(plan.json()).toMatchObject({status: 'up-to-date', actions: []})
    const status = await runCli(['db', 'status', '--prefix', P, '--json'])
    expect(status.exitCode).toBe(0)
    const s = status.json()
    expect(s.verdict).toBe('ok')
    expect(s.databases.map((d: {verdict: string}) => d.verdict)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok'])
    expect(s.databases.find((d: {kind: string}) => d.kind === 'shared_queue').queueEngine).toBe('bundled')
    // where the agent sessions' key lives (no key service: inside each singularity database), and that backups hold it
    expect(s.sessionKey).toMatchObject({location: expect.stringContaining('singularity_private.encryption_keys'), keyService: null, inBackups: expect.stringContaining('encrypted')})
    const humanStatus = await runCli(['db', 'status', '--prefix', P, '--wide'])
    expect(humanStatus.stdout).toMatch(/session key: singularity_private\.encryption_keys, inside each singularity database \(no key service\)/)
  })

  it("holds seed 003's isolation matrix cell by cell, with CentralCloud's two roles into singularity only", async () => {
    const kinds = ['singularity', 'genesis', 'centralcloud', 'nexus', 'shared_queue']
    const allowed: Record<string, string[]> = {
      singularity: ['singularity', 'shared_queue'],
      genesis: ['genesis', 'shared_queue'],
      centralcloud: ['centralcloud', 'shared_queue'],
      nexus: ['nexus', 'shared_queue'],
      centralcloud_analytics: ['shared_queue'],
      centralcloud_cdc: ['singularity'],
      centralcloud_consumer: ['singularity'],
    }
    for (const [role, dbs] of Object.entries(allowed)) {
      for (const kind of kinds) {
        expect(await canConnect(roleUrl(P, role, `${P}${kind}`)), `${role} → ${kind}`).toBe(dbs.includes(kind))
      }
    }
  })

  it("shared_queue: each service only in seed 003's directions; centralcloud observes those queues and its analytics role reads archives only", async () => {
    const sq = `${P}shared_queue`
    const send = (queue: string) => `SELECT pgmq.send('${queue}', '{"id":"1","code":"x","language":"elixir"}')`
    const read = (queue: string) => `SELECT * FROM pgmq.read('${queue}', 30, 1)`
    // allowed: singularity publishes job_requests, genesis consumes and archives it, publishes job_results
    expect(await attempt(roleUrl(P, 'singularity', sq), send('job_requests'))).toBe('ok')
    expect(await attempt(roleUrl(P, 'genesis', sq), read('job_requests'))).toBe('ok')
    expect(await attempt(roleUrl(P, 'genesis', sq), "SELECT pgmq.archive('job_requests', (SELECT max(msg_id) FROM pgmq.q_job_requests))")).toBe('ok')
    expect(await attempt(roleUrl(P, 'genesis', sq), send('job_results'))).toBe('ok')
    expect(await attempt(roleUrl(P, 'singularity', sq), read('job_results'))).toBe('ok')
    expect(await attempt(roleUrl(P, 'nexus', sq), read('llm_requests'))).toBe('ok')
    expect(await attempt(roleUrl(P, 'nexus', sq), send('llm_results'))).toBe('ok')
    // refused: the wrong directions
    expect(await attempt(roleUrl(P, 'singularity', sq), read('job_requests'))).toBe('42501')
    expect(await attempt(roleUrl(P, 'nexus', sq), send('llm_requests'))).toBe('42501')
    expect(await attempt(roleUrl(P, 'nexus', sq), read('job_requests'))).toBe('42501')
    expect(await attempt(roleUrl(P, 'genesis', sq), send('job_requests'))).toBe('42501')
    for (const role of ['centralcloud', 'centralcloud_analytics']) {
      const url = roleUrl(P, role, sq)
      expect(await attempt(url, 'SELECT count(*) FROM pgmq.a_job_requests'), role).toBe('ok')
      expect(await attempt(url, send('llm_requests')), role).toBe('42501')
      expect(await attempt(url, 'DELETE FROM pgmq.a_job_requests'), role).toBe('42501')
      expect(await attempt(url, 'CREATE TABLE pgmq.sneaky (x int)'), role).toBe('42501')
    }
    expect(await attempt(roleUrl(P, 'centralcloud', sq), 'SELECT count(*) FROM pgmq.q_llm_requests')).toBe('ok')
    expect(await attempt(roleUrl(P, 'centralcloud_analytics', sq), 'SELECT count(*) FROM pgmq.q_llm_requests')).toBe('42501')
  })

  it("CentralCloud's consumer role consumes its two queues of singularity and nothing else there; the CDC role has no table privileges", async () => {
    const db = `${P}singularity`
    const consumer = roleUrl(P, 'centralcloud_consumer', db)
    expect(await attempt(consumer, "SELECT * FROM pgmq.read('centralcloud-new-patterns', 30, 1)")).toBe('ok')
    expect(await attempt(consumer, "SELECT * FROM pgmq.read('agent-sessions', 30, 1)")).toBe('ok')
    expect(await attempt(consumer, "SELECT * FROM pgmq.read('agent-knowledge-updates', 30, 1)")).toBe('42501')
    expect(await attempt(consumer, "SELECT pgmq.send('agent-sessions', '{}')")).toBe('42501')
    expect(await attempt(consumer, 'SELECT count(*) FROM public.learned_patterns')).toBe('42501')
    const cdc = roleUrl(P, 'centralcloud_cdc', db)
    expect(await attempt(cdc, 'SELECT count(*) FROM public.learned_patterns')).toBe('42501')
    expect(await attempt(cdc, `SELECT count(*) FROM pg_logical_slot_peek_changes('${P}singularity_centralcloud_cdc', NULL, 1)`)).toBe('ok')
  })

  it('service roles cannot touch the ledger or create objects in public of shared_queue', async () => {
    expect(await attempt(roleUrl(P, 'singularity', `${P}singularity`), 'SELECT * FROM singularity_meta.applied_sql')).toBe('42501')
    expect(await attempt(roleUrl(P, 'nexus', `${P}shared_queue`), 'CREATE TABLE public.t (x int)')).toBe('42501')
  })
})

describe('db init under concurrency and interruption', {timeout: 300_000}, () => {
  it('four concurrent inits end in the same state with no error', async () => {
    const P = 't_conc_'
    const results = await Promise.all([1, 2, 3, 4].map(() => init(P, ['--json'])))
    for (const r of results) expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    expect(results.filter((r) => r.json().status === 'applied')).toHaveLength(1)
    const status = await runCli(['db', 'status', '--prefix', P, '--json'])
    expect(status.exitCode).toBe(0)
    expect(status.json().verdict).toBe('ok')
  })

  it('an init queued behind a running one says so, waits, then finishes', async () => {
    const P = 't_queued_'
    const holder = await connect(adminUrl())
    try {
      await holder.query("SELECT pg_advisory_lock(hashtext('singularity.db-init'))")
      const env = {...process.env, SINGULARITY_ADMIN_URL: adminUrl(), SINGULARITY_LOCAL_DIR: '/nonexistent/x', XDG_CONFIG_HOME: '/nonexistent/y'}
      const child = spawn(process.execPath, ['bin/run.js', 'db', 'init', '--prefix', P, '--passwords-file', passwordsFile(P), '--json'], {env, stdio: ['ignore', 'pipe', 'pipe']})
      let out = ''
      let err = ''
      child.stdout.on('data', (d) => (out += d))
      const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
      // released only once the queued init has said it waits
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for the queued db init to say it waits; stderr: ${err}`)), 120_000)
        child.stderr.on('data', (d) => {
          err += d
          if (err.includes('another db init is running on this server; waiting for it to finish')) {
            clearTimeout(timer)
            resolve()
          }
        })
      })
      await holder.query("SELECT pg_advisory_unlock(hashtext('singularity.db-init'))")
      expect(await exited, err).toBe(0)
      expect(JSON.parse(out).status).toBe('applied')
    } finally {
      await holder.end()
    }
  })

  it('an init killed half-way is finished by the next one', async () => {
    const P = 't_kill_'
    const env = {...process.env, SINGULARITY_ADMIN_URL: adminUrl(), SINGULARITY_LOCAL_DIR: '/nonexistent/x', XDG_CONFIG_HOME: '/nonexistent/y'}
    const child = spawn(process.execPath, ['bin/run.js', 'db', 'init', '--prefix', P, '--passwords-file', passwordsFile(P)], {env, stdio: ['ignore', 'ignore', 'pipe']})
    // Kill it as soon as it is inside the second database's SQL.
    await new Promise<void>((resolve) => {
      let seen = ''
      child.stderr.on('data', (d) => {
        seen += d
        if (seen.includes(`${P}genesis`)) {
          child.kill('SIGKILL')
          resolve()
        }
      })
      child.on('close', () => resolve())
    })
    const partial = await catalog(P)
    expect(partial.databases.length).toBeLessThan(5)
    const finish = await init(P, ['--json'])
    expect(finish.exitCode, finish.stdout).toBe(0)
    const status = await runCli(['db', 'status', '--prefix', P, '--json'])
    expect(status.json().verdict).toBe('ok')
    expect((await catalog(P)).databases).toHaveLength(5)
  })
})

describe('db init refuses bad input with one line and a hint', () => {
  it('an invalid --instances exits 2', async () => {
    const result = await runCli(['db', 'init', '--instances', '0'])
    expect(result.exitCode).toBe(2)
    expect(result.stderr).toMatch(/^error: .*instances/m)
  })

  it('an unreachable server exits 1, and the password in the URL is never printed', async () => {
    const result = await runCli(['db', 'init', '--admin-url', 'postgres://admin:TopSecret42@127.0.0.1:1/postgres'])
    expect(result.exitCode).toBe(1)
    expect(result.stdout + result.stderr).not.toContain('TopSecret42')
    expect(result.stderr).toContain('admin:***@127.0.0.1:1')
    expect(result.stderr).toMatch(/^hint: /m)
  })

  it('a wrong password exits 1 with an authentication hint', async () => {
    const url = new URL(adminUrl())
    url.password = 'wrong-password-123'
    const result = await runCli(['db', 'status', '--json'], {env: {SINGULARITY_ADMIN_URL: url.toString()}})
    expect(result.exitCode).toBe(1)
    expect(result.json().error.code).toBe('AUTH_FAILED')
    expect(result.stdout).not.toContain('wrong-password-123')
  })

  it('an admin with neither superuser nor CREATEROLE/CREATEDB exits 1 before changing anything', async () => {
    const role = 't_notsuper'
    await withClient(adminUrl(), async (c) => {
      await c.query(`DROP ROLE IF EXISTS ${role}`)
      await c.query(`CREATE ROLE ${role} LOGIN PASSWORD 'notsuper-pw'`)
    })
    const url = new URL(adminUrl())
    url.username = role
    url.password = 'notsuper-pw'
    const result = await runCli(['db', 'init', '--prefix', 't_ns_', '--json'], {env: {SINGULARITY_ADMIN_URL: url.toString()}})
    expect(result.exitCode).toBe(1)
    expect(result.json().error.code).toBe('ADMIN_LACKS_PRIVILEGE') // a managed admin (CREATEROLE, CREATEDB) goes on: managed.test.ts
    expect((await catalog('t_ns_')).databases).toEqual([])
  })

  it('a database of our name owned by someone else is not taken over', async () => {
    const P = 't_taken_'
    await withClient(adminUrl(), async (c) => {
      await c.query('DROP ROLE IF EXISTS t_stranger')
      await c.query('CREATE ROLE t_stranger')
      await c.query(`CREATE DATABASE ${P}genesis OWNER t_stranger`)
    })
    const result = await init(P, ['--json'])
    expect(result.exitCode).toBe(1)
    expect(result.json().error.code).toBe('DATABASE_TAKEN')
    expect((await catalog(P)).databases).toEqual([`${P}genesis`])
  })
})
