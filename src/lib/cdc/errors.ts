import {CliError, ExitCode, NotFoundError} from '../cli/errors.js'
import {toCliError} from '../db/pg-errors.js'

/** The fix for a server that refuses wal2json as an output plugin (builds with output_plugin_libraries). */
export const PLUGIN_NOT_ALLOWED_HINT =
  "add wal2json to output_plugin_libraries (a reload is enough): ALTER SYSTEM SET output_plugin_libraries = 'pgoutput, test_decoding, wal2json'; SELECT pg_reload_conf();  — `singularity db init` does this for you"

export const WAL_LEVEL_HINT = "logical decoding needs wal_level = logical: ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL (`singularity local stop && singularity local start` for the embedded cluster)"

export function pluginMissingHint(serverMajor?: number): string {
  return `install the wal2json package on the database server: apt-get install -y postgresql-${serverMajor ?? 15}-wal2json`
}

interface PgError {
  code?: string
  message?: string
}

/**
 * Turns the errors of logical decoding into one line with the fix: plugin refused or missing,
 * wal_level, slot in use by another consumer, unknown slot, no free slot or WAL sender.
 */
export function cdcError(error: unknown, context: {slot?: string; serverMajor?: number} = {}): CliError {
  if (error instanceof CliError) return error
  const e = (error ?? {}) as PgError
  const message = (e.message ?? String(error)).split('\n')[0]
  if (/may not be used as an output plugin/i.test(message)) {
    return new CliError(`the server refuses wal2json as an output plugin (${message})`, {hint: PLUGIN_NOT_ALLOWED_HINT, code: 'PLUGIN_NOT_ALLOWED', cause: error})
  }
  if (/could not access file "wal2json"|wal2json.*No such file/i.test(message)) {
    return new CliError('the wal2json output plugin is not installed on the server', {hint: pluginMissingHint(context.serverMajor), code: 'PLUGIN_MISSING', cause: error})
  }
  if (/wal_level/i.test(message)) {
    return new CliError(`logical decoding is off on this server (${message})`, {hint: WAL_LEVEL_HINT, code: 'WAL_LEVEL', cause: error})
  }
  if (/has been invalidated|can no longer get changes from replication slot|cannot read from logical replication slot/i.test(`${message} ${(e as {detail?: string}).detail ?? ''}`)) {
    const slot = context.slot ?? '<slot>'
    return new CliError(`replication slot ${context.slot ?? ''} is lost: the server invalidated it (max_slot_wal_keep_size) and removed the WAL it needed`.replace('slot  is', 'slot is'), {
      hint: `recreate it (\`singularity cdc slots drop ${slot} --confirm ${slot}\`, then \`singularity db init\`); its consumer must resync from a fresh copy`,
      code: 'SLOT_LOST',
      cause: error,
    })
  }
  switch (e.code) {
    case '55006':
      return new CliError(`${message}: another consumer is reading this slot`, {
        hint: `watch without --consume (a temporary copy that never touches ${context.slot ?? 'the slot'}), or stop the other consumer first; \`singularity cdc slots\` shows who holds it`,
        code: 'SLOT_IN_USE',
        cause: error,
      })
    case '42704':
      return new NotFoundError(message, {hint: 'list the slots with `singularity cdc slots`', code: 'SLOT_NOT_FOUND', cause: error})
    case '53400':
      return new CliError(`${message}: no free replication slot`, {
        hint: 'drop a forgotten slot (`singularity cdc slots`, then `singularity cdc slots drop <name>`), or raise max_replication_slots (restart)',
        code: 'NO_FREE_SLOT',
        cause: error,
      })
    case '53300':
      return new CliError(`${message}: no free WAL sender`, {hint: 'raise max_wal_senders (restart) or stop another replication client', code: 'NO_WAL_SENDER', cause: error})
    case '42501':
      return new CliError(`permission denied for logical replication: ${message}`, {
        hint: 'connect as a superuser or a role with REPLICATION (ALTER ROLE … REPLICATION); set SINGULARITY_ADMIN_URL',
        code: 'PERMISSION_DENIED',
        cause: error,
      })
    default:
      break
  }
  const mapped = toCliError(error)
  if (mapped) return mapped
  if (/Connection terminated|ECONNRESET|server closed/i.test(message)) {
    return new CliError(`lost the replication connection: ${message}`, {hint: 'the server restarted or ended the session; run the command again', code: 'CONNECTION_LOST', exitCode: ExitCode.failure, cause: error})
  }
  return new CliError(message, {hint: 'run with DEBUG=1 for the stack trace', code: 'FAILURE', cause: error})
}
