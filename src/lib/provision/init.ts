import type pg from 'pg'

import {CliError} from '../cli/errors.js'
import type {ResolvedConfig} from '../config/resolve.js'
import {connect} from '../db/connect.js'
import {adminTarget, onDatabase} from '../estate/targets.js'
import {componentFiles} from '../migrate/files.js'
import {applyComponents, planComponents, type FilePlan} from '../migrate/runner.js'
import {quoteIdent} from '../sql/quote.js'
import {BUNDLED_QUEUE_COMPONENT, CRON_EXTENSION, OPTIONAL_EXTENSIONS, estate as expandEstate, type ConcreteDatabase, type Estate, type QueueEngine} from '../../topology.js'
import {applyGrants, restrictConnect} from './grants.js'
import {readPasswordFile, writePasswordFile} from './passwords.js'
import {chooseQueueEngine, liveQueueEngine, missingQueues, type EngineChoice} from './queue-engine.js'
import {ensureRole, existingRoles, planPasswords, type RolePlan} from './roles.js'
import {preflightProblems, serverFacts, type ServerFacts} from './server.js'

/** Extra provisioning steps owned by other areas (change capture, schedules), plugged in by the command. */
export interface InitHooks {
  /** per singularity database, on an admin connection to it */
  cdc?: (client: pg.Client, db: ConcreteDatabase, dryRun: boolean) => Promise<{changes: string[]; warnings: string[]; detail?: unknown}>
  /** once, on an admin connection to the cron database */
  schedules?: (client: pg.Client, estate: Estate, dryRun: boolean) => Promise<{changes: string[]; warnings: string[]; detail?: unknown}>
}

export interface InitOptions {
  config: ResolvedConfig
  instances: number
  queueEngine: EngineChoice
  dryRun: boolean
  passwordsFile: string
  env?: NodeJS.ProcessEnv
  progress?: (message: string) => void
  hooks?: InitHooks
}

export interface DatabaseReport {
  name: string
  kind: string
  owner: string
  created: boolean
  extensionsCreated: string[]
  queueEngine: QueueEngine | null
  files: FilePlan[]
  applied: string[]
  reapplied: string[]
  queuesCreated: string[]
  cdc?: unknown
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
  schedules?: unknown
  changes: string[]
  warnings: string[]
}

/** One key for every db init on a server: concurrent runs wait for each other instead of failing. */
const INIT_LOCK = "hashtext('singularity.db-init')"

async function takeInitLock(client: pg.Client, progress?: (m: string) => void): Promise<void> {
  const {rows} = await client.query<{ok: boolean}>(`SELECT pg_try_advisory_lock(${INIT_LOCK}) AS ok`)
  if (rows[0].ok) return
  progress?.('another db init is running on this server; waiting for it to finish')
  await client.query(`SELECT pg_advisory_lock(${INIT_LOCK})`)
}

async function databaseOwners(client: pg.Client, names: string[]): Promise<Map<string, string>> {
  const {rows} = await client.query<{datname: string; owner: string}>(
    'SELECT datname, pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = ANY($1)',
    [names],
  )
  return new Map(rows.map((r) => [r.datname, r.owner]))
}

/** A database of our name that another role owns is someone else's: never taken over. */
function refuseForeignDatabases(e: Estate, owners: Map<string, string>, admin: string): void {
  for (const db of e.databases) {
    const owner = owners.get(db.name)
    if (owner !== undefined && owner !== db.owner && owner !== admin) {
      throw new CliError(`database ${db.name} already exists and is owned by ${owner}, not ${db.owner}`, {
        hint: 'it is not ours: rename or drop it, or provision under another name with --prefix',
        code: 'DATABASE_TAKEN',
      })
    }
  }
}

function optionalReport(facts: ServerFacts): OptionalExtensionReport[] {
  return OPTIONAL_EXTENSIONS.map((ext) => ({
    name: ext.name,
    feature: ext.feature,
    available: facts.available.has(ext.name),
    implementation: facts.available.has(ext.name) ? ext.name : `fallback: ${ext.fallback}`,
  }))
}

