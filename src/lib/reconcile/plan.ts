import type pg from 'pg'

import type {ResolvedConfig, Target} from '../config/resolve.js'
import {connect, type ConnectOptions} from '../db/connect.js'
import {DEFAULT_DATABASE_TIMEOUT_MS, hangUp, readBound, visitEach, type ReadBound, type SharedClients, type Unreadable} from '../estate/visit.js'
import {adminTarget, configuredEstate, discoverEstate, onDatabase, selectDatabases} from '../estate/targets.js'
import {plannedCronJobs} from '../cron/names.js'
import {validateSchedules} from '../cron/install.js'
import {schedulesForPgCron, type JobSpec} from '../../schedules.js'
import type {FilePlan} from '../migrate/runner.js'
import {readPasswordFile} from '../provision/passwords.js'
import {chooseQueueEngine, type EngineChoice} from '../provision/queue-engine.js'
import {planPasswords, type RolePlan} from '../provision/roles.js'
import type {ConcreteDatabase, Estate, QueueEngine, ScheduleSpec} from '../../topology.js'
import {AREAS, publicAction, type Action, type Area, type PublicAction} from './action.js'
import {diffCdc} from './cdc.js'
import {diffCron} from './cron.js'
import {diffCopies, diffDatabases} from './databases.js'
import {diffExtensions, wantedExtensions} from './extensions.js'
import {diffGrants} from './grants.js'
import {emptyDatabase, observeDatabase, observeServer, type DatabaseObservation, type EstateObservation, type ServerObservation} from './observe.js'
import {diffQueues} from './queues.js'
import {diffRoles} from './roles.js'
import {adaptToAdmin, creatableBy, manageableBy} from './managed.js'
import {diffServer, serverWarnings} from './server.js'
import {diffSql, fileStates} from './sql.js'
import type {CopyInfo} from '../backup/copies.js'

/** Connections of one reconciliation: the admin one and, lazily, one per database (as the admin). */
export class Connections {
  private readonly clients = new Map<string, Promise<pg.Client>>()

  private constructor(
    readonly admin: pg.Client,
    private readonly target: Target,
    private readonly settings: ConnectOptions,
    private readonly shared?: SharedClients,
  ) {}

  /** `settings` bound each database session (a reading command's deadline); db init's lock timeout stays. */
  static async open(
    config: ResolvedConfig,
    applicationName: string,
    settings: Pick<ConnectOptions, 'statementTimeoutMs' | 'connectTimeoutMs'> = {},
    shared?: SharedClients,
  ): Promise<Connections> {
    const target = adminTarget(config)
    const all = {applicationName, lockTimeoutMs: 30_000, ...settings}
    const admin = await connect(target, all)
    return new Connections(admin, target, all, shared)
  }

  /** A client on a database of the server (the admin client when it is the admin's database). */
  async database(name: string): Promise<pg.Client> {
    if (name === this.admin.database) return this.admin
    // a reading command's connections kept for its other reads (doctor): opened there, closed by their owner
    if (this.shared) return this.shared.client(onDatabase(this.target, name), this.settings.statementTimeoutMs ?? DEFAULT_DATABASE_TIMEOUT_MS)
    let client = this.clients.get(name)
    if (!client) {
      client = connect(onDatabase(this.target, name), this.settings)
      this.clients.set(name, client)
      client.catch(() => this.clients.delete(name))
    }
    return client
  }

  /** Hangs up one database's client at once (its deadline passed); a later database() opens another. */
  drop(name: string): void {
    if (this.shared && name !== this.admin.database) {
      this.shared.cut(onDatabase(this.target, name))
      return
    }
    const client = this.clients.get(name)
    if (!client || name === this.admin.database) return
    this.clients.delete(name)
    client.then(hangUp, () => {})
  }

  async close(): Promise<void> {
    const all = await Promise.allSettled([...this.clients.values()])
    await Promise.all(all.map((c) => (c.status === 'fulfilled' ? c.value.end().catch(() => {}) : undefined)))
    await this.admin.end().catch(() => {})
  }
}

