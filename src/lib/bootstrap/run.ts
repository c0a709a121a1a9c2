import {createHash} from 'node:crypto'

import type pg from 'pg'

import {CliError, UsageError} from '../cli/errors.js'
import {registerSecret} from '../cli/redact.js'
import {resolveConfig, type ConfigFlags, type ResolvedConfig} from '../config/resolve.js'
import {connect} from '../db/connect.js'
import {adminTarget, onDatabase} from '../estate/targets.js'
import type {JobSpec} from '../../schedules.js'
import {estate as expandEstate, type ConcreteDatabase} from '../../topology.js'
import {hasLedger, inStepTransaction} from './ledger.js'
import {enqueueStartupJobs, startupJobs, startupJobsHash, type EnqueueOutcome} from './startup-jobs.js'
import {scanTemplates, templatesDirProblem, upsertArtifacts, type TemplatesScan, type UpsertResult} from './templates.js'

/**
 * `singularity bootstrap`: seed 001's startup flow as ordered, resumable steps. An empty server
 * (or nothing configured at all) becomes a working estate: local cluster, db init, knowledge /
 * templates, planning seed, graph populate, the startup jobs, and a final status.
 *
 * Each per-database step does its work and records itself in singularity_meta.bootstrap_steps in
 * one transaction; a recorded step is skipped while its inputs are unchanged. The local cluster and
 * db init are idempotent by themselves and always checked.
 */

export const STEPS = [
  {step: 'local-cluster', title: 'local cluster'},
  {step: 'db-init', title: 'db init'},
  {step: 'templates', title: 'knowledge / templates'},
  {step: 'planning-seed', title: 'planning seed'},
  {step: 'graph-populate', title: 'graph populate'},
  {step: 'startup-jobs', title: 'startup jobs'},
  {step: 'status', title: 'status'},
] as const

export type StepName = (typeof STEPS)[number]['step']

/**
 * done: the step did its work in this run · unchanged: checked, nothing to do · skipped: done by
 * an earlier run with the same inputs · not-needed: not asked for · pending: left for the application
 */
export type StepStatus = 'done' | 'unchanged' | 'skipped' | 'not-needed' | 'pending'

export interface StepReport {
  number: number
  step: StepName
  title: string
  database?: string
  status: StepStatus
  summary: string
  /** when the step's recorded work was done (this run or an earlier one) */
  completedAt?: string
  detail?: unknown
}

export interface StartupJobsReport {
  database: string
  /** oban_jobs as found, null when absent */
  obanTable: string | null
  jobs: (EnqueueOutcome & {queue?: string})[]
}

export interface FinalStatus {
  db: {verdict: string; databases: {name: string; verdict: string; migrations: {applied: number; pending: number; changed: number; drifted: number}}[]}
  jobs:
    | {
        counts: {jobs: number; failing: number; missing: number; drifted: number; unknown: number}
        pgCron: {version: string | null; problem: string | null}
        startup: {name: string; worker: string; database: string | null; waiting: number | null; lastRun: string | null; note: string | null}[]
      }
    | {error: string}
}

export interface BootstrapResult {
  /** false when the run did nothing new */
  changed: boolean
  prefix: string
  instances: number
  templatesDir: string
  admin: string
  steps: StepReport[]
  /** steps skipped because an earlier run did them with the same inputs */
  skipped: string[]
  startupJobs: StartupJobsReport[]
  status: FinalStatus
}

export interface BootstrapOptions {
  flags: ConfigFlags
  local: boolean
  installDeps: boolean
  templatesDir: string
  instances?: number
  passwordsFile?: string
  env?: NodeJS.ProcessEnv
  progress?: (message: string) => void
}

/** db init's default passwords file lives with the passwords code. */
export {defaultPasswordsFile} from '../provision/passwords.js'
import {defaultPasswordsFile} from '../provision/passwords.js'

const sha = (text: string) => createHash('sha256').update(text).digest('hex')
const total = STEPS.length

