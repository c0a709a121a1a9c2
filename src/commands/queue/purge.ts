import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {connectionFlags, nonBlank} from '../../flags.js'
import {confirmDestructive} from '../../lib/cli/confirm.js'
import {UsageError} from '../../lib/cli/errors.js'
import {formatDuration, parseDuration} from '../../lib/cli/format.js'
import {resolveConfig} from '../../lib/config/resolve.js'
import {validateQueueName} from '../../lib/queue/catalog.js'
import {closeAll, locateQueue, openQueueDatabases, queueDatabases} from '../../lib/queue/locate.js'
import {planArchivePrune, planQueuePurge, pruneArchive, purgeQueue} from '../../lib/queue/purge.js'

export interface PurgeResult {
  database: string
  queue: string
  /** 'queue': the messages of pgmq.q_<queue>; 'archive': archived messages older than the cutoff */
  target: 'queue' | 'archive'
  dry_run: boolean
  /** how many messages would go (counted before asking) */
  would_delete: number
  /** how many went (0 on a dry run) */
  deleted: number
  /** queue purge: messages with msg_id up to this one (later sends are kept) */
  up_to_msg_id?: number | null
  /** archive prune: archived before this instant */
  cutoff?: string
  older_than_sec?: number
}

export default class QueuePurge extends BaseCommand<typeof QueuePurge> {
  static override summary = 'Delete every message of a queue, or prune its archive (--archive-older-than); asks for confirmation.'
  static override description = `Counts what would go and prints it, then needs --confirm <queue> (or the queue name typed on a terminal). Without a terminal and without --confirm it refuses: exit 2, nothing deleted. --dry-run only counts.

A queue purge deletes exactly the messages it counted (msg_id up to the highest one seen), in one statement; messages sent after the count are kept, the archive is untouched. --archive-older-than 90d prunes the archive instead (messages archived before now − 90 days; seed 003's retention), in batches.

Exit codes: 0 done (or dry run), 2 bad input or no confirmation (nothing deleted), 4 queue not found.`
  static override examples = [
    {description: 'How many messages would go', command: '<%= config.bin %> queue purge llm_requests --dry-run'},
    {description: 'Purge a queue from a script', command: '<%= config.bin %> queue purge llm_requests --confirm llm_requests'},
    {description: "Prune a singularity instance's archive to 90 days", command: '<%= config.bin %> queue purge agent-sessions --db singularity --archive-older-than 90d --confirm agent-sessions'},
  ]

  static override args = {
    queue: Args.string({description: 'Queue name.', required: true}),
  }

  static override flags = {
    ...connectionFlags,
    db: Flags.string({parse: nonBlank, description: 'Database name or kind holding the queue (needed when several databases have it); repeatable.', multiple: true}),
    confirm: Flags.string({description: 'The queue name again, to confirm without a prompt.'}),
    'dry-run': Flags.boolean({description: 'Count what would be deleted; delete nothing.'}),
    'archive-older-than': Flags.string({description: 'Prune the archive instead: delete archived messages older than this (e.g. 90d, 12h).'}),
  }

  protected async execute(): Promise<PurgeResult> {
    const name = validateQueueName(this.args.queue)
    let olderThan: number | undefined
    if (this.flags['archive-older-than'] !== undefined) {
      olderThan = parseDuration(this.flags['archive-older-than'])
      if (olderThan === undefined) {
        throw new UsageError(`invalid --archive-older-than ${JSON.stringify(this.flags['archive-older-than'])}`, {hint: 'a duration such as 90d, 12h or 30m'})
      }
    }
    const config = resolveConfig(this.flags)
    const databases = await queueDatabases(config, this.flags.db)
    const {open, unavailable} = await openQueueDatabases(config, databases, {statementTimeoutMs: 0, lockTimeoutMs: 5000, applicationName: 'singularity queue purge'})
    try {
      const {db, queue} = locateQueue(open, unavailable, name, config.prefix)
      const client = db.client
      const archive = olderThan !== undefined
      const plan = archive ? await planArchivePrune(client, queue, olderThan!) : await planQueuePurge(client, queue)
      const base: PurgeResult = {
        database: db.db.name,
        queue: queue.name,
        target: archive ? 'archive' : 'queue',
        dry_run: Boolean(this.flags['dry-run']),
        would_delete: plan.messages,
        deleted: 0,
        ...(archive ? {cutoff: plan.cutoff, older_than_sec: olderThan} : {up_to_msg_id: plan.upTo ?? null}),
      }
      const what = archive
        ? `delete ${plan.messages.toLocaleString('en-US')} archived message(s) older than ${formatDuration(olderThan)} from ${db.db.name}.${queue.name}`
        : `delete ${plan.messages.toLocaleString('en-US')} message(s) from queue ${db.db.name}.${queue.name}`
      if (base.dry_run || plan.messages === 0) {
        if (!base.dry_run) this.note(`nothing to delete: ${what.replace(/^delete /, '')}`)
        return base
      }
      this.note(`would ${what}`)
      const dbFlag = ` --db ${db.db.name}`
      const archiveFlag = archive ? ` --archive-older-than ${this.flags['archive-older-than']}` : ''
      await confirmDestructive({action: what, name: queue.name, confirmFlag: this.flags.confirm, command: `singularity queue purge ${queue.name}${dbFlag}${archiveFlag}`})
      const deleted = archive ? await pruneArchive(client, queue, plan) : await purgeQueue(client, queue, plan)
      return {...base, deleted}
    } finally {
      await closeAll(open)
    }
  }

  protected override human(r: PurgeResult): void {
    const where = `${r.database}.${r.queue}${r.target === 'archive' ? ' (archive)' : ''}`
    const scope = r.target === 'archive' ? ` archived before ${r.cutoff}` : ''
    if (r.dry_run) this.out(`dry run: would delete ${r.would_delete.toLocaleString('en-US')} message(s)${scope} from ${where}; nothing was changed`)
    else this.out(`deleted ${r.deleted.toLocaleString('en-US')} message(s)${scope} from ${where}`)
  }
}
