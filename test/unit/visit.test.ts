import {describe, expect, it} from 'vitest'

import {CliError} from '../../src/lib/cli/errors.js'
import {mapBounded, readBound, readConcurrency, unreadable, visitEach} from '../../src/lib/estate/visit.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('mapBounded', () => {
  it('keeps the input order and never has more than the limit in flight', async () => {
    let inFlight = 0
    let peak = 0
    const out = await mapBounded([50, 10, 30, 0, 20, 40], 3, async (ms, i) => {
      inFlight++
      peak = Math.max(peak, inFlight)
      await sleep(ms)
      inFlight--
      return `${i}:${ms}`
    })
    expect(out).toEqual(['0:50', '1:10', '2:30', '3:0', '4:20', '5:40'])
    expect(peak).toBe(3)
  })

  it('handles no items and a limit above the item count', async () => {
    expect(await mapBounded([], 8, async () => 1)).toEqual([])
    expect(await mapBounded([1, 2], 8, async (x) => x * 2)).toEqual([2, 4])
  })
})

describe('readConcurrency', () => {
  it('defaults to 8 and takes at most a quarter of the free connections, at least 1', () => {
    expect(readConcurrency(undefined)).toBe(8)
    expect(readConcurrency(16)).toBe(16)
    expect(readConcurrency(undefined, 100)).toBe(8)
    expect(readConcurrency(undefined, 20)).toBe(5)
    expect(readConcurrency(8, 2)).toBe(1)
    expect(readConcurrency(0)).toBe(1)
  })
})

describe('visitEach', () => {
  it('reports a failing and a stuck item as such while the others answer, in order', async () => {
    const aborted: string[] = []
    const visits = await visitEach(
      ['a', 'stuck', 'b', 'bad'],
      (name) => `database ${name}`,
      async (name, signal) => {
        if (name === 'bad') throw new Error('permission denied')
        if (name === 'stuck') {
          signal.addEventListener('abort', () => aborted.push(name))
          await sleep(5_000)
        }
        return name.toUpperCase()
      },
      {concurrency: 2, timeoutMs: 200},
    )
    expect(visits.map((v) => (v.ok ? v.value : v.error.code))).toEqual(['A', 'DATABASE_TIMEOUT', 'B', 'DATABASE_UNREADABLE'])
    const stuck = visits[1]
    expect(stuck.ok === false && stuck.timedOut).toBe(true)
    expect(stuck.ok === false && stuck.error.message).toBe('database stuck did not answer within 0.2 s')
    const bad = visits[3]
    expect(bad.ok === false && bad.error).toBeInstanceOf(CliError)
    expect(bad.ok === false && bad.error.message).toBe('database bad: permission denied')
    expect(aborted).toEqual(['stuck'])
  })
})

describe('readBound without a server (no admin connection to ask)', () => {
  it('takes the configured bound and deadline, else 8 and 10 s', async () => {
    expect(await readBound(null)).toEqual({concurrency: 8, timeoutMs: 10_000, freeConnections: null})
    expect(await readBound(null, {concurrency: 3, timeoutMs: 2000})).toEqual({concurrency: 3, timeoutMs: 2000, freeConnections: null})
  })
})

describe('unreadable', () => {
  it('names the database, the first line of the reason and whether the deadline passed', async () => {
    const visits = await visitEach(
      ['slow-inside', 'refused'],
      (name) => name,
      async (name) => {
        // the session's statement timeout is the deadline: PostgreSQL cancelling the query is a time-out too
        if (name === 'slow-inside') throw new CliError('canceling statement due to statement timeout', {code: 'STATEMENT_TIMEOUT'})
        throw new CliError('database "refused" is not currently accepting connections\nDETAIL: …', {code: 'PG_55000'})
      },
      {timeoutMs: 5000},
    )
    expect(visits.map((v, i) => (v.ok ? null : unreadable(['slow-inside', 'refused'][i], v)))).toEqual([
      {database: 'slow-inside', reason: 'canceling statement due to statement timeout', timed_out: true},
      {database: 'refused', reason: 'database "refused" is not currently accepting connections', timed_out: false},
    ])
  })
})
