import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {connectionFlags, nonBlank} from '../../flags.js'
import {renderTable, type TableOptions} from '../../lib/cli/table.js'
import {resolveConfig} from '../../lib/config/resolve.js'
import {validateQueueName} from '../../lib/queue/catalog.js'
import {closeAll, locateQueue, openQueueDatabases, queueDatabases} from '../../lib/queue/locate.js'
import {UsageError} from '../../lib/cli/errors.js'
import {parseDuration} from '../../lib/cli/format.js'
import {countMessages, peekMessages, type PeekedMessage, type TimeBound} from '../../lib/queue/peek.js'
import {checkJsonPath} from '../../lib/queue/redrive.js'

export interface PeekCount {
  database: string
  queue: string
  source: 'queue' | 'archive'
  /** messages matching the filters */
  count: number
}

/** --since/--until: an ISO 8601 instant, or a duration meaning that long before now (server clock). */
export function parseTimeBound(flag: string, text: string | undefined): TimeBound | undefined {
  if (text === undefined) return undefined
  const ago = parseDuration(text)
  if (ago !== undefined) return {agoSec: ago}
  if (/^\d{4}-\d{2}-\d{2}([T ][0-9:.]+)?(Z|[+-]\d{2}(:?\d{2})?)?$/.test(text.trim()) && !Number.isNaN(Date.parse(text))) return {at: text.trim()}
  throw new UsageError(`invalid ${flag} ${JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text)}`, {
    hint: 'an ISO 8601 time (2025-10-25T10:00:00Z; without a zone: UTC is not assumed, the server\'s TimeZone is) or a duration before now (90m, 2h, 7d)',
    code: 'BAD_TIME',
  })
}

export default class QueuePeek extends BaseCommand<typeof QueuePeek> {
  static override summary = 'Show messages of a queue without changing them (vt and read_ct stay as they were).'
  static override description = `Reads pgmq.q_<queue> (or its archive pgmq.a_<queue> with --archive) with a plain SELECT in a read-only transaction. Unlike pgmq.read, nothing is locked and neither the visibility timeout (vt) nor read_ct changes, so consumers are not disturbed.

Filters: --where <jsonpath> keeps messages whose message or headers match a SQL/JSON path (jsonb_path_exists), e.g. '$.dead_letter.read_ct ? (@ >= 5)'; --since/--until bound enqueued_at (archived_at with --archive) by an ISO 8601 time or a duration before now (2h, 7d). On the archive a time bound walks the archived_at index, so it stays fast on millions of rows. --count prints how many messages match instead of the messages.

The queue shows the oldest messages first (what consumers get next), the archive the most recently archived first. --json prints one JSON document: an array with one object per message (database, queue, source, msg_id, read_ct, enqueued_at, vt, visible, archived_at for the archive, message, headers).

The queue is looked up in every database with queues; when it exists in more than one (each singularity instance has the same queues), choose with --db.

Exit codes: 0 ok (also when the queue is empty), 2 bad name or flags, 4 queue not found (with the closest names).`
  static override examples = [
    {description: 'The next ten messages consumers would see', command: '<%= config.bin %> queue peek llm_requests'},
    {description: 'Only messages a read would return now', command: '<%= config.bin %> queue peek job_requests --visible-only --limit 50'},
    {description: 'The last archived messages of a singularity instance', command: '<%= config.bin %> queue peek agent-sessions --db singularity_2 --archive'},
    {description: 'Archived in the last hour, counted', command: '<%= config.bin %> queue peek llm_requests --archive --since 1h --count'},
    {description: 'Dead letters that failed on one agent', command: `<%= config.bin %> queue peek llm_requests_dlq --where '$.agent_id ? (@ == "architect")'`},
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
    where: Flags.string({description: 'Only messages whose message or headers match this SQL/JSON path.'}),
    since: Flags.string({description: 'Only messages enqueued (archived, with --archive) at or after this time: ISO 8601 or a duration before now (2h, 7d).'}),
    until: Flags.string({description: 'Only messages enqueued (archived, with --archive) before this time: ISO 8601 or a duration before now.'}),
    count: Flags.boolean({description: 'Print how many messages match, not the messages.'}),
  }

  private table = ''

  protected async execute(): Promise<PeekedMessage[] | PeekCount> {
    const name = validateQueueName(this.args.queue)
    const since = parseTimeBound('--since', this.flags.since)
    const until = parseTimeBound('--until', this.flags.until)
    const config = resolveConfig(this.flags)
    const databases = await queueDatabases(config, this.flags.db)
    const {open, unavailable} = await openQueueDatabases(config, databases, {statementTimeoutMs: 30_000, lockTimeoutMs: 5000, applicationName: 'singularity queue peek'})
    let messages: PeekedMessage[]
    try {
      const {db, queue} = locateQueue(open, unavailable, name, config.prefix)
      const where = await checkJsonPath(db.client, this.flags.where)
      const filter = {archive: this.flags.archive, visibleOnly: this.flags['visible-only'], where, since, until}
      if (this.flags.count) {
        return {database: db.db.name, queue: queue.name, source: this.flags.archive ? 'archive' : 'queue', count: await countMessages(db.client, queue, filter)}
      }
      messages = await peekMessages(db.client, queue, {database: db.db.name, limit: this.flags.limit, ...filter})
      if (!this.jsonMode && messages.length === 0) {
        this.table = `${this.flags.archive ? 'archive of ' : ''}queue ${db.db.name}.${queue.name} is empty${this.flags['visible-only'] ? ' of visible messages' : ''}${this.flags.where || since || until ? ' of messages matching the filters' : ''}`
      }
    } finally {
      await closeAll(open)
    }
    if (!this.jsonMode && messages.length > 0) this.table = peekTable(messages, this.flags.archive, await this.tableOptions())
    return messages
  }

  protected override human(result: PeekedMessage[] | PeekCount): void {
    if (!Array.isArray(result)) {
      this.out(`${result.count.toLocaleString('en-US')} message(s) in ${result.source === 'archive' ? 'the archive of ' : ''}${result.database}.${result.queue} match`)
      return
    }
    const messages = result
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
