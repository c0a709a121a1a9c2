import {readFileSync} from 'node:fs'

import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {connectionFlags, nonBlank} from '../../flags.js'
import {UsageError} from '../../lib/cli/errors.js'
import {parseDuration} from '../../lib/cli/format.js'
import {resolveConfig} from '../../lib/config/resolve.js'
import {validateMessage} from '../../lib/queue/contracts.js'
import {validateQueueName} from '../../lib/queue/catalog.js'
import {closeAll, locateQueue, openQueueDatabases, queueDatabases} from '../../lib/queue/locate.js'
import {sendMessage} from '../../lib/queue/send.js'

export interface SendResult {
  database: string
  queue: string
  /** the contract the message was checked against; null for a queue without one */
  contract: string | null
  dry_run: boolean
  /** the new message's id (null on a dry run) */
  msg_id: number | null
  delay_sec: number
}

export default class QueueSend extends BaseCommand<typeof QueueSend> {
  static override summary = "Send one message to a queue after checking it against the queue's contract."
  static override description = `The message is JSON text, @file to read it from a file, or @- to read standard input. It is checked against the queue's contract before anything is sent (seed 003's queue table, seed 004's message types, seed 000's singularity queues); an invalid message exits 2 naming the first failing field, e.g. "messages[0].role is required". Queues without a contract accept any JSON.

Sent with pgmq.send, so it behaves exactly like a service's send (with the real pgmq extension or the bundled engine).

Exit codes: 0 sent (or valid, with --dry-run), 2 bad name, bad JSON or invalid message (nothing sent), 4 queue not found.`
  static override examples = [
    {description: 'Ask Genesis to run code', command: `<%= config.bin %> queue send job_requests '{"id":"0b6c…","code":"IO.puts 1","language":"elixir"}'`},
    {description: 'From a file, visible in 30 seconds', command: '<%= config.bin %> queue send llm_requests @request.json --delay 30s'},
    {description: 'Only check a message against the contract', command: '<%= config.bin %> queue send pattern_messages @msg.json --dry-run'},
  ]

  static override args = {
    queue: Args.string({description: 'Queue name.', required: true}),
    message: Args.string({description: 'The message: JSON text, @file, or @- for standard input.', required: true}),
  }

  static override flags = {
    ...connectionFlags,
    db: Flags.string({parse: nonBlank, description: 'Database name or kind holding the queue (needed when several databases have it); repeatable.', multiple: true}),
    delay: Flags.string({description: 'Make the message visible only after this long (e.g. 30s, 5m).'}),
    headers: Flags.string({description: 'Message headers as a JSON object (pgmq 1.5 headers).'}),
    'dry-run': Flags.boolean({description: 'Check the message and find the queue; send nothing.'}),
  }

  protected async execute(): Promise<SendResult> {
    const name = validateQueueName(this.args.queue)
    const message = parseJson(readMessage(this.args.message), 'message')
    const check = validateMessage(name, message)
    if (!check.ok) {
      throw new UsageError(`invalid message for queue ${name} (contract ${check.contract}): ${check.path} ${check.message}`, {
        hint: `the contract is ${check.shape}; nothing was sent`,
        code: 'INVALID_MESSAGE',
      })
    }
    let headers: Record<string, unknown> | undefined
    if (this.flags.headers !== undefined) {
      const parsed = parseJson(this.flags.headers, '--headers')
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new UsageError('--headers must be a JSON object', {hint: `e.g. --headers '{"trace_id":"abc"}'`})
      headers = parsed as Record<string, unknown>
    }
    let delay = 0
    if (this.flags.delay !== undefined) {
      const seconds = parseDuration(this.flags.delay)
      if (seconds === undefined || seconds > 2_147_483_647) throw new UsageError(`invalid --delay ${JSON.stringify(this.flags.delay)}`, {hint: 'a duration such as 30s, 5m or 1h'})
      delay = Math.round(seconds)
    }

    const config = resolveConfig(this.flags)
    const databases = await queueDatabases(config, this.flags.db)
    const {open, unavailable} = await openQueueDatabases(config, databases, {statementTimeoutMs: 30_000, lockTimeoutMs: 5000, applicationName: 'singularity queue send'})
    try {
      const {db, queue} = locateQueue(open, unavailable, name, config.prefix)
      const base = {database: db.db.name, queue: queue.name, contract: check.contract, delay_sec: delay}
      if (this.flags['dry-run']) return {...base, dry_run: true, msg_id: null}
      const msgId = await sendMessage(db.client, queue, message, {delaySec: delay, headers})
      return {...base, dry_run: false, msg_id: msgId}
    } finally {
      await closeAll(open)
    }
  }

  protected override human(r: SendResult): void {
    const contract = r.contract ? `valid ${r.contract}` : 'no contract for this queue'
    if (r.dry_run) this.out(`dry run: message is ${contract}; ${r.database}.${r.queue} exists; nothing was sent`)
    else this.out(`sent msg_id ${r.msg_id} to ${r.database}.${r.queue} (${contract}${r.delay_sec ? `, visible in ${r.delay_sec}s` : ''})`)
  }
}

/** JSON text, @file, or @- (standard input). */
function readMessage(arg: string): string {
  if (!arg.startsWith('@')) return arg
  const path = arg.slice(1)
  try {
    return readFileSync(path === '-' ? 0 : path, 'utf8')
  } catch (error) {
    throw new UsageError(`cannot read the message from ${path === '-' ? 'standard input' : path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, {
      hint: 'give JSON text, @file or @- (standard input)',
    })
  }
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text)
  } catch (error) {
    throw new UsageError(`${what} is not valid JSON: ${(error as Error).message.split('\n')[0]}`, {hint: 'quote it for the shell, e.g. \'{"id":"…"}\', or use @file'})
  }
}