/** What the diffs need besides the observation. */
export interface DiffContext {
  estate: Estate
  queueEngine: EngineChoice
  /** the declared schedules (pg_cron ones are reconciled) */
  schedules: ScheduleSpec[]
  roles: {plans: RolePlan[]; passwords: Record<string, string>}
}

/** Without a reading command's deadline (db init), one database may take this long to be observed. */
const UNBOUNDED_OBSERVE_TIMEOUT_MS = 600_000

/**
 * Reads the server and every existing estate database: the databases concurrently within the
 * bound (one connection each, a deadline each), while the server is read. With
 * `tolerateUnreachable` a database that cannot be read, or not in time, is marked so instead of
 * failing (db status, db plan, doctor).
 */
export async function observeEstate(
  conns: Connections,
  estate: Estate,
  options: {tolerateUnreachable?: boolean; bound?: Pick<ReadBound, 'concurrency' | 'timeoutMs'>} = {},
): Promise<EstateObservation> {
  // the estate's databases that exist, read while the server is (connecting is the slow part)
  const {rows} = await conns.admin.query<{datname: string}>('SELECT datname FROM pg_database WHERE datname = ANY($1)', [estate.databases.map((d) => d.name)])
  const present = new Set(rows.map((r) => r.datname))
  const visited = estate.databases.filter((db) => present.has(db.name))
  const timeoutMs = options.bound?.timeoutMs ?? (options.tolerateUnreachable ? DEFAULT_DATABASE_TIMEOUT_MS : UNBOUNDED_OBSERVE_TIMEOUT_MS)
  const [server, visits] = await Promise.all([
    // pg_settings, not current_setting(): cron.database_name is superuser-only, and pg_settings hides it from others instead of failing
    (async () => {
      const {rows: cronRows} = await conns.admin.query<{datname: string}>('SELECT datname FROM pg_database WHERE datallowconn AND datname = coalesce((SELECT setting FROM pg_settings WHERE name = $1), $2)', ['cron.database_name', 'postgres'])
      return observeServer(conns.admin, estate, async (name) => (cronRows.some((r) => r.datname === name) ? conns.database(name) : null))
    })(),
    visitEach(
      visited,
      (db) => db.name,
      async (db, signal) => {
        signal.addEventListener('abort', () => conns.drop(db.name), {once: true})
        return observeDatabase(await conns.database(db.name), db)
      },
      {concurrency: options.bound?.concurrency, timeoutMs},
    ),
  ])
  const existing = new Set(server.databases.map((d) => d.name))
  const databases = new Map<string, DatabaseObservation>()
  for (const db of estate.databases) if (!existing.has(db.name)) databases.set(db.name, emptyDatabase(db.name))
  for (const [i, visit] of visits.entries()) {
    const db = visited[i]
    if (visit.ok) databases.set(db.name, visit.value)
    else if (!options.tolerateUnreachable) throw visit.error
    else databases.set(db.name, {...emptyDatabase(db.name), exists: true, unreachable: visit.error.message.split('\n')[0], timedOut: visit.timedOut})
  }
  return {server, databases}
}

/** The queue engine a database runs or will run (null: it has no queues). */
export function engineOf(db: ConcreteDatabase, observed: DatabaseObservation, server: ServerObservation, choice: EngineChoice): QueueEngine | null {
  if (db.spec.queues.length === 0) return null
  return chooseQueueEngine(choice, observed.queueEngine, creatableBy(server.facts, 'pgmq'), db.name)
}

/** The in-database areas, in the order they apply. */
export const DATABASE_AREAS = ['extensions', 'sql', 'queues', 'grants', 'cdc'] as const satisfies readonly Area[]

