/**
 * An estate over two servers: A is the harness's cluster, B a cluster of this file's own (the
 * `local start` code, in a temp dir), always stopped and destroyed in afterAll. shared_queue and
 * singularity_2 are placed on B, the rest stays on A (`main`). The test is about db init over
 * several servers, so it runs a full `db init` (no template copy).
 */
import {chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import pg from 'pg'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {destroyCluster, startCluster, stopCluster} from '../../src/lib/local-cluster/cluster.js'
import {readLocalState} from '../../src/lib/local-cluster/paths.js'
import {runCli, type CliOptions} from '../helpers/cli.js'
import {promtool} from '../helpers/promtool.js'
import {watchCli} from '../helpers/watch.js'
import {adminUrl, uniqueSuffix, urlFor, withClient} from '../helpers/db.js'

const root = mkdtempSync(join(tmpdir(), 'singularity-servers-'))
// as root, the postgres OS user must pass through the temp dir to reach its data directory
chmodSync(root, 0o755)
const dirB = join(root, 'b')
const configFile = join(root, 'config.json')
const passwordsFile = join(root, 'passwords.json')
const P = `ms${uniqueSuffix()}_`

/** B's admin URL with the superuser password in it (the config file carries it, as an operator's would). */
function adminUrlB(database = 'postgres'): string {
  const state = readLocalState(dirB)
  if (!state) throw new Error(`no cluster state in ${dirB}`)
  const u = new URL(state.adminUrl)
  u.password = encodeURIComponent(readFileSync(join(dirB, 'superuser.password'), 'utf8').trim())
  u.pathname = `/${database}`
  return u.toString()
}

const env = () => ({SINGULARITY_CONFIG: configFile, SINGULARITY_PASSWORDS_FILE: passwordsFile})
const cli = (args: string[], options: CliOptions = {}) => runCli([...args, '--prefix', P], {timeoutMs: 300_000, ...options, env: {...env(), ...options.env}})

/** A service role's URL on a server: its password from db init's passwords file. */
function roleUrl(role: string, base: string, database: string): string {
  const passwords = JSON.parse(readFileSync(passwordsFile, 'utf8')) as Record<string, string>
  const u = new URL(urlFor(database, base))
  u.username = `${P}${role}`
  u.password = encodeURIComponent(passwords[`${P}${role}`])
  return u.toString()
}

const query = <T extends pg.QueryResultRow = any>(url: string, text: string, values: unknown[] = []): Promise<T[]> => withClient(url, async (client) => (await client.query<T>(text, values)).rows)

/** The SQLSTATE of a refused connection or statement; 'ok' when it went through. */
async function attempt(url: string, text = 'SELECT 1'): Promise<string> {
  try {
    await query(url, text)
    return 'ok'
  } catch (error) {
    return (error as {code?: string}).code ?? String(error)
  }
}

const databasesOn = async (url: string) => (await query<{datname: string}>(url, 'SELECT datname FROM pg_database WHERE datname LIKE $1 ORDER BY 1', [`${P}%`])).map((r) => r.datname)
const rolesOn = async (url: string) => (await query<{rolname: string}>(url, 'SELECT rolname FROM pg_roles WHERE rolname LIKE $1 ORDER BY 1', [`${P}%`])).map((r) => r.rolname)

describe('an estate over two servers', {timeout: 900_000}, () => {
  beforeAll(async () => {
    await startCluster({dir: dirB, progress: () => {}})
    writeFileSync(
      configFile,
      JSON.stringify({servers: {queues: adminUrlB()}, placement: {shared_queue: 'queues', [`${P}singularity_2`]: 'queues'}}),
      {mode: 0o600},
    )
    const init = await cli(['db', 'init', '--instances', '2', '--queue-engine', 'bundled', '--json'])
    expect(init.exitCode, init.stderr + init.stdout).toBe(0)
  })

  afterAll(async () => {
    // the estate on A (the shared harness server): databases, then roles; B goes away whole
    const names = await databasesOn(adminUrl()).catch(() => [] as string[])
    for (const name of names) await query(adminUrl(), `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => {})
    await query(adminUrl(), `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE $1`, [`${P}%`]).catch(() => {})
    await query(adminUrl(), `DELETE FROM cron.job_run_details WHERE jobid IN (SELECT jobid FROM cron.job WHERE jobname LIKE $1)`, [`singularity:${P}%`]).catch(() => {})
    await query(adminUrl(), `DELETE FROM cron.job WHERE jobname LIKE $1`, [`singularity:${P}%`]).catch(() => {})
    for (const role of await rolesOn(adminUrl()).catch(() => [] as string[])) await query(adminUrl(), `DROP ROLE IF EXISTS "${role}"`).catch(() => {})
    await destroyCluster(dirB).catch(() => {})
    rmSync(root, {recursive: true, force: true})
  })

  it('db init provisions both servers: each database on its server, each role where a database uses it, CDC slots and pg_cron jobs per server', async () => {
    expect(await databasesOn(adminUrl())).toEqual([`${P}centralcloud`, `${P}genesis`, `${P}nexus`, `${P}singularity_1`])
    expect(await databasesOn(adminUrlB())).toEqual([`${P}shared_queue`, `${P}singularity_2`])
    // centralcloud_analytics only reads shared_queue's archives: it exists on B only
    const onA = await rolesOn(adminUrl())
    const onB = await rolesOn(adminUrlB())
    expect(onA).not.toContain(`${P}centralcloud_analytics`)
    expect(onB).toContain(`${P}centralcloud_analytics`)
    for (const role of ['singularity', 'genesis', 'centralcloud', 'nexus', 'centralcloud_cdc', 'centralcloud_consumer']) {
      expect(onA, role).toContain(`${P}${role}`)
      expect(onB, role).toContain(`${P}${role}`)
    }
    // the CDC slots live with their singularity instance
    const slots = async (url: string) => (await query<{slot_name: string}>(url, 'SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE $1 ORDER BY 1', [`${P}%`])).map((r) => r.slot_name)
    expect(await slots(adminUrl())).toEqual([`${P}singularity_1_cdc_bridge`, `${P}singularity_1_centralcloud_cdc`])
    expect(await slots(adminUrlB())).toEqual([`${P}singularity_2_cdc_bridge`, `${P}singularity_2_centralcloud_cdc`])
    // pg_cron jobs on the server that runs the database they act on
    const jobs = async (url: string) => (await query<{jobname: string; database: string}>(url, 'SELECT jobname, database FROM cron.job WHERE jobname LIKE $1', [`singularity:${P}%`]))
    const jobsA = await jobs(adminUrl())
    const jobsB = await jobs(adminUrlB())
    expect(jobsA.length).toBeGreaterThan(0)
    expect(jobsB.length).toBeGreaterThan(0)
    expect(new Set(jobsA.map((j) => j.database).filter((d) => d.startsWith(P)))).toEqual(new Set([`${P}singularity_1`]))
    expect(new Set(jobsB.map((j) => j.database).filter((d) => d.startsWith(P)))).toEqual(new Set([`${P}shared_queue`, `${P}singularity_2`]))
    expect(jobsB.map((j) => j.jobname)).toContain(`singularity:${P}prune-queue-archives`)
    expect(jobsA.map((j) => j.jobname)).not.toContain(`singularity:${P}prune-queue-archives`)
  })

  it('a second db init changes nothing; db plan is up to date on both servers', async () => {
    const again = await cli(['db', 'init', '--instances', '2', '--queue-engine', 'bundled', '--json'])
    expect(again.exitCode, again.stderr).toBe(0)
    expect(again.json().status).toBe('up-to-date')
    const plan = await cli(['db', 'plan', '--json'])
    expect(plan.exitCode, plan.stdout).toBe(0)
    expect(plan.json().servers.map((s: {name: string; reachable: boolean}) => [s.name, s.reachable])).toEqual([['main', true], ['queues', true]])
  })

  it('a message sent by genesis (its own role, through its service connection) reaches shared_queue on B', async () => {
    // seed 003: Genesis reaches shared_queue through SHARED_QUEUE_DB_URL, as its own role, with the password it has on A
    const genesisSharedQueue = roleUrl('genesis', adminUrlB(), `${P}shared_queue`)
    expect(await attempt(roleUrl('genesis', adminUrl(), `${P}genesis`))).toBe('ok')
    const send = await cli(['queue', 'send', 'job_results', '{"request_id": "r-42", "output": "done by genesis", "error": null}', '--db', 'shared_queue', '--json'], {env: {SHARED_QUEUE_DB_URL: genesisSharedQueue}})
    expect(send.exitCode, send.stderr + send.stdout).toBe(0)
    const rows = await query<{message: {request_id: string}}>(roleUrl('singularity', adminUrlB(), `${P}shared_queue`), 'SELECT message FROM pgmq.read($1, 30, 1)', ['job_results'])
    expect(rows.map((r) => r.message)).toEqual([expect.objectContaining({request_id: 'r-42', output: 'done by genesis'})])
    // and genesis's own role may not publish what it consumes (the grants hold on B)
    expect(await attempt(genesisSharedQueue, "SELECT pgmq.send('job_requests', '{}'::jsonb)")).toBe('42501')
  })

  it('isolation holds on both servers, cell by cell', async () => {
    const a = adminUrl()
    const b = adminUrlB()
    // A: each service in its own database only
    expect(await attempt(roleUrl('genesis', a, `${P}genesis`))).toBe('ok')
    expect(await attempt(roleUrl('genesis', a, `${P}singularity_1`))).toBe('42501')
    expect(await attempt(roleUrl('nexus', a, `${P}genesis`))).toBe('42501')
    expect(await attempt(roleUrl('singularity', a, `${P}centralcloud`))).toBe('42501')
    expect(await attempt(roleUrl('centralcloud_cdc', a, `${P}singularity_1`))).toBe('ok')
    // B: the services that use shared_queue reach it; nobody else reaches singularity_2
    for (const role of ['singularity', 'genesis', 'nexus', 'centralcloud', 'centralcloud_analytics']) expect(await attempt(roleUrl(role, b, `${P}shared_queue`)), role).toBe('ok')
    expect(await attempt(roleUrl('singularity', b, `${P}singularity_2`))).toBe('ok')
    for (const role of ['genesis', 'nexus', 'centralcloud_analytics']) expect(await attempt(roleUrl(role, b, `${P}singularity_2`)), role).toBe('42501')
    // PUBLIC has no CONNECT on either server
    const publicConnect = async (url: string) => (await query<{n: number}>(url, `SELECT count(*)::int AS n FROM pg_database WHERE datname LIKE $1 AND has_database_privilege('public', oid, 'CONNECT')`, [`${P}%`]))[0].n
    expect(await publicConnect(a)).toBe(0)
    expect(await publicConnect(b)).toBe(0)
  })

  it('the readers cover both servers and name them', async () => {
    const status = await cli(['db', 'status', '--json'])
    expect(status.exitCode, status.stdout).toBe(0)
    const s = status.json()
    expect(s.servers.map((x: {name: string}) => x.name)).toEqual(['main', 'queues'])
    expect(Object.fromEntries(s.databases.map((d: {name: string; server: string}) => [d.name, d.server]))).toEqual({
      [`${P}singularity_1`]: 'main', [`${P}singularity_2`]: 'queues', [`${P}genesis`]: 'main', [`${P}centralcloud`]: 'main', [`${P}nexus`]: 'main', [`${P}shared_queue`]: 'queues',
    })
    const human = await cli(['db', 'status', '--wide'])
    expect(human.exitCode).toBe(0)
    expect(human.stdout).toMatch(/server queues: PostgreSQL/)
    expect(human.stdout).toMatch(new RegExp(`${P}shared_queue\\s+queues\\s+ok`))

    const stats = await cli(['queue', 'stats', '--json'])
    expect(stats.exitCode, stats.stderr).toBe(0)
    const queues = stats.json().queues as {database: string; server: string; queue: string; length: number}[]
    expect(queues.find((q) => q.database === `${P}shared_queue` && q.queue === 'job_results')).toMatchObject({server: 'queues'})
    expect(queues.find((q) => q.database === `${P}singularity_1`)).toMatchObject({server: 'main'})

    const doctor = await cli(['doctor', '--json'])
    const checks = doctor.json().checks as {check: string; status: string; detail: string}[]
    expect(checks.find((c) => c.check === 'servers')).toMatchObject({status: 'ok'})
    expect(checks.find((c) => c.check === 'replication slots (queues)')).toBeDefined()
    expect(checks.find((c) => c.check === 'pg_cron jobs (queues)')?.status).not.toBe('fail')

    const jobs = await cli(['jobs', 'list', '--runner', 'pg_cron', '--json'])
    expect(jobs.exitCode, jobs.stderr).toBe(0)
    const rows = jobs.json().jobs as {job: string; server: string; database: string; drift: string[]}[]
    expect(rows.find((j) => j.job === `singularity:${P}prune-queue-archives`)).toMatchObject({server: 'queues', database: `${P}shared_queue`, drift: []})
    expect(rows.filter((j) => j.database === `${P}singularity_1`).every((j) => j.server === 'main' && j.drift.length === 0)).toBe(true)
    expect(rows.filter((j) => j.database === `${P}singularity_2`).every((j) => j.server === 'queues' && j.drift.length === 0)).toBe(true)
    expect(rows.some((j) => j.database === `${P}singularity_2`)).toBe(true)

    const slots = await cli(['cdc', 'slots', '--sample', '0', '--json'])
    expect(slots.exitCode, slots.stderr).toBe(0)
    const slotRows = slots.json().slots as {name: string; server: string}[]
    expect(slotRows.find((x) => x.name === `${P}singularity_2_centralcloud_cdc`)).toMatchObject({server: 'queues'})
    expect(slotRows.find((x) => x.name === `${P}singularity_1_centralcloud_cdc`)).toMatchObject({server: 'main'})
    expect(slots.json().missing).toEqual([])

    // metrics: each server's slots and pg_cron, labelled with the server; promtool accepts it
    const metrics = await cli(['metrics'])
    expect(metrics.exitCode, metrics.stderr).toBe(0)
    expect(promtool(metrics.stdout).status).toBe(0)
    for (const server of ['main', 'queues']) {
      expect(metrics.stdout).toContain(`singularity_scrape_up{section="slots",server="${server}"} 1`)
      expect(metrics.stdout).toContain(`singularity_scrape_up{section="cron",server="${server}"} 1`)
    }
    expect(metrics.stdout).toContain(`singularity_replication_slot_active{slot="${P}singularity_2_centralcloud_cdc",database="${P}singularity_2",server="queues"} 0`)
    expect(metrics.stdout).toContain(`singularity_replication_slot_active{slot="${P}singularity_1_centralcloud_cdc",database="${P}singularity_1",server="main"} 0`)

    // cdc tail streams from the instance's own server (singularity_2 exists on B only)
    const tail = await cli(['cdc', 'tail', '--db', `${P}singularity_2`, '--timeout', '3s'])
    expect(tail.exitCode, tail.stderr).toBe(0)
  })

  it('jobs run runs a job on the server its database is placed on; jobs history reads every server\'s runs, each naming its server', async () => {
    // the table-statistics copy of singularity_2 is B's job (it writes a row per table into B's singularity_2)
    const list = await cli(['jobs', 'list', '--runner', 'pg_cron', '--json'])
    expect(list.exitCode, list.stderr).toBe(0)
    const rows = list.json().jobs as {job: string; server: string; database: string}[]
    const jobB = rows.find((j) => j.database === `${P}singularity_2` && j.job.includes('table-statistics'))!
    const jobA = rows.find((j) => j.database === `${P}singularity_1` && j.job.includes('table-statistics'))!
    expect(jobB).toMatchObject({server: 'queues'})
    expect(jobA).toMatchObject({server: 'main'})
    const countOn = async (url: string) => (await query<{n: number}>(url, 'SELECT count(*)::int AS n FROM public.table_statistics'))[0].n
    const beforeB = await countOn(adminUrlB(`${P}singularity_2`))
    const beforeA = await countOn(urlFor(`${P}singularity_1`, adminUrl()))
    const run = await cli(['jobs', 'run', jobB.job, '--json'])
    expect(run.exitCode, run.stderr + run.stdout).toBe(0)
    expect(run.json().runs).toEqual([expect.objectContaining({server: 'queues', database: `${P}singularity_2`, ok: true})])
    expect(await countOn(adminUrlB(`${P}singularity_2`))).toBeGreaterThan(beforeB)
    expect(await countOn(urlFor(`${P}singularity_1`, adminUrl()))).toBe(beforeA)
    // by schedule name: each instance's copy on its own server; --db picks one
    const dry = await cli(['jobs', 'run', 'table-statistics', '--dry-run', '--json'])
    expect(dry.exitCode, dry.stderr).toBe(0)
    expect(dry.json().runs.map((r: {server: string; database: string}) => [r.server, r.database])).toEqual([['main', `${P}singularity_1`], ['queues', `${P}singularity_2`]])
    const human = await cli(['jobs', 'run', 'table-statistics', '--db', `${P}singularity_2`])
    expect(human.exitCode, human.stderr).toBe(0)
    expect(human.stdout).toMatch(new RegExp(`in ${P}singularity_2 on server queues as \\S+: SELECT 1`))
    const elsewhere = await cli(['jobs', 'run', jobB.job, '--db', `${P}singularity_1`])
    expect(elsewhere.exitCode).toBe(2)
    expect(elsewhere.stderr).toMatch(/does not run in/)

    // a recorded run on each server: history merges them newest first, each naming its server
    const record = async (url: string, jobname: string, database: string, ago: string) => {
      const [{jobid}] = await query<{jobid: string}>(url, 'SELECT jobid FROM cron.job WHERE jobname = $1', [jobname])
      await query(
        url,
        `INSERT INTO cron.job_run_details (jobid, runid, job_pid, database, username, command, status, return_message, start_time, end_time)
         VALUES ($1, nextval('cron.runid_seq'), 0, $2, 'postgres', 'SELECT 1', 'succeeded', 'SELECT 1', now() - $3::interval, now() - $3::interval + interval '1 second')`,
        [jobid, database, ago],
      )
    }
    await record(adminUrl(), jobA.job, `${P}singularity_1`, '2 minutes')
    await record(adminUrlB(), jobB.job, `${P}singularity_2`, '1 minute')
    const history = await cli(['jobs', 'history', 'table-statistics', '--json'])
    expect(history.exitCode, history.stderr).toBe(0)
    const runs = history.json().runs as {server: string; database: string; job: string; status: string}[]
    expect(runs.map((r) => [r.server, r.database])).toEqual([['queues', `${P}singularity_2`], ['main', `${P}singularity_1`]])
    expect(history.json().servers).toEqual([expect.objectContaining({name: 'main', reachable: true}), expect.objectContaining({name: 'queues', reachable: true})])
    const limited = await cli(['jobs', 'history', 'table-statistics', '--limit', '1', '--json'])
    expect(limited.json().runs.map((r: {server: string}) => r.server)).toEqual(['queues'])
    const onlyA = await cli(['jobs', 'history', 'table-statistics', '--db', `${P}singularity_1`, '--json'])
    expect(onlyA.json().runs.map((r: {server: string}) => r.server)).toEqual(['main'])
    const table = await cli(['jobs', 'history', 'table-statistics', '--wide'])
    expect(table.exitCode, table.stderr).toBe(0)
    expect(table.stdout).toMatch(/SERVER/i)
    expect(table.stdout).toMatch(new RegExp(`queues.*${P}singularity_2`))
  })

  it('backup dumps each database from its server and saves each server\'s roles; verify checks every file', async () => {
    const dir = join(root, 'backups')
    const taken = await cli(['backup', '--kind', 'hourly', '--no-encrypt', '--dir', dir, '--json'])
    expect(taken.exitCode, taken.stderr + taken.stdout).toBe(0)
    const r = taken.json()
    expect(r.databases.map((d: {name: string}) => d.name).sort()).toEqual([`${P}centralcloud`, `${P}genesis`, `${P}nexus`, `${P}shared_queue`, `${P}singularity_1`, `${P}singularity_2`])
    const manifest = JSON.parse(readFileSync(join(r.path, 'manifest.json'), 'utf8'))
    expect(manifest.placement).toMatchObject({[`${P}shared_queue`]: 'queues', [`${P}genesis`]: 'main'})
    expect(manifest.serverGlobals).toEqual([expect.objectContaining({server: 'queues', file: 'globals-queues.sql', rolePasswords: true})])
    // B's roles, with their password hashes, are in B's globals file
    expect(readFileSync(join(r.path, 'globals-queues.sql'), 'utf8')).toMatch(new RegExp(`CREATE ROLE ${P}centralcloud_analytics`))
    const verify = await cli(['backup', 'verify', r.id, '--dir', dir, '--json'])
    expect(verify.exitCode, verify.stdout).toBe(0)
    expect(verify.json().files.map((f: {file: string}) => f.file)).toContain('globals-queues.sql')

    // restore: a database goes back to the server it was dumped from, or to --server
    const home = await cli(['backup', 'restore', r.id, '--dir', dir, '--db', `${P}singularity_2`, '--as', `${P}copy_home`, '--json'])
    expect(home.exitCode, home.stderr).toBe(0)
    expect(home.json()).toMatchObject({server: 'queues', database: `${P}copy_home`, source: `${P}singularity_2`})
    expect(await databasesOn(adminUrlB())).toContain(`${P}copy_home`)
    expect(await databasesOn(adminUrl())).not.toContain(`${P}copy_home`)
    const human = await cli(['backup', 'restore', r.id, '--dir', dir, '--db', `${P}singularity_2`, '--as', `${P}copy_main`, '--server', 'main'])
    expect(human.exitCode, human.stderr).toBe(0)
    expect(human.stdout).toMatch(new RegExp(`^restored ${P}copy_main on server main from ${P}singularity_2 in backup ${r.id}: \\d+ tables`, 'm'))
    expect(await databasesOn(adminUrl())).toContain(`${P}copy_main`)
    const unknown = await cli(['backup', 'restore', r.id, '--dir', dir, '--db', `${P}singularity_2`, '--server', 'nowhere'])
    expect(unknown.exitCode).toBe(2)
    expect(unknown.stderr).toMatch(/unknown server 'nowhere'.*\n.*hint: choose one of: main, queues/s)
    // a backup whose server the config no longer names is refused, changing nothing
    const other = join(root, 'config-main-only.json')
    const config = JSON.parse(readFileSync(configFile, 'utf8'))
    writeFileSync(other, JSON.stringify({...config, servers: undefined, placement: undefined}))
    const lost = await cli(['backup', 'restore', r.id, '--dir', dir, '--db', `${P}singularity_2`, '--as', `${P}copy_lost`], {env: {SINGULARITY_CONFIG: other}})
    expect(lost.exitCode).toBe(2)
    expect(lost.stderr).toMatch(new RegExp(`${P}singularity_2 was dumped from server 'queues', which the config does not name; nothing was changed`))
    expect([...(await databasesOn(adminUrl())), ...(await databasesOn(adminUrlB()))]).not.toContain(`${P}copy_lost`)
    await query(adminUrlB(), `DROP DATABASE ${P}copy_home`)
    await query(adminUrl(), `DROP DATABASE ${P}copy_main`)
  })

  it('cdc slots drop finds the slot on its server; a name on both servers must be chosen with --server', async () => {
    const slotsOn = async (url: string) => (await query<{slot_name: string}>(url, 'SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE $1 ORDER BY 1', [`${P}%`])).map((r) => r.slot_name)
    await query(adminUrlB(`${P}shared_queue`), "SELECT pg_create_logical_replication_slot($1, 'wal2json')", [`${P}b_extra`])
    const dry = await cli(['cdc', 'slots', 'drop', `${P}b_extra`, '--dry-run', '--json'])
    expect(dry.exitCode, dry.stderr).toBe(0)
    expect(dry.json()).toMatchObject({slot: `${P}b_extra`, server: 'queues', database: `${P}shared_queue`, dropped: false})
    const dropped = await cli(['cdc', 'slots', 'drop', `${P}b_extra`, '--confirm', `${P}b_extra`])
    expect(dropped.exitCode, dropped.stderr).toBe(0)
    expect(dropped.stdout).toMatch(new RegExp(`^dropped slot ${P}b_extra on server queues;`, 'm'))
    expect(await slotsOn(adminUrlB())).not.toContain(`${P}b_extra`)

    const twin = `${P}twin`
    for (const url of [adminUrl(), adminUrlB()]) await query(url, 'SELECT pg_create_physical_replication_slot($1)', [twin])
    try {
      const ambiguous = await cli(['cdc', 'slots', 'drop', twin, '--confirm', twin])
      expect(ambiguous.exitCode).toBe(2)
      expect(ambiguous.stderr).toMatch(new RegExp(`replication slot ${twin} exists on servers main and queues.*\\n.*--server`, 's'))
      expect(await slotsOn(adminUrl())).toContain(twin)
      const chosen = await cli(['cdc', 'slots', 'drop', twin, '--confirm', twin, '--server', 'queues', '--json'])
      expect(chosen.exitCode, chosen.stderr).toBe(0)
      expect(chosen.json()).toMatchObject({server: 'queues', dropped: true})
      expect(await slotsOn(adminUrlB())).not.toContain(twin)
      expect(await slotsOn(adminUrl())).toContain(twin)
    } finally {
      await query(adminUrl(), 'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [twin])
    }
    const missing = await cli(['cdc', 'slots', 'drop', `${P}nowhere`, '--confirm', `${P}nowhere`])
    expect(missing.exitCode).toBe(4)
    expect(missing.stderr).toMatch(/replication slot not found/)
  })

  it('--watch over both servers: jobs list and cdc slots tick with each server\'s rows; with B stopped a tick names it and still shows A; Ctrl-C exits 130', async () => {
    const jobs = watchCli(['jobs', 'list', '--runner', 'pg_cron', '--watch', '1s', '--prefix', P], {env: env()})
    const slots = watchCli(['cdc', 'slots', '--watch', '1s', '--json', '--prefix', P], {env: env()})
    const serversOf = (rows: {server: string}[]) => [...new Set(rows.map((r) => r.server))].sort()
    try {
      const listed = await jobs.waitFor('jobs of both servers', (d) => Array.isArray(d.jobs) && serversOf(d.jobs).length === 2)
      expect(listed.jobs.find((j: {job: string}) => j.job === `singularity:${P}prune-queue-archives`)).toMatchObject({server: 'queues', database: `${P}shared_queue`})
      expect(listed.servers.map((s: {name: string; reachable: boolean}) => [s.name, s.reachable])).toEqual([['main', true], ['queues', true]])
      const first = await slots.waitFor('slots of both servers', (d) => Array.isArray(d.slots) && serversOf(d.slots).length === 2)
      expect(first.slots.find((s: {name: string}) => s.name === `${P}singularity_2_centralcloud_cdc`)).toMatchObject({server: 'queues', retained_bytes_per_sec: null})
      // from the second tick on, each server's WAL and each slot have a rate (the slot known by server and name)
      const second = await slots.waitFor('a second tick', (d) => Array.isArray(d.servers), first._index + 1)
      for (const s of second.servers) expect(typeof s.wal_bytes_per_sec).toBe('number')
      expect(typeof second.slots.find((s: {name: string}) => s.name === `${P}singularity_2_centralcloud_cdc`).retained_bytes_per_sec).toBe('number')
      expect(second.missing).toEqual([])

      await stopCluster(dirB)
      try {
        const [jobsNow, slotsNow] = [jobs.docs().length, slots.docs().length]
        const jobsDown = await jobs.waitFor('a tick naming queues unreachable', (d) => d.servers?.some((s: {name: string; reachable: boolean}) => s.name === 'queues' && !s.reachable), jobsNow)
        expect(jobsDown.jobs.some((j: {database: string}) => j.database === `${P}singularity_1`)).toBe(true)
        expect(jobsDown.jobs.some((j: {server: string}) => j.server === 'queues')).toBe(false)
        expect(jobsDown.unreadable).toEqual(expect.arrayContaining([expect.objectContaining({database: `${P}shared_queue`})]))
        const slotsDown = await slots.waitFor('a tick naming queues unreachable', (d) => d.servers?.some((s: {name: string; reachable: boolean}) => s.name === 'queues' && !s.reachable), slotsNow)
        expect(slotsDown.slots.map((s: {server: string}) => s.server)).toContain('main')
        expect(slotsDown.slots.some((s: {server: string}) => s.server === 'queues')).toBe(false)
      } finally {
        await startCluster({dir: dirB, progress: () => {}})
      }
      const back = slots.docs().length
      await slots.waitFor('B back in a tick', (d) => d.servers?.every((s: {reachable: boolean}) => s.reachable), back)
      expect(await jobs.interrupt()).toEqual({code: 130, signal: null})
      expect(await slots.interrupt()).toEqual({code: 130, signal: null})
      expect(jobs.stderr + slots.stderr).not.toMatch(/Error|at .*\.js/)
    } finally {
      jobs.kill()
      slots.kill()
    }
  })

  it('with B down the readers report B and its databases unreachable (db status/plan, doctor: exit 3; queue stats, jobs list/history, cdc slots: exit 1) and still show A; B back, all is well', async () => {
    await stopCluster(dirB)
    try {
      const status = await cli(['db', 'status', '--json'])
      expect(status.exitCode, status.stderr).toBe(3)
      const s = status.json()
      expect(s.servers.find((x: {name: string}) => x.name === 'queues')).toMatchObject({reachable: false})
      const byName = Object.fromEntries(s.databases.map((d: {name: string; verdict: string}) => [d.name, d.verdict]))
      expect(byName[`${P}shared_queue`]).toBe('unreachable')
      expect(byName[`${P}singularity_2`]).toBe('unreachable')
      expect(byName[`${P}genesis`]).toBe('ok')
      expect(byName[`${P}singularity_1`]).toBe('ok')
      const human = await cli(['db', 'status'])
      expect(human.exitCode).toBe(3)
      expect(human.stdout).toMatch(/server queues: UNREACHABLE/)

      const plan = await cli(['db', 'plan', '--json'])
      expect(plan.exitCode).toBe(3)
      expect(plan.json().servers.find((x: {name: string}) => x.name === 'queues')).toMatchObject({reachable: false})
      expect(plan.json().unreadable.map((u: {database: string}) => u.database).sort()).toEqual([`${P}shared_queue`, `${P}singularity_2`])

      // queue stats, jobs list and cdc slots print what they read and exit 1 (as for an unreadable database)
      const stats = await cli(['queue', 'stats', '--json'])
      expect(stats.exitCode, stats.stderr).toBe(1)
      const doc = stats.json()
      expect(doc.queues.some((q: {database: string}) => q.database === `${P}singularity_1`)).toBe(true)
      expect(doc.unreadable).toEqual(expect.arrayContaining([expect.objectContaining({database: `${P}shared_queue`, server: 'queues'})]))

      const doctor = await cli(['doctor', '--json'])
      expect(doctor.exitCode).toBe(3)
      const checks = doctor.json().checks as {check: string; status: string; detail: string}[]
      expect(checks.find((c) => c.check === 'servers')).toMatchObject({status: 'fail'})
      expect(checks.find((c) => c.check === 'servers')!.detail).toMatch(/queues/)

      const jobs = await cli(['jobs', 'list', '--runner', 'pg_cron', '--json'])
      expect(jobs.exitCode, jobs.stderr).toBe(1)
      expect(jobs.json().unreadable).toEqual(expect.arrayContaining([expect.objectContaining({database: `${P}shared_queue`})]))
      expect(jobs.json().servers.find((x: {name: string}) => x.name === 'queues')).toMatchObject({reachable: false})
      expect(jobs.json().jobs.some((j: {database: string}) => j.database === `${P}singularity_1`)).toBe(true)

      // metrics: B's server-wide sections are down, A's still up
      const metrics = await cli(['metrics', '--timeout', '5s'])
      expect(metrics.stdout).toContain('singularity_scrape_up{section="slots",server="queues"} 0')
      expect(metrics.stdout).toContain('singularity_scrape_up{section="slots",server="main"} 1')
      expect(metrics.stdout).toContain('singularity_scrape_up{section="cron",server="queues"} 0')
      expect(promtool(metrics.stdout).status).toBe(0)

      // jobs history shows main's runs and names B unreachable (exit 1, as jobs list)
      const history = await cli(['jobs', 'history', 'table-statistics', '--json'])
      expect(history.exitCode, history.stderr).toBe(1)
      expect(history.json().servers.find((x: {name: string}) => x.name === 'queues')).toMatchObject({reachable: false})
      expect(history.json().runs.length).toBeGreaterThan(0)
      expect(history.json().runs.every((r: {server: string}) => r.server === 'main')).toBe(true)
      const historyHuman = await cli(['jobs', 'history', 'table-statistics'])
      expect(historyHuman.exitCode).toBe(1)
      expect(historyHuman.stdout).toMatch(/server queues: UNREACHABLE/)
      expect(historyHuman.stdout).toMatch(/succeeded/)
      // jobs run of B's job stops before anything runs, naming B; A's jobs still run
      const runB = await cli(['jobs', 'run', 'table-statistics', '--db', `${P}singularity_2`])
      expect(runB.exitCode).toBe(1)
      expect(runB.stderr).toMatch(/server queues is unreachable/)
      const runA = await cli(['jobs', 'run', 'table-statistics', '--db', `${P}singularity_1`, '--json'])
      expect(runA.exitCode, runA.stderr).toBe(0)
      expect(runA.json().runs).toEqual([expect.objectContaining({server: 'main', ok: true})])

      const slots = await cli(['cdc', 'slots', '--sample', '0', '--json'])
      expect(slots.exitCode, slots.stderr).toBe(1)
      expect(slots.json().servers.find((x: {name: string}) => x.name === 'queues')).toMatchObject({reachable: false})
      expect(slots.json().slots.some((x: {name: string}) => x.name === `${P}singularity_1_centralcloud_cdc`)).toBe(true)

      // db init changes nothing while a server is down, and says which
      const init = await cli(['db', 'init', '--instances', '2', '--queue-engine', 'bundled'])
      expect(init.exitCode).toBe(1)
      expect(init.stderr).toMatch(/server queues is unreachable/)
    } finally {
      await startCluster({dir: dirB, progress: () => {}})
    }
    const status = await cli(['db', 'status', '--json'])
    expect(status.exitCode, status.stdout).toBe(0)
  })

  it('with the admin server (main) down, doctor, queue stats and db status still read B, naming main unreachable', async () => {
    // main is the harness's shared cluster: it is made unreachable for these runs by pointing the admin URL at a closed port
    const mainDown = {env: {SINGULARITY_ADMIN_URL: 'postgres://postgres@127.0.0.1:1/postgres'}}
    const status = await cli(['db', 'status', '--json'], mainDown)
    expect(status.exitCode, status.stderr).toBe(3)
    expect(status.json().servers.find((x: {name: string}) => x.name === 'main')).toMatchObject({reachable: false})

    const stats = await cli(['queue', 'stats', '--json'], mainDown)
    expect(stats.exitCode, stats.stderr).toBe(1)
    const doc = stats.json()
    expect(doc.queues.some((q: {database: string}) => q.database === `${P}shared_queue`)).toBe(true)
    expect(doc.queues.some((q: {database: string}) => q.database === `${P}singularity_1`)).toBe(false)
    expect(doc.unreadable).toEqual(expect.arrayContaining([expect.objectContaining({database: `${P}singularity_1`, server: 'main'})]))

    const doctor = await cli(['doctor', '--json'], mainDown)
    expect(doctor.exitCode, doctor.stderr).toBe(3)
    const checks = doctor.json().checks as {check: string; status: string; detail: string}[]
    expect(checks.find((c) => c.check === 'servers')).toMatchObject({status: 'fail'})
    expect(checks.find((c) => c.check === 'servers')!.detail).toMatch(/main/)
    // B is still checked: its own pg_cron row
    expect(checks.find((c) => c.check === 'pg_cron running (queues)')).toMatchObject({status: 'ok'})

    // with one server only, main down is still a plain exit 1 (nothing else to show)
    const oneServer = join(root, 'config-one-server.json')
    writeFileSync(oneServer, '{}')
    const alone = await cli(['queue', 'stats', '--json'], {env: {...mainDown.env, SINGULARITY_CONFIG: oneServer}})
    expect(alone.exitCode).toBe(1)
    expect(alone.json().error.message).toMatch(/127\.0\.0\.1:1|connect|refused/i)
  })

  it('the config is validated: an unknown server or database in the placement exits 2 with a hint; passwords in URLs are never printed', async () => {
    const bad = join(root, 'bad.json')
    writeFileSync(bad, JSON.stringify({servers: {queues: adminUrlB()}, placement: {shared_queue: 'elsewhere'}}))
    const unknownServer = await cli(['db', 'status'], {env: {SINGULARITY_CONFIG: bad}})
    expect(unknownServer.exitCode).toBe(2)
    expect(unknownServer.stderr).toMatch(/unknown server 'elsewhere'/)
    expect(unknownServer.stderr).toMatch(/hint: .*main, queues/)
    writeFileSync(bad, JSON.stringify({servers: {queues: adminUrlB()}, placement: {shared_queues: 'queues'}}))
    const unknownDatabase = await cli(['db', 'status'], {env: {SINGULARITY_CONFIG: bad}})
    expect(unknownDatabase.exitCode).toBe(2)
    expect(unknownDatabase.stderr).toMatch(/placement of an unknown database 'shared_queues'/)
    // B's password never appears, even in a verbose plan
    const password = decodeURIComponent(new URL(adminUrlB()).password)
    const plan = await cli(['db', 'plan', '--json'])
    expect(plan.stdout + plan.stderr).not.toContain(password)
  })
})
