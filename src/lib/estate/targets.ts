import {CliError, UsageError} from '../cli/errors.js'
import type {ResolvedConfig, Target} from '../config/resolve.js'
import {SHARED_QUEUE_DISABLED_REASON} from '../config/shared-queue.js'
import {estate, type ConcreteDatabase, type DatabaseKind, type Estate} from '../../topology.js'
import {disabledParts, noteDisabled} from './disabled.js'

/** The admin connection, or exit 1 saying how to configure one. */
export function adminTarget(config: ResolvedConfig): Target {
  if (config.admin) return config.admin
  throw new CliError('no database configured and no local cluster created', {
    hint: 'run `singularity local start` for the embedded default, or set SINGULARITY_ADMIN_URL / PG* variables',
    code: 'NO_DATABASE',
  })
}

/** The same server as a target, another database. */
export function onDatabase(target: Target, database: string): Target {
  if (!target.url) return {...target, database}
  const url = new URL(target.url)
  url.pathname = `/${encodeURIComponent(database)}`
  return {...target, url: url.toString(), database: undefined}
}

/**
 * How to reach one database of the estate: its own variable (DATABASE_URL, GENESIS_DATABASE_URL, …)
 * when set for the default name, else the admin connection on that database.
 */
export function databaseTarget(config: ResolvedConfig, db: Pick<ConcreteDatabase, 'kind' | 'name' | 'instance'>): Target {
  const own = config.databases[db.kind]
  if (own && db.instance === undefined) return own
  return onDatabase(adminTarget(config), db.name)
}

/** The estate for this configuration (prefix, instances from flags/env/config; default one instance). */
export function configuredEstate(config: ResolvedConfig, instances?: number): Estate {
  const e = estate({prefix: config.prefix, instances: instances ?? config.instances ?? 1, disabled: disabledKinds(config)})
  noteDisabled(e.disabled.map((d) => ({database: d.name, kind: d.kind, reason: d.reason})))
  return e
}

/** The database kinds configuration switches off: shared_queue with SHARED_QUEUE_ENABLED=false. */
export function disabledKinds(config: Pick<ResolvedConfig, 'sharedQueueEnabled'>): {kind: DatabaseKind; reason: string}[] {
  return config.sharedQueueEnabled === false ? [{kind: 'shared_queue', reason: SHARED_QUEUE_DISABLED_REASON}] : []
}

/**
 * The estate as it exists on the server: the number of singularity instances is read from
 * pg_database (singularity, or singularity_1..N), so operating commands need no --instances.
 */
export async function discoverEstate(
  config: ResolvedConfig,
  admin: {query: (sql: string, values?: unknown[]) => Promise<{rows: {datname: string}[]}>},
): Promise<Estate> {
  if (config.instances) return configuredEstate(config)
  const {rows} = await admin.query('SELECT datname FROM pg_database WHERE datname ~ $1 ORDER BY datname', [`^${config.prefix}singularity(_[0-9]+)?$`])
  const numbered = rows.map((r) => r.datname).filter((n) => /_\d+$/.test(n))
  return configuredEstate(config, numbered.length > 0 ? numbered.length : 1)
}

/** Picks databases by name or kind (--db); all when none given. Unknown names exit 2. */
export function selectDatabases(all: ConcreteDatabase[], wanted: string[] | undefined, filter?: (db: ConcreteDatabase) => boolean): ConcreteDatabase[] {
  const candidates = filter ? all.filter(filter) : all
  if (!wanted || wanted.length === 0) return candidates
  const out: ConcreteDatabase[] = []
  for (const w of wanted) {
    // a disabled database asked for by name or kind: nothing to do there, and the command says why
    if (disabledParts().some((d) => d.database === w || d.kind === w)) continue
    const found = candidates.filter((db) => db.name === w || db.kind === (w as DatabaseKind))
    if (found.length === 0) {
      throw new UsageError(`unknown database '${w}'`, {hint: `choose one of: ${candidates.map((d) => d.name).join(', ')}`})
    }
    for (const db of found) if (!out.includes(db)) out.push(db)
  }
  return out
}
