import type pg from 'pg'

import {CliError, NotFoundError, UsageError} from '../cli/errors.js'
import {validateName} from '../names.js'
import {PLUGIN_NOT_ALLOWED_HINT, WAL_LEVEL_HINT, pluginMissingHint} from './errors.js'
import type {QualifiedTable} from './wal2json.js'

/** What logical decoding needs from the server, read in one round trip. */
export interface CdcServerSettings {
  serverVersionNum: number
  serverMajor: number
  walLevel: string
  maxReplicationSlots: number
  usedReplicationSlots: number
  maxWalSenders: number
  /** null when this build has no such setting (upstream PostgreSQL) */
  outputPluginLibraries: string[] | null
  /** whether wal2json.so is in the server's library directory; null when that cannot be read */
  wal2jsonInstalled: boolean | null
}

export async function readCdcSettings(client: pg.Client): Promise<CdcServerSettings> {
  const {rows} = await client.query<{name: string; setting: string}>(
    `SELECT name, setting FROM pg_settings
      WHERE name IN ('server_version_num', 'wal_level', 'max_replication_slots', 'max_wal_senders', 'output_plugin_libraries')`,
  )
  const get = (name: string) => rows.find((r) => r.name === name)?.setting
  const used = await client.query<{n: string}>('SELECT count(*) AS n FROM pg_replication_slots')
  const versionNum = Number(get('server_version_num') ?? 0)
  const libraries = get('output_plugin_libraries')
  return {
    serverVersionNum: versionNum,
    serverMajor: Math.floor(versionNum / 10_000),
    walLevel: get('wal_level') ?? 'unknown',
    maxReplicationSlots: Number(get('max_replication_slots') ?? 0),
    usedReplicationSlots: Number(used.rows[0].n),
    maxWalSenders: Number(get('max_wal_senders') ?? 0),
    outputPluginLibraries: libraries === undefined ? null : splitList(libraries),
    wal2jsonInstalled: await wal2jsonInstalled(client),
  }
}

function splitList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim().replace(/^"|"$/g, ''))
    .filter(Boolean)
}

/**
 * Looks for wal2json.so in PKGLIBDIR; null when unknown (reading it needs a superuser). Guarded so that
 * it never raises an error: a caller inside a transaction keeps a usable transaction.
 */
async function wal2jsonInstalled(client: pg.Client): Promise<boolean | null> {
  try {
    const {rows} = await client.query<{found: boolean | null}>(
      `SELECT CASE WHEN (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
                   THEN (SELECT (pg_stat_file(setting || '/wal2json.so', true)).size IS NOT NULL FROM pg_config WHERE name = 'PKGLIBDIR')
              END AS found`,
    )
    return rows[0]?.found ?? null
  } catch {
    return null
  }
}

/** Whether the plugin list of this build refuses wal2json (false where the setting does not exist). */
export function pluginRefused(settings: CdcServerSettings): boolean {
  return settings.outputPluginLibraries !== null && !settings.outputPluginLibraries.includes('wal2json')
}

/** Refuses to start streaming on a server that cannot decode with wal2json (exit 1, one line + fix). */
export function assertCanStream(settings: CdcServerSettings): void {
  if (settings.walLevel !== 'logical') {
    throw new CliError(`wal_level is '${settings.walLevel}'; change streaming needs 'logical'`, {hint: WAL_LEVEL_HINT, code: 'WAL_LEVEL'})
  }
  if (settings.wal2jsonInstalled === false) {
    throw new CliError('the wal2json output plugin is not installed on the server', {hint: pluginMissingHint(settings.serverMajor), code: 'PLUGIN_MISSING'})
  }
  if (pluginRefused(settings)) {
    throw new CliError(`the server refuses wal2json as an output plugin (output_plugin_libraries = '${settings.outputPluginLibraries!.join(', ')}')`, {
      hint: PLUGIN_NOT_ALLOWED_HINT,
      code: 'PLUGIN_NOT_ALLOWED',
    })
  }
}

/**
 * Resolves --table names to schema-qualified tables that exist: "schema.table" as given, "table"
 * through the search_path (first match). Unknown tables exit 2 naming the ones that do exist.
 */
