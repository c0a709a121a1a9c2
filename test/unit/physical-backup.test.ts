import {describe, expect, it} from 'vitest'

import {lsnToNumber, nextSegmentStart, type ArchiverStatus} from '../../src/lib/backup/physical/archiver.js'
import {recoveryWindow} from '../../src/lib/backup/physical/list.js'
import type {PgBackRestInfo} from '../../src/lib/backup/physical/pgbackrest.js'
import {retentionLines} from '../../src/lib/backup/physical/pgbackrest.js'
import {parseRecoveryTime} from '../../src/lib/backup/physical/recovery-time.js'
import {DEFAULT_PHYSICAL_RETENTION, stanzaName} from '../../src/lib/backup/physical/setup.js'
import {archivingChecks, physicalBackupCheck} from '../../src/lib/doctor/archive-checks.js'

describe('parseRecoveryTime', () => {
  it('keeps microseconds and normalises to UTC', () => {
    expect(parseRecoveryTime('2026-11-25 16:51:37.931275+00').target).toBe('2026-11-25 16:51:37.931275+00')
    expect(parseRecoveryTime('2026-11-25T18:51:37.5+02:00').target).toBe('2026-11-25 16:51:37.500000+00')
    expect(parseRecoveryTime('2026-11-25 16:51:37').date.toISOString()).toBe('2026-11-25T16:51:37.000Z')
    expect(parseRecoveryTime('2026-11-25T16:51:37Z').date.toISOString()).toBe('2026-11-25T16:51:37.000Z')
  })

  it('refuses what is not a timestamp with exit 2', () => {
    for (const bad of ['yesterday', '2026-13-01 00:00:00', '2026-02-30 00:00:00', '2026-11-25', "2026-11-25 10:00:00'; DROP"]) {
      expect(() => parseRecoveryTime(bad), bad).toThrowError(expect.objectContaining({exitCode: 2}))
    }
  })
})

describe('recoveryWindow', () => {
  const backup = (label: string, start: string, stop: string, t0: number, t1: number) => ({
    label, type: 'full' as const, prior: null, error: false, timestamp: {start: t0, stop: t1}, archive: {start, stop},
    info: {size: 1, delta: 1, repository: {size: 1, delta: 1}}, database: {id: 1},
  })
  const info = (backups: ReturnType<typeof backup>[], min: string, max: string): PgBackRestInfo => ({
    name: 's', cipher: 'none', status: {code: 0, message: 'ok'}, archive: [{id: '15-1', min, max, database: {id: 1}}], backup: backups, db: [{id: 1, version: '15'}],
  })
  const seg = (n: number) => `00000001000000000000${n.toString(16).toUpperCase().padStart(4, '0')}`
  const at = new Date('2026-11-25T12:00:00Z')

  it('starts the second after the oldest backup whose WAL reaches the newest segment without a gap stopped (pgBackRest compares whole seconds)', () => {
    const i = info([backup('A', seg(2), seg(3), 1000, 1010), backup('B', seg(8), seg(9), 2000, 2010)], seg(2), seg(12))
    const all = {segments: [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12].map(seg), newestArchivedAt: at}
    expect(recoveryWindow(i, all)).toEqual({earliest: new Date(1011_000).toISOString(), latest: at.toISOString(), lastWal: seg(12)})
    // expiry dropped the WAL between A and B (A's own WAL stays): the window starts at B
    const gap = {segments: [2, 3, 8, 9, 10, 11, 12].map(seg), newestArchivedAt: at}
    expect(recoveryWindow(i, gap)?.earliest).toBe(new Date(2011_000).toISOString())
  })

  it('is null without a backup or without WAL', () => {
    expect(recoveryWindow(info([], seg(2), seg(3)), {segments: [seg(2), seg(3)], newestArchivedAt: at})).toBeNull()
    expect(recoveryWindow(info([backup('A', seg(2), seg(3), 1, 2)], seg(2), seg(3)), {segments: [], newestArchivedAt: undefined})).toBeNull()
  })
})

