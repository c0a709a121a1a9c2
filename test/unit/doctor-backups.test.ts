import {describe, expect, it} from 'vitest'

import type {BackupEntry} from '../../src/lib/backup/store.js'
import {backupCheck} from '../../src/lib/doctor/operations-checks.js'

const now = new Date('2026-11-23T12:00:00Z')
const entry = (kind: BackupEntry['kind'], hoursAgo: number, verified: BackupEntry['verified'] = 'yes'): BackupEntry => ({
  id: `x-${kind}-${hoursAgo}`,
  kind,
  status: 'complete',
  path: '/tmp/x',
  startedAt: new Date(now.getTime() - hoursAgo * 3600_000).toISOString(),
  endedAt: null,
  size: 1,
  databases: [],
  verified,
  verifiedAt: null,
})

describe("doctor's backup freshness", () => {
  it('no backups at all is a warning', () => {
    expect(backupCheck([], now).status).toBe('warn')
  })

  it('fresh verified backups of each kind in use are ok', () => {
    expect(backupCheck([entry('hourly', 0.5), entry('daily', 20), entry('monthly', 24 * 20)], now).status).toBe('ok')
  })

  it("the newest verified backup older than its kind's interval fails, naming the kind", () => {
    const result = backupCheck([entry('hourly', 0.5), entry('daily', 50)], now)
    expect(result.status).toBe('fail')
    expect(result.detail).toContain('daily')
  })

  it('an unverified newer backup does not hide a stale verified one; a kind with none verified fails', () => {
    expect(backupCheck([entry('hourly', 5), entry('hourly', 0.2, 'no')], now).status).toBe('fail')
    expect(backupCheck([entry('daily', 1, 'failed')], now).detail).toContain('no verified daily')
  })
})
