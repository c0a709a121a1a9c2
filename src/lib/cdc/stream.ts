import {fstatSync, fsyncSync} from 'node:fs'
import {randomBytes} from 'node:crypto'
import type pg from 'pg'

import {CliError} from '../cli/errors.js'
import {quoteIdent, quoteLiteral} from '../sql/quote.js'
import {cdcError} from './errors.js'
import {formatLsn, readLsn, writeLsn, type Lsn} from './lsn.js'
import {
  ACTION_CODE,
  actionCode,
  fastJsonLine,
  toChangeLine,
  toHumanLine,
  wal2jsonOptions,
  type QualifiedTable,
  type TailAction,
  type TailFormat,
  type TxnContext,
  type Wal2jsonChange,
} from './wal2json.js'

/**
 * Change streaming over the replication protocol (START_REPLICATION … LOGICAL in a
 * `replication=database` session), on node-postgres's own connection: pg routes the CopyBoth
 * stream's CopyData messages (handled here, straight from the socket), and we answer with standby status
 * updates sent as CopyData. Messages (protocol docs, "Streaming Replication Protocol"):
 *   XLogData          'w' Int64 start LSN, Int64 server WAL end, Int64 send time, Byte[n] data
 *   Primary keepalive 'k' Int64 server WAL end, Int64 send time, Byte1 reply requested
 *   Standby status    'r' Int64 written, Int64 flushed, Int64 applied, Int64 client time, Byte1 reply
 * Output is written with backpressure: when stdout's buffer is full the socket is paused, so the
 * server (TCP) waits instead of our memory growing.
 */

/** Which slot to read. */
export type SlotMode =
  /** a slot of our own that dies with the session (even on SIGKILL): nothing left behind */
  | {kind: 'temporary'}
  /** a temporary copy of a persistent slot: sees its backlog, never holds or advances it */
  | {kind: 'copy'; source: string}
  /** the persistent slot itself, confirmed as lines are written (at-least-once) */
  | {kind: 'consume'; name: string}

export type StopReason = 'limit' | 'until-lsn' | 'timeout' | 'interrupted' | 'output-closed' | 'server-ended'

export interface StreamOptions {
  slot: SlotMode
  tables: QualifiedTable[]
  actions: readonly TailAction[]
  format: TailFormat
  colour?: boolean
  /** stop after this many changes (rows; messages count when asked for) */
  limit?: number
  /** stop at this LSN: nothing after it is printed */
  untilLsn?: Lsn
  /** start here (persistent slots: --slot) */
  fromLsn?: Lsn
  /** stop after this long */
  timeoutMs?: number
  out: NodeJS.WritableStream & {fd?: number}
  signal?: AbortSignal
  /** server notices (e.g. wal2json's "no tuple identifier for UPDATE") */
  onNotice?: (message: string) => void
  /** called once streaming has started */
  onStart?: (info: {slot: string; temporary: boolean; startLsn: string | null}) => void
  /** standby status every this many ms even when idle (default 10 s) */
  statusIntervalMs?: number
  /** name of the temporary slot (default singularity_tail_<pid>_<random>) */
  temporarySlotName?: string
  serverMajor?: number
}

export interface StreamResult {
  slot: string
  temporary: boolean
  consumed: boolean
  changes: number
  /** LSN of the last line printed */
  lastLsn: string | null
  /** the last position we confirmed to the server (everything before it was written out) */
  confirmedLsn: string | null
  /** confirmed_flush_lsn as the server reports it after we stopped (persistent slots) */
  serverConfirmedLsn: string | null
  stoppedBy: StopReason
}

const PG_EPOCH_MS = 946_684_800_000
const MAX_PENDING = 256 * 1024
const ACK_THROTTLE_MS = 1000

