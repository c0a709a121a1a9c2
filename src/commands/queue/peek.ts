import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {connectionFlags, nonBlank} from '../../flags.js'
import {renderTable, type TableOptions} from '../../lib/cli/table.js'
import {resolveConfig} from '../../lib/config/resolve.js'
import {validateQueueName} from '../../lib/queue/catalog.js'
import {closeAll, locateQueue, openQueueDatabases, queueDatabases} from '../../lib/queue/locate.js'
import {peekMessages, type PeekedMessage} from '../../lib/queue/peek.js'

export default class QueuePeek extends BaseCommand<typeof QueuePeek> {
  static override summary = 'Show messages of a queue without changing them (vt and read_ct stay as they were).'
  static override description = `Reads pgmq.q_<queue> (or its archive pgmq.a_<queue> with --archive) with a plain SELECT in a read-only transaction. Unlike pgmq.read, nothing is locked and neither the visibility timeout (vt) nor read_ct changes, so consumers are not disturbed.

The queue shows the oldest messages first (what consumers get next), the archive the most recently archived first. --json prints one JSON document: an array with one object per message (database, queue, source, msg_id, read_ct, enqueued_at, vt, visible, archived_at for the archive, message, headers).

The queue is looked up in every database with queues; when it exists in more than one (each singularity instance has the same queues), choose with --db.

Exit codes: 0 ok (also when the queue is empty), 2 bad name or flags, 4 queue not found (with the closest names).`
  static override examples = [
    {description: 'The next ten messages consumers would see', command: '<%= config.bin %> queue peek llm_requests'},
    {description: 'Only messages a read would return now', command: '<%= config.bin %> queue peek job_requests --visible-only --limit 50'},
    {description: 'The last archived messages of a singularity instance', command: '<%= config.bin %> queue peek agent-sessions --db singularity_2 --archive'},
    {description: 'Full messages for jq', command: "<%= config.bin %> queue peek llm_results --json | jq '.[].message'"},
  ]

  static override args = {
    queue: Args.string({description: 'Queue name, e.g. llm_requests or agent-sessions.', required: true}),
  }

  static override flags = {
    ...connectionFlags,
    db: Flags.string({parse: nonBlank, description: 'Database name or kind holding the queue (needed when several databases have it); repeatable.', multiple: true}),
    limit: Flags.integer({description: 'At most this many messages.', default: 10, min: 1, max: 10_000}),
    archive: Flags.boolean({description: 'Show archived messages (pgmq.a_<queue>) instead of the queue.', exclusive: ['visible-only']}),
    'visible-only': Flags.boolean({description: 'Only messages whose vt has passed (what a read would return now).', exclusive: ['archive']}),
  }

  private table = ''

  protected async execute(): Promise<PeekedMessage[]> {
    const name = validateQueueName(this.args.queue)
    const config = resolveConfig(this.flags)
    const databases = await queueDatabases(config, this.flags.db)
    const {open, unavailable} = await openQueueDatabases(config, databases, {statementTimeoutMs: 30_000, lockTimeoutMs: 5000, applicationName: 'singularity queue peek'})
    let messages: PeekedMessage[]
    try {
      const {db, queue} = locateQueue(open, unavailable, name, config.prefix)
      messages = await peekMessages(db.client, queue, {database: db.db.name, limit: this.flags.limit, archive: this.flags.archive, visibleOnly: this.flags['visible-only']})
      if (!this.jsonMode && messages.length === 0) {
        this.table = `${this.flags.archive ? 'archive of ' : ''}queue ${db.db.name}.${queue.name} is empty${this.flags['visible-only'] ? ' of visible messages' : ''}`
      }
    } finally {
      await closeAll(open)
    }
    if (!this.jsonMode && messages.length > 0) this.table = peekTable(messages, this.flags.archive, await this.tableOptions())
    return messages
  }

  protected override human(messages: PeekedMessage[]): void {
    this.out(this.table)
    if (messages.length > 0) this.out(`${messages.length} message(s) of ${messages[0].database}.${messages[0].queue}${messages[0].source === 'archive' ? ' (archive)' : ''}; unchanged. --json for the full messages`)
  }
}

const WIDTH = 80

function compact(value: unknown): string {
  const text = JSON.stringify(value) ?? 'null'
  return text.length > WIDTH ? `${text.slice(0, WIDTH - 1)}…` : text
}

function peekTable(messages: PeekedMessage[], archive: boolean, options: TableOptions): string {
  const head = archive ? ['MSG_ID', 'READ_CT', 'ENQUEUED', 'ARCHIVED', 'MESSAGE'] : ['MSG_ID', 'READ_CT', 'ENQUEUED', 'VT', 'VISIBLE', 'MESSAGE']
  const rows = messages.map((m) =>
    archive
      ? [m.msg_id, m.read_ct, m.enqueued_at, m.archived_at ?? '-', compact(m.message)]
      : [m.msg_id, m.read_ct, m.enqueued_at, m.vt, m.visible ? 'yes' : 'no', compact(m.message)],
  )
  return renderTable(head, rows, options)
}
