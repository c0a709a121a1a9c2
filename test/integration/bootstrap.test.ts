import {spawn} from 'node:child_process'
import {cpSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {describe, expect, it} from 'vitest'

import {runCli} from '../helpers/cli.js'
import {OBAN_SCHEMA} from '../helpers/oban.js'
import {adminUrl, connect, urlFor, withClient} from '../helpers/db.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const EXAMPLES = join(ROOT, 'sql', 'seed', 'templates')
const secrets = mkdtempSync(join(tmpdir(), 'sing-boot-'))
const passwordsFile = (prefix: string) => join(secrets, `${prefix}passwords.json`)
const bootArgs = (prefix: string, extra: string[] = []) => ['bootstrap', '--prefix', prefix, '--passwords-file', passwordsFile(prefix), ...extra]
const boot = (prefix: string, extra: string[] = []) => runCli(bootArgs(prefix, extra), {timeoutMs: 240_000})


const STARTUP_WORKERS = [
  'Singularity.Jobs.KnowledgeMigrateWorker',
  'Singularity.Jobs.TemplatesDataLoadWorker',
  'Singularity.Jobs.CodeIngestWorker',
  'Singularity.Jobs.RagSetupWorker',
]

type Step = {step: string; status: string; detail?: any}
const statusOf = (json: {steps: Step[]}) => Object.fromEntries(json.steps.map((s) => [s.step, s.status]))
const stepOf = (json: {steps: Step[]}, name: string) => json.steps.find((s) => s.step === name)!

async function count(db: string, sql: string): Promise<number> {
  return withClient(urlFor(db), async (c) => Number((await c.query(sql)).rows[0].n))
}

async function ledger(db: string): Promise<string[]> {
  return withClient(urlFor(db), async (c) => (await c.query<{step: string}>('SELECT step FROM singularity_meta.bootstrap_steps ORDER BY step')).rows.map((r) => r.step))
}

describe('bootstrap', () => {
  const P = 't_boot_'
  const DB = `${P}singularity`

  it('reports an invalid template by path and field, exits 2 and changes nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sing-tpl-bad-'))
    cpSync(EXAMPLES, dir, {recursive: true})
    writeFileSync(join(dir, 'broken.json'), JSON.stringify({artifact_type: 'prompt', artifact_id: 'broken', version: '1.0', title: 'Broken', content: {template: 'x'}}))
    writeFileSync(join(dir, 'list.json'), JSON.stringify([{artifact_type: 'framework', artifact_id: 'ok-one', version: '1.0.0', title: 'Fine', content: {detect: {files: ['mix.exs']}}}, {artifact_type: 'framework', artifact_id: 'bad-two', version: '1.0.0', title: 'No detect', content: {}}]))

    const human = await boot(P, ['--templates', dir])
    expect(human.exitCode).toBe(2)
    expect(human.stdout).toBe('')
    expect(human.stderr).toContain(`${join(dir, 'broken.json')}: version: expected a semantic version like 1.0.0`)
    expect(human.stderr).toContain(`${join(dir, 'list.json')}: [1].content.detect: required`)
    expect(human.stderr).toMatch(/^error: invalid template .*broken\.json: version: /m)

    const json = await boot(P, ['--templates', dir, '--json'])
    expect(json.exitCode).toBe(2)
    const error = json.json().error
    expect(error.code).toBe('INVALID_TEMPLATE')
    expect(error.exitCode).toBe(2)
    expect(error.message).toContain(join(dir, 'broken.json'))
    expect(error.message).toContain('version')

    const missing = await boot(P, ['--templates', join(dir, 'nope'), '--json'])
    expect(missing.exitCode).toBe(2)
    expect(missing.json().error.message).toContain('does not exist')

    // before anything changed: no estate, not even db init
    const {rows} = await withClient(adminUrl(), (c) => c.query("SELECT datname FROM pg_database WHERE datname LIKE 't\\_boot\\_%'"))
    expect(rows).toEqual([])
  })

  it('first run: every step in order, the templates loaded, startup jobs pending without oban_jobs', async () => {
    const run = await boot(P, ['--json'])
    expect(run.stderr).not.toMatch(/^error:/m)
    expect(run.exitCode).toBe(0)
    const json = run.json()
    expect(json.changed).toBe(true)
    expect(json.steps.map((s: Step) => s.step)).toEqual(['local-cluster', 'db-init', 'templates', 'planning-seed', 'graph-populate', 'startup-jobs', 'status'])
    expect(statusOf(json)).toEqual({
      'local-cluster': 'not-needed',
      'db-init': 'done',
      templates: 'done',
      'planning-seed': 'done',
      'graph-populate': 'done',
      'startup-jobs': 'pending',
      status: 'done',
    })
    expect(json.skipped).toEqual([])
    // progress on stderr, in order
    const progress = run.stderr.split('\n').filter((l) => /^\[\d\/7\] [^…]*: /.test(l)).map((l) => Number(l[1]))
    expect(progress).toEqual([1, 2, 3, 4, 5, 6, 7])

    expect(stepOf(json, 'templates').detail).toMatchObject({total: 5, inserted: 5, updated: 0, files: 4})
    expect(await count(DB, 'SELECT count(*) AS n FROM knowledge_artifacts')).toBe(5)
    const phoenix = await withClient(urlFor(DB), async (c) => (await c.query("SELECT version, content, tags, source_path FROM knowledge_artifacts WHERE artifact_type = 'framework' AND artifact_id = 'phoenix'")).rows[0])
    expect(phoenix).toMatchObject({version: '1.7.0', tags: ['elixir', 'web'], source_path: 'phoenix.json'})
    expect(phoenix.content.detect.dependencies).toEqual(['phoenix'])

    expect(stepOf(json, 'planning-seed').detail).toMatchObject({inserted: 14, total: 14})
    expect(await count(DB, 'SELECT count(*) AS n FROM work_plan')).toBe(14)
    // before code ingest there is nothing to graph: the step says the graph follows ingest
    expect(stepOf(json, 'graph-populate').detail).toMatchObject({codeChunks: 0, nodes: 0})
    expect((stepOf(json, 'graph-populate') as Step & {summary: string}).summary).toMatch(/graph is empty: it follows code ingest \(the code-ingest-startup job is enqueued/)
    expect(run.stderr).toMatch(/\[5\/7\] graph populate: no code chunks yet/)
    expect(json.startupJobs).toEqual([
      {
        database: DB,
        obanTable: null,
        jobs: STARTUP_WORKERS.map((worker, i) => expect.objectContaining({order: i + 1, worker, priority: i, state: 'pending'})),
      },
    ])
    expect(await ledger(DB)).toEqual(['graph-populate', 'planning-seed', 'templates'])
    expect(json.status.db.verdict).toBe('ok')
    expect(json.status.db.databases.map((d: {name: string}) => d.name)).toContain(DB)
    expect(json.status.jobs.counts.jobs).toBeGreaterThan(0)
  })

  it('second run does nothing new and says which steps were skipped', async () => {
    const before = await withClient(urlFor(DB), async (c) => (await c.query('SELECT artifact_id, updated_at FROM knowledge_artifacts ORDER BY 1')).rows)
    const run = await boot(P, ['--json'])
    expect(run.exitCode).toBe(0)
    const json = run.json()
    expect(json.changed).toBe(false)
    expect(json.skipped).toEqual(['templates', 'planning-seed', 'graph-populate'])
    expect(statusOf(json)).toMatchObject({'local-cluster': 'not-needed', 'db-init': 'unchanged', 'startup-jobs': 'pending'})
    const after = await withClient(urlFor(DB), async (c) => (await c.query('SELECT artifact_id, updated_at FROM knowledge_artifacts ORDER BY 1')).rows)
    expect(after).toEqual(before)
    expect(await count(DB, 'SELECT count(*) AS n FROM work_plan')).toBe(14)

    const human = await boot(P)
    expect(human.exitCode).toBe(0)
    expect(human.stdout).toMatch(/^bootstrap: nothing new, the estate is bootstrapped \(skipped, done before: templates, planning-seed, graph-populate\)/)
    expect(human.stderr).toContain('[3/7] knowledge / templates: skipped, loaded')
  })

  it('loads the templates again when the directory changed, and only that step', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sing-tpl-'))
    cpSync(EXAMPLES, dir, {recursive: true})
    const phoenix = JSON.parse(readFileSync(join(dir, 'phoenix.json'), 'utf8'))
    writeFileSync(join(dir, 'phoenix.json'), JSON.stringify({...phoenix, version: '1.8.0'}))
    writeFileSync(join(dir, 'ecto.json'), JSON.stringify({artifact_type: 'framework', artifact_id: 'ecto', version: '3.11.0', title: 'Ecto', content: {detect: {dependencies: ['ecto_sql']}}}))

    const json = (await boot(P, ['--templates', dir, '--json'])).json()
    expect(statusOf(json)).toMatchObject({templates: 'done', 'planning-seed': 'skipped', 'graph-populate': 'skipped'})
    expect(stepOf(json, 'templates').detail).toMatchObject({total: 6, inserted: 1, updated: 1, unchanged: 4})
    expect(await count(DB, 'SELECT count(*) AS n FROM knowledge_artifacts')).toBe(6)
    expect(await count(DB, "SELECT count(*) AS n FROM knowledge_artifacts WHERE artifact_id = 'phoenix' AND version = '1.8.0'")).toBe(1)

    const again = (await boot(P, ['--templates', dir, '--json'])).json()
    expect(again.changed).toBe(false)
    expect(again.skipped).toContain('templates')
  })

  it('with oban_jobs present, enqueues the startup jobs in order, once', async () => {
    await withClient(urlFor(DB), (c) => c.query(OBAN_SCHEMA))
    const json = (await boot(P, ['--json'])).json()
    expect(stepOf(json, 'startup-jobs').status).toBe('done')
    expect(json.changed).toBe(true)
    const jobs = async () =>
      withClient(urlFor(DB), async (c) => (await c.query('SELECT id, worker, state::text, priority, queue, args, meta FROM oban_jobs ORDER BY id')).rows)
    const first = await jobs()
    expect(first.map((j) => j.worker)).toEqual(STARTUP_WORKERS)
    expect(first.map((j) => j.priority)).toEqual([0, 1, 2, 3])
    expect(first.every((j) => j.state === 'available' && j.queue === 'default')).toBe(true)
    expect(first.map((j) => j.meta.seed_priority)).toEqual([100, 95, 85, 70])
    expect(first.every((j) => j.meta.enqueued_by === 'singularity bootstrap')).toBe(true)
    expect(json.startupJobs[0].jobs.map((j: {jobId: number}) => j.jobId)).toEqual(first.map((j) => Number(j.id)))

    const second = (await boot(P, ['--json'])).json()
    expect(second.changed).toBe(false)
    expect(second.skipped).toContain('startup-jobs')
    expect(await jobs()).toEqual(first)

    // even with the ledger row gone (and one job already run), nothing is enqueued twice
    await withClient(urlFor(DB), async (c) => {
      await c.query("DELETE FROM singularity_meta.bootstrap_steps WHERE step = 'startup-jobs'")
      await c.query(`UPDATE oban_jobs SET state = 'completed', completed_at = timezone('UTC', now()), attempt = 1 WHERE worker = '${STARTUP_WORKERS[0]}'`)
    })
    const third = (await boot(P, ['--json'])).json()
    expect(stepOf(third, 'startup-jobs').status).toBe('done')
    expect(third.startupJobs[0].jobs.map((j: {state: string}) => j.state)).toEqual(['already-enqueued', 'already-enqueued', 'already-enqueued', 'already-enqueued'])
    expect((await jobs()).map((j) => j.id)).toEqual(first.map((j) => j.id))
  })
})

