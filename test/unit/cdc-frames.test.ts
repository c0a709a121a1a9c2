import {readFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {dirname, join} from 'node:path'
import {PassThrough} from 'node:stream'
import {fileURLToPath} from 'node:url'
import {describe, expect, it} from 'vitest'

import {BackendMessageSplitter, decodeReplicationMessage, encodeStandbyStatus} from '../../src/lib/cdc/frames.js'
import {formatLsn, readLsn} from '../../src/lib/cdc/lsn.js'

// Bytes a real server (PostgreSQL 15, wal2json 2.5) sent on a replication session, from
// START_REPLICATION to ReadyForQuery: captured by test/fixtures/capture-cdc-copydata.ts.
const captured = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'cdc-copydata.bin'))

type Event = {copyData: string} | {other: string}

/** What the splitter hands on for these chunks: CopyData payloads, and the other messages' bytes (consecutive ones joined). */
function split(chunks: Buffer[]): {events: Event[]; rest: Buffer | undefined} {
  const events: Event[] = []
  const splitter = new BackendMessageSplitter(
    (buffer, start, end) => events.push({copyData: buffer.toString('hex', start, end)}),
    (bytes) => {
      const last = events.at(-1)
      if (last && 'other' in last) last.other += bytes.toString('hex')
      else events.push({other: bytes.toString('hex')})
    },
  )
  for (const chunk of chunks) splitter.push(Buffer.from(chunk)) // a copy: nothing may depend on the caller's buffer
  return {events, rest: splitter.takeRest()}
}

const whole = split([captured])

describe('the backend message splitter, on bytes captured from a real server', () => {
  it('finds the same messages as pg-protocol, the parser pg itself uses', async () => {
    const {parse} = createRequire(import.meta.url)('pg-protocol') as {parse(stream: NodeJS.ReadableStream, callback: (message: {name: string; chunk?: Buffer}) => void): Promise<void>}
    const theirs: {name: string; chunk?: Buffer}[] = []
    const stream = new PassThrough()
    const parsed = parse(stream, (message) => theirs.push(message))
    stream.end(captured)
    await parsed
    const copyData = theirs.filter((m) => m.name === 'copyData').map((m) => m.chunk!.toString('hex'))
    expect(whole.events.filter((e) => 'copyData' in e).map((e) => (e as {copyData: string}).copyData)).toEqual(copyData)
    // CopyBothResponse first; after our CopyDone the server's CopyDone, CommandCompletes, ReadyForQuery: all for pg
    const others = theirs.filter((m) => m.name !== 'copyData').map((m) => m.name)
    expect(others[0]).toBe('replicationStart')
    expect(others.at(-1)).toBe('readyForQuery')
    expect(others).toContain('copyDone')
    expect(whole.events[0]).toEqual({other: captured.subarray(0, 8).toString('hex')})
    expect(whole.rest).toBeUndefined()
  })

  it('gives the same messages, in the same order, wherever the bytes are cut (every offset)', () => {
    for (let cut = 0; cut <= captured.length; cut++) {
      const result = split([captured.subarray(0, cut), captured.subarray(cut)])
      if (JSON.stringify(result) !== JSON.stringify(whole)) expect({cut, ...result}).toEqual({cut, ...whole})
    }
  })

  it('gives the same messages fed one byte at a time, and in random pieces', () => {
    expect(split([...captured].map((b) => Buffer.from([b])))).toEqual(whole)
    let seed = 15
    const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31
    for (let run = 0; run < 300; run++) {
      const chunks: Buffer[] = []
      for (let at = 0; at < captured.length; ) {
        const size = 1 + Math.floor(random() * (random() < 0.5 ? 16 : 2000))
        chunks.push(captured.subarray(at, at + size))
        at += size
      }
      expect(split(chunks)).toEqual(whole)
    }
  })

  it('gives every message of merged reads (two sessions back to back, cut anywhere in the second)', () => {
    const twice = Buffer.concat([captured, captured])
    const expected = split([captured, captured])
    expect(expected.events.filter((e) => 'copyData' in e)).toHaveLength(2 * whole.events.filter((e) => 'copyData' in e).length)
    expect(split([twice])).toEqual(expected)
    for (let cut = captured.length; cut <= twice.length; cut += 7) {
      expect(split([twice.subarray(0, cut), twice.subarray(cut)])).toEqual(expected)
    }
  })

  it('holds an incomplete message back and hands it over whole', () => {
    for (const cut of [1, 4, 5, 9, 20]) {
      const result = split([captured.subarray(0, 8 + cut)]) // CopyBothResponse, then part of the next message
      expect(result.rest?.toString('hex')).toBe(captured.subarray(8, 8 + cut).toString('hex'))
    }
  })
})

describe('replication messages decoded', () => {
  const messages = whole.events.filter((e) => 'copyData' in e).map((e) => {
    const payload = Buffer.from((e as {copyData: string}).copyData, 'hex')
    return decodeReplicationMessage(payload, 0, payload.length)
  })

  it('XLogData carries wal2json documents at rising LSNs; keepalives carry the WAL end', () => {
    const xlog = messages.filter((m) => m.kind === 'xlog')
    expect(xlog).toHaveLength(17)
    const actions = xlog.map((m) => (JSON.parse(m.data) as {action: string}).action)
    expect(actions.join('')).toBe('BIICBUCBDCBMCMBTC')
    for (let i = 1; i < xlog.length; i++) expect(xlog[i].lsn).toBeGreaterThanOrEqual(xlog[i - 1].lsn)
    const inserted = JSON.parse(xlog[1].data) as {columns: {name: string; value: unknown}[]}
    expect(inserted.columns.find((c) => c.name === 'name')?.value).toBe('ünïcødé ✓')
    expect((JSON.parse(xlog[2].data) as {columns: {value: unknown}[]}).columns[2].value).toBe('x'.repeat(3000))
    const keepalives = messages.filter((m) => m.kind === 'keepalive')
    expect(keepalives.length).toBeGreaterThan(0)
    for (const k of keepalives) expect(k.walEnd).toBeGreaterThan(0)
    expect(messages.every((m) => m.kind !== 'other')).toBe(true)
  })

  it('a standby status update carries the LSN three times, the time and the reply flag', () => {
    const lsn = 0x1_2345_6789
    const status = encodeStandbyStatus(lsn, Date.UTC(2000, 0, 1, 0, 0, 1), true)
    expect(status).toHaveLength(34)
    expect(String.fromCharCode(status[0])).toBe('r')
    for (const at of [1, 9, 17]) expect(formatLsn(readLsn(status, at))).toBe('1/23456789')
    expect(status.readBigInt64BE(25)).toBe(1_000_000n)
    expect(status[33]).toBe(1)
  })
})
