import {randomBytes} from 'node:crypto'
import type pg from 'pg'

import {quoteIdent, quoteLiteral} from '../sql/quote.js'
import {cdcError} from './errors.js'
import {formatLsn, type Lsn} from './lsn.js'

/**
 * The slot a tail reads, over its replication session: which slot, created how, and what the server
 * says of it afterwards. Temporary slots (ours, or a copy of a persistent one) die with the session,
 * even on SIGKILL: nothing is left behind.
 */

/** Which slot to read. */
export type SlotMode =
  /** a slot of our own that dies with the session (even on SIGKILL): nothing left behind */
  | {kind: 'temporary'}
  /** a temporary copy of a persistent slot: sees its backlog, never holds or advances it */
  | {kind: 'copy'; source: string}
  /** the persistent slot itself, confirmed as lines are written (at-least-once) */
  | {kind: 'consume'; name: string}

export interface OpenedSlot {
  name: string
  temporary: boolean
}

/** Creates the slot the session reads (nothing for `consume`); errors become one line with a hint. */
export async function openSlot(client: pg.Client, slot: SlotMode, options: {temporarySlotName?: string; serverMajor?: number} = {}): Promise<OpenedSlot> {
  if (slot.kind === 'consume') return {name: slot.name, temporary: false}
  const name = options.temporarySlotName ?? `singularity_tail_${process.pid}_${randomBytes(3).toString('hex')}`
  try {
    if (slot.kind === 'temporary') {
      await client.query(`CREATE_REPLICATION_SLOT ${quoteIdent(name)} TEMPORARY LOGICAL wal2json NOEXPORT_SNAPSHOT`)
    } else {
      await client.query(`SELECT lsn FROM pg_copy_logical_replication_slot(${quoteLiteral(slot.source)}, ${quoteLiteral(name)}, true, 'wal2json')`)
    }
  } catch (error) {
    throw cdcError(error, {slot: slot.kind === 'copy' ? slot.source : undefined, serverMajor: options.serverMajor})
  }
  return {name, temporary: true}
}

/** START_REPLICATION for the slot from startLsn (0: where the slot stands), with wal2json's options. */
export function startReplicationSql(slotName: string, startLsn: Lsn | undefined, pluginOptions: [string, string][]): string {
  const options = pluginOptions.map(([k, v]) => `${quoteIdent(k)} ${quoteLiteral(v)}`).join(', ')
  return `START_REPLICATION SLOT ${quoteIdent(slotName)} LOGICAL ${formatLsn(startLsn ?? 0)} (${options})`
}

/** confirmed_flush_lsn as the server reports it (persistent slots, after streaming), or null. */
export async function serverConfirmedLsn(client: pg.Client, slotName: string): Promise<string | null> {
  try {
    const {rows} = await client.query(`SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = ${quoteLiteral(slotName)}`)
    return rows[0]?.lsn ?? null
  } catch {
    return null
  }
}
