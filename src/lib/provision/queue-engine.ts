import type pg from 'pg'

import {CliError} from '../cli/errors.js'
import type {QueueEngine} from '../../topology.js'

export type EngineChoice = 'auto' | QueueEngine

/** Which queue engine is live in a database: the pgmq extension, our bundled SQL, or none yet. */
export async function liveQueueEngine(client: pg.Client): Promise<QueueEngine | null> {
  const {rows} = await client.query<{ext: boolean; bundled: boolean}>(
    `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pgmq') AS ext,
            to_regclass('pgmq.meta') IS NOT NULL AS bundled`,
  )
  if (rows[0].ext) return 'extension'
  if (rows[0].bundled) return 'bundled'
  return null
}

/**
 * Chooses the engine for a database. A database already running one keeps it (its queues live
 * there); otherwise auto takes the extension when the server has it, else the bundled engine.
 */
export function chooseQueueEngine(choice: EngineChoice, live: QueueEngine | null, extensionAvailable: boolean, database: string): QueueEngine {
  if (live && choice !== 'auto' && choice !== live) {
    throw new CliError(`database ${database} already runs the ${live} queue engine; refusing to switch to ${choice}`, {
      hint: 'its queues and messages live in the current engine; use --queue-engine auto (keeps it) or migrate the queues first',
      code: 'QUEUE_ENGINE_CONFLICT',
    })
  }
  if (live) return live
  if (choice === 'extension' && !extensionAvailable) {
    throw new CliError('--queue-engine extension, but the server has no pgmq extension', {
      hint: 'install pgmq on the server, or use --queue-engine auto / bundled (our implementation of the same SQL API)',
      code: 'PGMQ_MISSING',
    })
  }
  if (choice === 'auto') return extensionAvailable ? 'extension' : 'bundled'
  return choice
}

/** The queues of the list that do not exist yet (pgmq.meta is the same in both engines). */
export async function missingQueues(client: pg.Client, queues: string[]): Promise<string[]> {
  if (queues.length === 0) return []
  const {rows} = await client.query<{exists: boolean}>("SELECT to_regclass('pgmq.meta') IS NOT NULL AS exists")
  if (!rows[0].exists) return queues
  const existing = await client.query<{queue_name: string}>('SELECT queue_name FROM pgmq.meta WHERE queue_name = ANY($1)', [queues])
  const have = new Set(existing.rows.map((r) => r.queue_name))
  return queues.filter((q) => !have.has(q))
}
