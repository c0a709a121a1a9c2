import {CliError} from '../cli/errors.js'
import type {ResolvedConfig} from '../config/resolve.js'
import {MAIN_SERVER} from '../config/resolve.js'
import {disabledKinds, placeEstate} from '../estate/targets.js'
import {mapBounded, readConcurrency} from '../estate/visit.js'
import {noteDisabled} from '../estate/disabled.js'
import {CRON_EXTENSION, estate as expandEstate, OPTIONAL_EXTENSIONS, type QueueEngine, type ScheduleSpec} from '../../topology.js'
import {driftError} from '../migrate/runner.js'
import {publicAction, type Action, type PublicAction} from '../reconcile/action.js'
import {applyActions} from '../reconcile/apply.js'
import {observeDatabase, observeServer, type DatabaseObservation} from '../reconcile/observe.js'
import {closeParts, Connections, DATABASE_AREAS, diffDatabase, diffEstate, diffSchedules, engineOf, openParts, planParts, type PartPlan, type ServerInfo, type ServerPart} from '../reconcile/plan.js'
import {passwordEnvName, readPasswordFile, writePasswordFile} from './passwords.js'
import type {EngineChoice} from './queue-engine.js'
import type {RolePlan} from './roles.js'
import {preflightProblems, type ServerFacts} from './server.js'
import {lackingError} from '../reconcile/managed.js'

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
  /** the server it is placed on (`main` = the admin server) */
  server: string
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
  /** every server of the estate, with the databases placed there */
  servers: ServerInfo[]
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

async function takeInitLock(conns: Connections, progress?: (m: string) => void, server?: string): Promise<void> {
  const {rows} = await conns.admin.query<{ok: boolean}>(`SELECT pg_try_advisory_lock(${INIT_LOCK}) AS ok`)
  if (rows[0].ok) return
  progress?.(`another db init is running on ${server ? `server ${server}` : 'this server'}; waiting for it to finish`)
  // the session's lock_timeout guards DDL, not this queue: a long run ahead of us is waited for
  await conns.admin.query('SET lock_timeout = 0')
  try {
    await conns.admin.query(`SELECT pg_advisory_lock(${INIT_LOCK})`)
  } finally {
    await conns.admin.query('RESET lock_timeout')
  }
}

/** A database of our name that another role owns is someone else's: never taken over. */
function refuseForeignDatabases(part: PartPlan, several: boolean): void {
  const user = part.observation.server.facts.user
  for (const db of part.part.estate.databases) {
    const owner = part.observation.server.databases.find((d) => d.name === db.name)?.owner
    if (owner !== undefined && owner !== db.owner && owner !== user) {
      throw new CliError(`database ${db.name}${several ? ` on server ${part.part.name}` : ''} already exists and is owned by ${owner}, not ${db.owner}`, {
        hint: 'it is not ours: rename or drop it, or provision under another name with --prefix',
        code: 'DATABASE_TAKEN',
      })
    }
  }
}

function refusePreflight(facts: ServerFacts, server: string | undefined): void {
  const problems = preflightProblems(facts)
  if (problems.length === 0) return
  const [first, ...rest] = problems
  const on = server ? `server ${server}: ` : ''
  throw new CliError(on + first.message + (rest.length > 0 ? ` (and ${rest.length} more: ${rest.map((p) => p.code).join(', ')})` : ''), {hint: first.hint, code: first.code})
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
 * `db plan`'s; a dry run returns it unapplied. With several servers (the config's `servers` and
 * `placement`) every server is planned first, and nothing changes anywhere unless every server
 * answers and no server's plan is refused; then the servers are applied at once, each on its own
 * connections (nothing on one server depends on another). On each server, applying goes in
 * dependency order: server-wide areas (roles, then databases), then each database on its own
 * connection, all at once (extensions → SQL → queues → grants → CDC; after a step that changed a
 * database it is observed again, so that the grants cover the tables the SQL just created), then
 * the pg_cron jobs. Every step is idempotent, so an interrupted init is finished by the next one.
 * A refused action (an applied migration whose file changed) stops init before anything changes.
 */
