import {quoteIdent, quoteLiteral} from '../sql/quote.js'
import type {ConcreteDatabase} from '../../topology.js'
import {sqlAction, type Action} from './action.js'
import type {DatabaseObservation, ObservedSlot} from './observe.js'

function describeIdentity(mode: string): string {
  return {d: 'DEFAULT without a primary key', n: 'NOTHING', i: 'an index that no longer exists', f: 'FULL'}[mode] ?? mode
}

/**
 * Change capture of a singularity database: its persistent wal2json slot exists, and each captured
 * table has a replica identity that carries the old key of UPDATE/DELETE (its primary key, else a
 * usable unique index; FULL is accepted as the operator's choice). A slot of our name with another
 * plugin or in another database is reported, never dropped: dropping loses what it retained.
 */
export function diffCdc(db: ConcreteDatabase, observed: DatabaseObservation, slots: ObservedSlot[]): {actions: Action[]; warnings: string[]} {
  const actions: Action[] = []
  const warnings: string[] = []
  if (!db.cdcSlot || !db.spec.cdc) return {actions, warnings}
  // CentralCloud's slot, and seed 002's CDC bridge slot (read by the cdc-bridge pg_cron job)
  const wanted = [{slot: db.cdcSlot, what: 'wal2json'}, ...(db.cdcBridgeSlot ? [{slot: db.cdcBridgeSlot, what: 'wal2json, CDC bridge'}] : [])]
  for (const {slot: name, what} of wanted) {
    const slot = slots.find((s) => s.name === name)
    if (!slot) {
      actions.push({
        area: 'cdc', database: db.name, server: null, description: `create replication slot ${name} (${what}) on ${db.name}`,
        sql: [`SELECT pg_create_logical_replication_slot(${quoteLiteral(name)}, 'wal2json')`],
        destructive: false, privilege: 'replication', reason: 'missing', subject: name, step: {kind: 'cdc-slot', slot: name},
      })
    } else {
      if (slot.plugin !== 'wal2json') warnings.push(`slot ${slot.name} exists with plugin ${slot.plugin}, not wal2json: drop it (\`singularity cdc slots drop ${slot.name} --confirm ${slot.name}\`) and run db init again`)
      if (slot.database !== db.name) warnings.push(`slot ${slot.name} belongs to database ${slot.database}, not ${db.name}: drop it and run db init again`)
    }
  }
  if (!observed.exists) return {actions, warnings}
  for (const name of new Set([...db.spec.cdc.tables, ...(db.spec.cdcBridge?.tables ?? [])])) {
    const row = observed.identities.find((r) => r.table === name)
    if (!row) continue // the SQL area creates it (with its primary key)
    const qualified = `${quoteIdent(row.schema)}.${quoteIdent(row.table)}`
    const shown = `${row.schema}.${row.table}`
    const mode = row.relreplident
    if (mode === 'f' || (mode === 'd' && row.hasPk) || (mode === 'i' && row.identityIndex)) continue
    const base = {area: 'cdc' as const, database: db.name, destructive: false, privilege: 'owner' as const, reason: 'drifted' as const, subject: shown, differences: ['replica identity']}
    if (row.hasPk) {
      actions.push(sqlAction({...base, description: `set the replica identity of ${shown} to DEFAULT (its primary key); it is ${describeIdentity(mode)}`}, 'database', [`ALTER TABLE ${qualified} REPLICA IDENTITY DEFAULT`]))
    } else if (row.candidateIndex) {
      actions.push(
        sqlAction(
          {...base, description: `set the replica identity of ${shown} to unique index ${row.candidateIndex} (no primary key); it is ${describeIdentity(mode)}`},
          'database',
          [`ALTER TABLE ${qualified} REPLICA IDENTITY USING INDEX ${quoteIdent(row.candidateIndex)}`],
        ),
      )
    } else {
      warnings.push(`captured table ${shown} has no primary key and no usable unique index: its UPDATE/DELETE changes carry no old key. Add a primary key, or accept larger WAL with: ALTER TABLE ${qualified} REPLICA IDENTITY FULL`)
    }
  }
  return {actions, warnings}
}