export async function resolveTables(client: pg.Client, names: string[]): Promise<QualifiedTable[]> {
  const out: QualifiedTable[] = []
  for (const raw of names) {
    const name = validateName('table', raw)
    const dot = name.indexOf('.')
    const schema = dot === -1 ? null : name.slice(0, dot)
    const table = dot === -1 ? name : name.slice(dot + 1)
    const {rows} = await client.query<{schema: string; table: string}>(
      `SELECT n.nspname AS schema, c.relname AS table
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p')
          AND (c.relname = $1 OR c.relname = lower($1))
          AND (CASE WHEN $2::text IS NULL THEN n.nspname = ANY (current_schemas(false))
                    ELSE n.nspname = $2 OR n.nspname = lower($2) END)
        ORDER BY c.relname = $1 DESC, array_position(current_schemas(false), n.nspname::text) NULLS LAST
        LIMIT 1`,
      [table, schema],
    )
    if (rows.length === 0) {
      const {rows: tables} = await client.query<{name: string}>(
        `SELECT n.nspname || '.' || c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'cron') AND n.nspname !~ '^pg_'
          ORDER BY (c.relname LIKE '%' || $1 || '%') DESC, 1 LIMIT 6`,
        [table],
      )
      throw new UsageError(`table not found: ${name} (database ${client.database ?? '?'})`, {
        hint: tables.length > 0 ? `tables here include: ${tables.map((t) => t.name).join(', ')}` : 'this database has no tables yet; run `singularity db init`',
        code: 'TABLE_NOT_FOUND',
      })
    }
    if (!out.some((t) => t.schema === rows[0].schema && t.table === rows[0].table)) out.push(rows[0])
  }
  return out
}

/** One replication slot as pg_replication_slots shows it (the fields tail needs). */
export interface SlotState {
  name: string
  plugin: string | null
  slotType: string
  database: string | null
  temporary: boolean
  active: boolean
  activePid: number | null
  confirmedFlushLsn: string | null
  restartLsn: string | null
}

export async function readSlot(client: pg.Client, name: string): Promise<SlotState | undefined> {
  const {rows} = await client.query(
    `SELECT slot_name, plugin, slot_type, database, temporary, active, active_pid,
            confirmed_flush_lsn::text AS confirmed_flush_lsn, restart_lsn::text AS restart_lsn
       FROM pg_replication_slots WHERE slot_name = $1`,
    [name],
  )
  if (rows.length === 0) return undefined
  const r = rows[0]
  return {
    name: r.slot_name,
    plugin: r.plugin,
    slotType: r.slot_type,
    database: r.database,
    temporary: r.temporary,
    active: r.active,
    activePid: r.active_pid,
    confirmedFlushLsn: r.confirmed_flush_lsn,
    restartLsn: r.restart_lsn,
  }
}

/** The slot --slot names, checked for use by tail: exists, logical, this database, wal2json for --consume. */
export async function checkTailSlot(client: pg.Client, name: string, options: {consume: boolean; database: string}): Promise<SlotState> {
  validateName('slot', name)
  const slot = await readSlot(client, name)
  if (!slot) throw new NotFoundError(`replication slot not found: ${name}`, {hint: 'list the slots with `singularity cdc slots`; without --slot, tail uses a temporary slot of its own', code: 'SLOT_NOT_FOUND'})
  if (slot.slotType !== 'logical') throw new UsageError(`slot ${name} is a physical slot; cdc tail reads logical slots`, {hint: 'list the slots with `singularity cdc slots`', code: 'SLOT_NOT_LOGICAL'})
  if (slot.database !== options.database) {
    throw new UsageError(`slot ${name} belongs to database ${slot.database}, not ${options.database}`, {hint: `pass --db ${slot.database}`, code: 'SLOT_OTHER_DATABASE'})
  }
  if (options.consume && slot.plugin !== 'wal2json') {
    throw new UsageError(`slot ${name} uses the ${slot.plugin} plugin; --consume reads wal2json slots only`, {
      hint: 'drop --consume to watch it through a temporary wal2json copy',
      code: 'SLOT_PLUGIN',
    })
  }
  if (options.consume && slot.active) {
    throw new CliError(`replication slot ${name} is in use by PID ${slot.activePid}: another consumer is reading it`, {
      hint: `watch without --consume (a temporary copy that never touches ${name}), or stop the other consumer first; \`singularity cdc slots\` shows it`,
      code: 'SLOT_IN_USE',
    })
  }
  return slot
}
