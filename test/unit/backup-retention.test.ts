import {describe, expect, it} from 'vitest'

import {backupId, classifyEntry, parseBackupId} from '../../src/lib/backup/manifest.js'
import {defaultRestoreName} from '../../src/lib/backup/restore.js'
import {DEFAULT_RETENTION, newestVerified, planRetention, type RetentionCandidate} from '../../src/lib/backup/retention.js'
import {libpqEnv, majorOf, parseToolVersion} from '../../src/lib/backup/tools.js'

const base = Date.parse('2026-11-23T20:00:00Z')
const HOUR = 3_600_000
const DAY = 24 * HOUR

function series(kind: RetentionCandidate['kind'], n: number, step: number, verified: (i: number) => RetentionCandidate['verified'] = () => 'no'): RetentionCandidate[] {
  // i = 0 is the newest
  return Array.from({length: n}, (_, i) => {
    const at = new Date(base - i * step)
    return {id: backupId(kind, at), kind, startedAt: at.toISOString(), verified: verified(i)}
  })
}

const deleted = (plan: ReturnType<typeof planRetention>) => plan.filter((d) => d.action === 'delete').map((d) => d.id)
const kept = (plan: ReturnType<typeof planRetention>) => plan.filter((d) => d.action === 'keep').map((d) => d.id)

describe('backup retention (seed 001: hourly 6, daily 7, monthly 12)', () => {
  it('keeps the newest 6 hourly, 7 daily, 12 monthly and deletes the rest', () => {
    const hourly = series('hourly', 10, HOUR, () => 'yes')
    const daily = series('daily', 9, DAY, () => 'yes')
    const monthly = series('monthly', 14, 30 * DAY, () => 'yes')
    const plan = planRetention([...monthly, ...hourly, ...daily], DEFAULT_RETENTION)
    expect(kept(plan).filter((id) => id.endsWith('hourly'))).toEqual(hourly.slice(0, 6).map((b) => b.id))
    expect(kept(plan).filter((id) => id.endsWith('daily'))).toEqual(daily.slice(0, 7).map((b) => b.id))
    expect(kept(plan).filter((id) => id.endsWith('monthly'))).toEqual(monthly.slice(0, 12).map((b) => b.id))
    expect(deleted(plan).sort()).toEqual([...hourly.slice(6), ...daily.slice(7), ...monthly.slice(12)].map((b) => b.id).sort())
  })

  it('never deletes the newest verified backup, even beyond retention', () => {
    // only the oldest hourly was ever verified
    const hourly = series('hourly', 9, HOUR, (i) => (i === 8 ? 'yes' : i === 0 ? 'failed' : 'no'))
    const plan = planRetention(hourly, DEFAULT_RETENTION)
    expect(kept(plan)).toHaveLength(7)
    expect(kept(plan)).toContain(hourly[8].id)
    expect(plan.find((d) => d.id === hourly[8].id)!.reason).toMatch(/newest verified/)
    expect(deleted(plan)).toEqual([hourly[6].id, hourly[7].id])
  })

  it('protects only the newest verified one; older verified ones follow retention', () => {
    const hourly = series('hourly', 9, HOUR, (i) => (i >= 7 ? 'yes' : 'no'))
    const plan = planRetention(hourly, DEFAULT_RETENTION)
    expect(deleted(plan)).toEqual([hourly[6].id, hourly[8].id])
  })

  it('protects the newest verified across kinds: keep 0 everywhere leaves exactly that one', () => {
    // the newest verified is an hourly from two hours ago; the older dailies were verified before it
    const all = [...series('hourly', 3, HOUR, (i) => (i === 2 ? 'yes' : 'no')), ...series('daily', 3, DAY, () => 'yes').map((b) => ({...b, startedAt: new Date(Date.parse(b.startedAt) - DAY).toISOString()}))]
    const plan = planRetention(all, {hourly: 0, daily: 0, monthly: 0, manual: 0})
    expect(kept(plan)).toEqual([all[2].id])
  })

  it('a failed verification is not "verified"', () => {
    const hourly = series('hourly', 3, HOUR, (i) => (i === 0 ? 'failed' : i === 1 ? 'yes' : 'no'))
    expect(newestVerified(hourly)?.id).toBe(hourly[1].id)
  })

  it('keeps manual backups unless a manual retention is given', () => {
    const manual = series('manual', 4, DAY)
    expect(deleted(planRetention(manual, DEFAULT_RETENTION))).toEqual([])
    expect(deleted(planRetention(manual, {...DEFAULT_RETENTION, manual: 1}))).toEqual(manual.slice(1).map((b) => b.id))
  })

  it('returns decisions newest first, whatever the input order', () => {
    const hourly = series('hourly', 5, HOUR)
    const plan = planRetention([...hourly].reverse(), DEFAULT_RETENTION)
    expect(plan.map((d) => d.id)).toEqual(hourly.map((b) => b.id))
  })
})

