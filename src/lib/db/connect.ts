import type pg from 'pg'

import type {Target} from '../config/resolve.js'
import {toCliError} from './pg-errors.js'

export interface ConnectOptions {
  /** statement_timeout for this session in ms (0 = none) */
  statementTimeoutMs?: number
  /** lock_timeout for this session in ms (0 = none) */
  lockTimeoutMs?: number
  applicationName?: string
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
    connectionTimeoutMillis: Number(process.env.PGCONNECT_TIMEOUT ?? 10) * 1000,
  }
  if (options.statementTimeoutMs !== undefined) settings.statement_timeout = options.statementTimeoutMs
  if (options.lockTimeoutMs !== undefined) settings.lock_timeout = options.lockTimeoutMs
  if (options.replication) settings.replication = 'database'
  const client = new pgModule.Client(settings)
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