/** Throws exit 2 naming every invalid file and field; nothing has changed at that point. */
function refuseInvalid(scan: TemplatesScan, progress: (m: string) => void): void {
  if (scan.problems.length === 0) return
  progress(`[3/${total}] knowledge / templates: ${scan.problems.length} problem(s) in ${scan.dir}; nothing was changed`)
  for (const p of scan.problems) progress(`  ${p.path}: ${p.field}: ${p.message}`)
  const [first] = scan.problems
  const more = scan.problems.length - 1
  throw new UsageError(`invalid template ${first.path}: ${first.field}: ${first.message}${more > 0 ? ` (and ${more} more problem(s), listed on stderr)` : ''}`, {
    hint: 'fix the file(s) and run `singularity bootstrap` again (nothing was changed); each file is one artifact or an array of them',
    code: 'INVALID_TEMPLATE',
  })
}

async function functionHash(client: pg.Client, database: string, signature: string): Promise<string> {
  const {rows} = await client.query<{def: string | null}>('SELECT pg_get_functiondef(to_regprocedure($1)) AS def', [signature])
  if (!rows[0].def) {
    throw new CliError(`function ${signature} is missing in ${database}`, {
      hint: 'run `singularity db init` (it installs sql/singularity/procedures)',
      code: 'PROCEDURE_MISSING',
    })
  }
  return sha(rows[0].def)
}

