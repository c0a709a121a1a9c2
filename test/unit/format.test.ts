import {describe, expect, it} from 'vitest'

import {formatBytes, formatDuration, groupDigits, parseDuration, parseSize} from '../../src/lib/cli/format.js'

describe('durations and sizes', () => {
  it('parses durations in every unit and refuses garbage', () => {
    expect(parseDuration('30s')).toBe(30)
    expect(parseDuration('10m')).toBe(600)
    expect(parseDuration('90d')).toBe(90 * 86_400)
    expect(parseDuration('250ms')).toBe(0.25)
    expect(parseDuration('42')).toBe(42)
    expect(parseDuration('10 minutes')).toBeUndefined()
    expect(parseDuration('-5s')).toBeUndefined()
  })

  it('parses sizes as powers of 1024', () => {
    expect(parseSize('1GB')).toBe(1024 ** 3)
    expect(parseSize('512 MB')).toBe(512 * 1024 ** 2)
    expect(parseSize('100')).toBe(100)
    expect(parseSize('1.5kB')).toBe(1536)
    expect(parseSize('lots')).toBeUndefined()
  })

  it('formats for people', () => {
    expect(formatBytes(0)).toBe('0 B')
    expect(formatBytes(1536)).toBe('1.5 kB')
    expect(formatBytes(5 * 1024 ** 3)).toBe('5.0 GB')
    expect(formatDuration(59)).toBe('59s')
    expect(formatDuration(600)).toBe('10m')
    expect(formatDuration(3 * 3600 + 120)).toBe('3h2m')
    expect(formatDuration(2 * 86_400)).toBe('2d')
  })
})

describe('groupDigits', () => {
  it("writes integers exactly as toLocaleString('en-US') does, and leaves anything else to it", () => {
    const values = [0, -0, 1, 12, 999, 1000, -1000, 9999, 10_000, 123_456, 1_000_000, -98_765_432, 2 ** 31, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER]
    for (let n = 1; n < 1e15; n = n * 7 + 3) values.push(n, -n)
    values.push(0.5, 1234.5678, 2 ** 60, Number.NaN, Number.POSITIVE_INFINITY)
    for (const n of values) expect(groupDigits(n), String(n)).toBe(n.toLocaleString('en-US'))
  })
})