/** The actions of some in-database areas for one database, from its observation. */
export function diffDatabase(
  db: ConcreteDatabase,
  observed: DatabaseObservation,
  server: ServerObservation,
  ctx: DiffContext,
  areas: readonly (typeof DATABASE_AREAS)[number][] = DATABASE_AREAS,
): {actions: Action[]; warnings: string[]; provider: Action[]; lacking: Action[]} {
  if (observed.unreachable) return {actions: [], warnings: [`${db.name} could not be read: ${observed.unreachable}`], provider: [], lacking: []}
  const engine = engineOf(db, observed, server, ctx.queueEngine)
  const extensions = new Set([...observed.extensions.keys(), ...wantedExtensions(db, server.facts, engine)])
  const actions: Action[] = []
  const warnings: string[] = []
  for (const area of areas) {
    if (area === 'extensions') actions.push(...diffExtensions(db, observed, server.facts, engine))
    if (area === 'sql') actions.push(...diffSql(db, observed, engine, extensions))
    if (area === 'queues') actions.push(...diffQueues(db, observed))
    if (area === 'grants') actions.push(...diffGrants(ctx.estate, db, manageableBy(observed, server.facts, ctx.estate), server.facts.user))
    if (area === 'cdc') {
      const cdc = diffCdc(db, observed, server.slots)
      actions.push(...cdc.actions)
      warnings.push(...cdc.warnings)
    }
  }
  return {...adaptToAdmin(actions, server.facts, ctx.estate), warnings}
}

/** The pg_cron actions (empty with a warning when pg_cron is not loaded: the server area says how to fix that). */
export function diffSchedules(server: ServerObservation, ctx: DiffContext): {actions: Action[]; warnings: string[]; provider: Action[]; lacking: Action[]} {
  if (!server.cron) return {actions: [], warnings: server.facts.preload.includes('pg_cron') ? [`the cron database ${server.facts.cronDatabase} does not exist: no pg_cron job can be installed`] : [], provider: [], lacking: []}
  // seconds schedules where this pg_cron has them (the CDC bridge: every 5 s from 1.5, every minute on 1.4)
  const schedules = schedulesForPgCron(ctx.schedules as JobSpec[], server.cron.version)
  validateSchedules(ctx.estate, schedules, server.cron.database)
  const planned = plannedCronJobs(ctx.estate, schedules, server.cron.database)
  const actions = diffCron(server.cron, planned, server.cron.jobs, server.facts.user)
  return {...adaptToAdmin(actions, server.facts, ctx.estate, {database: server.cron.database, scheduleInOtherDatabases: server.cron.scheduleInOtherDatabases, installed: server.cron.jobs, planned}), warnings: []}
}

/** Every action that brings the observed server to the estate, in dependency order. Pure. */
export function diffEstate(observation: EstateObservation, ctx: DiffContext): {actions: Action[]; warnings: string[]; provider: Action[]; lacking: Action[]} {
  const {server} = observation
  const serverWide = adaptToAdmin(
    [...diffServer(server), ...diffRoles(ctx.estate, server.roles, ctx.roles.plans, ctx.roles.passwords), ...diffDatabases(ctx.estate, server.databases), ...diffCopies(ctx.estate, server.copies ?? [])], server.facts, ctx.estate,
  )
  const {actions, provider, lacking} = serverWide
  const warnings: string[] = [...serverWarnings(server)]
  const add = (result: {actions: Action[]; warnings: string[]; provider: Action[]; lacking: Action[]}) => {
    actions.push(...result.actions)
    warnings.push(...result.warnings)
    provider.push(...result.provider)
    lacking.push(...result.lacking)
  }
  for (const db of ctx.estate.databases) add(diffDatabase(db, observation.databases.get(db.name) ?? emptyDatabase(db.name), server, ctx))
  add(diffSchedules(server, ctx))
  const rank = (a: Action) => AREAS.indexOf(a.area)
  const ordered = (list: Action[]) => list.map((a, i) => ({a, i})).sort((x, y) => rank(x.a) - rank(y.a) || x.i - y.i).map((x) => x.a)
  return {actions: ordered(actions), warnings, provider: ordered(provider), lacking: ordered(lacking)}
}

