/** How `queue stats` looks to people: one row per queue, "~" marking estimates. */
import {formatDuration, groupDigits} from '../cli/format.js'
import {formatTable, type Column, type TableOptions} from '../cli/table.js'
import type {EstimatedField, QueueStats} from '../queue/stats.js'

const count = (field: EstimatedField) => (q: QueueStats) => `${q.estimated_fields.includes(field) ? '~' : ''}${groupDigits(q[field])}`

// Shown in the familiar order (database, queue, counts, ages); dropped by priority when narrow.
export const QUEUE_STATS_COLUMNS: Column<QueueStats>[] = [
  {key: 'database', header: 'database', priority: 1, min: Number.MAX_SAFE_INTEGER, text: (q) => q.database},
  {key: 'queue', header: 'queue', priority: 0, text: (q) => q.queue},
  {key: 'length', header: 'length', priority: 1, align: 'right', text: count('length'), raw: (q) => q.length, tone: (q) => (q.length > 0 ? undefined : 'dim')},
  {key: 'visible', header: 'visible', priority: 4, align: 'right', text: count('visible'), raw: (q) => q.visible},
  {key: 'in-flight', header: 'in flight', priority: 3, align: 'right', text: count('in_flight'), raw: (q) => q.in_flight},
  {key: 'oldest', header: 'oldest', priority: 2, align: 'right', text: (q) => formatDuration(q.oldest_age_sec), raw: (q) => q.oldest_age_sec},
  {key: 'newest', header: 'newest', priority: 5, align: 'right', text: (q) => formatDuration(q.newest_age_sec), raw: (q) => q.newest_age_sec},
  {key: 'total-sent', header: 'total sent', priority: 6, align: 'right', text: (q) => groupDigits(q.total_sent), raw: (q) => q.total_sent},
  {key: 'archive', header: 'archive', priority: 7, align: 'right', text: count('archive_length'), raw: (q) => q.archive_length},
  {key: 'poison', header: 'poison', priority: 3, align: 'right', text: count('poison'), raw: (q) => q.poison, tone: (q) => (q.poison > 0 ? 'warn' : undefined)},
]

/** The stats as a table that fits. */
export function renderQueueStats(queues: QueueStats[], options: TableOptions, several = false): string[] {
  // several servers: which server each database is on
  const server: Column<QueueStats> = {key: 'server', header: 'server', priority: 1, text: (q) => q.server ?? 'main'}
  const columns = several ? [QUEUE_STATS_COLUMNS[0], server, ...QUEUE_STATS_COLUMNS.slice(1)] : QUEUE_STATS_COLUMNS
  return formatTable(columns, queues, options).lines
}