async function takeBootstrapLock(admin: pg.Client, prefix: string, progress: (m: string) => void): Promise<void> {
  const key = `singularity.bootstrap:${prefix}`
  const {rows} = await admin.query<{ok: boolean}>('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [key])
  if (rows[0].ok) return
  progress('another bootstrap of this estate is running; waiting for it to finish')
  await admin.query('SELECT pg_advisory_lock(hashtext($1))', [key])
}

const when = (d: Date | string) => new Date(d).toISOString()

export async function runBootstrap(options: BootstrapOptions): Promise<BootstrapResult> {
  const env = options.env ?? process.env
  const progress = options.progress ?? (() => {})
  const steps: StepReport[] = []
  const number = (step: StepName) => STEPS.findIndex((s) => s.step === step) + 1
  const titleOf = (step: StepName) => STEPS.find((s) => s.step === step)!.title
  const report = (r: Omit<StepReport, 'number' | 'title'>): StepReport => {
    const full = {number: number(r.step), title: titleOf(r.step), ...r}
    steps.push(full)
    const where = r.database ? ` (${r.database})` : ''
    progress(`[${full.number}/${total}] ${full.title}${where}: ${r.status === 'skipped' ? 'skipped, ' : ''}${r.summary}`)
    return full
  }
  const starting = (step: StepName, database?: string) => progress(`[${number(step)}/${total}] ${titleOf(step)}${database ? ` (${database})` : ''}…`)

  // Input first: the templates are validated before anything changes (exit 2).
  const dirProblem = templatesDirProblem(options.templatesDir)
  if (dirProblem) throw new UsageError(dirProblem, {hint: 'pass --templates <dir> (a directory of *.json knowledge artifacts)', code: 'TEMPLATES_DIR'})
  const scan = scanTemplates(options.templatesDir)
  refuseInvalid(scan, progress)

  // 1. the embedded cluster, when asked for or when nothing is configured.
  let config = resolveConfig({...options.flags, instances: options.instances})
  if (options.local && options.flags['admin-url']) {
    throw new UsageError('--local and --admin-url contradict each other', {hint: 'use the local cluster (--local) or a server (--admin-url), not both'})
  }
  if (options.local || !config.admin) {
    starting('local-cluster')
    if (!options.local) progress('  no database configured: using the embedded local cluster')
    const [{startCluster}, {readLocalState}] = await Promise.all([import('../local-cluster/cluster.js'), import('../local-cluster/paths.js')])
    const started = await startCluster({dir: config.localDir, port: config.localPort, installDeps: options.installDeps, progress: (m) => progress(`  ${m}`)})
    config = resolveConfig({...options.flags, instances: options.instances})
    if (config.admin?.source !== 'local') {
      const state = readLocalState(config.localDir)
      if (!state) throw new CliError(`the local cluster in ${config.localDir} started but recorded no state`, {hint: 'run `singularity local status`'})
      registerSecret(decodeURIComponent(new URL(state.adminUrl).password))
      config = {...config, admin: {url: state.adminUrl, source: 'local', origin: `local cluster ${config.localDir}`}}
    }
    const s = started.status
    report({
      step: 'local-cluster',
      status: started.action === 'already-running' ? 'unchanged' : 'done',
      summary: `${started.action === 'already-running' ? 'already running' : started.action}: PostgreSQL ${s.version} on 127.0.0.1:${s.port}`,
      detail: {action: started.action, port: s.port, dataDir: s.dataDir},
    })
  } else {
    report({step: 'local-cluster', status: 'not-needed', summary: `using ${config.admin.origin}`})
  }
  const admin = adminTarget(config)

  const adminClient = await connect(admin, {applicationName: 'singularity bootstrap'})
  const clients: pg.Client[] = []
  try {
    await takeBootstrapLock(adminClient, config.prefix, progress)

    // 2. db init (idempotent by itself: an interrupted init is finished here).
    starting('db-init')
    const [{initEstate}, schedulesModule] = await Promise.all([import('../provision/init.js'), import('../../schedules.js')])
    const init = await initEstate({
      config,
      instances: options.instances ?? config.instances ?? 1,
      queueEngine: 'auto',
      dryRun: false,
      passwordsFile: options.passwordsFile ?? env.SINGULARITY_PASSWORDS_FILE ?? defaultPasswordsFile(config),
      env,
      progress: (m) => progress(`  ${m}`),
      schedules: schedulesModule.schedulesFor(env),
    })
    report({
      step: 'db-init',
      status: init.status === 'up-to-date' ? 'unchanged' : 'done',
      summary: init.status === 'up-to-date' ? `up to date (${init.databases.length} databases)` : `${init.changes.length} change(s)`,
      detail: {status: init.status, changes: init.changes, warnings: init.warnings},
    })
    for (const w of init.warnings) progress(`  warning: ${w}`)
    config = {...config, instances: init.instances}

    const singularityDbs = expandEstate({prefix: init.prefix, instances: init.instances}).databases.filter((d) => d.kind === 'singularity')
    const startup: StartupJobsReport[] = []
    const {schedulesFor} = await import('../../schedules.js')
    const schedules = schedulesFor(env)
    const jobs = startupJobs(schedules)
    const multi = singularityDbs.length > 1

    for (const db of singularityDbs) {
      const client = await connect(onDatabase(admin, db.name), {applicationName: 'singularity bootstrap', statementTimeoutMs: 0})
      clients.push(client)
      if (!(await hasLedger(client))) {
        throw new CliError(`${db.name} has no bootstrap ledger (sql/singularity/010_templates.sql is not applied)`, {hint: 'run `singularity db status` to see why db init left it pending', code: 'NOT_PROVISIONED'})
      }
      const dbLabel = multi ? db.name : undefined
      startup.push(await perDatabaseSteps(client, db, dbLabel, scan, jobs, {report, starting}))
    }

    // 7. final status: db status and the jobs.
    starting('status')
    const status = await finalStatus(config, schedules, jobs.map((j) => j.name))
    const badDbs = status.db.databases.filter((d) => d.verdict !== 'ok')
    const jobsSummary = 'error' in status.jobs
      ? `jobs: ${status.jobs.error}`
      : `jobs: ${status.jobs.counts.jobs} declared, ${status.jobs.counts.failing} failing, ${status.jobs.counts.missing} missing${status.jobs.pgCron.problem ? ` (${status.jobs.pgCron.problem})` : ''}`
    report({
      step: 'status',
      status: 'done',
      summary: `db: ${status.db.verdict}${badDbs.length > 0 ? ` (${badDbs.map((d) => `${d.name} ${d.verdict}`).join(', ')})` : ` (${status.db.databases.length} databases)`}; ${jobsSummary}`,
    })

    const changed = steps.some((s) => s.step !== 'status' && s.status === 'done')
    return {
      changed,
      prefix: init.prefix,
      instances: init.instances,
      templatesDir: options.templatesDir,
      admin: admin.origin,
      steps,
      skipped: [...new Set(steps.filter((s) => s.status === 'skipped').map((s) => s.step))],
      startupJobs: startup,
      status,
    }
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => {})))
    await adminClient.query('SELECT pg_advisory_unlock_all()').catch(() => {})
    await adminClient.end().catch(() => {})
  }
}

/**
 * Seed 001 orders code ingest (Oban) before graph populate (pg_cron), but ingest runs in the
 * application, after bootstrap: the graph populated here only holds what was ingested before.
 * The graph catches up on its own; this says how, where the step would otherwise look complete.
 */
export const GRAPH_FOLLOWS_INGEST =
  'the code-ingest-startup job is enqueued in the startup-jobs step; pg_cron repopulates the graph Sundays 07:00 and when PostgreSQL starts, `singularity jobs run graph-populate` does it now, and the next bootstrap does it once code chunks exist'

