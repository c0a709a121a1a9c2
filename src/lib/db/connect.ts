import {userInfo} from 'node:os'

import type pg from 'pg'

import type {Target} from '../config/resolve.js'
import {CliError} from '../cli/errors.js'
import {toCliError} from './pg-errors.js'
import {pgpassLookup} from './pgpass.js'

export interface ConnectOptions {
  /** statement_timeout for this session in ms (0 = none) */
  statementTimeoutMs?: number
  /** lock_timeout for this session in ms (0 = none) */
  lockTimeoutMs?: number
  applicationName?: string
  /** give up connecting after this long (default PGCONNECT_TIMEOUT, else 10 s) */
  connectTimeoutMs?: number
  /** extra libpq-style settings, e.g. {replication: 'database'} */
  replication?: boolean
}

/** Opens one pg client; connection errors become CliErrors with a hint. The caller ends it. */
export async function connect(target: Target | string | undefined, options: ConnectOptions = {}): Promise<pg.Client> {
  const {default: pgModule} = await import('pg')
  const url = typeof target === 'string' ? target : target?.url
  const settings: pg.ClientConfig & {replication?: string} = {
    connectionString: url,
    database: typeof target === 'object' ? target.database : undefined,
    application_name: options.applicationName ?? 'singularity',
    connectionTimeoutMillis: options.connectTimeoutMs ?? Number(process.env.PGCONNECT_TIMEOUT ?? 10) * 1000,
  }
  if (options.statementTimeoutMs !== undefined) settings.statement_timeout = options.statementTimeoutMs
  if (options.lockTimeoutMs !== undefined) settings.lock_timeout = options.lockTimeoutMs
  if (options.replication) settings.replication = 'database'
  // libpq's password file, read by us (node-postgres' own support is deprecated and warns).
  const password = async () => {
    const parsed = url ? new URL(url) : undefined
    if (parsed?.password) return decodeURIComponent(parsed.password)
    if (process.env.PGPASSWORD) return process.env.PGPASSWORD
    const user = (parsed?.username ? decodeURIComponent(parsed.username) : undefined) ?? process.env.PGUSER ?? userInfo().username
    const found = pgpassLookup({
      host: parsed?.hostname || parsed?.searchParams.get('host') || process.env.PGHOST || 'localhost',
      port: Number(parsed?.port || process.env.PGPORT || 5432),
      database: settings.database || decodeURIComponent(parsed?.pathname.slice(1) ?? '') || process.env.PGDATABASE || user,
      user,
    })
    if (found === undefined) {
      throw new CliError(`no password for user ${user}`, {
        hint: 'put it in the URL, PGPASSWORD or a 0600 password file (PGPASSFILE, ~/.pgpass); for the local cluster: eval "$(singularity local env)"',
        code: 'AUTH_FAILED',
      })
    }
    return found
  }
  const client = new pgModule.Client(settings)
  // Set after construction: pg lets the URL's (absent) password override a configured one.
  if (client.password === null || client.password === undefined) (client as unknown as {password: () => Promise<string>}).password = password
  // An idle client whose server goes away must not crash the process with an unhandled 'error'.
  client.on('error', () => {})
  try {
    await client.connect()
  } catch (error) {
    throw toCliError(error, url ?? (typeof target === 'object' ? `${target.origin} database ${target.database ?? ''}` : undefined)) ?? error
  }
  return client
}

/** Runs fn with a fresh client and always ends it. */
export async function withClient<T>(url: Target | string | undefined, fn: (client: pg.Client) => Promise<T>, options: ConnectOptions = {}): Promise<T> {
  const client = await connect(url, options)
  try {
    return await fn(client)
  } finally {
    await client.end().catch(() => {})
  }
}