export interface PlanOptions {
  config: ResolvedConfig
  /** the number of singularity instances; read from the server when not given */
  instances?: number
  queueEngine?: EngineChoice
  /** role passwords given in a file (for the roles area); none when absent */
  passwordsFile?: string
  env?: NodeJS.ProcessEnv
  schedules: ScheduleSpec[]
  /** only these databases (names or kinds; --db); server-wide actions are then left out */
  databases?: string[]
  applicationName?: string
  /** a reading command's bound (doctor and metrics decide it once); else read from the server here */
  bound?: Pick<ReadBound, 'concurrency' | 'timeoutMs'>
  /** connections to keep open for the command's other reads of the same databases (doctor) */
  shared?: SharedClients
}

export interface DatabasePlanInfo {
  name: string
  kind: string
  exists: boolean
  unreachable?: string
  timedOut?: boolean
  owner: string | null
  expectedOwner: string
  queueEngine: QueueEngine | null
  extensions: {name: string; version: string}[]
  files: FilePlan[]
  queuesMissing: string[]
  features: {feature: string; implementation: string}[]
}

/** The plan: what `db plan` prints, `db status`, `jobs list` and `doctor` read, and `db init` applies. */
export interface Plan {
  server: {version: string; user: string; superuser: boolean; walLevel: string; cronPreloaded: boolean; cronDatabase: string}
  prefix: string
  instances: number
  actions: Action[]
  warnings: string[]
  /** steps only the server's provider can take (an admin without superuser); never applied, never drift */
  providerSteps: Action[]
  /** steps that need an attribute the admin lacks (CREATEROLE, CREATEDB): db init refuses */
  lacking: Action[]
  roles: RolePlan[]
  databases: DatabasePlanInfo[]
  observation: EstateObservation
  /** what the diffs were given (with the passwords decided for new roles: never printed) */
  context: DiffContext
}

/** Per-database facts for the status views, from the same observation. */
export function databaseInfo(db: ConcreteDatabase, observation: EstateObservation, ctx: DiffContext, actions: Action[]): DatabasePlanInfo {
  const observed = observation.databases.get(db.name) ?? emptyDatabase(db.name)
  const engine = observed.exists && !observed.unreachable ? engineOf(db, observed, observation.server, ctx.queueEngine) : null
  const extensions = new Set([...observed.extensions.keys(), ...wantedExtensions(db, observation.server.facts, engine)])
  return {
    name: db.name,
    kind: db.kind,
    exists: observed.exists,
    unreachable: observed.unreachable,
    timedOut: observed.timedOut,
    owner: observation.server.databases.find((d) => d.name === db.name)?.owner ?? null,
    expectedOwner: db.owner,
    queueEngine: observed.queueEngine,
    extensions: [...observed.extensions].map(([name, version]) => ({name, version})).sort((a, b) => a.name.localeCompare(b.name)),
    files: observed.exists && !observed.unreachable ? fileStates(db, observed, engine, extensions) : [],
    queuesMissing: actions.filter((a) => a.area === 'queues' && a.database === db.name).map((a) => a.subject!),
    features: observed.features,
  }
}

/** The context of a plan: estate, passwords (never saved here), schedules. */
export function diffContext(estate: Estate, observation: EstateObservation, options: Pick<PlanOptions, 'queueEngine' | 'passwordsFile' | 'env' | 'schedules'>): DiffContext {
  const exists = new Set(observation.server.roles.map((r) => r.name))
  const fromFile = options.passwordsFile ? readPasswordFile(options.passwordsFile) : {}
  return {
    estate,
    queueEngine: options.queueEngine ?? 'auto',
    schedules: options.schedules,
    roles: planPasswords(estate.roles, exists, fromFile, options.env ?? process.env),
  }
}