export async function initEstate(options: InitOptions): Promise<InitResult> {
  const env = options.env ?? process.env
  const e = placeEstate(options.config, expandEstate({prefix: options.config.prefix, instances: options.instances, disabled: disabledKinds(options.config)}))
  noteDisabled(e.disabled.map((d) => ({database: d.name, kind: d.kind, reason: d.reason})))
  // the admin server first: when it cannot be reached, its own error (and exit code) says why
  const main = await Connections.open(options.config, 'singularity db init')
  let parts: ServerPart[] = []
  try {
    parts = await openParts(options.config, e, 'singularity db init', {main})
  } catch (error) {
    await main.close()
    throw error
  }
  const several = parts.length > 1 || parts.some((p) => p.name !== MAIN_SERVER)
  const locked: Connections[] = []
  try {
    const down = parts.find((p) => !p.conns)
    if (down) {
      if (!several) throw new CliError(down.unreachable ?? 'the server could not be reached', {code: 'SERVER_UNREACHABLE'})
      throw new CliError(`server ${down.name} is unreachable: ${down.unreachable}`, {
        code: 'SERVER_UNREACHABLE',
        hint: `db init provisions every server of the estate and changed nothing; check servers.${down.name} in the config file and that the server runs`,
      })
    }
    const facts = await mapBounded(parts, readConcurrency(undefined), async (p) => {
      const found = (await observeServer(p.conns!.admin, {...p.estate, databases: [], roles: []}, async () => null)).facts
      refusePreflight(found, several ? p.name : undefined)
      return found
    })
    if (!options.dryRun) {
      await Promise.all(parts.map(async (p) => {
        await takeInitLock(p.conns!, options.progress, several ? p.name : undefined)
        locked.push(p.conns!)
      }))
    }
    const plan = await planParts(parts, e, {queueEngine: options.queueEngine, passwordsFile: options.passwordsFile, env, schedules: options.schedules})
    for (const part of plan.parts) refuseForeignDatabases(part, several)
    // an admin without superuser: decided from the whole plan, before anything changes
    if (plan.lacking.length > 0) throw lackingError(plan.lacking, plan.server.user)
    const unknown = plan.actions.filter((a) => a.step.kind === 'manual' && a.step.code === 'PASSWORD_UNKNOWN')
    if (unknown.length > 0 && !options.dryRun) {
      const first = unknown[0]
      throw new CliError(`${first.server ? `server ${first.server}: ` : ''}${first.description}`, {
        code: 'PASSWORD_UNKNOWN',
        hint: `give its password in ${passwordEnvName(e.roles.find((r) => r.name === first.subject)?.key ?? first.subject ?? '')} or the passwords file (every server gets the same password); nothing was changed`,
      })
    }
    const mainFacts = facts[parts.findIndex((p) => p.name === MAIN_SERVER)] ?? facts[0]

    const report = (actions: Action[], status: InitResult['status'], warnings: string[]): InitResult => ({
      status,
      dryRun: options.dryRun,
      server: {version: plan.server.version, user: plan.server.user, cronDatabase: plan.server.cronDatabase},
      servers: plan.servers,
      prefix: e.prefix,
      instances: e.instances,
      roles: plan.roles,
      passwordsFile: options.passwordsFile,
      databases: plan.parts.flatMap(({part, observation}) =>
        part.estate.databases.map((db) => {
          const d = plan.databases.find((x) => x.name === db.name)!
          return {name: d.name, kind: d.kind, server: part.name, owner: d.expectedOwner, created: !d.exists, queueEngine: engineOf(db, observation.databases.get(db.name)!, observation.server, options.queueEngine)}
        }),
      ),
      optionalExtensions: optionalReport(mainFacts),
      actions: actions.map(publicAction),
      changes: options.dryRun ? [] : actions.map((a) => {
        const line = a.database && !a.description.includes(a.database) ? `${a.description} (${a.database})` : a.description
        return a.server ? `${a.server}: ${line}` : line
      }),
      providerSteps: plan.providerSteps.map(publicAction),
      warnings,
    })

    if (options.dryRun) return report(plan.actions, plan.actions.length > 0 ? 'planned' : 'up-to-date', plan.warnings)

    const refused = plan.actions.filter((a) => a.refused)
    if (refused.length > 0) {
      throw driftError(refused.map((a) => ({component: '', file: a.subject!.replace(/^sql\//, ''), kind: 'migration', state: 'drifted'})))
    }

    // Passwords saved 0600 before any role is created on any server, so a run killed in between
    // never loses a generated password (every server gets the same one).
    const given = plan.roles.filter((p) => p.passwordSource === 'generated' || p.passwordSource === 'env')
    if (given.length > 0) {
      writePasswordFile(options.passwordsFile, {...readPasswordFile(options.passwordsFile), ...Object.fromEntries(given.map((p) => [p.name, plan.context.roles.passwords[p.name]]))})
    }

    const outcomes = await mapBounded(plan.parts, readConcurrency(undefined), (part) => applyPart(part, options, several))
    const applied = outcomes.flatMap((o) => o.applied)
    const warnings = outcomes.flatMap((o) => o.warnings)
    const capacityWarnings = plan.parts.flatMap((p) => (p.capacity?.warnings ?? []).map((w) => (several ? `${p.part.name}: ${w}` : w)))
    return report(applied, applied.length > 0 ? 'applied' : 'up-to-date', [...new Set([...warnings, ...capacityWarnings])])
  } finally {
    await Promise.all(locked.map((c) => c.admin.query(`SELECT pg_advisory_unlock(${INIT_LOCK})`).catch(() => {})))
    await closeParts(parts, main)
    await main.close()
  }
}

/** Applies one server's part of the plan: server-wide areas, each database, then the pg_cron jobs. */
async function applyPart({part, observation, context}: PartPlan, options: InitOptions, several: boolean): Promise<{applied: Action[]; warnings: string[]}> {
  const conns = part.conns!
  const e = part.estate
  const tag = (a: Action): Action => ({...a, server: several ? part.name : null})
  const progress = options.progress && several ? (m: string) => options.progress!(`${part.name}: ${m}`) : options.progress
  const note = (w: string) => (several ? `${part.name}: ${w}` : w)
  const cronDatabase = observation.server.facts.cronDatabase
  const applied: Action[] = []
  const warnings: string[] = []
  const run = async (actions: Action[]) => {
    const outcome = await applyActions(conns, e, cronDatabase, actions, {progress})
    applied.push(...outcome.applied.map(tag))
    warnings.push(...outcome.warnings.map(note))
    return outcome.applied.length
  }

  // Server-wide: settings that can be applied, roles, databases.
  const serverWide = diffEstate(observation, context).actions
  await run(serverWide.filter((a) => a.area === 'server' || a.area === 'roles' || a.area === 'databases'))

  // Each database: its areas in order, observed again after a step that changed it; a bounded
  // number of databases at once, each on its own connection, released when done. Results keep
  // the estate's order, so the report does not depend on which database finished first.
  const capacity = observation.server.facts.capacity
  const bound = readConcurrency(options.concurrency ?? options.config.read.concurrency, capacity ? capacity.maxConnections - capacity.reservedConnections - capacity.usedConnections : undefined)
  const stepByStep = e.databases.length <= STEP_BY_STEP_DATABASES
  const stepProgress = stepByStep ? progress : undefined
  let finished = 0
  const inDatabase = DATABASE_AREAS.filter((area) => area !== 'cdc')
  const perDatabase = await mapBounded(e.databases, bound, async (db) => {
    const mine: Action[] = []
    const notes: string[] = []
    let observed: DatabaseObservation = observation.databases.get(db.name)!
    const client = await conns.database(db.name)
    if (!observed.exists) observed = await observeDatabase(client, db)
    for (const area of inDatabase) {
      const {actions, warnings: w} = diffDatabase(db, observed, observation.server, context, [area])
      notes.push(...w.map(note))
      const outcome = await applyActions(conns, e, cronDatabase, actions, {progress: stepProgress})
      mine.push(...outcome.applied.map(tag))
      notes.push(...outcome.warnings.map(note))
      if (outcome.applied.length > 0) observed = await observeDatabase(client, db)
    }
    if (db.name !== cronDatabase) await conns.release(db.name)
    finished++
    if (!stepByStep && mine.length > 0) progress?.(`${db.name}: ${mine.length} change(s) applied (${finished}/${e.databases.length} databases)`)
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
    const {actions, warnings: w} = diffDatabase(d.db, d.observed, observation.server, context, ['cdc'])
    warnings.push(...w.map(note))
    if (actions.length === 0) continue
    await run(actions)
    if (d.db.name !== cronDatabase) await conns.release(d.db.name)
  }

  // pg_cron: the extension, then the jobs in one transaction (serialised with installSchedules).
  let server = observation.server
  const extension = diffSchedules(server, context).actions.filter((a) => a.subject === CRON_EXTENSION)
  if (extension.length > 0) {
    await run(extension)
    server = await observeServer(conns.admin, e, async (name) => conns.database(name))
  }
  const jobs = diffSchedules(server, context)
  warnings.push(...jobs.warnings.map(note))
  if (jobs.actions.length > 0 && server.cron) {
    const cron = await conns.database(server.cron.database)
    await cron.query('BEGIN')
    try {
      await cron.query("SELECT pg_advisory_xact_lock(hashtext('singularity.cron-install'))")
      // many jobs (an estate of many instances): a few round trips instead of one per job
      const outcome = await applyActions(conns, e, cronDatabase, jobs.actions, {progress: stepProgress, batch: CRON_STATEMENTS_PER_ROUND_TRIP})
      applied.push(...outcome.applied.map(tag))
      warnings.push(...outcome.warnings.map(note))
      if (!stepByStep) progress?.(`pg_cron: ${outcome.applied.length} job(s) scheduled or updated in ${server.cron.database}`)
      await cron.query('COMMIT')
    } catch (error) {
      await cron.query('ROLLBACK').catch(() => {})
      throw error
    }
  }
  return {applied, warnings}
}