interface Reporter {
  report: (r: Omit<StepReport, 'number' | 'title'>) => StepReport
  starting: (step: StepName, database?: string) => void
}

/** Steps 3..6 in one singularity database. */
async function perDatabaseSteps(
  client: pg.Client,
  db: ConcreteDatabase,
  label: string | undefined,
  scan: TemplatesScan,
  jobs: ReturnType<typeof startupJobs>,
  {report, starting}: Reporter,
): Promise<StartupJobsReport> {
  // 3. knowledge / templates
  starting('templates', label)
  const templates = await inStepTransaction<UpsertResult & {dir: string; files: number}>(client, 'templates', scan.inputHash, async () => {
    const result = await upsertArtifacts(client, scan.artifacts)
    return {detail: {dir: scan.dir, files: scan.files.length, ...result}, changed: result.inserted + result.updated > 0}
  })
  if (templates.skipped) {
    const d = templates.record.detail as Partial<UpsertResult>
    report({step: 'templates', database: label, status: 'skipped', summary: `loaded ${when(templates.record.completedAt)} (${d.total ?? '?'} artifact(s)); the directory is unchanged`, completedAt: when(templates.record.completedAt), detail: d})
  } else {
    const d = templates.detail
    report({
      step: 'templates',
      database: label,
      status: 'done',
      summary: `${d.total} artifact(s) from ${d.files} file(s): ${d.inserted} new, ${d.updated} updated, ${d.unchanged} unchanged${d.notInDirectory > 0 ? `; ${d.notInDirectory} in the table but not in the directory (kept)` : ''}`,
      completedAt: when(templates.completedAt),
      detail: d,
    })
  }

  // 4. planning seed
  starting('planning-seed', label)
  const seedHash = await functionHash(client, db.name, 'public.seed_work_plan()')
  const seed = await inStepTransaction(client, 'planning-seed', seedHash, async () => {
    const {rows} = await client.query<{inserted: number}>('SELECT public.seed_work_plan() AS inserted')
    // a separate statement: one statement's snapshot does not see the rows its function inserted
    const all = await client.query<{total: number}>('SELECT count(*)::int AS total FROM public.work_plan')
    return {detail: {inserted: rows[0].inserted, total: all.rows[0].total}, changed: rows[0].inserted > 0}
  })
  if (seed.skipped) {
    report({step: 'planning-seed', database: label, status: 'skipped', summary: `seeded ${when(seed.record.completedAt)}; seed_work_plan() is unchanged`, completedAt: when(seed.record.completedAt), detail: seed.record.detail})
  } else {
    report({step: 'planning-seed', database: label, status: 'done', summary: `seed_work_plan(): ${seed.detail.inserted} roadmap item(s) inserted, ${seed.detail.total} in work_plan`, completedAt: when(seed.completedAt), detail: seed.detail})
  }

  // 5. graph populate (inputs: the function and the code chunks it reads)
  starting('graph-populate', label)
  const chunks = await client.query<{n: string; last: Date | null; max_id: string | null}>('SELECT count(*) AS n, max(ingested_at) AS last, max(id) AS max_id FROM public.code_chunks')
  const graphHash = sha(`${await functionHash(client, db.name, 'public.populate_graph_dependencies_report()')}:${chunks.rows[0].n}:${chunks.rows[0].last?.toISOString() ?? ''}:${chunks.rows[0].max_id ?? ''}`)
  const graph = await inStepTransaction(client, 'graph-populate', graphHash, async () => {
    const {rows} = await client.query<{nodes_added: number; edges_added: number; edges_removed: number}>('SELECT * FROM public.populate_graph_dependencies_report()')
    const counts = await client.query<{nodes: number; edges: number}>('SELECT (SELECT count(*)::int FROM public.graph_nodes) AS nodes, (SELECT count(*)::int FROM public.graph_edges) AS edges')
    const detail = {...rows[0], nodes: counts.rows[0].nodes, edges: counts.rows[0].edges, codeChunks: Number(chunks.rows[0].n)}
    return {detail, changed: rows[0].nodes_added + rows[0].edges_added + rows[0].edges_removed > 0}
  })
  if (graph.skipped) {
    report({step: 'graph-populate', database: label, status: 'skipped', summary: `populated ${when(graph.record.completedAt)}; code chunks unchanged since`, completedAt: when(graph.record.completedAt), detail: graph.record.detail})
  } else {
    const d = graph.detail
    report({
      step: 'graph-populate',
      database: label,
      status: 'done',
      summary:
        d.codeChunks === 0
          ? `no code chunks yet, so the graph is empty: it follows code ingest (${GRAPH_FOLLOWS_INGEST})`
          : `populate_graph_dependencies() over ${d.codeChunks} code chunk(s): ${d.nodes_added} node(s) and ${d.edges_added} edge(s) added, ${d.edges_removed} removed (${d.nodes} nodes, ${d.edges} edges)`,
      completedAt: when(graph.completedAt),
      detail: d,
    })
  }

  // 6. the startup jobs into oban_jobs, in order, once
  starting('startup-jobs', label)
  const {findObanTable} = await import('../cron/oban.js')
  const table = await findObanTable(client)
  if (!table) {
    const pending = jobs.map((j) => ({order: j.order, name: j.name, worker: j.worker, priority: j.priority, state: 'pending' as const}))
    report({
      step: 'startup-jobs',
      database: label,
      status: 'pending',
      summary: `no oban_jobs table in ${db.name}: ${jobs.map((j) => j.name).join(', ')} are left for the application (its SetupBootstrap enqueues them when it starts)`,
      detail: {jobs: pending},
    })
    return {database: db.name, obanTable: null, jobs: pending}
  }
  const enq = await inStepTransaction(client, 'startup-jobs', startupJobsHash(jobs, table), async () => {
    const outcomes = await enqueueStartupJobs(client, table, jobs)
    return {detail: {obanTable: table.qualified, jobs: outcomes}, changed: outcomes.some((o) => o.state === 'enqueued')}
  })
  if (enq.skipped) {
    const d = enq.record.detail as {obanTable: string; jobs: EnqueueOutcome[]}
    const outcomes = (d.jobs ?? []).map((o) => ({...o, state: 'already-enqueued' as const}))
    report({step: 'startup-jobs', database: label, status: 'skipped', summary: `enqueued ${when(enq.record.completedAt)} into ${d.obanTable}`, completedAt: when(enq.record.completedAt), detail: d})
    return {database: db.name, obanTable: table.qualified, jobs: outcomes}
  }
  const outcomes = enq.detail.jobs
  const added = outcomes.filter((o) => o.state === 'enqueued')
  const there = outcomes.filter((o) => o.state === 'already-enqueued')
  report({
    step: 'startup-jobs',
    database: label,
    status: 'done',
    summary: `${added.length} enqueued into ${table.qualified}${added.length > 0 ? ` (${added.map((o) => `${o.name} #${o.jobId}`).join(', ')})` : ''}${there.length > 0 ? `; already there: ${there.map((o) => o.name).join(', ')}` : ''}`,
    completedAt: when(enq.completedAt),
    detail: enq.detail,
  })
  return {database: db.name, obanTable: table.qualified, jobs: outcomes}
}

