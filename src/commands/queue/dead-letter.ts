import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {connectionFlags} from '../../flags.js'
import {confirmDestructive} from '../../lib/cli/confirm.js'
import {resolveConfig} from '../../lib/config/resolve.js'
import {findQueue, validateQueueName} from '../../lib/queue/catalog.js'
import {deadLetter, planDeadLetter} from '../../lib/queue/dead-letter.js'
import {closeAll, locateQueue, openQueueDatabases, queueDatabases} from '../../lib/queue/locate.js'
import {maxReadsFor} from '../../queue-policies.js'

export interface DeadLetterResult {
  database: string
  queue: string
  dead_letter_queue: string
  max_reads: number
  dry_run: boolean
  /** poison messages not leased by a consumer when counted: what the move takes */
  movable: number
  /** poison messages a consumer held when counted (left to it) */
  leased: number
  /** messages moved to the DLQ (0 on a dry run) */
  moved: number
  /** the DLQ was created by this run */
  dlq_created: boolean
}

export default class QueueDeadLetter extends BaseCommand<typeof QueueDeadLetter> {
  static override summary = 'Move poison messages (read at least --max-reads times) of a queue to <queue>_dlq.'
  static override description = `A message read at least N times is poison: N is the queue's policy in the topology (default 5), or --max-reads. The poison messages move to the queue <queue>_dlq, which is created on first use with the same grants as its queue (copied from the queue's privileges in the catalog).

The move is one statement in one transaction: every message is either still in its queue or in the DLQ, never both, never neither. A message a consumer holds right now (read, vt in the future) is left to the consumer; a message being read at that very instant is skipped (FOR UPDATE SKIP LOCKED, as pgmq.read does). They are counted as "leased" and move on a later run if the consumer lets them go.

In the DLQ, headers.dead_letter keeps the original queue, msg_id, read_ct and enqueued_at, the threshold and the time. \`queue redrive <queue>_dlq --to <queue>\` moves them back.

Counts first and prints the plan; needs --confirm <queue> (or the name typed on a terminal). --dry-run only counts.

A queue policy in the topology can also schedule this as a pg_cron job (dead-letter-<queue>, shown by \`jobs list\`).

Exit codes: 0 done (or dry run), 2 bad input or no confirmation (nothing moved), 4 queue not found.`
  static override examples = [
    {description: 'What would move', command: '<%= config.bin %> queue dead-letter llm_requests --dry-run'},
    {description: 'Move messages read 3 times or more', command: '<%= config.bin %> queue dead-letter job_requests --max-reads 3 --confirm job_requests'},
    {description: 'For scripts', command: '<%= config.bin %> queue dead-letter llm_requests --confirm llm_requests --json'},
  ]

  static override args = {
    queue: Args.string({description: 'Queue name.', required: true}),
  }

  static override flags = {
    ...connectionFlags,
    db: Flags.string({description: 'Database name or kind holding the queue (needed when several databases have it); repeatable.', multiple: true}),
    'max-reads': Flags.integer({description: "Poison threshold: messages read at least this many times (default: the queue's policy, else 5).", min: 1}),
    'dry-run': Flags.boolean({description: 'Count what would move; move nothing.'}),
    confirm: Flags.string({description: 'The queue name again, to confirm without a prompt.'}),
  }

  protected async execute(): Promise<DeadLetterResult> {
    const name = validateQueueName(this.args.queue)
    const config = resolveConfig(this.flags)
    const databases = await queueDatabases(config, this.flags.db)
    const {open, unavailable} = await openQueueDatabases(config, databases, {statementTimeoutMs: 0, lockTimeoutMs: 5000, applicationName: 'singularity queue dead-letter'})
    try {
      const {db, queue} = locateQueue(open, unavailable, name, config.prefix)
      const maxReads = this.flags['max-reads'] ?? maxReadsFor(db.db.kind, queue.name)
      const dlqExists = findQueue(db.catalog.queues, `${queue.name}_dlq`) !== undefined
      const plan = await planDeadLetter(db.client, queue, dlqExists, maxReads)
      const base: DeadLetterResult = {
        database: db.db.name,
        queue: queue.name,
        dead_letter_queue: plan.dead_letter_queue,
        max_reads: maxReads,
        dry_run: Boolean(this.flags['dry-run']),
        movable: plan.movable,
        leased: plan.leased,
        moved: 0,
        dlq_created: false,
      }
      const what = `move ${plan.movable.toLocaleString('en-US')} poison message(s) (read ${maxReads}+ times) from ${db.db.name}.${queue.name} to ${plan.dead_letter_queue}`
      if (base.dry_run || plan.movable === 0) {
        if (!base.dry_run) this.note(`nothing to move: no message of ${db.db.name}.${queue.name} read ${maxReads}+ times${plan.leased > 0 ? ` is free (${plan.leased} held by consumers)` : ''}`)
        return base
      }
      this.note(`would ${what}${plan.leased > 0 ? ` (${plan.leased} more are held by consumers and stay)` : ''}`)
      await confirmDestructive({action: what, name: queue.name, confirmFlag: this.flags.confirm, command: `singularity queue dead-letter ${queue.name} --db ${db.db.name}${this.flags['max-reads'] ? ` --max-reads ${maxReads}` : ''}`})
      const done = await deadLetter(db.client, queue, maxReads)
      return {...base, moved: done.moved, dlq_created: !dlqExists && done.moved > 0}
    } finally {
      await closeAll(open)
    }
  }

  protected override human(r: DeadLetterResult): void {
    const leased = r.leased > 0 ? `; ${r.leased.toLocaleString('en-US')} held by consumers stay` : ''
    if (r.dry_run) {
      this.out(`dry run: would move ${r.movable.toLocaleString('en-US')} message(s) read ${r.max_reads}+ times from ${r.database}.${r.queue} to ${r.dead_letter_queue}${leased}; nothing was changed`)
    } else {
      this.out(`moved ${r.moved.toLocaleString('en-US')} message(s) from ${r.database}.${r.queue} to ${r.dead_letter_queue}${r.dlq_created ? ' (created, with the grants of its queue)' : ''}${leased}`)
    }
  }
}