/** Streams changes from a replication connection to `out` until a bound or a stop is reached. */
export async function streamChanges(client: pg.Client, options: StreamOptions): Promise<StreamResult> {
  const connection = (client as unknown as {connection: ReplicationConnection}).connection
  const socket = connection.stream
  const out = options.out

  await client.query("SET TimeZone TO 'UTC'")

  // --- the slot -------------------------------------------------------------------------------
  let slotName: string
  let temporary = true
  let startLsn: Lsn | undefined = options.fromLsn
  try {
    if (options.slot.kind === 'consume') {
      slotName = options.slot.name
      temporary = false
    } else {
      slotName = options.temporarySlotName ?? `singularity_tail_${process.pid}_${randomBytes(3).toString('hex')}`
      if (options.slot.kind === 'temporary') {
        await client.query(`CREATE_REPLICATION_SLOT ${quoteIdent(slotName)} TEMPORARY LOGICAL wal2json NOEXPORT_SNAPSHOT`)
      } else {
        await client.query(
          `SELECT lsn FROM pg_copy_logical_replication_slot(${quoteLiteral(options.slot.source)}, ${quoteLiteral(slotName)}, true, 'wal2json')`,
        )
      }
    }
  } catch (error) {
    const named = options.slot.kind === 'copy' ? options.slot.source : options.slot.kind === 'consume' ? options.slot.name : undefined
    throw cdcError(error, {slot: named, serverMajor: options.serverMajor})
  }

  // --- state ----------------------------------------------------------------------------------
  const format = options.format
  const colour = Boolean(options.colour)
  const wanted = new Set<number>()
  for (const a of options.actions) wanted.add({insert: ACTION_CODE.I, update: ACTION_CODE.U, delete: ACTION_CODE.D, truncate: ACTION_CODE.T, message: ACTION_CODE.M}[a])
  const limit = options.limit ?? Number.POSITIVE_INFINITY
  const untilLsn = options.untilLsn
  const txn: TxnContext = {xid: null, timestamp: undefined}

  let changes = 0
  let lastLsn: Lsn | null = null
  let inTxn = false
  let stopped = false
  let stoppedBy: StopReason = 'server-ended'
  let received: Lsn = 0
  /** wal2json ≥ 2.x puts xid and commit time on every change; older builds only on BEGIN */
  let changesCarryTxn = false

  // Output: lines gather in `pending` and are written at the end of each socket read (or 256 kB).
  let pending = ''
  /** the LSN that may be confirmed once `pending` is written */
  let pendingAck: Lsn = 0
  let outstanding = 0
  let flushedAck: Lsn = 0
  let sentAck: Lsn = 0
  let outputClosed = false
  let paused = false
  let lastStatusAt = 0
  let ackTimer: NodeJS.Timeout | undefined
  const idleWaiters: (() => void)[] = []
  const outIsFile = isRegularFile(out.fd)

  let resolveStop!: () => void
  const stoppedPromise = new Promise<void>((resolve) => (resolveStop = resolve))
  const stop = (reason: StopReason) => {
    if (stopped) return
    stopped = true
    stoppedBy = reason
    resolveStop()
  }

  const status = Buffer.alloc(34)
  const sendStatus = (replyRequested: boolean) => {
    if (!socket.writable) return
    // Durable before confirmed: a file on disk is fsynced before the server may forget the changes.
    if (options.slot.kind === 'consume' && outIsFile && flushedAck > sentAck && out.fd !== undefined) {
      try {
        fsyncSync(out.fd)
      } catch {
        // not every file can be fsynced (e.g. /dev/null); the write itself succeeded
      }
    }
    status[0] = 0x72 // 'r'
    writeLsn(status, flushedAck, 1)
    writeLsn(status, flushedAck, 9)
    writeLsn(status, flushedAck, 17)
    const micros = BigInt(Date.now() - PG_EPOCH_MS) * 1000n
    status.writeBigInt64BE(micros, 25)
    status[33] = replyRequested ? 1 : 0
    connection.sendCopyFromChunk(Buffer.from(status))
    sentAck = flushedAck
    lastStatusAt = Date.now()
  }

  const ackAdvanced = () => {
    if (flushedAck <= sentAck || stopped) return
    const wait = lastStatusAt + ACK_THROTTLE_MS - Date.now()
    if (wait <= 0) sendStatus(false)
    else if (!ackTimer) {
      ackTimer = setTimeout(() => {
        ackTimer = undefined
        if (!stopped) sendStatus(false)
      }, wait)
    }
  }

  const settleIdle = () => {
    if (outstanding === 0) for (const w of idleWaiters.splice(0)) w()
  }

  const flush = () => {
    if (pending === '') {
      if (outstanding === 0 && pendingAck > flushedAck) {
        flushedAck = pendingAck
        ackAdvanced()
      }
      return
    }
    if (outputClosed) {
      pending = ''
      return
    }
    const ack = pendingAck
    const chunk = pending
    pending = ''
    outstanding++
    const ok = out.write(chunk, (error?: Error | null) => {
      outstanding--
      if (!error) {
        if (ack > flushedAck) flushedAck = ack
        // nothing unwritten left: a position marked meanwhile (keepalive, filtered commit) is safe too
        if (outstanding === 0 && pending === '' && pendingAck > flushedAck) flushedAck = pendingAck
        ackAdvanced()
      }
      settleIdle()
    })
    if (!ok && !paused) {
      paused = true
      socket.pause()
      out.once('drain', () => {
        paused = false
        socket.resume()
      })
    }
  }

  const markAck = (lsn: Lsn) => {
    if (lsn > pendingAck) pendingAck = lsn
    if (pending === '' && outstanding === 0 && lsn > flushedAck) {
      flushedAck = lsn
      ackAdvanced()
    }
  }

  // --- the hot path: one CopyData message ------------------------------------------------------
  let fast: string | undefined
  /** One CopyData payload: buf[start..end). */
  const onCopyData = (chunk: Buffer, start: number, end: number) => {
    if (stopped) return
    const type = chunk[start]
    if (type === 0x77) {
      // XLogData
      const lsn = readLsn(chunk, start + 1)
      if (lsn > received) received = lsn
      if (untilLsn !== undefined && lsn > untilLsn) {
        stop('until-lsn')
        return
      }
      const text = chunk.toString('utf8', start + 25, end)
      const code = actionCode(text)
      if (code === ACTION_CODE.B) {
        inTxn = true
        if (format === 'raw') pending += text + '\n'
        else if (!changesCarryTxn) {
          // keep xid/time for wal2json builds that only put them on BEGIN
          const begin = JSON.parse(text) as Wal2jsonChange
          txn.xid = begin.xid ?? null
          txn.timestamp = begin.timestamp
        }
        return
      }
      if (code === ACTION_CODE.C) {
        inTxn = false
        if (format === 'raw') pending += text + '\n'
        markAck(lsn)
        if (pending.length > MAX_PENDING) flush()
        return
      }
      if (!wanted.has(code)) return
      if (format === 'raw') {
        pending += text + '\n'
      } else if (format === 'json' && changesCarryTxn && (fast = fastJsonLine(text, formatLsn(lsn)!, code)) !== undefined) {
        pending += fast + '\n'
      } else {
        const change = JSON.parse(text) as Wal2jsonChange
        if (change.xid !== undefined) changesCarryTxn = true
        if (format === 'json') pending += JSON.stringify(toChangeLine(change, formatLsn(lsn)!, code, txn)) + '\n'
        else pending += toHumanLine(change, code, txn, colour) + '\n'
      }
      lastLsn = lsn
      if (!inTxn) markAck(lsn) // a non-transactional message stands alone
      if (++changes >= limit) {
        stop('limit')
        return
      }
      if (pending.length > MAX_PENDING) flush()
      return
    }
    if (type === 0x6b) {
      // Primary keepalive: outside a transaction, everything before the server's WAL end was sent.
      const walEnd = readLsn(chunk, start + 1)
      if (walEnd > received) received = walEnd
      if (!inTxn) markAck(walEnd)
      if (untilLsn !== undefined && walEnd >= untilLsn && !inTxn) {
        stop('until-lsn')
        return
      }
      if (chunk[start + 17] === 1) sendStatus(false)
    }
  }

  // Framing: while streaming, the socket's bytes come to us first. CopyData messages are handled
  // in place (no message objects, no event per change); every other message (CopyBothResponse,
  // notices, errors, CopyDone, CommandComplete, ReadyForQuery) goes on, whole and in order, to
  // pg's own parser, so the START_REPLICATION query settles as usual. pg's parser holds no partial
  // message when we take over (the previous query has completed), and none when we give it back.
  const pgListeners = socket.listeners('data') as ((data: Buffer) => void)[]
  const toPg = (data: Buffer) => {
    for (const listener of pgListeners) listener.call(socket, data)
  }
  let flushScheduled = false
  const scheduledFlush = () => {
    flushScheduled = false
    flush()
  }
  let carry: Buffer[] = []
  let carryLength = 0
  let carryNeed = 0
  const onSocketData = (data: Buffer) => {
    if (carryLength > 0) {
      carry.push(data)
      carryLength += data.length
      if (carryNeed === 0 && carryLength >= 5) carryNeed = 1 + Buffer.concat(carry).readUInt32BE(1)
      if (carryNeed === 0 || carryLength < carryNeed) return
      data = Buffer.concat(carry, carryLength)
      carry = []
      carryLength = 0
      carryNeed = 0
    }
    let offset = 0
    let passStart = -1
    const length = data.length
    while (offset + 5 <= length) {
      const size = 1 + data.readUInt32BE(offset + 1)
      if (offset + size > length) break
      if (data[offset] === 0x64) {
        if (passStart !== -1) {
          toPg(data.subarray(passStart, offset))
          passStart = -1
        }
        onCopyData(data, offset + 5, offset + size)
      } else if (passStart === -1) {
        passStart = offset
      }
      offset += size
    }
    if (passStart !== -1) toPg(data.subarray(passStart, offset))
    if (offset < length) {
      const rest = data.subarray(offset)
      carry = [rest]
      carryLength = rest.length
      carryNeed = rest.length >= 5 ? 1 + rest.readUInt32BE(1) : 0
    }
    // Write what the reads of this turn of the event loop produced, in one write: at once when
    // there is a lot, else after the other reads already waiting (setImmediate) — live lines still
    // appear at once, a backlog is written in large pieces.
    if (pending.length >= MAX_PENDING) flush()
    else if (pending !== '' && !flushScheduled) {
      flushScheduled = true
      setImmediate(scheduledFlush)
    }
  }
  const releaseSocket = () => {
    socket.removeListener('data', onSocketData)
    for (const listener of pgListeners) socket.on('data', listener)
    if (carryLength > 0) {
      const rest = Buffer.concat(carry, carryLength)
      carry = []
      carryLength = 0
      toPg(rest)
    }
  }
  const onNotice = (notice: {message?: string}) => options.onNotice?.(notice.message ?? '')
  const onOutputError = () => {
    outputClosed = true
    stop('output-closed')
  }
  const onAbort = () => stop('interrupted')

  // --- start ----------------------------------------------------------------------------------
  const pluginOptions = wal2jsonOptions({format, tables: options.tables, actions: options.actions})
    .map(([k, v]) => `${quoteIdent(k)} ${quoteLiteral(v)}`)
    .join(', ')
  const startSql = `START_REPLICATION SLOT ${quoteIdent(slotName)} LOGICAL ${formatLsn(startLsn ?? 0)} (${pluginOptions})`

  socket.removeAllListeners('data')
  socket.on('data', onSocketData)
  client.on('notice', onNotice)
  out.on('error', onOutputError)
  options.signal?.addEventListener('abort', onAbort)
  if (options.signal?.aborted) stop('interrupted')
  const timeout = options.timeoutMs !== undefined ? setTimeout(() => stop('timeout'), options.timeoutMs) : undefined
  const statusTimer = setInterval(() => {
    if (!stopped) sendStatus(false)
  }, options.statusIntervalMs ?? 10_000)

  let replicationDone = false
  let replicationError: unknown
  const replication = client.query(startSql).then(
    () => {
      replicationDone = true
      stop('server-ended')
    },
    (error: unknown) => {
      replicationDone = true
      replicationError = error
      stop('server-ended')
    },
  )
  // The server answers START_REPLICATION with CopyBothResponse, which pg's connection emits as 'replicationStart'.
  const onReplicationStart = () => options.onStart?.({slot: slotName, temporary, startLsn: formatLsn(startLsn ?? null)})
  connection.once('replicationStart', onReplicationStart)

  const cleanup = () => {
    if (timeout) clearTimeout(timeout)
    if (ackTimer) clearTimeout(ackTimer)
    clearInterval(statusTimer)
    connection.removeListener('replicationStart', onReplicationStart)
    releaseSocket()
    client.removeListener('notice', onNotice)
    out.removeListener('error', onOutputError)
    options.signal?.removeEventListener('abort', onAbort)
  }

  try {
    await stoppedPromise
    if (replicationError !== undefined) {
      // The command failed (slot in use, plugin refused, …) or the connection dropped mid-stream.
      flush()
      const error = cdcError(replicationError, {slot: slotName, serverMajor: options.serverMajor})
      if (flushedAck > 0 && !temporary) {
        throw new CliError(`${error.message} (last confirmed LSN ${formatLsn(flushedAck)})`, {hint: error.hint, code: error.code, exitCode: error.exitCode, cause: replicationError})
      }
      throw error
    }

    // --- finish: write everything, confirm it, leave COPY mode cleanly ----------------------------
    flush()
    if (outstanding > 0 && !outputClosed) {
      await Promise.race([new Promise<void>((resolve) => idleWaiters.push(resolve)), delay(30_000)])
    }
    if (paused) {
      paused = false
      socket.resume()
    }
    if (!replicationDone && socket.writable) {
      sendStatus(false)
      connection.endCopyFrom()
      await Promise.race([replication, delay(5000)])
    }
    let serverConfirmedLsn: string | null = null
    if (!temporary && replicationDone && replicationError === undefined) {
      try {
        const {rows} = await client.query(`SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = ${quoteLiteral(slotName)}`)
        serverConfirmedLsn = rows[0]?.lsn ?? null
      } catch {
        serverConfirmedLsn = null
      }
    }
    return {
      slot: slotName,
      temporary,
      consumed: options.slot.kind === 'consume',
      changes,
      lastLsn: formatLsn(lastLsn),
      confirmedLsn: formatLsn(flushedAck || null),
      serverConfirmedLsn,
      stoppedBy,
    }
  } finally {
    cleanup()
  }
}

interface ReplicationConnection {
  stream: NodeJS.ReadableStream & {writable: boolean; pause(): void; resume(): void; listeners(event: 'data'): ((data: Buffer) => void)[]}
  once(event: 'replicationStart', listener: () => void): void
  removeListener(event: string, listener: (...args: never[]) => void): void
  sendCopyFromChunk(chunk: Buffer): void
  endCopyFrom(): void
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}

function isRegularFile(fd: number | undefined): boolean {
  if (fd === undefined) return false
  try {
    return fstatSync(fd).isFile()
  } catch {
    return false
  }
}
