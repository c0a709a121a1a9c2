import {UsageError} from '../cli/errors.js'

/**
 * SHARED_QUEUE_ENABLED (seed 004's CentralCloud config: `enabled: SHARED_QUEUE_ENABLED == "true"`,
 * default true). When false, the shared_queue database is not part of the estate: db init does not
 * provision it, and every command's shared_queue part says it is disabled instead of failing.
 */
export const SHARED_QUEUE_DISABLED_REASON = 'SHARED_QUEUE_ENABLED=false'

/** Whether the shared queue is enabled; exit 2 on a value that is neither true nor false. */
export function sharedQueueEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  const raw = env.SHARED_QUEUE_ENABLED?.trim().toLowerCase()
  if (raw === undefined || raw === '') return true
  if (['true', '1', 'yes', 'on'].includes(raw)) return true
  if (['false', '0', 'no', 'off'].includes(raw)) return false
  throw new UsageError('invalid SHARED_QUEUE_ENABLED: must be true or false', {hint: 'set SHARED_QUEUE_ENABLED=true (the default) or false', code: 'BAD_CONFIG'})
}
