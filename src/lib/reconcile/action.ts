import type {SqlFile} from '../migrate/files.js'

/**
 * One step of a reconciliation plan: what `db plan` shows and `db init` applies. Every area
 * (server settings, roles, databases, extensions, SQL, queues, grants, CDC, pg_cron) turns the
 * difference between what it observed and the topology into actions; nothing else decides.
 */

/** The areas, in the order db init applies them (each depends on the ones before). */
export const AREAS = ['server', 'roles', 'databases', 'extensions', 'sql', 'queues', 'grants', 'cdc', 'cron'] as const
export type Area = (typeof AREAS)[number]

/** What the admin must be able to do for this step; `provider` is a step only the server's provider can take. */
export type Privilege = 'superuser' | 'createrole' | 'createdb' | 'owner' | 'replication' | 'provider'

/** Why the step is needed. `extra`: present but not declared (a revoke, an unschedule); `drifted`: changed behind our back. */
export type Reason = 'missing' | 'changed' | 'extra' | 'drifted'

/** How db init runs an action (never printed: `sql` is the redacted form of what runs). */
export type Step =
  /** statements in order, each on its own (autocommit) on the connection named by `on` */
  | {kind: 'sql'; on: 'admin' | 'database' | 'cron'; statements: string[]}
  /** one SQL file of a component, through the migration runner (one transaction, ledger row) */
  | {kind: 'sql-file'; file: SqlFile}
  /** the logical slot of a singularity database (waits for running transactions, retries a reload) */
  | {kind: 'cdc-slot'; slot: string}
  /** not applicable by db init: a restart, a package, or a refused change; `error` says why */
  | {kind: 'manual'; code: string}

export interface Action {
  area: Area
  /** the database it targets; null for server-wide steps (settings, roles) */
  database: string | null
  /** the server it runs on; null = the admin server (room for estates spread over several servers) */
  server: string | null
  /** what it does, one line */
  description: string
  /** the exact SQL it runs, secrets redacted (for an SQL file: a reference to the file) */
  sql: string[]
  destructive: boolean
  privilege: Privilege
  reason: Reason
  /** db init refuses to run while this action is in the plan (e.g. an applied migration that changed) */
  refused?: boolean
  /** what it acts on, for readers that group actions (a job name, a table, a queue) */
  subject?: string
  /** the fields that differ, for `changed` and `drifted` actions, e.g. ["schedule", "user"] */
  differences?: string[]
  step: Step
}

/** The printable part of an action (no step). */
export type PublicAction = Omit<Action, 'step'>

export function publicAction(action: Action): PublicAction {
  const {step: _step, ...rest} = action
  return rest
}

/** Builds an action that runs plain SQL; `shown` replaces `statements` in the plan when they hold a secret. */
export function sqlAction(
  fields: Omit<Action, 'step' | 'sql' | 'server'> & {server?: string | null},
  on: 'admin' | 'database' | 'cron',
  statements: string[],
  shown: string[] = statements,
): Action {
  return {server: null, ...fields, sql: shown, step: {kind: 'sql', on, statements}}
}

/** Whether db init runs this action (manual steps and refusals are reported, never run). */
export function isApplicable(action: Action): boolean {
  return action.step.kind !== 'manual' && !action.refused
}
