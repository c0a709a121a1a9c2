import {CliError} from '../cli/errors.js'
import type {ResolvedConfig} from '../config/resolve.js'
import {disabledKinds} from '../estate/targets.js'
import {noteDisabled} from '../estate/disabled.js'
import {CRON_EXTENSION, estate as expandEstate, OPTIONAL_EXTENSIONS, type Estate, type QueueEngine, type ScheduleSpec} from '../../topology.js'
import {driftError} from '../migrate/runner.js'
import {publicAction, type Action, type PublicAction} from '../reconcile/action.js'
import {applyActions} from '../reconcile/apply.js'
import {observeDatabase, observeServer, type DatabaseObservation} from '../reconcile/observe.js'
import {Connections, DATABASE_AREAS, diffDatabase, diffSchedules, engineOf, planOn, type Plan} from '../reconcile/plan.js'
import {readPasswordFile, writePasswordFile} from './passwords.js'
import type {EngineChoice} from './queue-engine.js'
import type {RolePlan} from './roles.js'
import {preflightProblems, type ServerFacts} from './server.js'
import {lackingError} from '../reconcile/managed.js'
import {mapBounded, readConcurrency} from '../estate/visit.js'

export interface InitOptions {
  config: ResolvedConfig
  instances: number
  queueEngine: EngineChoice
  /** print the plan, change nothing (the same plan as `db plan`) */
  dryRun: boolean
  passwordsFile: string
  schedules: ScheduleSpec[]
  env?: NodeJS.ProcessEnv
  progress?: (message: string) => void
  /** databases provisioned at once (default: the reading commands' bound, SINGULARITY_CONCURRENCY or the config, capped by the server's free connections) */
  concurrency?: number
}

/** Up to this many databases, db init reports each step on stderr; beyond, one line per database. */
const STEP_BY_STEP_DATABASES = 5

/** pg_cron jobs sent to the server per round trip (one statement each, in the one transaction). */
const CRON_STATEMENTS_PER_ROUND_TRIP = 200

export interface DatabaseReport {
  name: string
  kind: string
  owner: string
  created: boolean
  queueEngine: QueueEngine | null
}

export interface OptionalExtensionReport {
  name: string
  feature: string
  available: boolean
  implementation: string
}

export interface InitResult {
  status: 'up-to-date' | 'applied' | 'planned'
  dryRun: boolean
  server: {version: string; user: string; cronDatabase: string}
  prefix: string
  instances: number
  roles: RolePlan[]
  passwordsFile: string
  databases: DatabaseReport[]
  optionalExtensions: OptionalExtensionReport[]
  /** dry run: the plan; otherwise the actions applied, in the order they ran */
  actions: PublicAction[]
  /** one line per applied action */
  changes: string[]
  /** steps only the server's provider can take (an admin without superuser): not applied; the rest was */
  providerSteps: PublicAction[]
  warnings: string[]
}

/** One key for every db init on a server: concurrent runs wait for each other instead of failing. */
const INIT_LOCK = "hashtext('singularity.db-init')"

async function takeInitLock(conns: Connections, progress?: (m: string) => void): Promise<void> {
  const {rows} = await conns.admin.query<{ok: boolean}>(`SELECT pg_try_advisory_lock(${INIT_LOCK}) AS ok`)
  if (rows[0].ok) return
  progress?.('another db init is running on this server; waiting for it to finish')
  // the session's lock_timeout guards DDL, not this queue: a long run ahead of us is waited for
  await conns.admin.query('SET lock_timeout = 0')
  try {
    await conns.admin.query(`SELECT pg_advisory_lock(${INIT_LOCK})`)
  } finally {
    await conns.admin.query('RESET lock_timeout')
  }
}

/** A database of our name that another role owns is someone else's: never taken over. */
function refuseForeignDatabases(e: Estate, plan: Plan): void {
  for (const db of e.databases) {
    const owner = plan.observation.server.databases.find((d) => d.name === db.name)?.owner
    if (owner !== undefined && owner !== db.owner && owner !== plan.server.user) {
      throw new CliError(`database ${db.name} already exists and is owned by ${owner}, not ${db.owner}`, {
        hint: 'it is not ours: rename or drop it, or provision under another name with --prefix',
        code: 'DATABASE_TAKEN',
      })
    }
  }
}

