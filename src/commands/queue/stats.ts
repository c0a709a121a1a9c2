import {Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {connectionFlags, nonBlank, readFlags, tableFlags} from '../../flags.js'
import {ExitCode, NotFoundError, UsageError} from '../../lib/cli/errors.js'
import {formatDuration, groupDigits, parseDuration} from '../../lib/cli/format.js'
import {resolveConfig} from '../../lib/config/resolve.js'
import {severalServers} from '../../lib/estate/targets.js'
import {closestNames, globToRegExp} from '../../lib/queue/catalog.js'
import {queueDatabasesToRead, readQueueDatabases, requireSomeRead, type Unavailable} from '../../lib/queue/locate.js'
import type {Unreadable} from '../../lib/estate/visit.js'
import {DEFAULT_COUNT_LIMIT, queueStats, type QueueStats} from '../../lib/queue/stats.js'
import {QUEUE_STATS_COLUMNS, renderQueueStats} from '../../lib/render/queues.js'
import {formatTable, type Column} from '../../lib/cli/table.js'
import {maxReadsFor} from '../../queue-policies.js'
import {parseWatchInterval, runWatch, watchFlag, withWatchDefault} from '../../lib/cli/watch.js'
import {statsTicker, withRates, type QueueRates} from '../../lib/queue/stats-watch.js'

export interface Breach {
  database: string
  queue: string
  check: 'length' | 'oldest_age_sec'
  value: number
  threshold: number
  /** the compared figure is an estimate */
  estimated: boolean
}

export interface StatsResult {
  exact: boolean
  /** fast mode: figures are counted exactly up to this many rows per queue, estimated above */
  count_limit: number | null
  queues: QueueStats[]
  breaches: Breach[]
  unavailable: Unavailable[]
  /** databases that refused, failed or did not answer within the per-database timeout */
  unreadable: Unreadable[]
}

/** --exact without a --db-timeout: counting every row of a big queue takes long. */
const EXACT_DATABASE_TIMEOUT_MS = 600_000

/** Never count more than this many rows per figure to decide a --fail-if-length-gt threshold. */
const MAX_THRESHOLD_COUNT = 1_000_000

export default class QueueStatsCommand extends BaseCommand<typeof QueueStatsCommand> {
  static override summary = 'Length, visible, in flight, oldest/newest age, total sent, archive size and poison count of every queue.'
  static override description = `Reads every database of the estate that has queues (shared_queue and each singularity database), or those named with --db.

Fast by default and flat in queue size, also on queues of millions of messages: a queue whose msg_id span (highest − lowest id, two index probes: an upper bound of its length) is under ${groupDigits(DEFAULT_COUNT_LIMIT)} is counted exactly; in a bigger one the in-flight messages are counted exactly up to ${groupDigits(DEFAULT_COUNT_LIMIT)} (a bounded range of the vt index) and nothing else is read: beyond that, length comes from the statistics collector (n_live_tup, else pg_class.reltuples scaled to the table's size), clamped by the msg_id span, and the figure is marked as an estimate ("~" in the table; "estimated": true and "estimated_fields" under --json). Its error is that of PostgreSQL's statistics: typically within a few percent after ANALYZE or autovacuum. Ages come from the lowest/highest msg_id, total sent from the msg_id sequence (exact). --exact counts every row in one snapshot, as pgmq.metrics does.

Poison: messages read at least max_reads times (the queue's policy in the topology, default 5; \`queue dead-letter\` moves them aside). Counted exactly by a scan that stops after the count limit, so exact on small queues; on bigger ones the share of poison in a ~500-page sample times the length (marked as an estimate), never below what the bounded scan counted.

Thresholds for cron/CI alerting: --fail-if-length-gt N and --fail-if-oldest-gt DURATION exit 3 after printing when any queue breaches them. A length threshold up to ${groupDigits(MAX_THRESHOLD_COUNT)} is decided by an exact bounded count, so estimates never cause a false alarm below it.

The databases are read at once, at most --concurrency at a time (default 8, never more than a quarter of the server's free connections), each within --db-timeout (default 10s; 10m with --exact). A database that refuses, fails or does not answer in time is named on stderr and under "unreadable" in --json ({database, reason, timed_out}); the others are still shown.

Several servers (the config's servers and placement): a server column (\`server\` under --json); the databases of a server that does not answer are unreadable (with their server), the others are shown.

Exit codes: 0 ok, 1 a database (or a server) could not be read (the others are printed), 2 bad flags, 3 threshold breached, 4 no queue matches --pattern or no queue database exists.`
  static override examples = [
    {description: 'Every queue of the estate', command: '<%= config.bin %> queue stats'},
    {description: 'The LLM queues of shared_queue, counted exactly', command: "<%= config.bin %> queue stats --db shared_queue --pattern 'llm_*' --exact"},
    {description: 'Alert from cron when the learning queue backs up (seed 000)', command: "<%= config.bin %> queue stats --pattern 'centralcloud-new-patterns' --fail-if-length-gt 100 --fail-if-oldest-gt 10m"},
    {description: 'For scripts', command: '<%= config.bin %> queue stats --json | jq \'.queues[] | {queue, length}\''},
    {description: 'Many instances: 16 databases at once, give up on one after 3 s', command: '<%= config.bin %> queue stats --concurrency 16 --db-timeout 3s'},
  ]

  static override flags = {
    ...connectionFlags,
    ...readFlags,
    db: Flags.string({parse: nonBlank, description: 'Database name or kind (shared_queue, singularity); repeatable. Default: every database with queues.', multiple: true}),
    pattern: Flags.string({parse: nonBlank, description: "Only queues whose name matches this glob (* and ?), e.g. 'llm_*'."}),
    exact: Flags.boolean({description: 'Count every row (slower on big queues) instead of estimating above the count limit.'}),
    'fail-if-length-gt': Flags.integer({description: 'Exit 3 when a queue holds more than N messages.', min: 0}),
    'fail-if-oldest-gt': Flags.string({description: "Exit 3 when a queue's oldest message is older than this (30s, 10m, 2h, 1d)."}),
    ...tableFlags,
    watch: watchFlag,
  }

  override async init(): Promise<void> {
    this.argv = withWatchDefault(this.argv)
    await super.init()
  }

  protected async execute(): Promise<StatsResult> {
    const flags = this.flags
    const matcher = flags.pattern === undefined ? undefined : globToRegExp(flags.pattern)
    let oldestLimit: number | undefined
    if (flags['fail-if-oldest-gt'] !== undefined) {
      oldestLimit = parseDuration(flags['fail-if-oldest-gt'])
      if (oldestLimit === undefined) {
        throw new UsageError(`invalid --fail-if-oldest-gt ${JSON.stringify(flags['fail-if-oldest-gt'])}`, {hint: 'a duration such as 90s, 10m, 2h or 1d'})
      }
    }
    const lengthLimit = flags['fail-if-length-gt']
    const countLimit = flags.exact ? null : Math.max(DEFAULT_COUNT_LIMIT, lengthLimit === undefined ? 0 : Math.min(lengthLimit, MAX_THRESHOLD_COUNT))

    const config = resolveConfig(flags)
    const {databases, bound} = await queueDatabasesToRead(config, flags.db)
    // --exact counts every row: without a deadline of its own, each database gets ten minutes
    if (flags.exact && config.read.timeoutMs === undefined) bound.timeoutMs = EXACT_DATABASE_TIMEOUT_MS
    if (flags.watch !== undefined) return this.watch(parseWatchInterval(flags.watch), statsTicker(config, databases, {matcher, exact: flags.exact, countLimit: countLimit ?? undefined, bound}))
    const {read, unavailable, unreadable} = await readQueueDatabases(
      config,
      databases,
      (client, db, catalog) => {
        const selected = matcher ? catalog.queues.filter((q) => matcher.test(q.name)) : catalog.queues
        return queueStats(client, selected, {database: db.name, exact: flags.exact, countLimit: countLimit ?? undefined, maxReads: (q) => maxReadsFor(db.kind, q)})
      },
      {bound, connect: {lockTimeoutMs: 5000, applicationName: 'singularity queue stats'}},
    )
    requireSomeRead(read, unavailable, unreadable, config.prefix)
    for (const u of unavailable) this.note(`skipped ${u.database}: ${u.reason}`)
    // a database that could not be read is named (stderr and --json), the others answer: exit 1 after printing
    for (const u of unreadable) this.note(`${u.timed_out ? 'timed out' : 'unreadable'}: ${u.database}: ${u.reason}`)
    if (unreadable.length > 0) this.exitAfterOutput(ExitCode.failure)
    // several servers: each row and each unreadable database names its server
    const several = severalServers(config)
    const serverOf = (name: string) => databases.find((d) => d.name === name)?.server ?? 'main'
    const queues: QueueStats[] = read.flatMap((r) => (several ? r.value.map((row) => ({...row, server: r.db.server ?? 'main'})) : r.value))
    if (several) for (const u of unreadable) (u as typeof u & {server?: string}).server = serverOf(u.database)
    if (matcher && queues.length === 0) {
      const all = read.flatMap((r) => r.catalog.queues.map((q) => q.name))
      const close = closestNames(flags.pattern!.replaceAll(/[*?]/g, ''), all)
      throw new NotFoundError(`no queue matches '${flags.pattern}' in ${read.map((r) => r.db.name).join(', ')}`, {
        hint: close.length > 0 ? `did you mean ${close.join(', ')}?` : `queues there: ${[...new Set(all)].slice(0, 15).join(', ') || 'none'}`,
        code: 'QUEUE_NOT_FOUND',
      })
    }

    const breaches: Breach[] = []
    for (const q of queues) {
      if (lengthLimit !== undefined && q.length > lengthLimit) {
        breaches.push({database: q.database, queue: q.queue, check: 'length', value: q.length, threshold: lengthLimit, estimated: q.estimated_fields.includes('length') && lengthLimit > (countLimit ?? Infinity)})
      }
      if (oldestLimit !== undefined && q.oldest_age_sec !== null && q.oldest_age_sec > oldestLimit) {
        breaches.push({database: q.database, queue: q.queue, check: 'oldest_age_sec', value: q.oldest_age_sec, threshold: oldestLimit, estimated: false})
      }
    }
    if (breaches.length > 0) this.exitAfterOutput(3)
    const result = {exact: Boolean(flags.exact), count_limit: countLimit, queues, breaches, unavailable, unreadable}
    if (!this.jsonMode) this.table = renderQueueStats(result.queues, await this.tableOptions(), several)
    return result
  }

  private table: string[] = []

  /** --watch: the stats every interval with sent/s and archived/s; never returns (Ctrl-C exits 130). */
  private async watch(intervalSec: number, ticker: ReturnType<typeof statsTicker>): Promise<never> {
    if (this.flags['fail-if-length-gt'] !== undefined || this.flags['fail-if-oldest-gt'] !== undefined) {
      await ticker.close()
      throw new UsageError('--watch does not combine with --fail-if-* thresholds', {hint: 'thresholds are for one-shot checks from cron; --watch is for looking'})
    }
    return runWatch({
      intervalSec,
      ndjson: this.jsonMode || !process.stdout.isTTY,
      tick: ticker.tick,
      close: ticker.close,
      document: (current, previous) => ({interval_sec: intervalSec, queues: withRates(current, previous), lost: current.value.lost}),
      frame: async (current, previous) => {
        const queues = withRates(current, previous)
        const rate = (v: number | null) => (v === null ? '-' : `${v.toLocaleString('en-US')}/s`)
        const columns: Column<QueueRates>[] = [
          ...(QUEUE_STATS_COLUMNS as Column<QueueRates>[]).filter((c) => !['newest', 'total-sent'].includes(c.key)),
          {key: 'sent-per-sec', header: 'sent/s', priority: 2, align: 'right', text: (q) => rate(q.sent_per_sec), raw: (q) => q.sent_per_sec},
          {key: 'archived-per-sec', header: 'archived/s', priority: 3, align: 'right', text: (q) => rate(q.archived_per_sec), raw: (q) => q.archived_per_sec},
        ]
        const table = formatTable(columns, queues, await this.tableOptions()).lines.join('\n')
        const lost = current.value.lost.map((l) => `${l.database}: connection lost (${l.error}); retrying`)
        return [table, ...lost].join('\n')
      },
    })
  }

  protected override human(result: StatsResult): void {
    if (result.queues.length === 0) this.out('no queues; `singularity db init` creates the estate\'s queues')
    else this.outTable(this.table)
    if (result.queues.some((q) => q.estimated)) {
      this.outFolded(`~ estimate from PostgreSQL statistics (counted exactly up to ${result.count_limit === null ? undefined : groupDigits(result.count_limit)} rows); --exact counts every row`)
    }
    for (const b of result.breaches) {
      const shown = b.check === 'length' ? `length ${b.estimated ? '~' : ''}${groupDigits(b.value)} > ${groupDigits(b.threshold)}` : `oldest message ${formatDuration(b.value)} old > ${formatDuration(b.threshold)}`
      this.outFolded(`BREACHED ${b.database}.${b.queue}: ${shown}`)
    }
  }
}
