import {quoteLiteral} from '../sql/quote.js'
import type {ConcreteDatabase} from '../../topology.js'
import {sqlAction, type Action} from './action.js'
import type {DatabaseObservation} from './observe.js'

/** pgmq's table name of a queue: q_<name> / a_<name>, lower case (pgmq.format_table_name). */
export function queueTable(queue: string, kind: 'q' | 'a'): string {
  return `${kind}_${queue.toLowerCase()}`
}

/** Queues: the declared ones that do not exist are created. Queues we did not declare are never dropped. */
export function diffQueues(db: ConcreteDatabase, observed: DatabaseObservation): Action[] {
  const have = new Set(observed.queues.map((q) => q.toLowerCase()))
  return db.spec.queues
    .filter((q) => !have.has(q.toLowerCase()))
    .map((queue) =>
      sqlAction(
        {area: 'queues', database: db.name, description: `create queue ${queue} in ${db.name}`, destructive: false, privilege: 'owner', reason: 'missing', subject: queue},
        'database',
        [`SELECT pgmq.create(${quoteLiteral(queue)})`],
      ),
    )
}
