import {Flags} from '@oclif/core'
import type pg from 'pg'

import {hangUp} from '../estate/visit.js'
import {UsageError} from './errors.js'
import {parseDuration} from './format.js'

/**
 * --watch [interval] for read-only commands: the command's measurement again every interval until
 * Ctrl-C (exit 130). On a terminal the screen is redrawn in place; with --json or a pipe each tick
 * is one JSON document on one line (NDJSON). A tick that fails (a lost connection) is shown and
 * the next one tries again: it is never fatal.
 */

export const DEFAULT_WATCH_INTERVAL = '2s'

export const watchFlag = Flags.string({
  description: `Refresh every interval (default ${DEFAULT_WATCH_INTERVAL}) until Ctrl-C: redrawn on a terminal, one JSON document per line (NDJSON) with --json or a pipe.`,
  helpValue: '[interval]',
})

/** `--watch` without a value gets the default interval (oclif flags always take one). */
export function withWatchDefault(argv: string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < argv.length; i++) {
    out.push(argv[i])
    if (argv[i] === '--') {
      out.push(...argv.slice(i + 1))
      break
    }
    if (argv[i] === '--watch' && (i + 1 >= argv.length || argv[i + 1].startsWith('-'))) out.push(DEFAULT_WATCH_INTERVAL)
  }
  return out
}

/** The interval in seconds: a duration (1s … 1h); exit 2 otherwise. */
export function parseWatchInterval(text: string): number {
  const seconds = parseDuration(text)
  if (seconds === undefined || seconds < 1 || seconds > 3600) {
    throw new UsageError(`invalid --watch interval ${JSON.stringify(text)}`, {hint: 'a duration between 1s and 1h, e.g. --watch 5s (default 2s)', code: 'BAD_INTERVAL'})
  }
  return seconds
}

export interface Tick<T> {
  value: T
  /** Date.now() when the tick was measured */
  at: number
}

export interface WatchLoop<T> {
  intervalSec: number
  /** NDJSON (--json or not a terminal) rather than redrawing */
  ndjson: boolean
  /** one measurement; throwing shows the error and tries again next tick */
  tick(): Promise<T>
  /** the screen for people; previous is the last good tick (rates come from the difference) */
  frame(current: Tick<T>, previous: Tick<T> | undefined): Promise<string> | string
  /** the JSON document of one tick */
  document(current: Tick<T>, previous: Tick<T> | undefined): unknown
  /** runs once when the loop stops (end connections) */
  close?(): Promise<void>
}

const CLEAR = '\u001B[H\u001B[2J\u001B[3J'
const HIDE_CURSOR = '\u001B[?25l'
const SHOW_CURSOR = '\u001B[?25h'

/** Runs the loop until SIGINT (exit 130) or SIGTERM (exit 143); never returns. */
export async function runWatch<T>(loop: WatchLoop<T>): Promise<never> {
  const tty = !loop.ndjson
  let stopping = false
  const stop = async (code: number) => {
    if (stopping) return
    stopping = true
    if (tty) process.stdout.write(SHOW_CURSOR)
    await Promise.race([loop.close?.(), new Promise((r) => setTimeout(r, 2000))]).catch(() => {})
    process.exit(code)
  }
  process.on('SIGINT', () => void stop(130))
  process.on('SIGTERM', () => void stop(143))
  if (tty) process.stdout.write(HIDE_CURSOR)

  let previous: Tick<T> | undefined
  for (;;) {
    const started = Date.now()
    let out: string
    try {
      const current = {value: await loop.tick(), at: Date.now()}
      out = tty
        ? `${CLEAR}every ${loop.intervalSec}s · ${new Date(current.at).toISOString().slice(0, 19).replace('T', ' ')} UTC · Ctrl-C to stop\n\n${await loop.frame(current, previous)}\n`
        : `${JSON.stringify({at: new Date(current.at).toISOString(), ...(loop.document(current, previous) as object)})}\n`
      previous = current
    } catch (error) {
      const message = String((error as Error)?.message ?? error).split('\n')[0]
      out = tty
        ? `${CLEAR}every ${loop.intervalSec}s · ${new Date().toISOString().slice(0, 19).replace('T', ' ')} UTC · Ctrl-C to stop\n\nconnection lost: ${message}; retrying every ${loop.intervalSec}s\n`
        : `${JSON.stringify({at: new Date().toISOString(), error: {message, retrying: true}})}\n`
    }
    if (stopping) await new Promise(() => {})
    process.stdout.write(out)
    const wait = Math.max(0, loop.intervalSec * 1000 - (Date.now() - started))
    await new Promise<void>((resolve) => setTimeout(resolve, wait))
  }
}

/** Whether an error means the session is gone (reconnect) rather than a failed statement. */
function connectionLost(error: unknown): boolean {
  const code = (error as {code?: string})?.code
  if (code === undefined) return true // socket errors, "Connection terminated", timeouts
  return code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03'
}

/**
 * One connection kept across ticks: opened on first use, reused, and dropped when the session is
 * lost, so that the next use connects again.
 */
export class KeptClient {
  private client: pg.Client | null = null

  constructor(private readonly open: () => Promise<pg.Client>) {}

  async use<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
    this.client ??= await this.open()
    try {
      return await fn(this.client)
    } catch (error) {
      if (connectionLost(error)) {
        const lost = this.client
        this.client = null
        lost?.end().catch(() => {})
      }
      throw error
    }
  }

  async close(): Promise<void> {
    const client = this.client
    this.client = null
    await client?.end().catch(() => {})
  }

  /** Drops the connection at once, also mid-query (a deadline passed); the next use opens another. */
  drop(): void {
    const client = this.client
    this.client = null
    if (client) hangUp(client)
  }
}

/** Per second between two readings; null without a previous reading or a time difference. */
export function perSecond(now: number | null | undefined, before: number | null | undefined, seconds: number): number | null {
  if (now === null || now === undefined || before === null || before === undefined || seconds <= 0) return null
  return Math.round(((now - before) / seconds) * 100) / 100
}
