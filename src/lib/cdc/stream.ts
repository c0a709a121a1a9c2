import {fstatSync, fsyncSync} from 'node:fs'
import type pg from 'pg'

import {loadPaint} from '../cli/colour.js'
import {CliError} from '../cli/errors.js'
import {cdcError} from './errors.js'
import {BackendMessageSplitter, decodeReplicationMessage, encodeStandbyStatus} from './frames.js'
import {formatLsn, type Lsn} from './lsn.js'
import {ConfirmingOutput} from './output.js'
import {replicationChannel} from './pg-connection.js'
import {openSlot, serverConfirmedLsn, startReplicationSql, type SlotMode} from './slot-session.js'
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
 * `replication=database` session), on node-postgres's own connection. The parts, one job each:
 * - frames.ts: the bytes → messages (pure; tested with captured bytes cut at every offset);
 * - pg-connection.ts: the only module touching pg's private connection (checked when used);
 * - slot-session.ts: the slot's lifecycle; output.ts: written lines and the positions they make safe;
 * - here: the wal2json documents → lines, the stop conditions, the standby status updates.
 */

export type {SlotMode} from './slot-session.js'

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
  /** called once, just before the first line is written to `out` */
  onFirstOutput?: () => void
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

const MAX_PENDING = 256 * 1024
const ACK_THROTTLE_MS = 1000

