import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {connectionFlags} from '../../flags.js'
import {confirmDestructive} from '../../lib/cli/confirm.js'
import {NotFoundError, UsageError} from '../../lib/cli/errors.js'
import {resolveConfig} from '../../lib/config/resolve.js'
import {closestNames, findQueue, validateQueueName} from '../../lib/queue/catalog.js'
import {closeAll, locateQueue, openQueueDatabases, queueDatabases} from '../../lib/queue/locate.js'
import {checkJsonPath, planRedrive, redrive} from '../../lib/queue/redrive.js'

export interface RedriveResult {
  database: string
  from: string
  /** 'queue': the messages of <from> (e.g. a DLQ); 'archive': the archive of <from> */
  source: 'queue' | 'archive'
  to: string
  where: string | null
  limit: number | null
  dry_run: boolean
  /** messages matching when counted (up to --limit) */
  would_move: number
  moved: number
}

export default class QueueRedrive extends BaseCommand<typeof QueueRedrive> {
  static override summary = "Move messages back to a live queue from a dead-letter queue or from a queue's archive (--archive)."
  static override description = `Moves the messages of <from> (typically a dead-letter queue, <queue>_dlq) or, with --archive, of <from>'s archive, to the queue --to, oldest first. They become new messages there (new msg_id, read_ct 0, visible at once); headers.redrive records where each came from: the queue, queue or archive, the original msg_id, read_ct and enqueued_at, the time, and how many times it was redriven.

Exactly once, in batches (--batch-size, default 1000): each batch deletes from the source and inserts into the target in one statement, one transaction. If the run is killed, every message is in exactly one of the two places; run the same command again to move the rest.

--where takes a SQL/JSON path tested on the message and on its headers (jsonb_path_exists), e.g. '$.dead_letter.read_ct ? (@ < 10)' or '$.type ? (@ == "pattern_detection")'. --limit moves at most N.

Counts first and prints the plan; needs --confirm <from> (or the name typed on a terminal). --dry-run only counts.

Exit codes: 0 done (or dry run), 2 bad input or no confirmation (nothing moved), 4 queue not found.`
  static override examples = [
    {description: 'Replay the dead letters of llm_requests', command: '<%= config.bin %> queue redrive llm_requests_dlq --to llm_requests --confirm llm_requests_dlq'},
    {description: 'Replay archived job requests of one language', command: `<%= config.bin %> queue redrive job_requests --archive --to job_requests --where '$.language ? (@ == "elixir")' --limit 500 --confirm job_requests`},
    {description: 'How many would move', command: '<%= config.bin %> queue redrive llm_requests_dlq --to llm_requests --dry-run'},
  ]

  static override args = {
    from: Args.string({description: 'Queue to take messages from (a DLQ, or with --archive the queue whose archive is read).', required: true}),
  }

  static override flags = {
    ...connectionFlags,
    to: Flags.string({description: 'Queue to move the messages to (same database).', required: true}),
    archive: Flags.boolean({description: "Take the messages from <from>'s archive (pgmq.a_<from>)."}),
    where: Flags.string({description: 'Only messages whose message or headers match this SQL/JSON path.'}),
    limit: Flags.integer({description: 'Move at most this many messages.', min: 1}),
    'batch-size': Flags.integer({description: 'Messages per transaction.', default: 1000, min: 1, max: 100_000}),
    db: Flags.string({description: 'Database name or kind holding the queues (needed when several databases have them); repeatable.', multiple: true}),
    'dry-run': Flags.boolean({description: 'Count what would move; move nothing.'}),
    confirm: Flags.string({description: 'The <from> queue name again, to confirm without a prompt.'}),
  }

  protected async execute(): Promise<RedriveResult> {
    const fromName = validateQueueName(this.args.from)
    const toName = validateQueueName(this.flags.to)
    const archive = Boolean(this.flags.archive)
    if (!archive && fromName.toLowerCase() === toName.toLowerCase()) {
      throw new UsageError(`cannot redrive queue '${fromName}' into itself`, {hint: 'redrive a DLQ into its queue, or a queue\'s archive with --archive', code: 'BAD_TARGET'})
    }
    const config = resolveConfig(this.flags)
    const databases = await queueDatabases(config, this.flags.db)
    const {open, unavailable} = await openQueueDatabases(config, databases, {statementTimeoutMs: 0, lockTimeoutMs: 5000, applicationName: 'singularity queue redrive'})
    try {
      const {db, queue} = locateQueue(open, unavailable, fromName, config.prefix)
      const target = findQueue(db.catalog.queues, toName)
      if (!target) {
        const close = closestNames(toName, db.catalog.queues.map((q) => q.name))
        throw new NotFoundError(`queue '${toName}' not found in ${db.db.name}`, {
          hint: close.length > 0 ? `did you mean ${close.join(', ')}? (--to must be in the same database as ${queue.name})` : `--to must be a queue of ${db.db.name}`,
          code: 'QUEUE_NOT_FOUND',
        })
      }
      const match = await checkJsonPath(db.client, this.flags.where)
      const wouldMove = await planRedrive(db.client, {queue, archive}, match, this.flags.limit)
      const base: RedriveResult = {
        database: db.db.name,
        from: queue.name,
        source: archive ? 'archive' : 'queue',
        to: target.name,
        where: match,
        limit: this.flags.limit ?? null,
        dry_run: Boolean(this.flags['dry-run']),
        would_move: wouldMove,
        moved: 0,
      }
      const from = `${archive ? 'the archive of ' : ''}${db.db.name}.${queue.name}`
      const what = `move ${wouldMove.toLocaleString('en-US')} message(s) from ${from} to ${target.name}`
      if (base.dry_run || wouldMove === 0) {
        if (!base.dry_run) this.note(`nothing to move from ${from}${match ? ` matching ${match}` : ''}`)
        return base
      }
      this.note(`would ${what}`)
      const flags = [`--to ${target.name}`, archive ? '--archive' : '', `--db ${db.db.name}`, match ? `--where '${match}'` : '', this.flags.limit ? `--limit ${this.flags.limit}` : ''].filter(Boolean).join(' ')
      await confirmDestructive({action: what, name: queue.name, confirmFlag: this.flags.confirm, command: `singularity queue redrive ${queue.name} ${flags}`})
      let lastShown = 0
      const moved = await redrive(db.client, {queue, archive}, target, {
        match,
        limit: this.flags.limit,
        batchSize: this.flags['batch-size'],
        onBatch: (n) => {
          if (n - lastShown >= 10_000) {
            lastShown = n
            this.note(`moved ${n.toLocaleString('en-US')} of ${wouldMove.toLocaleString('en-US')}`)
          }
        },
      })
      return {...base, moved}
    } finally {
      await closeAll(open)
    }
  }

  protected override human(r: RedriveResult): void {
    const from = `${r.source === 'archive' ? 'the archive of ' : ''}${r.database}.${r.from}`
    if (r.dry_run) this.out(`dry run: would move ${r.would_move.toLocaleString('en-US')} message(s) from ${from} to ${r.to}; nothing was changed`)
    else this.out(`moved ${r.moved.toLocaleString('en-US')} message(s) from ${from} to ${r.to}`)
  }
}
