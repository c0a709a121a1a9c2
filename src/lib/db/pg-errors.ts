import {CliError, ExitCode} from '../cli/errors.js'
import {redact} from '../cli/redact.js'

interface PgLikeError {
  code?: string
  message?: string
  address?: string
  port?: number
  detail?: string
  hint?: string
}

/** Turns a node-postgres / socket error into a one-line CliError with a hint an operator can follow. */
export function toCliError(error: unknown, target?: string): CliError | undefined {
  if (!error || typeof error !== 'object') return undefined
  const e = error as PgLikeError
  const where = target ? ` (${redact(target)})` : ''
  switch (e.code) {
    case 'ECONNREFUSED':
    case 'ENOENT':
      return new CliError(`cannot connect to PostgreSQL${where}: connection refused`, {
        hint: 'is the server running? For the embedded default run `singularity local start`; otherwise check PGHOST/PGPORT or SINGULARITY_ADMIN_URL',
        code: 'CONNECTION_REFUSED',
        cause: error,
      })
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new CliError(`cannot resolve the database host${where}`, {
        hint: 'check the host name in the connection URL or PGHOST',
        code: 'HOST_NOT_FOUND',
        cause: error,
      })
    case 'ETIMEDOUT':
      return new CliError(`timed out connecting to PostgreSQL${where}`, {
        hint: 'check the host, port and firewall; PGCONNECT_TIMEOUT sets the limit',
        code: 'CONNECTION_TIMEOUT',
        cause: error,
      })
    case '28P01':
    case '28000':
      return new CliError(`authentication failed${where}: ${firstLine(e.message)}`, {
        hint: 'check the user and password (URL, PGPASSWORD or ~/.pgpass); passwords are never printed',
        code: 'AUTH_FAILED',
        cause: error,
      })
    case '3D000':
      return new CliError(`${firstLine(e.message)}${where}`, {
        hint: 'run `singularity db init` to create the estate, or check the database name',
        code: 'DATABASE_NOT_FOUND',
        cause: error,
      })
    case '42501':
      return new CliError(`permission denied${where}: ${firstLine(e.message)}`, {
        hint: 'this needs a superuser or the owning role; set SINGULARITY_ADMIN_URL to an admin connection',
        code: 'PERMISSION_DENIED',
        cause: error,
      })
    case '57014':
      return new CliError(`statement timed out${where}: ${firstLine(e.message)}`, {
        hint: 'raise --statement-timeout or retry when the server is less busy',
        code: 'STATEMENT_TIMEOUT',
        cause: error,
      })
    case '55P03':
      return new CliError(`could not get a lock in time${where}: ${firstLine(e.message)}`, {
        hint: 'another session holds the lock; retry, or find it in pg_stat_activity',
        code: 'LOCK_TIMEOUT',
        cause: error,
      })
    default:
      if (typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code)) {
        return new CliError(`PostgreSQL error ${e.code}${where}: ${firstLine(e.message)}`, {
          hint: e.hint ?? (e.detail ? firstLine(e.detail) : 'run with DEBUG=1 for details'),
          code: `PG_${e.code}`,
          exitCode: ExitCode.failure,
          cause: error,
        })
      }
      return undefined
  }
}

function firstLine(text: string | undefined): string {
  return (text ?? '').split('\n')[0]
}
