import {canPrompt} from './terminal.js'
import {UsageError} from './errors.js'

export interface ConfirmRequest {
  /** what will happen, shown before asking, e.g. "delete 1,204 messages from queue llm_requests" */
  action: string
  /** the name the user must type or pass to --confirm, e.g. the queue name */
  name: string
  /** value of --confirm, if given */
  confirmFlag?: string
  /** the command to show in the refusal hint, e.g. "singularity queue purge llm_requests" */
  command: string
}

/**
 * Guards a destructive action: passes when --confirm equals the name; otherwise asks on a TTY for
 * the name to be typed; refuses (exit 2, nothing done) without a TTY or on a wrong answer.
 */
export async function confirmDestructive(request: ConfirmRequest): Promise<void> {
  if (request.confirmFlag !== undefined) {
    if (request.confirmFlag === request.name) return
    throw new UsageError(`--confirm '${request.confirmFlag}' does not match '${request.name}'; nothing was changed`, {
      hint: `pass --confirm ${request.name}`,
      code: 'CONFIRMATION_MISMATCH',
    })
  }
  if (!canPrompt()) {
    throw new UsageError(`refusing to ${request.action} without confirmation; nothing was changed`, {
      hint: `rerun with --confirm ${request.name}: ${request.command} --confirm ${request.name}`,
      code: 'CONFIRMATION_REQUIRED',
    })
  }
  const {createInterface} = await import('node:readline/promises')
  const rl = createInterface({input: process.stdin, output: process.stderr})
  try {
    process.stderr.write(`This will ${request.action}.\n`)
    const answer = await rl.question(`Type '${request.name}' to continue: `)
    if (answer.trim() !== request.name) {
      throw new UsageError('confirmation did not match; nothing was changed', {code: 'CONFIRMATION_MISMATCH'})
    }
  } finally {
    rl.close()
  }
}