describe('WAL positions', () => {
  it('the segment after 000000010000000A000000FF starts at B/0', () => {
    expect(nextSegmentStart('000000010000000A000000FF', 16 * 1024 * 1024)).toBe(lsnToNumber('B/0'))
    expect(nextSegmentStart('000000010000000000000003', 16 * 1024 * 1024)).toBe(lsnToNumber('0/4000000'))
  })
})

describe('retention mapping', () => {
  it('maps seed 001 onto full/diff/archive retention', () => {
    expect(retentionLines(DEFAULT_PHYSICAL_RETENTION)).toEqual([
      'repo1-retention-full-type=time',
      'repo1-retention-full=365',
      'repo1-retention-diff=7',
      'repo1-retention-archive-type=diff',
      'repo1-retention-archive=7',
    ])
  })

  it('names the stanza for the server', () => {
    expect(stanzaName('', true, 5432)).toBe('singularity-local')
    expect(stanzaName('acme_', false, 5433, 'db 1.example')).toBe('acme_singularity-db-1.example-5433')
  })
})

describe('doctor archive rows', () => {
  const base: ArchiverStatus = {
    archiveMode: 'on', archivedCount: 10, lastArchivedWal: '000000010000000000000009', lastArchivedAt: '2026-11-25T12:00:00.000Z', lastArchivedAgeSeconds: 30,
    failedCount: 0, lastFailedWal: null, lastFailedAt: null, failing: false, statsResetAt: null, pendingBytes: 1000,
  }
  const status = (a: ArchiverStatus, setUp = true) => archivingChecks(a, setUp, 300).map((c) => [c.check, c.status])

  it('ok while recent; fails when old with WAL waiting; an idle server with nothing waiting is fine', () => {
    expect(status(base)).toEqual([['WAL archiving', 'ok'], ['archive failures', 'ok']])
    expect(status({...base, lastArchivedAgeSeconds: 900})).toEqual([['WAL archiving', 'fail'], ['archive failures', 'ok']])
    expect(status({...base, lastArchivedAgeSeconds: 900, pendingBytes: 0})).toEqual([['WAL archiving', 'ok'], ['archive failures', 'ok']])
  })

  it('fails while archive_command fails since its last success', () => {
    const failing = {...base, failing: true, failedCount: 4, lastFailedAt: '2026-11-25T12:01:00.000Z', lastFailedWal: '00000001000000000000000A'}
    expect(status(failing)).toEqual([['WAL archiving', 'ok'], ['archive failures', 'fail']])
  })

  it('archive_mode off: a warning when never set up, a failure when set up', () => {
    expect(status({...base, archiveMode: 'off'}, false)).toEqual([['WAL archiving', 'warn']])
    expect(status({...base, archiveMode: 'off'}, true)).toEqual([['WAL archiving', 'fail']])
  })

  it('physical backups: none fails; a stale type fails; a newer full covers a diff', () => {
    const now = new Date('2026-11-25T12:00:00Z')
    const b = (type: 'full' | 'diff' | 'incr', hoursAgo: number) => ({label: `${type}${hoursAgo}`, type, status: 'complete' as const, startedAt: null, stoppedAt: new Date(now.getTime() - hoursAgo * 3_600_000).toISOString(), size: 1, repoSize: 1, prior: null})
    expect(physicalBackupCheck([], now).status).toBe('fail')
    expect(physicalBackupCheck([b('full', 30), b('diff', 3), b('incr', 1)], now).status).toBe('ok')
    expect(physicalBackupCheck([b('full', 30), b('diff', 27)], now).status).toBe('fail')
    expect(physicalBackupCheck([b('full', 2), b('diff', 50)], now).status).toBe('ok')
    expect(physicalBackupCheck([b('full', 24 * 9)], now).status).toBe('fail')
  })
})
