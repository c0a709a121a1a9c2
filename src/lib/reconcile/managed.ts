import {CliError} from '../cli/errors.js'
import type {InstalledCronJob} from '../cron/install.js'
import type {PlannedCronJob} from '../cron/names.js'
import type {ServerFacts} from '../provision/server.js'
import {quoteIdent, quoteLiteral} from '../sql/quote.js'
import type {Estate} from '../../topology.js'
import {roleAttributes} from './roles.js'
import type {Action, Privilege} from './action.js'
import {installedByName, matchInstalled} from './cron.js'

/**
 * Managed servers: the admin is not a superuser (RDS's rds_superuser, Cloud SQL's
 * cloudsqlsuperuser, Azure's azure_pg_admin, Supabase's postgres: CREATEROLE, CREATEDB,
 * REPLICATION). The diffs plan as for a superuser; this module then turns each action the admin
 * cannot run into its managed equivalent where one exists, or into a provider step (a manual step
 * in provider-neutral words). An action that needs an attribute the admin lacks and that no
 * provider setting replaces (CREATEROLE for roles, CREATEDB for databases) is `lacking`: db init
 * refuses before changing anything.
 */

/** Whether the admin may call cron.schedule_in_database and cron.alter_job (pg_cron 1.4 revokes them from PUBLIC). */
export const CRON_IN_OTHER_DATABASES_SQL = `coalesce(has_function_privilege(to_regprocedure('cron.schedule_in_database(text,text,text,text,text,boolean)'), 'EXECUTE')
  AND has_function_privilege(to_regprocedure('cron.alter_job(bigint,text,text,text,text,boolean)'), 'EXECUTE'), false)`

/** What the admin is, for adapting a plan. */
export type AdminFacts = Pick<ServerFacts, 'superuser' | 'createrole' | 'createdb' | 'replication' | 'user' | 'trusted' | 'available' | 'cronDatabase'>

export interface CronFacts {
  database: string
  scheduleInOtherDatabases: boolean
  planned: PlannedCronJob[]
  installed: InstalledCronJob[]
}

export interface AdaptedActions {
  /** what db init runs (rewritten for the admin where needed) */
  actions: Action[]
  /** steps only the server's provider can take; db init lists them and goes on without them */
  provider: Action[]
  /** steps that need an attribute the admin lacks: db init refuses before changing anything */
  lacking: Action[]
}

/** A provider step: never run by db init, described in words any provider's console or support understands. */
export function providerStep(from: Pick<Action, 'area' | 'database' | 'subject' | 'reason'>, description: string, sql: string[] = []): Action {
  return {
    area: from.area, database: from.database, server: null, description, sql, destructive: false, privilege: 'provider', reason: from.reason,
    ...(from.subject ? {subject: from.subject} : {}), step: {kind: 'manual', code: 'PROVIDER_STEP'},
  }
}

/** PostgreSQL 15 keeps the REPLICATION attribute for superusers to give: the CDC reader's role gets it from the provider. */
function replicationStep(action: Action, role: string): Action {
  return providerStep({...action, reason: 'missing'}, `grant the REPLICATION attribute to role ${role} (it reads the change data capture slot)`, [`ALTER ROLE ${quoteIdent(role)} REPLICATION`])
}

/** The words of the server settings' manual steps for a provider (by the code diffServer gives them). */
function serverStepWords(action: Action, facts: AdminFacts): string {
  const code = action.step.kind === 'manual' ? action.step.code : ''
  if (code === 'WAL_LEVEL') return 'set the server parameter wal_level = logical (change data capture; applied at the next restart)'
  if (code === 'PG_CRON_MISSING') return 'allow the extension pg_cron on the server'
  if (code === 'PG_CRON_NOT_PRELOADED') return `preload pg_cron (shared_preload_libraries) and set cron.database_name = ${facts.cronDatabase} (applied at the next restart)`
  if (action.subject === undefined && action.description.includes('wal2json')) return 'allow the wal2json logical decoding output plugin'
  return action.description
}

function lacks(facts: AdminFacts, privilege: Privilege): boolean {
  if (facts.superuser) return false
  if (privilege === 'createrole') return !facts.createrole
  if (privilege === 'createdb') return !facts.createdb
  if (privilege === 'replication') return !facts.replication
  return privilege === 'superuser' || privilege === 'provider'
}

const sql = (action: Action, statements: string[], privilege: Privilege, extra: Partial<Action> = {}): Action => ({
  ...action, ...extra, privilege, sql: statements, step: {kind: 'sql', on: action.step.kind === 'sql' ? action.step.on : 'admin', statements},
})

