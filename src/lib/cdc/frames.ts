import {readLsn, writeLsn, type Lsn} from './lsn.js'

/**
 * The bytes of a replication session, decoded; pure (no socket, no pg), so it is tested with bytes
 * captured from a real server cut at every offset (test/unit/cdc-frames.test.ts).
 *
 * Backend messages are Byte1 type, Int32 length (itself included), payload. While streaming, the
 * CopyData ('d') payloads are the replication messages (protocol docs, "Streaming Replication
 * Protocol"):
 *   XLogData          'w' Int64 start LSN, Int64 server WAL end, Int64 send time, Byte[n] data
 *   Primary keepalive 'k' Int64 server WAL end, Int64 send time, Byte1 reply requested
 *   Standby status    'r' Int64 written, Int64 flushed, Int64 applied, Int64 client time, Byte1 reply
 */

const COPY_DATA = 0x64 // 'd'
const HEADER = 5

/**
 * Splits the backend byte stream into messages, whatever the chunks: CopyData payloads go to
 * onCopyData(buffer, start, end) in place (no copy, no object per message); every other message goes
 * to onOther whole and in order (consecutive ones in one piece). An incomplete message is held until
 * the rest arrives; takeRest() hands it back (to give the stream back to pg mid-message).
 */
export class BackendMessageSplitter {
  private carry: Buffer[] = []
  private carryLength = 0
  /** length of the held message once its header is complete, else 0 */
  private carryNeed = 0

  constructor(
    private readonly onCopyData: (buffer: Buffer, start: number, end: number) => void,
    private readonly onOther: (bytes: Buffer) => void,
  ) {}

  push(chunk: Buffer): void {
    let data = chunk
    if (this.carryLength > 0) {
      this.carry.push(chunk)
      this.carryLength += chunk.length
      if (this.carryNeed === 0 && this.carryLength >= HEADER) this.carryNeed = messageLength(Buffer.concat(this.carry), 0)
      if (this.carryNeed === 0 || this.carryLength < this.carryNeed) return
      data = Buffer.concat(this.carry, this.carryLength)
      this.carry = []
      this.carryLength = 0
      this.carryNeed = 0
    }
    let offset = 0
    let otherStart = -1
    while (offset + HEADER <= data.length) {
      const size = messageLength(data, offset)
      if (offset + size > data.length) break
      if (data[offset] === COPY_DATA) {
        if (otherStart !== -1) {
          this.onOther(data.subarray(otherStart, offset))
          otherStart = -1
        }
        this.onCopyData(data, offset + HEADER, offset + size)
      } else if (otherStart === -1) {
        otherStart = offset
      }
      offset += size
    }
    if (otherStart !== -1) this.onOther(data.subarray(otherStart, offset))
    if (offset < data.length) {
      const rest = data.subarray(offset)
      this.carry = [rest]
      this.carryLength = rest.length
      this.carryNeed = rest.length >= HEADER ? messageLength(rest, 0) : 0
    }
  }

  /** The bytes of an incomplete message held back, if any (and forgets them). */
  takeRest(): Buffer | undefined {
    if (this.carryLength === 0) return undefined
    const rest = Buffer.concat(this.carry, this.carryLength)
    this.carry = []
    this.carryLength = 0
    this.carryNeed = 0
    return rest
  }
}

/** Type byte + the Int32 length (which counts itself but not the type byte). */
function messageLength(buffer: Buffer, offset: number): number {
  return 1 + buffer.readUInt32BE(offset + 1)
}

export const XLOG_DATA = 0x77 // 'w'
export const KEEPALIVE = 0x6b // 'k'
/** XLogData: where its data (one wal2json document) starts, from the payload's start. */
export const XLOG_DATA_OFFSET = 25

/** One replication message (a CopyData payload), decoded. */
export type ReplicationMessage =
  | {kind: 'xlog'; lsn: Lsn; walEnd: Lsn; data: string}
  | {kind: 'keepalive'; walEnd: Lsn; replyRequested: boolean}
  | {kind: 'other'; type: number}

/** Decodes the CopyData payload buffer[start..end). */
export function decodeReplicationMessage(buffer: Buffer, start: number, end: number): ReplicationMessage {
  const type = buffer[start]
  if (type === XLOG_DATA) {
    return {kind: 'xlog', lsn: readLsn(buffer, start + 1), walEnd: readLsn(buffer, start + 9), data: buffer.toString('utf8', start + XLOG_DATA_OFFSET, end)}
  }
  if (type === KEEPALIVE) return {kind: 'keepalive', walEnd: readLsn(buffer, start + 1), replyRequested: buffer[start + 17] === 1}
  return {kind: 'other', type}
}

const PG_EPOCH_MS = 946_684_800_000

/** A standby status update ('r'): written, flushed and applied all at lsn. */
export function encodeStandbyStatus(lsn: Lsn, nowMs: number, replyRequested: boolean): Buffer {
  const status = Buffer.alloc(34)
  status[0] = 0x72 // 'r'
  writeLsn(status, lsn, 1)
  writeLsn(status, lsn, 9)
  writeLsn(status, lsn, 17)
  status.writeBigInt64BE(BigInt(nowMs - PG_EPOCH_MS) * 1000n, 25)
  status[33] = replyRequested ? 1 : 0
  return status
}
