import {Flags} from '@oclif/core'

/** Connection flags shared by every command that talks to the server. */
export const connectionFlags = {
  'admin-url': Flags.string({
    description: 'Admin (superuser) connection URL; default SINGULARITY_ADMIN_URL, the config file, PG* variables, then the local cluster.',
    helpGroup: 'CONNECTION',
  }),
  config: Flags.string({description: 'Config file (JSON); default SINGULARITY_CONFIG or ~/.config/singularity/config.json.', helpGroup: 'CONNECTION'}),
  prefix: Flags.string({description: 'Name prefix of the estate (databases, roles, jobs, slots); default SINGULARITY_PREFIX or none.', helpGroup: 'CONNECTION'}),
}

/** Flags of the embedded local cluster. */
export const localFlags = {
  'data-dir': Flags.string({description: 'Directory of the local cluster; default SINGULARITY_LOCAL_DIR or /var/lib/singularity/local (root) / ~/.local/share/singularity/local.'}),
}

/**
 * The parse step of every name filter (--db, --table, --action, --pattern, --slot, …): a blank value
 * ('', '  ', or only commas) is refused with exit 2 before anything connects, never read as "no
 * filter" (`cdc tail --table ''` would otherwise stream every table).
 */
export async function nonBlank(value: string, _context?: unknown, flag?: {name?: string}): Promise<string> {
  if (/^[\s,]*$/.test(value)) throw new Error(`a blank value is not a filter: give a name, or leave --${flag?.name ?? 'the flag'} out`)
  return value
}

/** The options every human table takes (defined once; the table renderer reads them). */
export const tableFlags = {
  wide: Flags.boolean({description: 'Every column, nothing cut (lines may be wider than the terminal).', helpGroup: 'TABLE'}),
  columns: Flags.string({description: 'Only these columns, in this order: comma-separated names, e.g. name,status (an unknown name lists them).', helpGroup: 'TABLE'}),
  sort: Flags.string({description: 'Sort the rows by a column; -name for descending (e.g. --sort -length).', helpGroup: 'TABLE'}),
  'no-header': Flags.boolean({description: 'No header line (tables, --csv and --tsv).', helpGroup: 'TABLE'}),
  csv: Flags.boolean({description: 'The table as CSV on stdout (every selected column, nothing cut); other lines go to stderr.', exclusive: ['tsv', 'json'], helpGroup: 'TABLE'}),
  tsv: Flags.boolean({description: 'The table as tab-separated values on stdout; other lines go to stderr.', exclusive: ['csv', 'json'], helpGroup: 'TABLE'}),
}

/**
 * How a reading command visits the estate's databases (doctor, queue stats, jobs, db status/plan,
 * metrics): how many at once, and how long one may take before it is reported timed out.
 */
export const readFlags = {
  concurrency: Flags.integer({
    description: 'Databases read at once; default SINGULARITY_CONCURRENCY, the config file, else 8. Never more than a quarter of the server\'s free connections.',
    min: 1,
    max: 64,
    helpGroup: 'CONNECTION',
  }),
  'db-timeout': Flags.string({
    description: 'How long one database may take (connect and read) before it is reported timed out, e.g. 2s; default SINGULARITY_DB_TIMEOUT, the config file, else 10s.',
    helpGroup: 'CONNECTION',
  }),
}