async function finalStatus(config: ResolvedConfig, schedules: JobSpec[], startupNames: string[]): Promise<FinalStatus> {
  const {estateStatus} = await import('../provision/status.js')
  const s = await estateStatus(config)
  const db: FinalStatus['db'] = {
    verdict: s.verdict,
    databases: s.databases.map((d) => ({
      name: d.name,
      verdict: d.verdict,
      migrations: {applied: d.migrations.applied, pending: d.migrations.pending, changed: d.migrations.changed, drifted: d.migrations.drifted},
    })),
  }
  let jobs: FinalStatus['jobs']
  try {
    const [{openJobsContext}, {listJobs}] = await Promise.all([import('../cron/context.js'), import('../cron/jobs.js')])
    const ctx = await openJobsContext(config, schedules)
    try {
      const list = await listJobs(ctx)
      jobs = {
        counts: list.counts,
        pgCron: list.pgCron,
        startup: list.jobs
          .filter((j) => j.runner === 'oban' && startupNames.includes(j.name))
          .map((j) => ({name: j.name, worker: j.job, database: j.database, waiting: j.waiting ?? null, lastRun: j.lastRun?.status ?? null, note: j.note ?? null})),
      }
    } finally {
      await ctx.close()
    }
  } catch (error) {
    jobs = {error: (error as Error).message.split('\n')[0]}
  }
  return {db, jobs}
}
