/**
 * Visiting many databases at once: a bounded pool, a deadline per database, results in the
 * order asked. Every reading command that covers the estate goes through here, so that its cost
 * stays flat as instances (and servers) are added, and one stuck database never stalls the rest.
 */
import type pg from 'pg'

import {CliError} from '../cli/errors.js'
import type {ResolvedConfig, Target} from '../config/resolve.js'
import {connect, type ConnectOptions} from '../db/connect.js'
import {serverTarget} from './targets.js'

/** Databases visited at once when nothing else is configured. */
export const DEFAULT_READ_CONCURRENCY = 8
/** Share of the server's free connections one command may take. */
const FREE_CONNECTION_SHARE = 0.25
/** How long one database may take to answer a reading command, when nothing else is configured. */
export const DEFAULT_DATABASE_TIMEOUT_MS = 10_000

/** Errors that mean the deadline passed inside the database session (visitWithClient sets them to it). */
const DEADLINE_CODES = ['DATABASE_TIMEOUT', 'STATEMENT_TIMEOUT', 'CONNECTION_TIMEOUT']

export interface VisitOptions {
  /** at most this many visits in flight */
  concurrency?: number
  /** each visit is abandoned after this long (connect + queries) */
  timeoutMs?: number
}

/** One database's outcome: its value, or why it could not be read. */
export type Visit<T> =
  | {ok: true; value: T; ms: number}
  | {ok: false; error: CliError; timedOut: boolean; ms: number}

/**
 * The bound for one command: the configured (or default) concurrency, never more than a quarter
 * of the connections the server has free (at least 1).
 */
export function readConcurrency(configured: number | undefined, freeConnections?: number): number {
  const wanted = Math.max(1, Math.floor(configured ?? DEFAULT_READ_CONCURRENCY))
  if (freeConnections === undefined) return wanted
  return Math.max(1, Math.min(wanted, Math.floor(freeConnections * FREE_CONNECTION_SHARE)))
}

/** Maps items with at most `limit` calls in flight; results keep the items' order. */
export async function mapBounded<I, O>(items: readonly I[], limit: number, fn: (item: I, index: number) => Promise<O>): Promise<O[]> {
  const results = new Array<O>(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const index = next++
      results[index] = await fn(items[index], index)
    }
  }
  await Promise.all(Array.from({length: Math.min(Math.max(1, limit), items.length)}, worker))
  return results
}

/**
 * Runs fn for each item, bounded and with a deadline each. A failure or a timeout becomes that
 * item's outcome instead of failing the whole visit; fn's AbortSignal fires at the deadline, so
 * the caller can cut what the abandoned visit holds (its connection).
 */
export async function visitEach<I, T>(
  items: readonly I[],
  describe: (item: I) => string,
  fn: (item: I, signal: AbortSignal) => Promise<T>,
  options: VisitOptions = {},
): Promise<Visit<T>[]> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_DATABASE_TIMEOUT_MS
  return mapBounded(items, options.concurrency ?? DEFAULT_READ_CONCURRENCY, async (item) => {
    const started = Date.now()
    const controller = new AbortController()
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort()
        reject(new CliError(`${describe(item)} did not answer within ${(timeoutMs / 1000).toFixed(1)} s`, {
          code: 'DATABASE_TIMEOUT',
          hint: 'the server may be overloaded or a lock may be held; raise the per-database timeout or look at pg_stat_activity there',
        }))
      }, timeoutMs)
    })
    try {
      const value = await Promise.race([fn(item, controller.signal), deadline])
      return {ok: true as const, value, ms: Date.now() - started}
    } catch (error) {
      const cliError = error instanceof CliError ? error : new CliError(`${describe(item)}: ${error instanceof Error ? error.message : String(error)}`, {code: 'DATABASE_UNREADABLE'})
      // the session's statement and connect timeouts are the same deadline: whichever fires first, it timed out
      const timedOut = controller.signal.aborted || DEADLINE_CODES.includes(cliError.code ?? '')
      return {ok: false as const, error: cliError, timedOut, ms: Date.now() - started}
    } finally {
      clearTimeout(timer)
    }
  })
}

/**
 * visitEach with a client per item: connects to the item's target, runs fn, always ends the
 * client, and ends it at once when the deadline passes (so no abandoned query runs on).
 */
export async function visitWithClient<I, T>(
  items: readonly I[],
  target: (item: I) => Target,
  describe: (item: I) => string,
  fn: (client: pg.Client, item: I) => Promise<T>,
  options: VisitOptions & {connect?: ConnectOptions; shared?: SharedClients} = {},
): Promise<Visit<T>[]> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_DATABASE_TIMEOUT_MS
  const shared = options.shared
  return visitEach(
    items,
    describe,
    async (item, signal) => {
      const client = shared
        ? await shared.client(target(item), timeoutMs)
        : await connect(target(item), {statementTimeoutMs: timeoutMs, connectTimeoutMs: timeoutMs, ...options.connect})
      const cut = () => {
        shared?.forget(target(item))
        hangUp(client)
      }
      if (signal.aborted) {
        cut()
        throw new CliError(`${describe(item)}: abandoned after the deadline`, {code: 'DATABASE_TIMEOUT'})
      }
      signal.addEventListener('abort', cut, {once: true})
      try {
        return await fn(client, item)
      } catch (error) {
        // a kept session that failed may be left mid-transaction: the next read gets a fresh one
        shared?.forget(target(item))
        if (shared) await client.end().catch(() => {})
        throw error
      } finally {
        signal.removeEventListener('abort', cut)
        if (!shared) await client.end().catch(() => {})
      }
    },
    options,
  )
}

