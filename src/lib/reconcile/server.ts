import {slotCapFinding} from '../cdc/cap.js'
import {quoteLiteral} from '../sql/quote.js'
import type {Action} from './action.js'
import type {ServerObservation} from './observe.js'

/**
 * Server settings: what the estate needs from the server itself (wal_level=logical, pg_cron
 * preloaded and installed, wal2json allowed where the build restricts output plugins). Most need a
 * restart or a package, so they are manual steps: `db plan` shows the fix, `db init` refuses
 * before changing anything (see preflightProblems).
 */
export function diffServer(server: ServerObservation): Action[] {
  const f = server.facts
  const actions: Action[] = []
  const manual = (description: string, sql: string[], privilege: Action['privilege'], code: string): Action => ({
    area: 'server', database: null, server: null, description, sql, destructive: false, privilege, reason: 'changed', step: {kind: 'manual', code},
  })
  if (f.walLevel !== 'logical') {
    actions.push(manual(`set wal_level to logical (is ${f.walLevel}), then restart PostgreSQL`, ["ALTER SYSTEM SET wal_level = 'logical'"], 'superuser', 'WAL_LEVEL'))
  }
  if (!f.available.has('pg_cron')) {
    actions.push(manual('install the pg_cron package on the server (e.g. apt-get install postgresql-15-cron)', [], 'provider', 'PG_CRON_MISSING'))
  }
  if (!f.preload.includes('pg_cron')) {
    const wanted = [...f.preload, 'pg_cron'].join(',')
    actions.push(manual('preload pg_cron (shared_preload_libraries), then restart PostgreSQL', [`ALTER SYSTEM SET shared_preload_libraries = ${quoteLiteral(wanted)}`], 'superuser', 'PG_CRON_NOT_PRELOADED'))
  }
  if (f.outputPluginLibraries !== null && !f.outputPluginLibraries.includes('wal2json')) {
    const wanted = [...f.outputPluginLibraries, 'wal2json'].join(', ')
    const statements = [`ALTER SYSTEM SET output_plugin_libraries = ${quoteLiteral(wanted)}`, 'SELECT pg_reload_conf()']
    actions.push({
      area: 'server', database: null, server: null, description: 'allow the wal2json output plugin (output_plugin_libraries) and reload', sql: statements,
      destructive: false, privilege: 'superuser', reason: 'missing', step: {kind: 'sql', on: 'admin', statements},
    })
  }
  return actions
}

/**
 * Server settings that are the operator's call but put the estate at risk: an unlimited
 * max_slot_wal_keep_size lets the CDC slot db init creates keep WAL until the disk is full.
 * Reported as a warning on any server, with the exact setting to change.
 */
export function serverWarnings(server: ServerObservation): string[] {
  const cap = slotCapFinding({max_slot_wal_keep_size: server.facts.maxSlotWalKeepSize})
  return cap ? [`${cap.message}; fix: ${cap.fix}`] : []
}
