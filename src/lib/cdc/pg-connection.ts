import {createRequire} from 'node:module'
import type pg from 'pg'

/**
 * The one module that touches node-postgres' private fields (client.connection, its socket, pg's
 * socket listeners, sendCopyFromChunk/endCopyFrom, the 'replicationStart' event), for `cdc tail`:
 * pg has no public API for a CopyBoth (replication) stream. Everything is checked when a channel is
 * opened, and a pg that no longer has what we rely on fails loudly, naming it and pg's version,
 * instead of streaming wrongly (test/unit/cdc-pg-connection.test.ts runs the checks against pg).
 */

interface PrivateSocket {
  writable: boolean
  pause(): void
  resume(): void
  on(event: 'data', listener: (data: Buffer) => void): unknown
  listeners(event: 'data'): ((data: Buffer) => void)[]
  removeListener(event: 'data', listener: (data: Buffer) => void): unknown
}

interface PrivateConnection {
  stream: PrivateSocket
  sendCopyFromChunk(chunk: Buffer): void
  endCopyFrom(): void
  once(event: 'replicationStart', listener: () => void): unknown
  removeListener(event: 'replicationStart', listener: () => void): unknown
}

/** pg's private connection, as far as a replication stream needs it. */
export interface ReplicationChannel {
  /** whether the socket can still be written to */
  readonly writable: boolean
  /** stop / restart reading the socket (backpressure: the server waits, over TCP) */
  pause(): void
  resume(): void
  /**
   * Routes the socket's bytes to onData instead of pg's parser, until release(). Bytes given to
   * passToPg reach pg's parser as if read from the socket (whole messages, in order).
   */
  takeOver(onData: (data: Buffer) => void): void
  passToPg(data: Buffer): void
  /** pg's parser reads the socket again; rest (an incomplete message held back) goes to it first */
  release(rest?: Buffer): void
  /** one CopyData message to the server */
  sendCopyData(payload: Buffer): void
  /** CopyDone: leaves COPY mode */
  endCopy(): void
  /** listener for the server's CopyBothResponse (streaming started); returns its removal */
  onCopyBothResponse(listener: () => void): () => void
}

export class PgInternalsChangedError extends Error {}

/** pg's version, for the error message. */
export function pgVersion(): string {
  try {
    return (createRequire(import.meta.url)('pg/package.json') as {version: string}).version
  } catch {
    return 'unknown'
  }
}

function changed(what: string): never {
  throw new PgInternalsChangedError(
    `node-postgres ${pgVersion()} changed what cdc tail relies on: ${what} (see src/lib/cdc/pg-connection.ts)`,
  )
}

/** The replication channel of a connected client; throws PgInternalsChangedError when pg's internals are not what we rely on. */
export function replicationChannel(client: pg.Client): ReplicationChannel {
  const connection = (client as unknown as {connection?: PrivateConnection}).connection
  if (!connection || typeof connection !== 'object') changed('client.connection is missing')
  if (typeof connection.sendCopyFromChunk !== 'function') changed('connection.sendCopyFromChunk() is missing')
  if (typeof connection.endCopyFrom !== 'function') changed('connection.endCopyFrom() is missing')
  if (typeof connection.once !== 'function' || typeof connection.removeListener !== 'function') changed('the connection is no longer an event emitter')
  const socket = connection.stream
  if (!socket || typeof socket.listeners !== 'function' || typeof socket.pause !== 'function' || typeof socket.resume !== 'function') {
    changed('connection.stream is not a socket')
  }
  const pgListeners = socket.listeners('data')
  if (pgListeners.length !== 1) changed(`pg reads its socket through ${pgListeners.length} 'data' listeners, not 1`)
  let ours: ((data: Buffer) => void) | undefined

  return {
    get writable() {
      return socket.writable
    },
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    takeOver(onData) {
      if (ours) throw new Error('the replication channel is already taken over')
      for (const listener of pgListeners) socket.removeListener('data', listener)
      ours = onData
      socket.on('data', onData)
    },
    passToPg(data) {
      for (const listener of pgListeners) listener.call(socket, data)
    },
    release(rest) {
      if (!ours) return
      socket.removeListener('data', ours)
      ours = undefined
      for (const listener of pgListeners) socket.on('data', listener)
      if (rest && rest.length > 0) for (const listener of pgListeners) listener.call(socket, rest)
    },
    sendCopyData: (payload) => connection.sendCopyFromChunk(payload),
    endCopy: () => connection.endCopyFrom(),
    onCopyBothResponse(listener) {
      connection.once('replicationStart', listener)
      return () => connection.removeListener('replicationStart', listener)
    },
  }
}
