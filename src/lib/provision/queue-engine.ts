import {CliError} from '../cli/errors.js'
import type {QueueEngine} from '../../topology.js'

export type EngineChoice = 'auto' | QueueEngine

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
