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
  if (/^[\s,]*$/.test(value)) throw new Error(`--${flag?.name ?? 'flag'} is blank: give a name or leave the flag out`)
  return value
}
