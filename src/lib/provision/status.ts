import type {ResolvedConfig} from '../config/resolve.js'
import type {FilePlan} from '../migrate/runner.js'
import {publicAction, type Action, type PublicAction} from '../reconcile/action.js'
import {planDocument, planEstate, type Plan, type ServerInfo} from '../reconcile/plan.js'
import {schedulesFor} from '../../schedules.js'
import {OPTIONAL_EXTENSIONS} from '../../topology.js'
import type {ReadBound, SharedClients, Unreadable} from '../estate/visit.js'
import {defaultPasswordsFile} from './passwords.js'
import {SESSION_KEY} from './session-key.js'

export type Verdict = 'ok' | 'pending' | 'drifted' | 'missing' | 'unreachable' | 'misowned'

export interface DatabaseStatus {
  name: string
  kind: string
  /** the server it is placed on (`main` = the admin server) */
  server: string
  reachable: boolean
  error?: string
  /** unreachable because it did not answer within the per-database timeout */
  timedOut?: boolean
  owner: string | null
  expectedOwner: string
  extensions: {name: string; version: string}[]
  fallbacks: {feature: string; implementation: string}[]
  migrations: {applied: number; pending: number; changed: number; drifted: number; skipped: number; files: FilePlan[]}
  queueEngine: string | null
  queuesMissing: string[]
  /** the plan's actions on this database, one line each */
  drift: string[]
  verdict: Verdict
}

export interface EstateStatus {
  server: {version: string; walLevel: string; cronPreloaded: boolean; cronDatabase: string}
  /** every server of the estate: reachable or not, its facts, the databases placed there */
  servers: ServerInfo[]
  prefix: string
  instances: number
  roles: {name: string; exists: boolean}[]
  databases: DatabaseStatus[]
  /** the plan (`db plan`) this status is read from: actions and counts */
  plan: {summary: ReturnType<typeof planDocument>['summary']; actions: PublicAction[]; warnings: string[]; providerSteps: PublicAction[]}
  /** copies of estate databases restored by the tool, with their access; an open one is drift in the plan */
  copies: ReturnType<typeof planDocument>['copies']
  /** databases that could not be read (refused, failed, or past the per-database timeout), in estate order */
  unreadable: Unreadable[]
  /** the server's connection and pg_cron limits against the estate (warnings in plan.warnings) */
  capacity: ReturnType<typeof planDocument>['capacity']
  /** where the agent sessions' encryption key lives, and that backups hold it (only with singularity databases) */
  sessionKey: typeof SESSION_KEY | null
  verdict: Verdict
}

const ORDER: Verdict[] = ['ok', 'pending', 'misowned', 'drifted', 'missing', 'unreachable']
const worse = (a: Verdict, b: Verdict): Verdict => (ORDER.indexOf(b) > ORDER.indexOf(a) ? b : a)

/** The verdict a set of actions gives: drift (extra or drifted, a refusal) is worse than work still to do. */
export function verdictOf(actions: Action[]): Verdict {
  let verdict: Verdict = 'ok'
  for (const a of actions) {
    if (a.refused || a.reason === 'extra' || a.reason === 'drifted') verdict = worse(verdict, 'drifted')
    else if (a.area === 'databases' && a.differences?.includes('owner')) verdict = worse(verdict, 'misowned')
    else verdict = worse(verdict, 'pending')
  }
  return verdict
}

/** How the server stands against the estate, read from the one plan `db plan` prints. */
export function statusFromPlan(plan: Plan): EstateStatus {
  const databases = plan.databases.map((d): DatabaseStatus => {
    const actions = plan.actions.filter((a) => a.database === d.name)
    const count = (state: FilePlan['state']) => d.files.filter((f) => f.state === state).length
    const installed = new Set(d.extensions.map((e) => e.name))
    const fallbacks =
      d.features.length > 0
        ? d.features
        : OPTIONAL_EXTENSIONS.filter((o) => o.databases.includes(d.kind as never)).map((o) => ({feature: o.feature, implementation: installed.has(o.name) ? o.name : `fallback: ${o.fallback}`}))
    let verdict: Verdict = d.unreachable ? 'unreachable' : !d.exists ? 'missing' : verdictOf(actions)
    if (d.exists && !d.unreachable && d.owner !== d.expectedOwner) verdict = worse(verdict, 'misowned')
    return {
      name: d.name,
      kind: d.kind,
      server: d.server ?? 'main',
      reachable: d.exists && !d.unreachable,
      error: d.unreachable,
      ...(d.unreachable ? {timedOut: d.timedOut ?? false} : {}),
      owner: d.owner,
      expectedOwner: d.expectedOwner,
      extensions: d.extensions,
      fallbacks: d.exists && !d.unreachable ? fallbacks : [],
      migrations: {
        applied: count('applied'), pending: count('pending'), changed: count('changed'), drifted: count('drifted'), skipped: count('skipped'),
        files: d.files.filter((f) => f.state !== 'applied'),
      },
      queueEngine: d.queueEngine,
      queuesMissing: d.queuesMissing,
      drift: actions.map((a) => a.description),
      verdict,
    }
  })
  const names = new Set(plan.databases.map((d) => d.name))
  const elsewhere = plan.actions.filter((a) => a.database === null || !names.has(a.database))
  let verdict = databases.reduce<Verdict>((w, d) => worse(w, d.verdict), verdictOf(elsewhere))
  // a server that did not answer is unreachable even when no database of the selection is on it
  if (plan.servers.some((srv) => !srv.reachable)) verdict = worse(verdict, 'unreachable')
  const document = planDocument(plan)
  return {
    server: {version: plan.server.version, walLevel: plan.server.walLevel, cronPreloaded: plan.server.cronPreloaded, cronDatabase: plan.server.cronDatabase},
    servers: plan.servers,
    prefix: plan.prefix,
    instances: plan.instances,
    roles: plan.roles.map((r) => ({name: r.name, exists: r.exists})),
    databases,
    plan: {summary: document.summary, actions: plan.actions.map(publicAction), warnings: plan.warnings, providerSteps: document.providerSteps},
    copies: document.copies,
    unreadable: document.unreadable,
    capacity: document.capacity,
    sessionKey: databases.some((d) => d.kind === 'singularity') ? SESSION_KEY : null,
    verdict,
  }
}

/** `db status`: the plan of the estate as found on the server, as verdicts per database. */
export async function estateStatus(config: ResolvedConfig, bound?: Pick<ReadBound, 'concurrency' | 'timeoutMs'>, lateStartSeconds?: number, shared?: SharedClients): Promise<EstateStatus> {
  const plan = await planEstate({
    bound,
    shared,
    env: lateStartSeconds === undefined ? process.env : {...process.env, SINGULARITY_LATE_START_SECONDS: String(lateStartSeconds)},
    config,
    instances: config.instances,
    passwordsFile: process.env.SINGULARITY_PASSWORDS_FILE ?? defaultPasswordsFile(config),
    schedules: schedulesFor(process.env),
    applicationName: 'singularity db status',
    tolerateUnreachable: true,
  })
  return statusFromPlan(plan)
}
