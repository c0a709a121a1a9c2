import type pg from 'pg'

import {SESSION_KEY} from '../provision/session-key.js'
import type {EstateStatus} from '../provision/status.js'
import type {CheckResult} from './types.js'

/** Every database reachable, owned right, migrations current and without drift. */
export function databaseChecks(status: EstateStatus): CheckResult[] {
  const unreachable = status.databases.filter((d) => d.verdict === 'unreachable' || d.verdict === 'missing')
  const drifted = status.databases.filter((d) => d.migrations.drifted > 0)
  const pending = status.databases.filter((d) => d.migrations.pending + d.migrations.changed > 0 || d.verdict === 'misowned')
  return [
    {
      check: 'databases reachable',
      status: unreachable.length > 0 ? 'fail' : 'ok',
      detail:
        unreachable.length > 0
          ? `${unreachable.map((d) => (d.error ? `${d.name} ${d.timedOut ? 'timed out' : d.verdict} (${d.error.startsWith(d.name) ? d.error.slice(d.name.length).replace(/^[:\s]+/, '') : d.error})` : `${d.name} ${d.verdict}`)).join(', ')}`
          : `${status.databases.length} databases reachable`,
      next: 'singularity db status',
    },
    {
      check: 'migrations',
      status: drifted.length > 0 ? 'fail' : pending.length > 0 ? 'warn' : 'ok',
      detail:
        drifted.length > 0
          ? `drift in ${drifted.map((d) => d.name).join(', ')}`
          : pending.length > 0
            ? `pending in ${pending.map((d) => d.name).join(', ')}`
            : 'all applied, no drift',
      next: drifted.length > 0 || pending.length > 0 ? 'singularity db status' : 'singularity db status',
    },
    planCheck(status),
  ]
}

/**
 * The drift row: the reconciliation plan (`db plan`) the status was read from. Extra privileges,
 * changed jobs and refused migrations are security or integrity drift (fail); only additive work
 * left (a missing grant, a queue to create) is a warning.
 */
export function planCheck(status: EstateStatus): CheckResult {
  const {summary, actions} = status.plan
  const drift = actions.filter((a) => a.refused || a.reason === 'extra' || a.reason === 'drifted')
  const byArea = Object.entries(summary.byArea).map(([area, n]) => `${area} ${n}`).join(', ')
  const shown = (drift.length > 0 ? drift : actions).slice(0, 3).map((a) => (a.database ? `${a.database}: ${a.description}` : a.description))
  return {
    check: 'estate drift',
    status: drift.length > 0 ? 'fail' : summary.actions > 0 ? 'warn' : 'ok',
    detail: summary.actions === 0 ? 'db plan is empty: the server matches the estate' : `${summary.actions} action(s) (${byArea}): ${shown.join('; ')}${summary.actions > shown.length ? '; …' : ''}`,
    next: summary.actions === 0 ? 'singularity db plan' : drift.some((a) => a.refused) ? 'singularity db status' : 'singularity db plan',
  }
}

/** pg_cron's launcher runs (no launcher: no job fires at all). */
export async function cronLauncherCheck(admin: pg.Client): Promise<CheckResult> {
  const {rows} = await admin.query<{n: number}>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'pg_cron launcher'")
  return {
    check: 'pg_cron running',
    status: rows[0].n > 0 ? 'ok' : 'fail',
    detail: rows[0].n > 0 ? 'pg_cron launcher is running' : 'no pg_cron launcher: scheduled jobs do not run (shared_preload_libraries, cron.database_name)',
    next: 'singularity jobs list',
  }
}

/** Active session-encryption keys in the database the client is on (null: no key table yet). */
export async function activeKeyCount(client: pg.Client): Promise<number | null> {
  const {rows} = await client.query<{n: number | null}>(
    "SELECT CASE WHEN to_regclass('singularity_private.encryption_keys') IS NULL THEN NULL ELSE (SELECT count(*)::int FROM singularity_private.encryption_keys WHERE retired_at IS NULL) END AS n",
  )
  return rows[0].n
}

/** The session-encryption key exists in each singularity database (service roles cannot read it); `unread` could not be checked. */
export function encryptionKeyCheck(read: {name: string; activeKeys: number | null}[], unread: string[] = []): CheckResult {
  const missing = read.filter((d) => !d.activeKeys).map((d) => d.name)
  return {
    check: 'encryption key',
    status: missing.length > 0 || unread.length > 0 ? 'fail' : 'ok',
    // no key service here (pgsodium/KMS absent): the pgcrypto fallback keeps the key in the database itself
    detail:
      missing.length > 0 || unread.length > 0
        ? [missing.length > 0 ? `no active key in ${missing.join(', ')}` : '', unread.length > 0 ? `could not read ${unread.join(', ')}` : ''].filter(Boolean).join('; ')
        : `active key present in ${read.length} singularity database(s); it lives in ${SESSION_KEY.location} (no key service), so backups hold it — encrypted unless taken with --no-encrypt`,
    next: 'singularity db init',
  }
}
