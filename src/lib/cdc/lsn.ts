import {UsageError} from '../cli/errors.js'

/**
 * WAL positions (LSN). PostgreSQL prints them as two hex halves "16/B374D848"; here they are plain
 * numbers (exact up to 2^53 bytes of WAL, i.e. 8 PiB), cheap to compare on the streaming hot path.
 */
export type Lsn = number

const TWO_32 = 4_294_967_296
const LSN_TEXT = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/

/** "16/B374D848" → number; undefined when malformed. */
export function parseLsn(text: string): Lsn | undefined {
  const match = LSN_TEXT.exec(text.trim())
  if (!match) return undefined
  return Number.parseInt(match[1], 16) * TWO_32 + Number.parseInt(match[2], 16)
}

/** Like parseLsn, but a bad value is a usage error naming the flag (exit 2). */
export function requireLsn(text: string, flag: string): Lsn {
  const lsn = parseLsn(text)
  if (lsn === undefined) {
    throw new UsageError(`invalid LSN for ${flag}: ${JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text)}`, {
      hint: 'an LSN is two hex numbers separated by a slash, e.g. 0/16B3748 (see `SELECT pg_current_wal_lsn()`)',
      code: 'BAD_LSN',
    })
  }
  return lsn
}

let lastHi = -1
let lastHiText = ''

/** number → "16/B374D848" (upper-case hex, as PostgreSQL prints it). */
export function formatLsn(lsn: Lsn | null | undefined): string | null {
  if (lsn === null || lsn === undefined) return null
  const hi = Math.floor(lsn / TWO_32)
  if (hi !== lastHi) {
    lastHi = hi
    lastHiText = hi.toString(16).toUpperCase() + '/'
  }
  return lastHiText + (lsn - hi * TWO_32).toString(16).toUpperCase()
}

/** Reads a 64-bit big-endian LSN from a protocol message. */
export function readLsn(buffer: Buffer, offset: number): Lsn {
  return buffer.readUInt32BE(offset) * TWO_32 + buffer.readUInt32BE(offset + 4)
}

/** Writes a 64-bit big-endian LSN into a protocol message. */
export function writeLsn(buffer: Buffer, lsn: Lsn, offset: number): void {
  const hi = Math.floor(lsn / TWO_32)
  buffer.writeUInt32BE(hi, offset)
  buffer.writeUInt32BE(lsn - hi * TWO_32, offset + 4)
}