function refusePreflight(facts: ServerFacts): void {
  const problems = preflightProblems(facts)
  if (problems.length === 0) return
  const [first, ...rest] = problems
  throw new CliError(first.message + (rest.length > 0 ? ` (and ${rest.length} more: ${rest.map((p) => p.code).join(', ')})` : ''), {hint: first.hint, code: first.code})
}

function optionalReport(facts: ServerFacts): OptionalExtensionReport[] {
  return OPTIONAL_EXTENSIONS.map((ext) => ({
    name: ext.name,
    feature: ext.feature,
    available: facts.available.has(ext.name),
    implementation: facts.available.has(ext.name) ? ext.name : `fallback: ${ext.fallback}`,
  }))
}

/**
 * `db init`: observe → plan → apply, under one advisory lock per server. The plan is the same as
 * `db plan`'s; a dry run returns it unapplied. Applying goes in dependency order: server-wide areas
 * (roles, then databases), then each database on its own connection, all at once (extensions → SQL
 * → queues → grants → CDC; after a step that changed a database it is observed again, so that the
 * grants cover the tables the SQL just created), then the pg_cron jobs. Every step is idempotent,
 * so an interrupted init is finished by the next one. A refused action (an applied migration whose
 * file changed) stops init before anything changes.
 */
export async function initEstate(options: InitOptions): Promise<InitResult> {
  const env = options.env ?? process.env
  const e = expandEstate({prefix: options.config.prefix, instances: options.instances, disabled: disabledKinds(options.config)})
  noteDisabled(e.disabled.map((d) => ({database: d.name, kind: d.kind, reason: d.reason})))
  const conns = await Connections.open(options.config, 'singularity db init')
  let locked = false
  try {
    const facts = (await observeServer(conns.admin, {...e, databases: [], roles: []}, async () => null)).facts
    refusePreflight(facts)
    if (!options.dryRun) {
      await takeInitLock(conns, options.progress)
      locked = true
    }
    const plan = await planOn(conns, e, {queueEngine: options.queueEngine, passwordsFile: options.passwordsFile, env, schedules: options.schedules})
    refuseForeignDatabases(e, plan)
    // an admin without superuser: decided from the whole plan, before anything changes
    if (plan.lacking.length > 0) throw lackingError(plan.lacking, plan.server.user)

    const report = (actions: Action[], status: InitResult['status'], warnings: string[]): InitResult => ({
      status,
      dryRun: options.dryRun,
      server: {version: plan.server.version, user: plan.server.user, cronDatabase: plan.server.cronDatabase},
      prefix: e.prefix,
      instances: e.instances,
      roles: plan.roles,
      passwordsFile: options.passwordsFile,
      databases: plan.databases.map((d) => {
        const observed = plan.observation.databases.get(d.name)!
        const db = e.databases.find((x) => x.name === d.name)!
        return {name: d.name, kind: d.kind, owner: d.expectedOwner, created: !d.exists, queueEngine: engineOf(db, observed, plan.observation.server, options.queueEngine)}
      }),
      optionalExtensions: optionalReport(facts),
      actions: actions.map(publicAction),
      changes: options.dryRun ? [] : actions.map((a) => (a.database && !a.description.includes(a.database) ? `${a.description} (${a.database})` : a.description)),
      providerSteps: plan.providerSteps.map(publicAction),
      warnings,
    })

    if (options.dryRun) return report(plan.actions, plan.actions.length > 0 ? 'planned' : 'up-to-date', plan.warnings)

    const refused = plan.actions.filter((a) => a.refused)
    if (refused.length > 0) {
      throw driftError(refused.map((a) => ({component: '', file: a.subject!.replace(/^sql\//, ''), kind: 'migration', state: 'drifted'})))
    }

    const applied: Action[] = []
    const warnings: string[] = []
    const run = async (actions: Action[]) => {
      const outcome = await applyActions(conns, e, plan.server.cronDatabase, actions, {progress: options.progress})
      applied.push(...outcome.applied)
      warnings.push(...outcome.warnings)
      return outcome.applied.length
    }

    // Server-wide: settings that can be applied, roles (passwords saved 0600 before any role is
    // created, so a run killed in between never loses a generated password), databases.
    const planContext = plan.context
    const given = plan.roles.filter((p) => p.passwordSource === 'generated' || p.passwordSource === 'env')
    if (given.length > 0) {
      writePasswordFile(options.passwordsFile, {...readPasswordFile(options.passwordsFile), ...Object.fromEntries(given.map((p) => [p.name, planContext.roles.passwords[p.name]]))})
    }
    await run(plan.actions.filter((a) => a.area === 'server' || a.area === 'roles' || a.area === 'databases'))

    // Each database: its areas in order, observed again after a step that changed it; a bounded
    // number of databases at once, each on its own connection, released when done. Results keep
    // the estate's order, so the report does not depend on which database finished first.
    const capacity = plan.observation.server.facts.capacity
    const bound = readConcurrency(options.concurrency ?? options.config.read.concurrency, capacity ? capacity.maxConnections - capacity.reservedConnections - capacity.usedConnections : undefined)
    const stepByStep = e.databases.length <= STEP_BY_STEP_DATABASES
    let finished = 0
    const inDatabase = DATABASE_AREAS.filter((area) => area !== 'cdc')
    const perDatabase = await mapBounded(e.databases, bound, async (db) => {
      const mine: Action[] = []
      const notes: string[] = []
      let observed: DatabaseObservation = plan.observation.databases.get(db.name)!
      const client = await conns.database(db.name)
      if (!observed.exists) observed = await observeDatabase(client, db)
      for (const area of inDatabase) {
        const {actions, warnings: w} = diffDatabase(db, observed, plan.observation.server, planContext, [area])
        notes.push(...w)
        const outcome = await applyActions(conns, e, plan.server.cronDatabase, actions, {progress: stepByStep ? options.progress : undefined})
        mine.push(...outcome.applied)
        notes.push(...outcome.warnings)
        if (outcome.applied.length > 0) observed = await observeDatabase(client, db)
      }
      if (db.name !== plan.server.cronDatabase) await conns.release(db.name)
      finished++
      if (!stepByStep && mine.length > 0) options.progress?.(`${db.name}: ${mine.length} change(s) applied (${finished}/${e.databases.length} databases)`)
      return {db, observed, mine, notes}
    })
    for (const d of perDatabase) {
      applied.push(...d.mine)
      warnings.push(...d.notes)
    }

    // CDC slots one database at a time, after every database's transactions ended: creating a
    // logical slot waits for the transactions running on the whole server, so slots created
    // among other databases' migrations wait for them.
    for (const d of perDatabase) {
      const {actions, warnings: w} = diffDatabase(d.db, d.observed, plan.observation.server, planContext, ['cdc'])
      warnings.push(...w)
      if (actions.length === 0) continue
      await run(actions)
      if (d.db.name !== plan.server.cronDatabase) await conns.release(d.db.name)
    }

    // pg_cron: the extension, then the jobs in one transaction (serialised with installSchedules).
    let server = plan.observation.server
    const extension = diffSchedules(server, planContext).actions.filter((a) => a.subject === CRON_EXTENSION)
    if (extension.length > 0) {
      await run(extension)
      server = await observeServer(conns.admin, e, async (name) => conns.database(name))
    }
    const jobs = diffSchedules(server, planContext)
    warnings.push(...jobs.warnings)
    if (jobs.actions.length > 0 && server.cron) {
      const cron = await conns.database(server.cron.database)
      await cron.query('BEGIN')
      try {
        await cron.query("SELECT pg_advisory_xact_lock(hashtext('singularity.cron-install'))")
        // many jobs (an estate of many instances): a few round trips instead of one per job
        const outcome = await applyActions(conns, e, plan.server.cronDatabase, jobs.actions, {progress: stepByStep ? options.progress : undefined, batch: CRON_STATEMENTS_PER_ROUND_TRIP})
        applied.push(...outcome.applied)
        warnings.push(...outcome.warnings)
        if (!stepByStep) options.progress?.(`pg_cron: ${outcome.applied.length} job(s) scheduled or updated in ${server.cron.database}`)
        await cron.query('COMMIT')
      } catch (error) {
        await cron.query('ROLLBACK').catch(() => {})
        throw error
      }
    }
    return report(applied, applied.length > 0 ? 'applied' : 'up-to-date', [...new Set([...warnings, ...(plan.capacity?.warnings ?? [])])])
  } finally {
    if (locked) await conns.admin.query(`SELECT pg_advisory_unlock(${INIT_LOCK})`).catch(() => {})
    await conns.close()
  }
}