/**
 * Connections kept open across several visits of one command (doctor reads the same databases for
 * several checks): one per target, opened on first use, so each database costs one connection
 * set-up (authentication is most of a short read's cost) instead of one per check. A connection cut
 * at a deadline is forgotten and reopened by the next visit. The owner closes them all.
 */
export class SharedClients {
  private readonly open = new Map<string, Promise<pg.Client>>()
  constructor(private readonly options: ConnectOptions = {}) {}

  /** The open connection to this target, or a new one (statement and connect timeout = the deadline). */
  client(target: Target, timeoutMs: number): Promise<pg.Client> {
    const key = SharedClients.key(target)
    let client = this.open.get(key)
    if (!client) {
      client = connect(target, {statementTimeoutMs: timeoutMs, connectTimeoutMs: timeoutMs, ...this.options})
      this.open.set(key, client)
      client.catch(() => this.open.delete(key))
    }
    return client
  }

  forget(target: Target): void {
    this.open.delete(SharedClients.key(target))
  }

  /** Hangs up this target's connection, if one is open (its deadline passed); the next use reopens. */
  cut(target: Target): void {
    const client = this.open.get(SharedClients.key(target))
    this.forget(target)
    client?.then(hangUp, () => {})
  }

  async close(): Promise<void> {
    const all = [...this.open.values()]
    this.open.clear()
    await Promise.all(all.map(async (c) => (await c).end()).map((p) => p.catch(() => {})))
  }

  private static key(target: Target): string {
    return `${target.url ?? ''}\u0000${target.database ?? ''}`
  }
}

/** Ends a client at once, also in the middle of a query (the socket goes; the server ends the backend). */
export function hangUp(client: pg.Client): void {
  ;(client as unknown as {connection?: {stream?: {destroy(): void}}}).connection?.stream?.destroy()
  client.end().catch(() => {})
}

/** A database a reading command could not read: named, with why, and whether it was the deadline. */
export interface Unreadable {
  database: string
  reason: string
  timed_out: boolean
}

/** The Unreadable of a failed visit. */
export function unreadable(database: string, visit: Extract<Visit<unknown>, {ok: false}>): Unreadable {
  return {database, reason: visit.error.message.split('\n')[0], timed_out: visit.timedOut}
}

/** What one command visits with: the bound (already capped by the server) and the deadline per database. */
export interface ReadBound {
  concurrency: number
  timeoutMs: number
  /** the server's free connections when the bound was decided; null when they could not be read */
  freeConnections: number | null
}

/**
 * Connections an ordinary role may still open: max_connections minus the reserved ones minus the
 * client backends now connected (background workers have their own slots). One cheap statement.
 */
export async function freeConnections(client: Pick<pg.Client, 'query'>): Promise<number> {
  const {rows} = await client.query<{free: number}>(
    `SELECT current_setting('max_connections')::int
            - current_setting('superuser_reserved_connections')::int
            - coalesce(nullif(current_setting('reserved_connections', true), '')::int, 0)
            - (SELECT count(*)::int FROM pg_stat_activity WHERE backend_type = 'client backend') AS free`,
  )
  return Math.max(0, rows[0].free)
}

/**
 * The bound of one command, decided once on a connection it already has: the configured
 * concurrency (default 8) capped at a quarter of the server's free connections, and the
 * configured per-database deadline (default 10 s).
 */
export async function readBound(client: Pick<pg.Client, 'query'> | null, settings: {concurrency?: number; timeoutMs?: number} = {}): Promise<ReadBound> {
  const free = client ? await freeConnections(client).catch(() => null) : null
  return {
    concurrency: readConcurrency(settings.concurrency, free ?? undefined),
    timeoutMs: settings.timeoutMs ?? DEFAULT_DATABASE_TIMEOUT_MS,
    freeConnections: free,
  }
}

/**
 * Runs `fn` on a client of each server at once (bounded, a deadline each): outcomes in the order
 * given; a server that does not answer is its own failed visit, never the others'.
 */
export function visitServers<T>(
  config: ResolvedConfig,
  servers: readonly string[],
  fn: (client: pg.Client, server: string) => Promise<T>,
  options: VisitOptions & {connect?: ConnectOptions} = {},
): Promise<Visit<T>[]> {
  return visitWithClient(servers, (server) => serverTarget(config, server), (server) => `server ${server}`, fn, options)
}