describe('backup ids and helpers', () => {
  it('ids are UTC, second precision, and parse back', () => {
    const at = new Date('2026-11-23T20:15:00.123Z')
    expect(backupId('hourly', at)).toBe('20261123T201500Z-hourly')
    expect(backupId('daily', at, 2)).toBe('20261123T201500Z-daily-2')
    expect(parseBackupId('20261123T201500Z-hourly')).toEqual({kind: 'hourly', startedAt: new Date('2026-11-23T20:15:00Z'), sequence: 0})
    expect(parseBackupId('20261123T201500Z-weekly')).toBeUndefined()
    expect(parseBackupId('../etc')).toBeUndefined()
  })

  it('classifies directory entries: backups, partials, half-deleted; ignores the rest', () => {
    expect(classifyEntry('20261123T201500Z-hourly')).toEqual({type: 'backup', id: '20261123T201500Z-hourly'})
    expect(classifyEntry('.20261123T201500Z-hourly.partial')).toEqual({type: 'partial', id: '20261123T201500Z-hourly'})
    expect(classifyEntry('.20261123T201500Z-hourly.deleting')).toEqual({type: 'deleting', id: '20261123T201500Z-hourly'})
    expect(classifyEntry('lost+found')).toBeUndefined()
  })

  it('parses pg_dump versions and compares majors like server_version_num', () => {
    expect(parseToolVersion('pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)')).toEqual({version: '15.18', num: 150018})
    expect(parseToolVersion('pg_dump (PostgreSQL) 9.6.24')).toEqual({version: '9.6.24', num: 90624})
    expect(parseToolVersion('pg_dump (PostgreSQL) 17devel')?.num).toBe(170000)
    expect(majorOf(150018)).toBe(majorOf(150002))
    expect(majorOf(150018)).toBeLessThan(majorOf(160000))
    expect(majorOf(90624) < majorOf(100000)).toBe(true)
  })

  it('hands the connection to libpq programs through the environment only', () => {
    const env = libpqEnv({url: 'postgres://app%40x:s3cr%2Ft@db.example:6432/postgres?sslmode=require', source: 'env', origin: 'X'}, 'genesis', {PATH: '/bin', PGSERVICE: 'other'})
    expect(env).toMatchObject({PGHOST: 'db.example', PGPORT: '6432', PGUSER: 'app@x', PGPASSWORD: 's3cr/t', PGDATABASE: 'genesis', PGSSLMODE: 'require', PATH: '/bin'})
    expect(env.PGSERVICE).toBeUndefined()
    // a URL without a password still finds it in the passfile
    expect(libpqEnv({url: 'postgres://me@h:5/postgres', source: 'env', origin: 'X'}, 'db', {PGPASSFILE: '/p', PGHOST: 'other'})).toMatchObject({PGPASSFILE: '/p', PGHOST: 'h', PGDATABASE: 'db'})
    // without a URL, the caller's own PG* settings (and .pgpass) are used
    expect(libpqEnv({source: 'libpq', origin: 'PG*'}, 'nexus', {PGHOST: '/run/pg', PGUSER: 'me'})).toMatchObject({PGHOST: '/run/pg', PGUSER: 'me', PGDATABASE: 'nexus'})
  })

  it('default restore names are valid database names of at most 63 characters', () => {
    const at = new Date('2026-11-23T20:15:00Z')
    expect(defaultRestoreName('genesis', at)).toBe('genesis_restored_20261123_201500')
    const long = defaultRestoreName('a'.repeat(63), at)
    expect(long.length).toBe(63)
    expect(long).toMatch(/^[a-z_][a-z0-9_]*$/)
  })
})