async function provisionDatabase(
  admin: ReturnType<typeof adminTarget>,
  db: ConcreteDatabase,
  facts: ServerFacts,
  options: InitOptions,
  created: boolean,
  changes: string[],
  warnings: string[],
): Promise<DatabaseReport> {
  const report: DatabaseReport = {
    name: db.name, kind: db.kind, owner: db.owner, created, extensionsCreated: [], queueEngine: null, files: [], applied: [], reapplied: [], queuesCreated: [],
  }
  const wantsQueues = db.spec.queues.length > 0
  const optional = OPTIONAL_EXTENSIONS.filter((e) => e.databases.includes(db.kind) && facts.available.has(e.name)).map((e) => e.name)
  const extensions = [...db.spec.extensions, ...optional]

  if (options.dryRun && created) {
    // The database does not exist yet: everything in it is to be done.
    report.extensionsCreated = extensions
    const engine = wantsQueues ? chooseQueueEngine(options.queueEngine, null, facts.available.has('pgmq'), db.name) : null
    report.queueEngine = engine
    const components = [...(engine === 'bundled' ? [BUNDLED_QUEUE_COMPONENT] : []), ...db.spec.components]
    report.files = components.flatMap((c) => componentFiles(c)).map((f) => ({component: f.component, file: f.name, kind: f.kind, state: 'pending' as const}))
    report.queuesCreated = [...db.spec.queues]
    return report
  }

  const client = await connect(onDatabase(admin, db.name), {applicationName: 'singularity db init', lockTimeoutMs: 30_000})
  try {
    const {rows} = await client.query<{extname: string}>('SELECT extname FROM pg_extension')
    const installed = new Set(rows.map((r) => r.extname))
    for (const ext of extensions.filter((e) => !installed.has(e))) {
      report.extensionsCreated.push(ext)
      if (!options.dryRun) {
        const schema = OPTIONAL_EXTENSIONS.find((o) => o.name === ext)?.schema
        if (schema) await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`)
        await client.query(`CREATE EXTENSION IF NOT EXISTS ${quoteIdent(ext)}${schema ? ` SCHEMA ${quoteIdent(schema)}` : ''}`)
        changes.push(`created extension ${ext} in ${db.name}`)
      }
    }

    let components = [...db.spec.components]
    if (wantsQueues) {
      const live = await liveQueueEngine(client)
      const engine = chooseQueueEngine(options.queueEngine, live, facts.available.has('pgmq'), db.name)
      report.queueEngine = engine
      if (engine === 'bundled') components = [BUNDLED_QUEUE_COMPONENT, ...components]
      else if (!live && !options.dryRun) {
        await client.query('CREATE EXTENSION IF NOT EXISTS pgmq')
        changes.push(`created extension pgmq in ${db.name}`)
      }
    }

    if (options.dryRun) {
      report.files = await planComponents(client, components)
      report.queuesCreated = wantsQueues ? await missingQueues(client, db.spec.queues) : []
      return report
    }

    const result = await applyComponents(client, components, {progress: (m) => options.progress?.(`${db.name}: ${m}`)})
    report.files = result.plan
    report.applied = result.applied
    report.reapplied = result.reapplied
    for (const f of result.applied) changes.push(`applied sql/${f} to ${db.name}`)
    for (const f of result.reapplied) changes.push(`re-applied changed sql/${f} to ${db.name}`)

    for (const queue of await missingQueues(client, db.spec.queues)) {
      await client.query('SELECT pgmq.create($1)', [queue])
      report.queuesCreated.push(queue)
      changes.push(`created queue ${queue} in ${db.name}`)
    }

    await applyGrants(client, db.grants)

    if (db.spec.cdc && options.hooks?.cdc) {
      const cdc = await options.hooks.cdc(client, db, false)
      changes.push(...cdc.changes)
      warnings.push(...cdc.warnings)
      report.cdc = cdc.detail
    }
    return report
  } finally {
    await client.end().catch(() => {})
  }
}

/**
 * Brings a server to the estate: roles, databases with CONNECT isolation, extensions, the queue
 * engine and queues, SQL components, grants, change capture and schedules. Idempotent; serialised
 * per server; every step can be re-run, so an interrupted init is finished by the next one.
 */
export async function initEstate(options: InitOptions): Promise<InitResult> {
  const env = options.env ?? process.env
  const admin = adminTarget(options.config)
  const e = expandEstate({prefix: options.config.prefix, instances: options.instances})
  const changes: string[] = []
  const warnings: string[] = []

  const client = await connect(admin, {applicationName: 'singularity db init', lockTimeoutMs: 30_000})
  try {
    const facts = await serverFacts(client)
    const problems = preflightProblems(facts)
    if (problems.length > 0) {
      const [first, ...rest] = problems
      throw new CliError(first.message + (rest.length > 0 ? ` (and ${rest.length} more: ${rest.map((p) => p.code).join(', ')})` : ''), {
        hint: first.hint,
        code: first.code,
      })
    }
    if (!options.dryRun) await takeInitLock(client, options.progress)

    const owners = await databaseOwners(client, e.databases.map((d) => d.name))
    refuseForeignDatabases(e, owners, facts.user)

    // Roles: passwords are decided and saved (0600) before any role is created, so a run killed
    // in between never leaves a role whose generated password is lost.
    const roleNames = e.roles.map((r) => r.name)
    const exists = await existingRoles(client, roleNames)
    const fromFile = readPasswordFile(options.passwordsFile)
    const {plans, passwords} = planPasswords(e.roles, exists, fromFile, env)
    if (!options.dryRun) {
      const generated = plans.filter((p) => p.passwordSource === 'generated' || p.passwordSource === 'env')
      if (generated.length > 0) writePasswordFile(options.passwordsFile, {...fromFile, ...Object.fromEntries(generated.map((p) => [p.name, passwords[p.name]]))})
      for (const plan of plans) {
        if (await ensureRole(client, plan, passwords[plan.name])) changes.push(`${plan.exists ? 'updated password of' : 'created'} role ${plan.name}`)
      }
    }

    // Databases: created with their owner; CONNECT revoked from PUBLIC. Then each is provisioned
    // on its own connection, all at once (changes are reported in estate order).
    for (const db of e.databases) {
      if (options.dryRun) continue
      if (!owners.has(db.name)) {
        options.progress?.(`create database ${db.name}`)
        await client.query(`CREATE DATABASE ${quoteIdent(db.name)} OWNER ${quoteIdent(db.owner)}`)
        changes.push(`created database ${db.name} owned by ${db.owner}`)
      } else if (owners.get(db.name) !== db.owner) {
        await client.query(`ALTER DATABASE ${quoteIdent(db.name)} OWNER TO ${quoteIdent(db.owner)}`)
        changes.push(`gave database ${db.name} to ${db.owner}`)
      }
      await restrictConnect(client, db.name, db.owner, db.connect)
    }
    const perDatabase = await Promise.all(
      e.databases.map(async (db) => {
        const dbChanges: string[] = []
        const dbWarnings: string[] = []
        const report = await provisionDatabase(admin, db, facts, options, !owners.has(db.name), dbChanges, dbWarnings)
        return {report, dbChanges, dbWarnings}
      }),
    )
    const databases = perDatabase.map((d) => d.report)
    for (const d of perDatabase) {
      changes.push(...d.dbChanges)
      warnings.push(...d.dbWarnings)
    }

    // pg_cron lives in the cron database and schedules into the others.
    let schedules: unknown
    const cronClient = await connect(onDatabase(admin, facts.cronDatabase), {applicationName: 'singularity db init'})
    try {
      const {rows} = await cronClient.query<{installed: boolean}>(`SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = '${CRON_EXTENSION}') AS installed`)
      if (!rows[0].installed && !options.dryRun) {
        await cronClient.query(`CREATE EXTENSION IF NOT EXISTS ${CRON_EXTENSION}`)
        changes.push(`created extension ${CRON_EXTENSION} in ${facts.cronDatabase}`)
      }
      if (options.hooks?.schedules && (rows[0].installed || !options.dryRun)) {
        const result = await options.hooks.schedules(cronClient, e, options.dryRun)
        changes.push(...result.changes)
        warnings.push(...result.warnings)
        schedules = result.detail
      }
    } finally {
      await cronClient.end().catch(() => {})
    }

    const planned = options.dryRun && (plans.some((p) => !p.exists) || databases.some((d) => d.created || d.files.some((f) => f.state !== 'applied' && f.state !== 'skipped') || d.queuesCreated.length > 0 || d.extensionsCreated.length > 0))
    return {
      status: options.dryRun ? (planned ? 'planned' : 'up-to-date') : changes.length > 0 ? 'applied' : 'up-to-date',
      dryRun: options.dryRun,
      server: {version: facts.version, user: facts.user, cronDatabase: facts.cronDatabase},
      prefix: e.prefix,
      instances: e.instances,
      roles: plans,
      passwordsFile: options.passwordsFile,
      databases,
      optionalExtensions: optionalReport(facts),
      schedules,
      changes,
      warnings,
    }
  } finally {
    if (!options.dryRun) await client.query(`SELECT pg_advisory_unlock(${INIT_LOCK})`).catch(() => {})
    await client.end().catch(() => {})
  }
}
