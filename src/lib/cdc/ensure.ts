import type pg from 'pg'

import {CliError} from '../cli/errors.js'
import {DATABASES, type ConcreteDatabase} from '../../topology.js'
import {pluginRefused, readCdcSettings, readSlot} from './checks.js'
import {PLUGIN_NOT_ALLOWED_HINT, WAL_LEVEL_HINT, cdcError, pluginMissingHint} from './errors.js'

export interface EnsureCdcSlotResult {
  /** the slot name (db.cdcSlot) */
  slot: string
  /** true when this call created it */
  created: boolean
  /** when created: who must consume the slot and what happens if nobody does, in one line */
  consumerNote?: string
  /** what the operator must change, one line each with the fix; empty when all is well */
  warnings: string[]
  /** captured tables whose replica identity this call fixed, e.g. "public.learned_patterns: replica identity default (primary key) was nothing" */
  replicaIdentityFixed: string[]
}

/**
 * Makes sure a singularity database has its persistent change-capture slot (wal2json), and that
 * what the slot captures is complete. Called by `db init` on an admin connection to the database
 * itself, outside a transaction (creating a logical slot waits for running transactions and
 * refuses a transaction that has written). Idempotent.
 *  - wal_level, max_replication_slots, wal2json's presence: reported in warnings with the fix
 *    (a restart or a package install is the operator's call, never ours);
 *  - output_plugin_libraries (only in builds that have it): wal2json is added and the
 *    configuration reloaded;
 *  - captured tables (DATABASES.singularity.cdc.tables): replica identity NOTHING is set back to
 *    DEFAULT when a primary key exists; DEFAULT without a primary key uses a suitable unique index;
 *    otherwise a warning says UPDATE/DELETE would lose their old keys and how to fix it.
 * Throws only for unexpected server errors; environment problems come back as warnings.
 */
export async function ensureCdcSlot(client: pg.Client, db: ConcreteDatabase): Promise<EnsureCdcSlotResult> {
  const warnings: string[] = []
  const replicaIdentityFixed: string[] = []
  const spec = db.spec.cdc ?? DATABASES.singularity.cdc
  const slot = db.cdcSlot ?? `${db.name}_${spec?.slotSuffix ?? 'centralcloud_cdc'}`
  const result = (created: boolean): EnsureCdcSlotResult => ({slot, created, warnings, replicaIdentityFixed})

  await checkReplicaIdentity(client, spec?.tables ?? [], warnings, replicaIdentityFixed)

  let settings = await readCdcSettings(client)
  const existing = await readSlot(client, slot)
  if (existing) {
    if (existing.plugin !== 'wal2json') warnings.push(`slot ${slot} exists with plugin ${existing.plugin}, not wal2json: drop it (\`singularity cdc slots drop ${slot} --confirm ${slot}\`) and run db init again`)
    if (existing.database !== db.name) warnings.push(`slot ${slot} belongs to database ${existing.database}, not ${db.name}: drop it and run db init again`)
    if (pluginRefused(settings)) await allowWal2json(client, settings.outputPluginLibraries!, warnings)
    return result(false)
  }

  if (settings.walLevel !== 'logical') {
    warnings.push(`wal_level is '${settings.walLevel}', so slot ${slot} cannot be created yet: ${WAL_LEVEL_HINT}; then run db init again`)
    return result(false)
  }
  if (settings.wal2jsonInstalled === false) {
    warnings.push(`wal2json is not installed, so slot ${slot} cannot be created: ${pluginMissingHint(settings.serverMajor)}; then run db init again`)
    return result(false)
  }
  if (settings.usedReplicationSlots >= settings.maxReplicationSlots) {
    warnings.push(
      `all ${settings.maxReplicationSlots} replication slots are in use, so slot ${slot} cannot be created: drop a forgotten one (\`singularity cdc slots\`) or raise max_replication_slots (restart)`,
    )
    return result(false)
  }
  if (pluginRefused(settings)) {
    const allowed = await allowWal2json(client, settings.outputPluginLibraries!, warnings)
    if (!allowed) return result(false)
    settings = await readCdcSettings(client)
  }

  // A reload reaches this backend asynchronously: retry briefly while the old list still applies.
  for (let attempt = 0; ; attempt++) {
    try {
      await createSlotWaitingForTransactions(client, slot)
      return {...result(true), consumerNote: await consumerNote(client, spec?.consumer ?? 'its consumer')}
    } catch (error) {
      const message = String((error as Error).message ?? error)
      if (error instanceof CliError) throw error
      if ((error as {code?: string}).code === '42710') return result(false) // created meanwhile by a concurrent init
      if (/may not be used as an output plugin/.test(message) && attempt < 20) {
        await new Promise((resolve) => setTimeout(resolve, 100))
        continue
      }
      const mapped = cdcError(error, {slot, serverMajor: settings.serverMajor})
      if (['PLUGIN_NOT_ALLOWED', 'PLUGIN_MISSING', 'WAL_LEVEL', 'NO_FREE_SLOT'].includes(mapped.code)) {
        warnings.push(`slot ${slot} was not created: ${mapped.message}; ${mapped.hint ?? ''}`.trim())
        return result(false)
      }
      throw mapped
    }
  }
}

