import {once} from 'node:events'
import {createServer, type Server, type Socket} from 'node:net'
import pg from 'pg'
import {afterEach, describe, expect, it} from 'vitest'

import {PgInternalsChangedError, pgVersion, replicationChannel} from '../../src/lib/cdc/pg-connection.js'

// pg's private connection, exercised for real: a pg.Client connects to a TCP server of ours, which
// plays the backend's side byte by byte. If pg renames or drops anything cdc tail relies on, these
// fail (and replicationChannel itself refuses, naming what changed).

/** CopyBothResponse as the server sends it: text format, no columns. */
const COPY_BOTH_RESPONSE = Buffer.from([0x57, 0, 0, 0, 7, 0, 0, 0])

let server: Server | undefined
let client: pg.Client | undefined
afterEach(async () => {
  client?.connection.stream.destroy()
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()))
  server = undefined
  client = undefined
})

/** A client connected to our fake backend, and the backend's end of the socket. */
async function connectedClient(): Promise<{client: pg.Client; backend: Socket}> {
  server = createServer()
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve))
  const {port} = server.address() as {port: number}
  const accepted = once(server, 'connection') as Promise<[Socket]>
  client = new pg.Client({host: '127.0.0.1', port, user: 'u', database: 'd', password: 'p'})
  client.on('error', () => {})
  void client.connect().catch(() => {})
  const [backend] = await accepted
  await once(backend, 'data') // the startup message: pg's parser is attached by now
  return {client, backend}
}

describe("pg's private connection, as cdc tail uses it", () => {
  it('is there on a connected pg.Client, with exactly one socket reader (pg-protocol)', async () => {
    const {client: c} = await connectedClient()
    expect(() => replicationChannel(c)).not.toThrow()
  })

  it("pg emits 'replicationStart' for CopyBothResponse, both through passToPg and when given the socket back", async () => {
    const {client: c, backend} = await connectedClient()
    const channel = replicationChannel(c)
    let started = 0
    const remove = channel.onCopyBothResponse(() => started++)
    const seen: Buffer[] = []
    channel.takeOver((data) => seen.push(data))
    backend.write(Buffer.from([0x64, 0, 0, 0, 5, 0x6b])) // a CopyData: to us, not to pg
    await expect.poll(() => Buffer.concat(seen).length, {timeout: 10_000}).toBe(6)
    expect(started).toBe(0)
    channel.passToPg(COPY_BOTH_RESPONSE)
    expect(started).toBe(1)
    remove()
    channel.onCopyBothResponse(() => started++)
    channel.release()
    backend.write(COPY_BOTH_RESPONSE) // pg reads the socket again
    await expect.poll(() => started, {timeout: 10_000}).toBe(2)
    expect(Buffer.concat(seen)).toHaveLength(6)
  })

  it('sends CopyData and CopyDone frames as the protocol wants them', async () => {
    const {client: c, backend} = await connectedClient()
    const channel = replicationChannel(c)
    const received: Buffer[] = []
    backend.on('data', (d: Buffer) => received.push(d))
    channel.sendCopyData(Buffer.from('r-payload'))
    channel.endCopy()
    await expect.poll(() => Buffer.concat(received).length, {timeout: 10_000}).toBe(5 + 9 + 5)
    expect(Buffer.concat(received).toString('hex')).toBe(Buffer.concat([Buffer.from([0x64, 0, 0, 0, 13]), Buffer.from('r-payload'), Buffer.from([0x63, 0, 0, 0, 4])]).toString('hex'))
    expect(channel.writable).toBe(true)
  })

  it('refuses loudly, naming what changed and the pg version, when pg is not what it relies on', () => {
    const version = pgVersion()
    expect(version).toMatch(/^\d+\.\d+\.\d+/)
    const cases: [string, unknown][] = [
      ['client.connection is missing', {}],
      ['sendCopyFromChunk', {connection: {endCopyFrom() {}, once() {}, removeListener() {}, stream: {}}}],
      ['endCopyFrom', {connection: {sendCopyFromChunk() {}, once() {}, removeListener() {}, stream: {}}}],
      ['not a socket', {connection: {sendCopyFromChunk() {}, endCopyFrom() {}, once() {}, removeListener() {}, stream: {}}}],
      ["0 'data' listeners", {connection: {sendCopyFromChunk() {}, endCopyFrom() {}, once() {}, removeListener() {}, stream: {listeners: () => [], pause() {}, resume() {}}}}],
    ]
    for (const [what, fake] of cases) {
      expect(() => replicationChannel(fake as pg.Client)).toThrow(PgInternalsChangedError)
      expect(() => replicationChannel(fake as pg.Client)).toThrow(what)
      expect(() => replicationChannel(fake as pg.Client)).toThrow(`node-postgres ${version}`)
    }
  })
})