describe('bootstrap killed mid-way', () => {
  const R = 't_bootr_'
  const DB = `${R}singularity`

  it('resumes at the step it stopped', async () => {
    // The estate exists; the test holds the graph lock so the run stops inside graph populate.
    const init = await runCli(['db', 'init', '--prefix', R, '--passwords-file', passwordsFile(R)], {timeoutMs: 180_000})
    expect(init.exitCode).toBe(0)
    const blocker = await connect(urlFor(DB))
    try {
      await blocker.query("SELECT pg_advisory_lock(hashtext('singularity.graph'))")

      const env: Record<string, string> = {}
      for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(PG|SINGULARITY_|DATABASE_URL$|GENESIS_|CENTRALCLOUD_|NEXUS_|SHARED_QUEUE_)/.test(k)) env[k] = v
      Object.assign(env, {SINGULARITY_ADMIN_URL: adminUrl(), SINGULARITY_LOCAL_DIR: '/nonexistent/singularity-test-local', XDG_CONFIG_HOME: '/nonexistent/singularity-test-config'})
      const child = spawn(process.execPath, [join(ROOT, 'bin', 'run.js'), ...bootArgs(R, ['--json'])], {env, stdio: ['ignore', 'pipe', 'pipe']})
      let stderr = ''
      const exited = new Promise<{code: number | null; signal: string | null}>((resolve) => child.on('close', (code, signal) => resolve({code, signal})))
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`never reached graph populate:\n${stderr}`)), 180_000)
        child.stderr.on('data', (d) => {
          stderr += d
          if (stderr.includes('[5/7] graph populate…')) {
            clearTimeout(timer)
            resolve()
          }
        })
      })
      // graph populate is waiting on the lock; templates and the planning seed are recorded
      await new Promise((r) => setTimeout(r, 300))
      child.kill('SIGKILL')
      expect((await exited).signal).toBe('SIGKILL')
      expect(stderr).toContain('[4/7] planning seed: ')
    } finally {
      await blocker.end()
    }
    expect(await ledger(DB)).toEqual(['planning-seed', 'templates'])
    expect(await count(DB, 'SELECT count(*) AS n FROM knowledge_artifacts')).toBe(5)

    const rerun = await boot(R, ['--json'])
    expect(rerun.exitCode).toBe(0)
    const json = rerun.json()
    expect(json.skipped).toEqual(['templates', 'planning-seed'])
    expect(statusOf(json)).toMatchObject({'db-init': 'unchanged', templates: 'skipped', 'planning-seed': 'skipped', 'graph-populate': 'done', 'startup-jobs': 'pending'})
    expect(await ledger(DB)).toEqual(['graph-populate', 'planning-seed', 'templates'])

    const last = (await boot(R, ['--json'])).json()
    expect(last.changed).toBe(false)
    expect(last.skipped).toEqual(['templates', 'planning-seed', 'graph-populate'])
  })
})