/** How long creating a slot may wait for the transactions already running on the server. */
const SLOT_CREATE_WAIT = '10min'

/**
 * Creates the slot. PostgreSQL first waits for every transaction running on the whole server to
 * end (it needs a consistent starting point): that wait is bounded by the session's lock_timeout,
 * which guards DDL in seconds, so for this one statement it is minutes, and a transaction that
 * holds it longer is named.
 */
async function createSlotWaitingForTransactions(client: pg.Client, slot: string): Promise<void> {
  const {rows: saved} = await client.query<{was: string}>("SELECT current_setting('lock_timeout') AS was")
  await client.query("SELECT set_config('lock_timeout', $1, false)", [SLOT_CREATE_WAIT])
  try {
    await client.query(`SELECT slot_name FROM pg_create_logical_replication_slot($1, 'wal2json')`, [slot])
  } catch (error) {
    if ((error as {code?: string}).code !== '55P03') throw error
    const {rows} = await client.query<{pid: number; app: string; since: Date}>(
      `SELECT pid, coalesce(nullif(application_name, ''), usename::text, '?') AS app, xact_start AS since
         FROM pg_stat_activity WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() ORDER BY xact_start LIMIT 3`,
    )
    const oldest = rows.map((r) => `pid ${r.pid} (${r.app}, since ${r.since.toISOString()})`).join(', ')
    throw new CliError(`slot ${slot} was not created: a transaction ran through the ${SLOT_CREATE_WAIT} wait for running transactions${oldest ? `; oldest: ${oldest}` : ''}`, {
      code: 'SLOT_WAIT_TIMEOUT',
      hint: 'let that transaction finish (or end it: SELECT pg_terminate_backend(<pid>)), then run db init again',
    })
  } finally {
    await client.query("SELECT set_config('lock_timeout', $1, false)", [saved[0].was]).catch(() => {})
  }
}

/** Who must read a new slot, and what the server does with it when nobody does (the cap, or the disk). */
async function consumerNote(client: pg.Client, consumer: string): Promise<string> {
  const {rows} = await client.query<{cap: string | null}>(`SELECT current_setting('max_slot_wal_keep_size', true) AS cap`)
  const cap = rows[0].cap
  const unread =
    cap === null || cap === '-1'
      ? 'unread, it keeps WAL until the disk is full (set max_slot_wal_keep_size to cap it)'
      : `unread, it keeps up to ${cap} of WAL (max_slot_wal_keep_size), then PostgreSQL invalidates it and ${consumer} must resync`
  return `${consumer} must consume it; ${unread}`
}

