import {describe, expect, it} from 'vitest'

import {ExitCode, UsageError} from '../../src/lib/cli/errors.js'
import {
  dropDatabaseForceSupported,
  parseDumpCompression,
  pgDumpCompressionArgs,
  replicationSlotExtraColumns,
  serverMajor,
  SLOT_STATS_COLUMNS,
  slotStatsQuery,
  slotsHaveInactiveSince,
  WRITTEN_FOR,
} from '../../src/lib/db/catalog-version.js'

/** One server_version_num per major we are written for, plus the one before. */
const V13 = 130_016
const V14 = 140_013
const V15 = 150_018
const V16 = 160_004
const V17 = 170_002

function usageError(fn: () => unknown): UsageError {
  try {
    fn()
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError)
    expect((error as UsageError).exitCode).toBe(ExitCode.usage)
    return error as UsageError
  }
  throw new Error('expected a UsageError')
}

describe('catalog queries keyed on server_version_num', () => {
  it('majors', () => {
    expect([V13, V14, V15, V16, V17].map(serverMajor)).toEqual([13, 14, 15, 16, 17])
    expect(WRITTEN_FOR).toEqual({oldest: 14, newest: 17})
  })

  it('pg_replication_slots.inactive_since: 17 only', () => {
    expect([V14, V15, V16].map(slotsHaveInactiveSince)).toEqual([false, false, false])
    expect(slotsHaveInactiveSince(169_999)).toBe(false)
    expect(slotsHaveInactiveSince(170_000)).toBe(true)
    expect(slotsHaveInactiveSince(V17)).toBe(true)
  })

  it('pg_replication_slots columns beyond 14: conflicting in 16, the failover and invalidation columns in 17', () => {
    expect(replicationSlotExtraColumns(V14)).toEqual([])
    expect(replicationSlotExtraColumns(V15)).toEqual([])
    expect(replicationSlotExtraColumns(V16)).toEqual(['conflicting'])
    expect(replicationSlotExtraColumns(V17)).toEqual(['conflicting', 'inactive_since', 'invalidation_reason', 'failover', 'synced'])
  })

  it('pg_stat_replication_slots: none before 14; the same counters 14-17, from the collector in 14', () => {
    expect(slotStatsQuery(V13)).toBeNull()
    const q14 = slotStatsQuery(V14)!
    expect(q14.statistics).toBe('collector')
    for (const column of [...SLOT_STATS_COLUMNS, 'slot_name', 'stats_reset']) expect(q14.sql).toContain(column)
    expect(q14.sql).toContain('FROM pg_catalog.pg_stat_replication_slots')
    for (const v of [V15, V16, V17]) {
      expect(slotStatsQuery(v)!.statistics).toBe('shared-memory')
      expect(slotStatsQuery(v)!.sql).toBe(q14.sql)
    }
  })

  it('DROP DATABASE … WITH (FORCE) from 13 on', () => {
    expect(dropDatabaseForceSupported(120_015)).toBe(false)
    expect(dropDatabaseForceSupported(V13)).toBe(true)
    expect(dropDatabaseForceSupported(V17)).toBe(true)
  })
})

describe('pg_dump compression options by pg_dump version', () => {
  it('up to 15: a gzip level only (--compress=0-9); lz4 and zstd are refused with exit 2', () => {
    for (const v of [V14, V15]) {
      expect(pgDumpCompressionArgs(v, {method: 'gzip'})).toEqual([]) // pg_dump's default
      expect(pgDumpCompressionArgs(v, {method: 'gzip', level: 9})).toEqual(['--compress=9'])
      expect(pgDumpCompressionArgs(v, {method: 'none'})).toEqual(['--compress=0'])
      for (const method of ['lz4', 'zstd'] as const) {
        const error = usageError(() => pgDumpCompressionArgs(v, {method, level: 3}))
        expect(error.code).toBe('COMPRESSION_UNSUPPORTED')
        expect(error.message).toBe(`${method} compression needs pg_dump 16+; this pg_dump is ${serverMajor(v)} (gzip only)`)
      }
    }
  })

  it('16+: --compress=METHOD[:LEVEL]', () => {
    for (const v of [V16, V17]) {
      expect(pgDumpCompressionArgs(v, {method: 'zstd'})).toEqual(['--compress=zstd'])
      expect(pgDumpCompressionArgs(v, {method: 'zstd', level: 3})).toEqual(['--compress=zstd:3'])
      expect(pgDumpCompressionArgs(v, {method: 'lz4', level: 1})).toEqual(['--compress=lz4:1'])
      expect(pgDumpCompressionArgs(v, {method: 'gzip', level: 6})).toEqual(['--compress=gzip:6'])
      expect(pgDumpCompressionArgs(v, {method: 'gzip'})).toEqual([])
      expect(pgDumpCompressionArgs(v, {method: 'none'})).toEqual(['--compress=none'])
    }
  })

  it('levels are checked per method before pg_dump runs', () => {
    expect(usageError(() => pgDumpCompressionArgs(V16, {method: 'zstd', level: 23})).message).toBe('zstd compression level 23 is out of range 1-22')
    expect(usageError(() => pgDumpCompressionArgs(V16, {method: 'lz4', level: 13})).code).toBe('BAD_COMPRESSION')
    expect(usageError(() => pgDumpCompressionArgs(V15, {method: 'gzip', level: 10})).code).toBe('BAD_COMPRESSION')
  })

  it('reads what an operator writes', () => {
    expect(parseDumpCompression('zstd')).toEqual({method: 'zstd', level: undefined})
    expect(parseDumpCompression('ZSTD:3')).toEqual({method: 'zstd', level: 3})
    expect(parseDumpCompression('gzip:9')).toEqual({method: 'gzip', level: 9})
    expect(parseDumpCompression('6')).toEqual({method: 'gzip', level: 6})
    expect(parseDumpCompression('0')).toEqual({method: 'none'})
    expect(parseDumpCompression('none')).toEqual({method: 'none', level: undefined})
    for (const bad of ['brotli', 'zstd:', 'none:1', 'zstd:x', '']) expect(usageError(() => parseDumpCompression(bad)).code, bad).toBe('BAD_COMPRESSION')
  })
})