/**
 * Rewrites a plan's actions for the admin. A superuser's plan comes back unchanged. Otherwise:
 * - server settings and packages: provider steps;
 * - a role with REPLICATION (PostgreSQL 15 keeps that attribute for superusers): created without
 *   it, and granting it is a provider step; resetting SUPERUSER/REPLICATION/BYPASSRLS likewise;
 * - a database is created (or handed over) after making the admin a member of its owner role,
 *   which PostgreSQL 15 requires of a non-superuser, and which lets the admin keep managing grants
 *   in it and dump it;
 * - an extension: created by the admin where the server marks it trusted (pgcrypto), else "allow
 *   the extension" is a provider step (the queue engine has chosen the bundled one already);
 * - pg_cron: the extension is the provider's; jobs go through cron.schedule (the cron database,
 *   run as the admin) unless the admin may call cron.schedule_in_database; a job in another
 *   database is otherwise a provider step;
 * - the CDC slot needs REPLICATION; without it, a provider step.
 */
export function adaptToAdmin(actions: Action[], facts: AdminFacts, estate: Estate, cron: CronFacts | null = null): AdaptedActions {
  const out: AdaptedActions = {actions: [], provider: [], lacking: []}
  if (facts.superuser) return {...out, actions}
  const admin = quoteIdent(facts.user)
  for (const action of actions) {
    if (action.area === 'server') {
      out.provider.push(providerStep(action, serverStepWords(action, facts), action.sql))
      continue
    }
    if (action.area === 'roles') {
      const role = estate.roles.find((r) => r.name === action.subject)
      if (action.reason === 'missing' && role?.replication && action.step.kind === 'sql') {
        const strip = (s: string) => s.replace(roleAttributes(true), roleAttributes(false))
        if (lacks(facts, 'createrole')) out.lacking.push({...action, privilege: 'createrole'})
        else out.actions.push(sql(action, action.step.statements.map(strip), 'createrole', {sql: action.sql.map(strip), description: `${action.description}, without REPLICATION`}))
        out.provider.push(replicationStep(action, role.name))
        continue
      }
      if (action.reason === 'drifted' && action.differences) {
        const own: string[] = action.differences.filter((d) => d === 'login' || d === 'createdb' || d === 'createrole')
        const rest = action.differences.filter((d) => !own.includes(d))
        if (own.length > 0 && facts.createrole) {
          const words: Record<string, string> = {login: 'LOGIN', createdb: 'NOCREATEDB', createrole: 'NOCREATEROLE'}
          const clause = own.map((d) => words[d]).join(' ')
          out.actions.push(sql(action, [`ALTER ROLE ${quoteIdent(action.subject!)} ${clause}`], 'createrole', {differences: own}))
        }
        if (rest.length === 1 && rest[0] === 'replication' && role?.replication) out.provider.push(replicationStep(action, role.name))
        else if (rest.length > 0) out.provider.push(providerStep(action, `reset ${rest.join(', ')} of role ${action.subject} (${roleAttributes(role?.replication ?? false)})`, action.sql))
        continue
      }
    }
    if (action.area === 'databases' && action.step.kind === 'sql' && (action.reason === 'missing' || action.differences?.includes('owner')) && action.description.match(/^(create|give) database/)) {
      const db = estate.databases.find((d) => d.name === action.database)!
      const needs: Privilege = action.reason === 'missing' ? 'createdb' : 'owner'
      if (lacks(facts, needs) || !facts.createrole) {
        // joining the owner role takes CREATEROLE (PostgreSQL 15: only a member may create a database for a role)
        out.lacking.push({...action, privilege: lacks(facts, needs) ? needs : 'createrole'})
        continue
      }
      const membership = `GRANT ${quoteIdent(db.owner)} TO ${admin}`
      out.actions.push(sql(action, [membership, ...action.step.statements], needs, {sql: [membership, ...action.sql], description: `${action.description} (the admin joins role ${db.owner} first)`}))
      continue
    }
    if (action.area === 'extensions' && action.privilege === 'superuser') {
      const name = action.subject!
      if (facts.trusted.has(name)) out.actions.push({...action, privilege: 'owner', description: `${action.description} (a trusted extension)`})
      else out.provider.push(providerStep(action, `allow the extension ${name} in database ${action.database}${facts.available.has(name) ? '' : ' (install it on the server)'}`, action.sql))
      continue
    }
    if (action.area === 'cron') {
      adaptCron(action, facts, cron, out)
      continue
    }
    if (action.area === 'cdc' && action.privilege === 'replication' && lacks(facts, 'replication')) {
      out.provider.push(providerStep(action, `${action.description} (needs the REPLICATION attribute: grant it to ${facts.user}, or create the slot)`, action.sql))
      continue
    }
    if (lacks(facts, action.privilege)) {
      if (action.privilege === 'createrole' || action.privilege === 'createdb') out.lacking.push(action)
      else out.provider.push(providerStep(action, action.description, action.sql))
      continue
    }
    out.actions.push(action)
  }
  return out
}