/** Adds wal2json to output_plugin_libraries (reload is enough); a warning with the fix when not allowed. */
async function allowWal2json(client: pg.Client, current: string[], warnings: string[]): Promise<boolean> {
  const wanted = [...current, 'wal2json'].join(', ')
  try {
    await client.query(`ALTER SYSTEM SET output_plugin_libraries = '${wanted.replaceAll("'", "''")}'`)
    await client.query('SELECT pg_reload_conf()')
    return true
  } catch (error) {
    warnings.push(`wal2json is not in output_plugin_libraries and it could not be added (${String((error as Error).message).split('\n')[0]}): ${PLUGIN_NOT_ALLOWED_HINT}`)
    return false
  }
}

interface IdentityRow {
  schema: string
  table: string
  relreplident: string
  has_pk: boolean
  identity_index: string | null
  candidate_index: string | null
}

/** Per table (c, n): its replica identity, primary key, identity index and a usable unique index; read by db init and the plan. */
export const REPLICA_IDENTITY_COLUMNS = `n.nspname AS schema, c.relname AS table, c.relreplident,
            EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS has_pk,
            (SELECT ic.relname FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
              WHERE i.indrelid = c.oid AND i.indisreplident) AS identity_index,
            (SELECT ic.relname FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
              WHERE i.indrelid = c.oid AND i.indisunique AND i.indimmediate AND i.indisvalid
                AND i.indpred IS NULL AND i.indexprs IS NULL
                AND NOT EXISTS (SELECT 1 FROM unnest(i.indkey) k JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k WHERE NOT a.attnotnull)
              ORDER BY ic.relname LIMIT 1) AS candidate_index`

/**
 * Checks the replica identity of the captured tables: without one, wal2json sends UPDATE and
 * DELETE without their old keys ("no tuple identifier"), and consumers cannot tell which row changed.
 */
async function checkReplicaIdentity(client: pg.Client, tables: string[], warnings: string[], fixed: string[]): Promise<void> {
  if (tables.length === 0) return
  const {rows} = await client.query<IdentityRow>(
    `SELECT ${REPLICA_IDENTITY_COLUMNS}
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND c.relname = ANY ($1) AND n.nspname = ANY (current_schemas(false))
      ORDER BY c.relname, array_position(current_schemas(false), n.nspname::text)`,
    [tables],
  )
  for (const name of tables) {
    const row = rows.find((r) => r.table === name)
    if (!row) {
      warnings.push(`captured table ${name} does not exist in ${client.database ?? 'this database'} yet; its changes cannot be captured (apply the migrations, then run db init again)`)
      continue
    }
    const qualified = `${quote(row.schema)}.${quote(row.table)}`
    const shown = `${row.schema}.${row.table}`
    const mode = row.relreplident
    if (mode === 'f' || (mode === 'd' && row.has_pk) || (mode === 'i' && row.identity_index)) continue
    if (row.has_pk) {
      await client.query(`ALTER TABLE ${qualified} REPLICA IDENTITY DEFAULT`)
      fixed.push(`${shown}: replica identity set to DEFAULT (its primary key); it was ${describeIdentity(mode)}`)
    } else if (row.candidate_index) {
      await client.query(`ALTER TABLE ${qualified} REPLICA IDENTITY USING INDEX ${quote(row.candidate_index)}`)
      fixed.push(`${shown}: replica identity set to unique index ${row.candidate_index} (the table has no primary key); it was ${describeIdentity(mode)}`)
    } else {
      warnings.push(
        `captured table ${shown} has no primary key and no usable unique index: its UPDATE/DELETE changes carry no old key. Add a primary key, or accept larger WAL with: ALTER TABLE ${qualified} REPLICA IDENTITY FULL`,
      )
    }
  }
}

function describeIdentity(mode: string): string {
  return {d: 'DEFAULT without a primary key', n: 'NOTHING', i: 'an index that no longer exists', f: 'FULL'}[mode] ?? mode
}

function quote(identifier: string): string {
  return `"${identifier.replaceAll('"', '""')}"`
}