/** Observes and diffs on open connections (db init calls this under its lock). */
export async function planOn(conns: Connections, estate: Estate, options: Omit<PlanOptions, 'config' | 'instances'> & {tolerateUnreachable?: boolean}): Promise<Plan> {
  const observation = await observeEstate(conns, estate, {tolerateUnreachable: options.tolerateUnreachable, bound: options.bound})
  const ctx = diffContext(estate, observation, options)
  let {actions, warnings, provider, lacking} = diffEstate(observation, ctx)
  let databases = estate.databases
  if (options.databases && options.databases.length > 0) {
    databases = selectDatabases(estate.databases, options.databases)
    const names = new Set(databases.map((d) => d.name))
    const selected = (a: Action) => a.database !== null && names.has(a.database)
    actions = actions.filter(selected)
    provider = provider.filter(selected)
    lacking = lacking.filter(selected)
  }
  const f = observation.server.facts
  return {
    server: {version: f.version, user: f.user, superuser: f.superuser, walLevel: f.walLevel, cronPreloaded: f.preload.includes('pg_cron'), cronDatabase: f.cronDatabase},
    prefix: estate.prefix,
    instances: estate.instances,
    actions,
    warnings,
    providerSteps: provider,
    lacking,
    roles: ctx.roles.plans,
    databases: databases.map((db) => databaseInfo(db, observation, ctx, actions)),
    observation,
    context: ctx,
  }
}

/** `db plan`: observe the server, diff it against the estate; changes nothing and takes no lock. */
export async function planEstate(options: PlanOptions & {tolerateUnreachable?: boolean}): Promise<Plan> {
  // a reading command: every database session ends at the per-database deadline
  const timeoutMs = options.bound?.timeoutMs ?? options.config.read.timeoutMs ?? DEFAULT_DATABASE_TIMEOUT_MS
  const conns = await Connections.open(options.config, options.applicationName ?? 'singularity db plan', {statementTimeoutMs: timeoutMs, connectTimeoutMs: timeoutMs}, options.shared)
  try {
    const estate = options.instances ? configuredEstate(options.config, options.instances) : await discoverEstate(options.config, conns.admin)
    const bound = options.bound ?? (await readBound(conns.admin, options.config.read))
    return await planOn(conns, estate, {...options, bound})
  } finally {
    await conns.close()
  }
}

/** The plan as printed (--json): actions without their internal steps, grouped counts. */
export function planDocument(plan: Plan): {
  status: 'up-to-date' | 'planned' | 'refused'
  server: Plan['server']
  prefix: string
  instances: number
  summary: {actions: number; destructive: number; refused: number; byArea: Partial<Record<Area, number>>}
  actions: PublicAction[]
  /** steps only the provider can take (a managed server): listed, never applied */
  providerSteps: PublicAction[]
  /** steps that need an attribute the admin lacks: db init refuses the plan */
  lacking: PublicAction[]
  warnings: string[]
  /** copies of estate databases restored by the tool, with their access (an open one is security drift, in actions) */
  copies: CopyInfo[]
  /** estate databases that could not be read (refused, failed, or past --db-timeout): their part of the plan is unknown */
  unreadable: Unreadable[]
} {
  const byArea: Partial<Record<Area, number>> = {}
  for (const a of plan.actions) byArea[a.area] = (byArea[a.area] ?? 0) + 1
  const refused = plan.actions.filter((a) => a.refused).length
  return {
    status: refused > 0 ? 'refused' : plan.actions.length > 0 ? 'planned' : 'up-to-date',
    server: plan.server,
    prefix: plan.prefix,
    instances: plan.instances,
    summary: {actions: plan.actions.length, destructive: plan.actions.filter((a) => a.destructive).length, refused, byArea},
    actions: plan.actions.map(publicAction),
    providerSteps: plan.providerSteps.map(publicAction),
    lacking: plan.lacking.map(publicAction),
    warnings: plan.warnings,
    copies: plan.observation.server.copies ?? [],
    unreadable: unreadableOf(plan),
  }
}

/** The databases the plan's observation could not read, in estate order. */
export function unreadableOf(plan: Pick<Plan, 'observation' | 'context'>): Unreadable[] {
  return plan.context.estate.databases.flatMap((db) => {
    const observed = plan.observation.databases.get(db.name)
    return observed?.unreachable ? [{database: db.name, reason: observed.unreachable, timed_out: observed.timedOut ?? false}] : []
  })
}
