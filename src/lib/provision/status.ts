import type pg from 'pg'

import type {ResolvedConfig} from '../config/resolve.js'
import {connect} from '../db/connect.js'
import {adminTarget, discoverEstate, onDatabase} from '../estate/targets.js'
import {planComponents, type FilePlan} from '../migrate/runner.js'
import {BUNDLED_QUEUE_COMPONENT, OPTIONAL_EXTENSIONS, type ConcreteDatabase} from '../../topology.js'
import {liveQueueEngine, missingQueues} from './queue-engine.js'
import {serverFacts} from './server.js'

export type Verdict = 'ok' | 'pending' | 'drifted' | 'missing' | 'unreachable' | 'misowned'

export interface DatabaseStatus {
  name: string
  kind: string
  reachable: boolean
  error?: string
  owner: string | null
  expectedOwner: string
  extensions: {name: string; version: string}[]
  fallbacks: {feature: string; implementation: string}[]
  migrations: {applied: number; pending: number; changed: number; drifted: number; skipped: number; files: FilePlan[]}
  queueEngine: string | null
  queuesMissing: string[]
  verdict: Verdict
}

export interface EstateStatus {
  server: {version: string; walLevel: string; cronPreloaded: boolean; cronDatabase: string}
  prefix: string
  instances: number
  roles: {name: string; exists: boolean}[]
  databases: DatabaseStatus[]
  verdict: Verdict
}

const ORDER: Verdict[] = ['ok', 'pending', 'misowned', 'drifted', 'missing', 'unreachable']

async function featureImplementations(client: pg.Client): Promise<{feature: string; implementation: string}[]> {
  const {rows} = await client.query<{exists: boolean}>("SELECT to_regproc('public.singularity_feature_implementations') IS NOT NULL AS exists")
  if (!rows[0].exists) return []
  const result = await client.query<{feature: string; implementation: string}>('SELECT feature, implementation FROM public.singularity_feature_implementations()')
  return result.rows
}

async function databaseStatus(admin: ReturnType<typeof adminTarget>, db: ConcreteDatabase, owner: string | undefined): Promise<DatabaseStatus> {
  const base: DatabaseStatus = {
    name: db.name, kind: db.kind, reachable: false, owner: owner ?? null, expectedOwner: db.owner, extensions: [], fallbacks: [],
    migrations: {applied: 0, pending: 0, changed: 0, drifted: 0, skipped: 0, files: []}, queueEngine: null, queuesMissing: [], verdict: 'missing',
  }
  if (owner === undefined) return base
  let client: pg.Client
  try {
    client = await connect(onDatabase(admin, db.name), {applicationName: 'singularity db status', statementTimeoutMs: 15_000})
  } catch (error) {
    return {...base, verdict: 'unreachable', error: (error as Error).message}
  }
  try {
    const ext = await client.query<{name: string; version: string}>('SELECT extname AS name, extversion AS version FROM pg_extension ORDER BY extname')
    const engine = db.spec.queues.length > 0 ? await liveQueueEngine(client) : null
    const components = [...(engine === 'bundled' || (db.spec.queues.length > 0 && engine === null) ? [BUNDLED_QUEUE_COMPONENT] : []), ...db.spec.components]
    const files = await planComponents(client, components)
    const count = (state: FilePlan['state']) => files.filter((f) => f.state === state).length
    const queuesMissing = await missingQueues(client, db.spec.queues)
    const installed = new Set(ext.rows.map((e) => e.name))
    const declared = await featureImplementations(client)
    const fallbacks = declared.length > 0
      ? declared
      : OPTIONAL_EXTENSIONS.filter((o) => o.databases.includes(db.kind)).map((o) => ({feature: o.feature, implementation: installed.has(o.name) ? o.name : `fallback: ${o.fallback}`}))
    const migrations = {applied: count('applied'), pending: count('pending'), changed: count('changed'), drifted: count('drifted'), skipped: count('skipped'), files: files.filter((f) => f.state !== 'applied')}
    const missingExtensions = db.spec.extensions.filter((e) => !installed.has(e))
    let verdict: Verdict = 'ok'
    if (migrations.pending + migrations.changed > 0 || queuesMissing.length > 0 || missingExtensions.length > 0) verdict = 'pending'
    if (owner !== db.owner) verdict = 'misowned'
    if (migrations.drifted > 0) verdict = 'drifted'
    return {...base, reachable: true, extensions: ext.rows, fallbacks, migrations, queueEngine: engine, queuesMissing, verdict}
  } finally {
    await client.end().catch(() => {})
  }
}

/** How the server stands against the estate: per database reachability, owner, extensions, migrations, queues. */
export async function estateStatus(config: ResolvedConfig): Promise<EstateStatus> {
  const admin = adminTarget(config)
  const client = await connect(admin, {applicationName: 'singularity db status', statementTimeoutMs: 15_000})
  try {
    const facts = await serverFacts(client)
    const e = await discoverEstate(config, client)
    const owners = await client.query<{datname: string; owner: string}>('SELECT datname, pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = ANY($1)', [e.databases.map((d) => d.name)])
    const ownerOf = new Map(owners.rows.map((r) => [r.datname, r.owner]))
    const roles = await client.query<{rolname: string}>('SELECT rolname FROM pg_roles WHERE rolname = ANY($1)', [e.roles.map((r) => r.name)])
    const haveRoles = new Set(roles.rows.map((r) => r.rolname))
    const databases = await Promise.all(e.databases.map((db) => databaseStatus(admin, db, ownerOf.get(db.name))))
    const roleList = e.roles.map((r) => ({name: r.name, exists: haveRoles.has(r.name)}))
    let verdict = databases.reduce<Verdict>((worst, d) => (ORDER.indexOf(d.verdict) > ORDER.indexOf(worst) ? d.verdict : worst), 'ok')
    if (verdict === 'ok' && roleList.some((r) => !r.exists)) verdict = 'pending'
    return {
      server: {version: facts.version, walLevel: facts.walLevel, cronPreloaded: facts.preload.includes('pg_cron'), cronDatabase: facts.cronDatabase},
      prefix: e.prefix,
      instances: e.instances,
      roles: roleList,
      databases,
      verdict,
    }
  } finally {
    await client.end().catch(() => {})
  }
}