/** Streams changes from a replication connection to `out` until a bound or a stop is reached. */
export async function streamChanges(client: pg.Client, options: StreamOptions): Promise<StreamResult> {
  const channel = replicationChannel(client)
  const out = options.out
  await client.query("SET TimeZone TO 'UTC'")
  const {name: slotName, temporary} = await openSlot(client, options.slot, options)
  const startLsn = options.fromLsn

  const format = options.format
  const paint = await loadPaint(Boolean(options.colour))
  const wanted = new Set<number>(options.actions.map((a) => ({insert: ACTION_CODE.I, update: ACTION_CODE.U, delete: ACTION_CODE.D, truncate: ACTION_CODE.T, message: ACTION_CODE.M})[a]))
  const limit = options.limit ?? Number.POSITIVE_INFINITY
  const untilLsn = options.untilLsn
  const txn: TxnContext = {xid: null, timestamp: undefined}

  let changes = 0
  let lastLsn: Lsn | null = null
  let inTxn = false
  let stopped = false
  let stoppedBy: StopReason = 'server-ended'
  /** wal2json ≥ 2.x puts xid and commit time on every change; older builds only on BEGIN */
  let changesCarryTxn = false
  let resolveStop!: () => void
  const stoppedPromise = new Promise<void>((resolve) => (resolveStop = resolve))
  const stop = (reason: StopReason) => {
    if (stopped) return
    stopped = true
    stoppedBy = reason
    resolveStop()
  }

  // --- standby status: the position written out, confirmed at most once a second ----------------
  const outIsFile = isRegularFile(out.fd)
  let sentAck: Lsn = 0
  let lastStatusAt = 0
  let ackTimer: NodeJS.Timeout | undefined
  const sendStatus = (replyRequested: boolean) => {
    if (!channel.writable) return
    const safe = output.safeLsn
    // Durable before confirmed: a file on disk is fsynced before the server may forget the changes.
    if (options.slot.kind === 'consume' && outIsFile && safe > sentAck && out.fd !== undefined) {
      try {
        fsyncSync(out.fd)
      } catch {
        // not every file can be fsynced (e.g. /dev/null); the write itself succeeded
      }
    }
    channel.sendCopyData(encodeStandbyStatus(safe, Date.now(), replyRequested))
    sentAck = safe
    lastStatusAt = Date.now()
  }
  const output = new ConfirmingOutput(out, {
    advanced: () => {
      if (output.safeLsn <= sentAck || stopped) return
      const wait = lastStatusAt + ACK_THROTTLE_MS - Date.now()
      if (wait <= 0) sendStatus(false)
      else
        ackTimer ??= setTimeout(() => {
          ackTimer = undefined
          if (!stopped) sendStatus(false)
        }, wait)
    },
    pauseInput: () => channel.pause(),
    resumeInput: () => channel.resume(),
    beforeFirstWrite: () => options.onFirstOutput?.(),
  })

  // --- the hot path: one CopyData payload, chunk[start..end) --------------------------------------
  let fast: string | undefined
  let rawBegin: string | undefined
  const onCopyData = (chunk: Buffer, start: number, end: number) => {
    if (stopped) return
    const message = decodeReplicationMessage(chunk, start, end)
    if (message.kind === 'xlog') {
      const {lsn, data: text} = message
      if (untilLsn !== undefined && lsn > untilLsn) return stop('until-lsn')
      const code = actionCode(text)
      if (code === ACTION_CODE.B) {
        inTxn = true
        // --raw holds BEGIN back until a change passes the filters: a transaction the filters
        // emptied prints nothing (wal2json itself sends BEGIN/COMMIT for every transaction)
        if (format === 'raw') rawBegin = text
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
        if (format === 'raw' && rawBegin === undefined) output.add(text)
        rawBegin = undefined
        output.markSafe(lsn)
        if (output.waiting > MAX_PENDING) output.flush()
        return
      }
      if (!wanted.has(code)) return
      if (format === 'raw') {
        if (rawBegin !== undefined) output.add(rawBegin)
        rawBegin = undefined
        output.add(text)
      }
      else if (format === 'json' && changesCarryTxn && (fast = fastJsonLine(text, formatLsn(lsn)!, code)) !== undefined) output.add(fast)
      else {
        const change = JSON.parse(text) as Wal2jsonChange
        if (change.xid !== undefined) changesCarryTxn = true
        output.add(format === 'json' ? JSON.stringify(toChangeLine(change, formatLsn(lsn)!, code, txn)) : toHumanLine(change, code, txn, paint))
      }
      lastLsn = lsn
      if (!inTxn) output.markSafe(lsn) // a non-transactional message stands alone
      if (++changes >= limit) return stop('limit')
      if (output.waiting > MAX_PENDING) output.flush()
      return
    }
    if (message.kind === 'keepalive') {
      // Outside a transaction, everything before the server's WAL end was sent.
      if (!inTxn) output.markSafe(message.walEnd)
      if (untilLsn !== undefined && message.walEnd >= untilLsn && !inTxn) return stop('until-lsn')
      if (message.replyRequested) sendStatus(false)
    }
  }

  // While streaming, the socket's bytes come here first: CopyData is handled in place; every other
  // message (CopyBothResponse, notices, errors, CopyDone, CommandComplete, ReadyForQuery) goes on,
  // whole and in order, to pg's parser, so the START_REPLICATION query settles as usual. pg's parser
  // holds no partial message when we take over (the previous query completed), none when given back.
  const splitter = new BackendMessageSplitter(onCopyData, (bytes) => channel.passToPg(bytes))
  let flushScheduled = false
  const scheduledFlush = () => {
    flushScheduled = false
    output.flush()
  }
  const onSocketData = (data: Buffer) => {
    splitter.push(data)
    // One write for what the reads of this turn of the event loop produced: at once when there is a
    // lot, else after the reads already waiting (setImmediate): live lines still appear at once, a
    // backlog is written in large pieces.
    if (output.waiting >= MAX_PENDING) output.flush()
    else if (output.waiting > 0 && !flushScheduled) {
      flushScheduled = true
      setImmediate(scheduledFlush)
    }
  }
  const onNotice = (notice: {message?: string}) => options.onNotice?.(notice.message ?? '')
  const onOutputError = () => {
    output.close()
    stop('output-closed')
  }
  const onAbort = () => stop('interrupted')

  // --- start ----------------------------------------------------------------------------------
  const startSql = startReplicationSql(slotName, startLsn, wal2jsonOptions({format, tables: options.tables, actions: options.actions}))
  channel.takeOver(onSocketData)
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
  const removeStartListener = channel.onCopyBothResponse(() => options.onStart?.({slot: slotName, temporary, startLsn: formatLsn(startLsn ?? null)}))

  try {
    await stoppedPromise
    if (replicationError !== undefined) {
      // The command failed (slot in use, plugin refused, …) or the connection dropped mid-stream.
      output.flush()
      const error = cdcError(replicationError, {slot: slotName, serverMajor: options.serverMajor})
      if (output.safeLsn > 0 && !temporary) {
        throw new CliError(`${error.message} (last confirmed LSN ${formatLsn(output.safeLsn)})`, {hint: error.hint, code: error.code, exitCode: error.exitCode, cause: replicationError})
      }
      throw error
    }

    // --- finish: write everything, confirm it, leave COPY mode cleanly ----------------------------
    output.flush()
    if (!output.isClosed) await output.whenWritten(30_000)
    output.resumeInput()
    if (!replicationDone && channel.writable) {
      sendStatus(false)
      channel.endCopy()
      await Promise.race([replication, delay(5000)])
    }
    const confirmedByServer = !temporary && replicationDone && replicationError === undefined ? await serverConfirmedLsn(client, slotName) : null
    return {
      slot: slotName,
      temporary,
      consumed: options.slot.kind === 'consume',
      changes,
      lastLsn: formatLsn(lastLsn),
      confirmedLsn: formatLsn(output.safeLsn || null),
      serverConfirmedLsn: confirmedByServer,
      stoppedBy,
    }
  } finally {
    if (timeout) clearTimeout(timeout)
    if (ackTimer) clearTimeout(ackTimer)
    clearInterval(statusTimer)
    removeStartListener()
    channel.release(splitter.takeRest())
    client.removeListener('notice', onNotice)
    out.removeListener('error', onOutputError)
    options.signal?.removeEventListener('abort', onAbort)
  }
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
