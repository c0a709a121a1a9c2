import type pg from 'pg'

import type {QueueRef} from './catalog.js'

export interface SendOptions {
  /** seconds before the message becomes visible */
  delaySec?: number
  headers?: Record<string, unknown>
}

/** Sends one message through the queue API (pgmq.send), so both engines behave alike; returns its msg_id. */
export async function sendMessage(client: pg.Client, queue: QueueRef, message: unknown, options: SendOptions = {}): Promise<number> {
  const delay = Math.max(0, Math.round(options.delaySec ?? 0))
  const {rows} = options.headers
    ? await client.query<{msg_id: string}>('SELECT pgmq.send($1::text, $2::jsonb, $3::jsonb, $4::integer) AS msg_id', [queue.name, JSON.stringify(message), JSON.stringify(options.headers), delay])
    : await client.query<{msg_id: string}>('SELECT pgmq.send($1::text, $2::jsonb, $3::integer) AS msg_id', [queue.name, JSON.stringify(message), delay])
  return Number(rows[0].msg_id)
}
