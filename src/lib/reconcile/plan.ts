import type pg from 'pg'

import type {ResolvedConfig, Target} from '../config/resolve.js'
import {connect, type ConnectOptions} from '../db/connect.js'
import {CliError} from '../cli/errors.js'
import {MAIN_SERVER} from '../config/resolve.js'
import {DEFAULT_DATABASE_TIMEOUT_MS, hangUp, mapBounded, readBound, readConcurrency, visitEach, type ReadBound, type SharedClients, type Unreadable} from '../estate/visit.js'
import {adminTarget, configuredEstate, discoverEstate, estateWithoutAdmin, onDatabase, selectDatabases, serverNames, serverTarget, severalServers} from '../estate/targets.js'
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
import {capacityReport, lateStartSecondsFrom, type CapacityReport} from './capacity.js'

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
    return Connections.openTarget(adminTarget(config), applicationName, settings, shared)
  }

  /** The connections of one server of the estate (its admin URL). */
  static async openTarget(
    target: Target,
    applicationName: string,
    settings: Pick<ConnectOptions, 'statementTimeoutMs' | 'connectTimeoutMs'> = {},
    shared?: SharedClients,
  ): Promise<Connections> {
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

  /** Ends the client of one database (asked for again, it reconnects): db init keeps only the bound's worth open. */
  async release(name: string): Promise<void> {
    const client = this.clients.get(name)
    if (!client) return
    this.clients.delete(name)
    await client.then((c) => c.end()).catch(() => {})
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
  roles: {plans: RolePlan[]; passwords: Record<string, string>; verifiers?: Record<string, {verifier: string; from: string}>}
  /** the capacity check's late-start threshold (SINGULARITY_LATE_START_SECONDS, default 10 s) */
  lateStartSeconds?: number
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
    [...diffServer(server), ...diffRoles(ctx.estate, server.roles, ctx.roles.plans, ctx.roles.passwords, ctx.roles.verifiers), ...diffDatabases(ctx.estate, server.databases), ...diffCopies(ctx.estate, server.copies ?? [])], server.facts, ctx.estate,
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
  /** the server it is placed on (`main` = the admin server) */
  server?: string
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
  /** the admin server's observation (the first reachable server's when it is down) */
  observation: EstateObservation
  /** what the diffs were given (with the passwords decided for new roles: never printed) */
  context: DiffContext
  /** every server of the estate: name, reachable, facts, the databases placed there */
  servers: ServerInfo[]
  /** per server: its part of the estate, observation and context (db init applies each) */
  parts: PartPlan[]
  /** the server's connection and pg_cron limits against the estate (its warnings are in `warnings`) */
  capacity: CapacityReport | null
}

/**
 * The capacity check of the server-settings area: the estate's pg_cron jobs (staggered, as they
 * are installed) that can start in one minute against cron.max_running_jobs, and its connections
 * against max_connections.
 */
export function estateCapacity(server: ServerObservation, ctx: DiffContext): CapacityReport | null {
  if (!server.facts.capacity) return null
  const schedules = schedulesForPgCron(ctx.schedules as JobSpec[], server.cron?.version)
  const planned = plannedCronJobs(ctx.estate, schedules, server.facts.cronDatabase)
  return capacityReport(ctx.estate, server.facts.capacity, planned.map((j) => j.schedule), ctx.lateStartSeconds)
}

/** Per-database facts for the status views, from the same observation. */
export function databaseInfo(db: ConcreteDatabase, observation: EstateObservation, ctx: DiffContext, actions: Action[]): DatabasePlanInfo {
  const observed = observation.databases.get(db.name) ?? emptyDatabase(db.name)
  const readable = observed.exists && !observed.unreachable
  const engine = readable ? engineOf(db, observed, observation.server, ctx.queueEngine) : null
  const extensions = new Set([...observed.extensions.keys(), ...(readable ? wantedExtensions(db, observation.server.facts, engine) : [])])
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

/** What a plan reports instead of failing on. */
export interface Tolerance {
  /** a database (or a whole server) that cannot be read is marked unreachable (db status) */
  tolerateUnreachable?: boolean
  /** several servers: a server that does not answer is reported, the others are planned (db plan) */
  tolerateDownServers?: boolean
}

/** One server of the estate in a plan: its part of the estate, its connections, what was seen there. */
export interface ServerPart {
  /** the server's name (`main` = the admin server) */
  name: string
  /** the databases placed on it and the roles they use */
  estate: Estate
  /** open connections; undefined when the server could not be reached */
  conns?: Connections
  /** why it could not be reached */
  unreachable?: string
}

/** What a plan says about one server (for the readers: which server, reachable or not, its facts). */
export interface ServerInfo {
  name: string
  reachable: boolean
  error?: string
  version: string | null
  user: string | null
  superuser: boolean | null
  walLevel: string | null
  cronPreloaded: boolean | null
  cronDatabase: string | null
  /** the estate's databases placed on it */
  databases: string[]
}

/** A part's plan: its observation and diff context, for db init to apply per server. */
export interface PartPlan {
  part: ServerPart
  observation: EstateObservation
  context: DiffContext
  /** the server's limits against its part of the estate (null when unread or unreachable) */
  capacity: CapacityReport | null
}

/**
 * The parts of an estate per server: one part (the whole estate on the admin server) when the
 * config names no other server; otherwise one per server that hosts a database, each with the
 * roles its databases use (owner, CONNECT, grants, queue access).
 */
export function serverParts(estate: Estate, servers: string[]): {name: string; estate: Estate}[] {
  if (servers.length <= 1 && estate.databases.every((d) => (d.server ?? MAIN_SERVER) === MAIN_SERVER)) return [{name: MAIN_SERVER, estate}]
  return servers
    .map((name) => {
      const databases = estate.databases.filter((d) => (d.server ?? MAIN_SERVER) === name)
      const used = new Set(databases.flatMap((d) => [d.owner, ...d.connect, ...d.grants.map((g) => g.role), ...d.queueAccess.flatMap((q) => [...q.publish, ...q.consume, ...q.observe]), ...d.archiveReaders]))
      return {name, estate: {...estate, databases, roles: estate.roles.filter((r) => used.has(r.name))}}
    })
    .filter((p) => p.estate.databases.length > 0)
}

/** An observation of a server that could not be reached: each of its databases unreachable. */
function unreachableObservation(part: ServerPart): EstateObservation {
  const reason = `server ${part.name} unreachable: ${part.unreachable}`
  return {
    server: {facts: undefined as never, roles: [], databases: [], slots: [], cron: null, copies: []},
    databases: new Map(part.estate.databases.map((d) => [d.name, {...emptyDatabase(d.name), exists: true, unreachable: reason}])),
  }
}

/**
 * Role passwords over every server: one plan for the estate (a role is new only when no server has
 * it, and then gets one password everywhere); a role missing on one server but present on another
 * is created with the verifier read there (the same password), when the admin could read it.
 */
function passwordContext(estate: Estate, observed: {name: string; observation: EstateObservation}[], options: Pick<PlanOptions, 'passwordsFile' | 'env'>): DiffContext['roles'] {
  const exists = new Set(observed.flatMap((o) => o.observation.server.roles.map((r) => r.name)))
  const fromFile = options.passwordsFile ? readPasswordFile(options.passwordsFile) : {}
  const planned = planPasswords(estate.roles, exists, fromFile, options.env ?? process.env)
  const verifiers: Record<string, {verifier: string; from: string}> = {}
  for (const {name, observation} of observed) {
    for (const role of observation.server.roles) if (role.verifier && !verifiers[role.name]) verifiers[role.name] = {verifier: role.verifier, from: name}
  }
  return {...planned, verifiers}
}

/**
 * Observes and diffs every server on open connections (db init calls this under its locks). With
 * `tolerateUnreachable` a server that could not be reached is reported (its databases unreachable)
 * instead of failing the plan.
 */
export async function planParts(parts: ServerPart[], estate: Estate, options: Omit<PlanOptions, 'config' | 'instances'> & Tolerance): Promise<Plan> {
  const several = parts.length > 1 || parts.some((p) => p.name !== MAIN_SERVER)
  const observed = await mapBounded(parts, readConcurrency(undefined), async (part) => {
    if (!part.conns) {
      if (!options.tolerateUnreachable && !options.tolerateDownServers) throw new CliError(`server ${part.name} is unreachable: ${part.unreachable}`, {code: 'SERVER_UNREACHABLE', hint: 'check its URL in the config file (servers) and that it runs'})
      return {part, observation: unreachableObservation(part)}
    }
    return {part, observation: await observeEstate(part.conns, part.estate, {tolerateUnreachable: options.tolerateUnreachable, bound: options.bound})}
  })
  const reachable = observed.filter((o) => o.part.conns)
  const roles = passwordContext(estate, reachable.map((o) => ({name: o.part.name, observation: o.observation})), options)
  const partPlans: PartPlan[] = observed.map(({part, observation}) => ({
    part,
    observation,
    context: {
      estate: part.estate,
      queueEngine: options.queueEngine ?? 'auto',
      schedules: options.schedules,
      roles: {...roles, plans: roles.plans.filter((p) => part.estate.roles.some((r) => r.name === p.name))},
      lateStartSeconds: lateStartSecondsFrom(options.env ?? process.env),
    },
    capacity: null,
  }))
  const tag = (name: string) => (a: Action): Action => ({...a, server: several ? name : null})
  let actions: Action[] = []
  let provider: Action[] = []
  let lacking: Action[] = []
  const warnings: string[] = []
  for (const partPlan of partPlans) {
    const {part, observation, context} = partPlan
    if (!part.conns) {
      warnings.push(`server ${part.name} could not be reached (${part.unreachable}): its databases (${part.estate.databases.map((d) => d.name).join(', ')}) were not read`)
      continue
    }
    const diff = diffEstate(observation, context)
    const capacity = estateCapacity(observation.server, context)
    partPlan.capacity = capacity
    actions.push(...diff.actions.map(tag(part.name)))
    provider.push(...diff.provider.map(tag(part.name)))
    lacking.push(...diff.lacking.map(tag(part.name)))
    warnings.push(...[...diff.warnings, ...(capacity?.warnings ?? [])].map((w) => (several ? `${part.name}: ${w}` : w)))
  }
  let databases = estate.databases
  if (options.databases && options.databases.length > 0) {
    databases = selectDatabases(estate.databases, options.databases)
    const names = new Set(databases.map((d) => d.name))
    const selected = (a: Action) => a.database !== null && names.has(a.database)
    actions = actions.filter(selected)
    provider = provider.filter(selected)
    lacking = lacking.filter(selected)
  }
  const servers: ServerInfo[] = partPlans.map(({part, observation}) => {
    const f = part.conns ? observation.server.facts : undefined
    return {
      name: part.name, reachable: part.conns !== undefined, ...(part.unreachable ? {error: part.unreachable} : {}),
      version: f?.version ?? null, user: f?.user ?? null, superuser: f?.superuser ?? null, walLevel: f?.walLevel ?? null,
      cronPreloaded: f ? f.preload.includes('pg_cron') : null, cronDatabase: f?.cronDatabase ?? null,
      databases: part.estate.databases.map((d) => d.name),
    }
  })
  const first = partPlans.find((p) => p.part.name === MAIN_SERVER && p.part.conns) ?? partPlans.find((p) => p.part.conns)
  if (!first) {
    const down = partPlans[0]?.part
    throw new CliError(`no server of the estate could be reached${down ? `: ${down.unreachable}` : ''}`, {code: 'SERVER_UNREACHABLE', hint: 'check the admin URL (and the config file\'s servers) and that the servers run'})
  }
  const f = first.observation.server.facts
  const byName = new Map(partPlans.flatMap((p) => p.part.estate.databases.map((d) => [d.name, p] as const)))
  return {
    server: {version: f.version, user: f.user, superuser: f.superuser, walLevel: f.walLevel, cronPreloaded: f.preload.includes('pg_cron'), cronDatabase: f.cronDatabase},
    servers,
    prefix: estate.prefix,
    instances: estate.instances,
    actions,
    warnings,
    providerSteps: provider,
    lacking,
    roles: roles.plans,
    databases: databases.map((db) => {
      const part = byName.get(db.name)!
      return {...databaseInfo(db, part.observation, part.context, actions), server: part.part.name}
    }),
    observation: first.observation,
    context: first.context,
    parts: partPlans,
    capacity: first.capacity,
  }
}

/** Observes and diffs on open connections of one server (the whole estate there). */
export async function planOn(conns: Connections, estate: Estate, options: Omit<PlanOptions, 'config' | 'instances'> & {tolerateUnreachable?: boolean}): Promise<Plan> {
  return planParts([{name: MAIN_SERVER, estate, conns}], estate, options)
}

/**
 * Opens the connections of every server of the estate at once. A server that cannot be reached is
 * returned without connections (the plan reports or refuses it); the admin server must answer when
 * the estate has to be discovered from it.
 */
export async function openParts(config: ResolvedConfig, estate: Estate, applicationName: string, options: {main?: Connections; settings?: Pick<ConnectOptions, 'statementTimeoutMs' | 'connectTimeoutMs'>} = {}): Promise<ServerPart[]> {
  const parts = serverParts(estate, serverNames(config))
  const visits = await visitEach(
    parts,
    (p) => `server ${p.name}`,
    async (p) => (p.name === MAIN_SERVER && options.main ? options.main : Connections.openTarget(serverTarget(config, p.name), applicationName, {connectTimeoutMs: OPEN_TIMEOUT_MS, ...options.settings})),
    {timeoutMs: OPEN_TIMEOUT_MS + 1000},
  )
  return parts.map((p, i) => {
    const v = visits[i]
    return v.ok ? {...p, conns: v.value} : {...p, unreachable: v.error.message.split('\n')[0]}
  })
}

/** How long a server may take to accept a connection before it is reported unreachable. */
const OPEN_TIMEOUT_MS = 10_000

/** Closes every part's connections (the admin server's too). */
export async function closeParts(parts: ServerPart[], keep?: Connections): Promise<void> {
  await Promise.all(parts.map((p) => (p.conns && p.conns !== keep ? p.conns.close() : undefined)))
}

/** `db plan`: observe every server, diff it against the estate; changes nothing and takes no lock. */
export async function planEstate(options: PlanOptions & Tolerance): Promise<Plan> {
  const applicationName = options.applicationName ?? 'singularity db plan'
  // a reading command: every database session ends at the per-database deadline
  const timeoutMs = options.bound?.timeoutMs ?? options.config.read.timeoutMs ?? DEFAULT_DATABASE_TIMEOUT_MS
  const settings = {statementTimeoutMs: timeoutMs, connectTimeoutMs: timeoutMs}
  let main: Connections | undefined
  let mainError: string | undefined
  try {
    main = await Connections.open(options.config, applicationName, settings, options.shared)
  } catch (error) {
    // the admin server down: with several servers the others are still shown (when the estate is known)
    if (!(options.tolerateUnreachable || options.tolerateDownServers) || !severalServers(options.config)) throw error
    mainError = (error as Error).message.split('\n')[0]
  }
  let parts: ServerPart[] = []
  try {
    const estate = options.instances
      ? configuredEstate(options.config, options.instances)
      : main
        ? await discoverEstate(options.config, main.admin)
        : estateWithoutAdmin(options.config)
    const bound = options.bound ?? (main ? await readBound(main.admin, options.config.read) : undefined)
    parts = await openParts(options.config, estate, applicationName, {main, settings})
    if (mainError) parts = parts.map((p) => (p.name === MAIN_SERVER ? {...p, conns: undefined, unreachable: mainError} : p))
    return await planParts(parts, estate, {...options, bound})
  } finally {
    await closeParts(parts, main)
    await main?.close()
  }
}

/** The plan as printed (--json): actions without their internal steps, grouped counts. */
export function planDocument(plan: Plan): {
  status: 'up-to-date' | 'planned' | 'refused'
  server: Plan['server']
  /** every server of the estate (one, \`main\`, unless the config places databases elsewhere) */
  servers: ServerInfo[]
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
  /** the server's connection and pg_cron limits against the estate */
  capacity: CapacityReport | null
} {
  const byArea: Partial<Record<Area, number>> = {}
  for (const a of plan.actions) byArea[a.area] = (byArea[a.area] ?? 0) + 1
  const refused = plan.actions.filter((a) => a.refused).length
  return {
    status: refused > 0 ? 'refused' : plan.actions.length > 0 ? 'planned' : 'up-to-date',
    server: plan.server,
    servers: plan.servers,
    prefix: plan.prefix,
    instances: plan.instances,
    summary: {actions: plan.actions.length, destructive: plan.actions.filter((a) => a.destructive).length, refused, byArea},
    actions: plan.actions.map(publicAction),
    providerSteps: plan.providerSteps.map(publicAction),
    lacking: plan.lacking.map(publicAction),
    warnings: plan.warnings,
    copies: plan.parts.flatMap((p) => p.observation.server.copies ?? []),
    unreadable: unreadableOf(plan),
    capacity: plan.capacity,
  }
}

/** The databases the plan's observation could not read, in estate order. */
export function unreadableOf(plan: Pick<Plan, 'observation' | 'context'> & {parts?: PartPlan[]}): Unreadable[] {
  // several servers: every server's databases (a down server's are unreadable too)
  const parts = plan.parts ?? [{observation: plan.observation, context: plan.context}]
  return parts.flatMap(({observation, context}) => context.estate.databases.flatMap((db) => {
    const observed = observation.databases.get(db.name)
    return observed?.unreachable ? [{database: db.name, reason: observed.unreachable, timed_out: observed.timedOut ?? false}] : []
  }))
}
