import type pg from 'pg'

import {CliError} from '../cli/errors.js'
import {appliesTo, componentFiles, type SqlFile} from './files.js'

/** The per-database ledger of applied SQL files. */
const LEDGER = 'singularity_meta.applied_sql'

export type FileState = 'applied' | 'pending' | 'changed' | 'drifted' | 'skipped'

export interface FilePlan {
  component: string
  file: string
  kind: SqlFile['kind']
  state: FileState
  /** why it is skipped, e.g. "needs extension pgx_ulid" */
  reason?: string
}

export interface ComponentResult {
  applied: string[]
  reapplied: string[]
  plan: FilePlan[]
}

async function installedExtensions(client: pg.Client): Promise<Set<string>> {
  const {rows} = await client.query<{extname: string}>('SELECT extname FROM pg_extension')
  return new Set(rows.map((r) => r.extname))
}

async function ledgerRows(client: pg.Client): Promise<Map<string, string>> {
  const {rows} = await client.query<{exists: boolean}>(`SELECT to_regclass('${LEDGER}') IS NOT NULL AS exists`)
  if (!rows[0].exists) return new Map()
  const ledger = await client.query<{file: string; sha256: string}>(`SELECT file, sha256 FROM ${LEDGER}`)
  return new Map(ledger.rows.map((r) => [r.file, r.sha256]))
}

/** Creates the ledger once; serialised so that concurrent installers do not race on CREATE. */
export async function ensureLedger(client: pg.Client): Promise<void> {
  await client.query('BEGIN')
  try {
    await client.query("SELECT pg_advisory_xact_lock(hashtext('singularity.ledger'))")
    await client.query('CREATE SCHEMA IF NOT EXISTS singularity_meta')
    await client.query(`CREATE TABLE IF NOT EXISTS ${LEDGER} (
      file       text PRIMARY KEY,
      component  text NOT NULL,
      kind       text NOT NULL CHECK (kind IN ('migration', 'procedure')),
      sha256     text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`)
    await client.query("COMMENT ON TABLE singularity_meta.applied_sql IS 'SQL files applied by singularity db init: one row per file, with its checksum'")
    await client.query('REVOKE ALL ON SCHEMA singularity_meta FROM PUBLIC')
    await client.query('COMMIT')
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {})
    throw error
  }
}

/** The state of one file against a database's ledger and extensions. */
export function stateOf(file: SqlFile, ledger: ReadonlyMap<string, string>, extensions: ReadonlySet<string>): FilePlan {
  const base = {component: file.component, file: file.name, kind: file.kind}
  if (!appliesTo(file, extensions)) {
    const reason = file.requiresExtension ? `needs extension ${file.requiresExtension}` : `replaced by extension ${file.unlessExtension}`
    return {...base, state: 'skipped', reason}
  }
  const recorded = ledger.get(file.name)
  if (recorded === undefined) return {...base, state: 'pending'}
  if (recorded === file.sha256) return {...base, state: 'applied'}
  return {...base, state: file.kind === 'migration' ? 'drifted' : 'changed'}
}

/** What applying these components would do to this database; reads only. */
export async function planComponents(client: pg.Client, components: string[]): Promise<FilePlan[]> {
  const [ledger, extensions] = await Promise.all([ledgerRows(client), installedExtensions(client)])
  return components.flatMap((c) => componentFiles(c)).map((f) => stateOf(f, ledger, extensions))
}

/** The refusal of applied migrations whose file changed, naming each file (exit 1). */
export function driftError(plan: FilePlan[]): CliError {
  const drifted = plan.filter((p) => p.state === 'drifted').map((p) => `sql/${p.file}`)
  return new CliError(`migration changed after it was applied: ${drifted.join(', ')}`, {
    hint: 'applied migrations are never edited; restore the file and put the change in a new numbered migration',
    code: 'MIGRATION_DRIFT',
  })
}

/**
 * Applies the components' files in order, one transaction per file, the ledger row written in the
 * same transaction under a per-database advisory lock: concurrent installers apply each file once.
 * Applied migrations whose checksum changed are drift: nothing is applied and the file is named.
 */
export async function applyComponents(
  client: pg.Client,
  components: string[],
  options: {progress?: (message: string) => void} = {},
): Promise<ComponentResult> {
  await ensureLedger(client)
  const plan = await planComponents(client, components)
  if (plan.some((p) => p.state === 'drifted')) throw driftError(plan)
  const files = components.flatMap((c) => componentFiles(c))
  const applied: string[] = []
  const reapplied: string[] = []
  for (const file of files) {
    const planned = plan.find((p) => p.file === file.name)!
    if (planned.state === 'applied' || planned.state === 'skipped') continue
    const outcome = await applySqlFile(client, file, options)
    if (outcome === 'applied') applied.push(file.name)
    else if (outcome === 'reapplied') reapplied.push(file.name)
  }
  return {applied, reapplied, plan: await planComponents(client, components)}
}

/**
 * Applies one file in its own transaction, the ledger row written in the same transaction under a
 * per-database advisory lock: concurrent installers apply each file once. A migration already
 * applied with another checksum is drift: refused, naming the file. The ledger must exist (ensureLedger).
 */
export async function applySqlFile(
  client: pg.Client,
  file: SqlFile,
  options: {progress?: (message: string) => void} = {},
): Promise<'applied' | 'reapplied' | 'unchanged'> {
  await client.query('BEGIN')
  try {
    await client.query("SELECT pg_advisory_xact_lock(hashtext('singularity.migrate'))")
    const {rows} = await client.query<{sha256: string}>(`SELECT sha256 FROM ${LEDGER} WHERE file = $1`, [file.name])
    const recorded = rows[0]?.sha256
    if (recorded === file.sha256) {
      await client.query('ROLLBACK')
      return 'unchanged'
    }
    if (recorded !== undefined && file.kind === 'migration') {
      throw driftError([{component: file.component, file: file.name, kind: file.kind, state: 'drifted'}])
    }
    options.progress?.(`apply sql/${file.name}`)
    try {
      await client.query(file.sql)
    } catch (error) {
      const e = error as Error & {position?: string}
      throw new CliError(`sql/${file.name} failed: ${e.message.split('\n')[0]}`, {
        hint: 'nothing of this file was applied (one transaction per file); fix it and rerun db init',
        code: 'SQL_FILE_FAILED',
        cause: error,
      })
    }
    await client.query(
      `INSERT INTO ${LEDGER} (file, component, kind, sha256) VALUES ($1, $2, $3, $4)
       ON CONFLICT (file) DO UPDATE SET sha256 = EXCLUDED.sha256, applied_at = now()`,
      [file.name, file.component, file.kind, file.sha256],
    )
    await client.query('COMMIT')
    return recorded === undefined ? 'applied' : 'reapplied'
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {})
    throw error
  }
}