/** pg_cron's actions for an admin without superuser (see adaptToAdmin). */
function adaptCron(action: Action, facts: AdminFacts, cron: CronFacts | null, out: AdaptedActions): void {
  if (action.subject === 'pg_cron' && action.reason === 'missing') {
    out.provider.push(providerStep(action, `create the extension pg_cron in database ${action.database} (the cron database) and grant USAGE on schema cron to ${facts.user}`, action.sql))
    return
  }
  if (action.reason === 'extra') {
    // cron.unschedule works on the admin's own jobs; others' jobs are hidden from it by pg_cron's row security
    out.actions.push({...action, privilege: 'owner'})
    return
  }
  const job = cron?.planned.find((p) => p.jobname === action.subject)
  if (!cron || !job) {
    out.provider.push(providerStep(action, action.description, action.sql))
    return
  }
  if (cron.scheduleInOtherDatabases) {
    out.actions.push({...action, privilege: 'owner', description: `${action.description}, run as ${facts.user}`})
    return
  }
  if (job.database !== cron.database) {
    const call = `SELECT cron.schedule_in_database(${[job.jobname, job.schedule, job.command, job.database, facts.user].map(quoteLiteral).join(', ')})`
    out.provider.push(providerStep(
      action,
      `schedule pg_cron job ${job.jobname} (${job.schedule}) in ${job.database}, run as ${facts.user}: grant ${facts.user} EXECUTE on cron.schedule_in_database and cron.alter_job (pg_cron keeps them for superusers)`,
      [call],
    ))
    return
  }
  const schedule = `SELECT cron.schedule(${[job.jobname, job.schedule, job.command].map(quoteLiteral).join(', ')})`
  if (action.reason === 'missing') {
    out.actions.push(sql(action, [schedule], 'owner', {description: `${action.description}, run as ${facts.user} (cron.schedule)`}))
    return
  }
  // drifted: cron.alter_job is kept for superusers; the admin's own job is scheduled again (a new id, its history stays)
  const current = matchInstalled(job, installedByName(cron.installed), facts.user)
  if (current && current.username === facts.user) {
    out.actions.push(sql(action, [`SELECT cron.unschedule(${current.jobid}::bigint)`, schedule], 'owner', {description: `${action.description} (scheduled again, run as ${facts.user})`}))
  } else {
    out.provider.push(providerStep(action, `${action.description} (the job belongs to ${current?.username ?? 'another user'})`, action.sql))
  }
}

/** The preflight of an admin without superuser: only what no provider step replaces stops db init. */
// (what the admin lacks is decided from the plan: an estate that already exists needs no CREATEROLE)
export function managedPreflightProblems(facts: Pick<ServerFacts, 'version' | 'versionNum'>): CliError[] {
  if (facts.versionNum >= 140_000) return []
  return [new CliError(`PostgreSQL ${facts.version} is too old`, {hint: 'singularity supports PostgreSQL 14 to 17', code: 'SERVER_TOO_OLD'})]
}

/** Whether the admin can create this extension: the server has it, and it is trusted or the admin is a superuser. */
export function creatableBy(facts: Pick<ServerFacts, 'available' | 'superuser' | 'trusted'>, name: string): boolean {
  return facts.available.has(name) && (facts.superuser || facts.trusted.has(name))
}

/** The refusal of a plan with steps the admin lacks the attributes for (before anything changes). */
export function lackingError(lacking: Action[], user: string): CliError {
  const needs = [...new Set(lacking.map((a) => a.privilege))].join(', ')
  return new CliError(`the admin role '${user}' cannot take ${lacking.length} required step(s) (needs ${needs}): ${lacking.slice(0, 3).map((a) => a.description).join('; ')}${lacking.length > 3 ? '; …' : ''}`, {
    hint: 'nothing was changed. Ask the provider for an admin role with CREATEROLE, CREATEDB and REPLICATION, or connect as a superuser',
    code: 'ADMIN_LACKS_PRIVILEGE',
  })
}

/**
 * The part of a database an admin without superuser can act on: objects owned by the admin or an
 * estate role (it joins the owners). A trusted extension's objects (pgcrypto's functions) belong
 * to the bootstrap superuser: a GRANT on them by another role only warns and grants nothing, so
 * they are left out of the grants diff rather than planned for ever.
 */
export function manageableBy<T extends {relations: {owner: string}[]; routines: {owner: string}[]}>(observed: T, facts: Pick<ServerFacts, 'superuser' | 'user'>, estate: Estate): T {
  if (facts.superuser) return observed
  const ours = new Set([facts.user, ...estate.roles.map((r) => r.name)])
  return {...observed, relations: observed.relations.filter((r) => ours.has(r.owner)), routines: observed.routines.filter((r) => ours.has(r.owner))}
}
