import type {ResolvedConfig} from '../config/resolve.js'
import {KeptClient, perSecond, type Tick} from '../cli/watch.js'
import {connect} from '../db/connect.js'
import {databaseTarget} from '../estate/targets.js'
import {DEFAULT_DATABASE_TIMEOUT_MS, visitEach, type ReadBound} from '../estate/visit.js'
import type {ConcreteDatabase} from '../../topology.js'
import {maxReadsFor} from '../../queue-policies.js'
import {listQueues} from './catalog.js'
import {queueStats, type QueueStats} from './stats.js'

export interface StatsTick {
  queues: QueueStats[]
  /** databases that did not answer this tick (retried next tick) */
  lost: {database: string; error: string; timed_out: boolean}[]
}

export type QueueRates = QueueStats & {
  /** messages sent per second since the previous tick (msg_id sequence); null on the first tick */
  sent_per_sec: number | null
  /** growth of the archive per second since the previous tick; null on the first tick */
  archived_per_sec: number | null
}

/**
 * queue stats again and again over one kept connection per database: a database whose connection
 * is lost is reported in `lost` for that tick and reconnected on the next.
 */
export function statsTicker(
  config: ResolvedConfig,
  databases: ConcreteDatabase[],
  options: {matcher?: RegExp; exact?: boolean; countLimit?: number; bound?: Pick<ReadBound, 'concurrency' | 'timeoutMs'>},
): {tick: () => Promise<StatsTick>; close: () => Promise<void>} {
  const timeoutMs = options.bound?.timeoutMs ?? DEFAULT_DATABASE_TIMEOUT_MS
  const kept = databases.map((db) => ({
    db,
    client: new KeptClient(() =>
      connect(databaseTarget(config, db), {statementTimeoutMs: timeoutMs, connectTimeoutMs: timeoutMs, lockTimeoutMs: 5000, applicationName: 'singularity queue stats --watch'}),
    ),
  }))
  return {
    tick: async () => {
      // bounded, a deadline each: a database that does not answer in time is lost for this tick
      // (its connection dropped, opened again next tick) and never holds up the others
      const visits = await visitEach(
        kept,
        ({db}) => db.name,
        ({db, client}, signal) => {
          signal.addEventListener('abort', () => client.drop(), {once: true})
          return client.use(async (c) => {
            // the catalog again each tick: queues created meanwhile (a DLQ) appear
            const catalog = await listQueues(c)
            const selected = options.matcher ? catalog.queues.filter((q) => options.matcher!.test(q.name)) : catalog.queues
            return queueStats(c, selected, {database: db.name, exact: options.exact, countLimit: options.countLimit, maxReads: (q) => maxReadsFor(db.kind, q)})
          })
        },
        {concurrency: options.bound?.concurrency, timeoutMs},
      )
      return {
        queues: visits.flatMap((v) => (v.ok ? v.value : [])),
        lost: visits.flatMap((v, i) => (v.ok ? [] : [{database: kept[i].db.name, error: v.error.message.split('\n')[0], timed_out: v.timedOut}])),
      }
    },
    close: async () => {
      await Promise.all(kept.map((k) => k.client.close()))
    },
  }
}

/** The figures of a tick with sent/s and archived/s from the difference to the previous tick. */
export function withRates(current: Tick<StatsTick>, previous: Tick<StatsTick> | undefined): QueueRates[] {
  const seconds = previous ? (current.at - previous.at) / 1000 : 0
  const before = new Map((previous?.value.queues ?? []).map((q) => [`${q.database}/${q.queue}`, q]))
  return current.value.queues.map((q) => {
    const p = before.get(`${q.database}/${q.queue}`)
    return {...q, sent_per_sec: perSecond(q.total_sent, p?.total_sent, seconds), archived_per_sec: perSecond(q.archive_length, p?.archive_length, seconds)}
  })
}
