import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import pg from 'pg'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {runCli} from '../helpers/cli.js'
import {destroyCluster} from '../../src/lib/local-cluster/cluster.js'
import {readLocalState} from '../../src/lib/local-cluster/paths.js'
import {displayWidth} from '../../src/lib/cli/table.js'

/**
 * A dedicated embedded cluster (the product's own `local start`), so that the cap can be made small
 * and a slot really pushed past it without touching the shared test server.
 */
const dir = mkdtempSync(join(tmpdir(), 'singularity-slot-cap-'))
const SLOT = 'singularity_centralcloud_cdc'
const CAP = '32MB'
let url = ''

async function sql<T extends pg.QueryResultRow = any>(text: string, params: unknown[] = [], database = 'postgres'): Promise<T[]> {
  const target = new URL(url)
  target.pathname = `/${database}`
  const client = new pg.Client({connectionString: target.toString()})
  await client.connect()
  try {
    return (await client.query<T>(text, params)).rows
  } finally {
    await client.end()
  }
}

/** About 1 MB of WAL that does not compress away (and a quarter of that). */
const WAL_MB = `INSERT INTO walgen SELECT string_agg(md5(random()::text || g::text), '') FROM generate_series(1, 32768) g`
const WAL_QUARTER_MB = `INSERT INTO walgen SELECT string_agg(md5(random()::text || g::text), '') FROM generate_series(1, 8192) g`

const cli = (args: string[], env: Record<string, string> = {}) =>
  runCli(args, {noAdmin: true, timeoutMs: 240_000, env: {SINGULARITY_ADMIN_URL: url, SINGULARITY_BACKUP_DIR: join(dir, 'backups'), ...env}})

const slotRow = async () => (await sql<{wal_status: string; retained: string}>(`SELECT wal_status, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint::text AS retained FROM pg_replication_slots WHERE slot_name = $1`, [SLOT]))[0]

describe('a CDC slot that cannot fill the disk (dedicated local cluster)', () => {
  beforeAll(async () => {
    const started = await runCli(['local', 'start', '--data-dir', dir, '--json'], {noAdmin: true, timeoutMs: 180_000})
    expect(started.exitCode, started.stderr + started.stdout).toBe(0)
    url = readLocalState(dir)!.adminUrl
  })

  afterAll(async () => {
    await destroyCluster(dir)
  })

  it('the local cluster has a finite max_slot_wal_keep_size by default', async () => {
    const [row] = await sql<{setting: string; unit: string}>("SELECT setting, unit FROM pg_settings WHERE name = 'max_slot_wal_keep_size'")
    expect(Number(row.setting)).toBeGreaterThan(0)
    expect(row).toEqual({setting: String(4 * 1024), unit: 'MB'})
  })

  it('a cluster without the cap (made before it existed) gets it on the next local start, by a reload; a new cap is recorded', async () => {
    // As an older singularity left it: no cap in the settings file, none recorded.
    const conf = join(dir, 'data', 'singularity.conf')
    writeFileSync(conf, readFileSync(conf, 'utf8').replace(/^max_slot_wal_keep_size.*\n/m, ''))
    const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8'))
    delete state.maxSlotWalKeepSize
    writeFileSync(join(dir, 'state.json'), JSON.stringify(state))
    await sql('SELECT pg_reload_conf()')
    await waitFor('the reload to take max_slot_wal_keep_size back to -1', async () => (await sql("SELECT current_setting('max_slot_wal_keep_size') AS v"))[0].v === '-1')

    const again = await runCli(['local', 'start', '--data-dir', dir], {noAdmin: true})
    expect(again.exitCode, again.stderr).toBe(0)
    await waitFor('the cap after `local start`', async () => (await sql("SELECT current_setting('max_slot_wal_keep_size') AS v"))[0].v === '4GB')

    const smaller = await runCli(['local', 'start', '--data-dir', dir, '--max-slot-wal-keep-size', CAP], {noAdmin: true})
    expect(smaller.exitCode, smaller.stderr).toBe(0)
    await waitFor(`max_slot_wal_keep_size = ${CAP}`, async () => (await sql("SELECT current_setting('max_slot_wal_keep_size') AS v"))[0].v === CAP)
    expect(JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8'))).toMatchObject({maxSlotWalKeepSize: CAP})
    expect(readFileSync(join(dir, 'state.json'), 'utf8')).not.toContain('postgres://') // never the URL with its password
    const bad = await runCli(['local', 'start', '--data-dir', dir, '--max-slot-wal-keep-size', 'lots'], {noAdmin: true})
    expect(bad.exitCode).toBe(2)
  })

  it('db init prints one line when it creates the slot: who must consume it, what happens if nobody does', async () => {
    const init = await cli(['db', 'init', '--passwords-file', join(dir, 'pw.json')])
    expect(init.exitCode, init.stderr + init.stdout).toBe(0)
    const lines = init.stdout.split('\n').filter((l) => l.includes(`replication slot ${SLOT} (wal2json)`))
    expect(lines).toHaveLength(1)
    expect(lines[0]).toContain(`CentralCloud must consume it; unread, it keeps up to ${CAP} of WAL (max_slot_wal_keep_size), then PostgreSQL invalidates it and CentralCloud must resync`)
    await sql('CREATE TABLE walgen (x text)')
    await sql('ALTER TABLE walgen ALTER COLUMN x SET STORAGE EXTERNAL')
    const again = await cli(['db', 'init', '--passwords-file', join(dir, 'pw.json')])
    expect(again.stdout).not.toContain(`replication slot ${SLOT}`)
  })

  it('cdc slots shows the retained WAL growing, its wal_status and the time left until the cap', async () => {
    // WAL written all through the two readings of the sample window, slowly enough to stay under the cap
    let writing = true
    const writer = (async () => {
      while (writing) {
        await sql(WAL_QUARTER_MB)
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
    })()
    let result
    let human
    try {
      result = await cli(['cdc', 'slots', '--sample', '3s', '--json'])
      human = await cli(['cdc', 'slots', '--sample', '3s'], {COLUMNS: '100'})
    } finally {
      writing = false
      await writer
    }
    expect(result.exitCode, result.stderr).toBe(0)
    const report = result.json()
    expect(report.capSetting).toBe(CAP)
    expect(report.capBytes).toBe(32 * 1024 ** 2)
    expect(report.sampleSeconds).toBeGreaterThanOrEqual(3)
    const slot = report.slots.find((s: any) => s.name === SLOT)
    expect(slot).toMatchObject({walStatus: 'reserved', active: false, timeLeftUntil: 'cap'})
    expect(slot.retainedBytes).toBeGreaterThan(0)
    expect(slot.growthBytesPerSecond).toBeGreaterThan(0)
    expect(slot.timeLeftSeconds).toBeGreaterThan(0)
    expect(slot.safeWalSizeBytes).toBeLessThanOrEqual(32 * 1024 ** 2)

    const lines = human!.stdout.trimEnd().split('\n')
    expect(lines[0]).toMatch(/^SLOT\s+WAL_STATUS\s+RETAINED WAL\s+GROWTH\s+TIME LEFT/)
    const row = lines.find((l) => l.startsWith(SLOT))!
    expect(row).toMatch(/reserved\s+[\d.]+ [kM]B\s+\+[\d.]+ [kM]B\/s\s+\d+[smh]/)
    for (const line of lines) expect(displayWidth(line)).toBeLessThanOrEqual(100)
  })

  it('doctor warns on a slot without a consumer for too long and on retention past a fraction of the cap', async () => {
    await sql(WAL_MB)
    await sql('SELECT pg_switch_wal()') // the slot's first unconsumed change is now in a finished segment
    await new Promise((resolve) => setTimeout(resolve, 2500))
    const doctor = await cli(['doctor', '--json', '--max-slot-idle', '1s', '--slot-cap-warn', '1'])
    const check = doctor.json().checks.find((c: any) => c.check === 'replication slots')
    expect(check.status, check.detail).toBe('warn')
    expect(check.detail).toMatch(new RegExp(`${SLOT} has had no consumer for at least \\d+s \\(> 1s\\): start CentralCloud, or drop the slot`))
    expect(check.detail).toContain(`over 1% of the ${CAP} cap: past it the slot is lost and CentralCloud must resync`)
    const calm = await cli(['doctor', '--json', '--max-slot-idle', '1d', '--slot-cap-warn', '100'])
    expect(calm.json().checks.find((c: any) => c.check === 'replication slots').status).toBe('ok')
  })

  it('a slot pushed past the cap becomes lost, and doctor exits 3 naming it and the fix', async () => {
    let status = ''
    for (let round = 0; round < 12 && status !== 'lost'; round++) {
      for (let i = 0; i < 4; i++) await sql(WAL_MB)
      await sql('SELECT pg_switch_wal()')
      await sql('CHECKPOINT')
      status = (await slotRow()).wal_status
    }
    expect(status, `slot ${SLOT} to become lost after writing past the ${CAP} cap`).toBe('lost')

    const doctor = await cli(['doctor', '--json'])
    expect(doctor.exitCode, doctor.stdout).toBe(3)
    const check = doctor.json().checks.find((c: any) => c.check === 'replication slots')
    expect(check.status).toBe('fail')
    expect(check.detail).toContain(`${SLOT} is lost`)
    expect(check.detail).toContain(`recreate it (\`singularity cdc slots drop ${SLOT} --confirm ${SLOT}\`, then \`singularity db init\`) and CentralCloud must resync`)
    expect(check.next).toBe(`singularity cdc slots drop ${SLOT} --confirm ${SLOT}`)

    const human = await cli(['doctor'], {COLUMNS: '80'})
    expect(human.exitCode).toBe(3)
    expect(human.stdout).toMatch(/^replication slots\s+FAIL\s+/m)
    expect(human.stdout.replace(/\s+/g, ' ')).toContain(`${SLOT} is lost: the WAL it needed was removed`)
    expect(human.stdout).toContain('verdict: UNHEALTHY')
    for (const line of human.stdout.trimEnd().split('\n')) expect(displayWidth(line)).toBeLessThanOrEqual(80)

    const slots = await cli(['cdc', 'slots', '--sample', '0'], {COLUMNS: '80'})
    expect(slots.stdout).toMatch(new RegExp(`^${SLOT}\\s+lost`, 'm'))
    expect(slots.stdout.replace(/\s+/g, ' ')).toContain(`LOST: ${SLOT} was invalidated by max_slot_wal_keep_size (${CAP})`)

    // a consumer that comes back to a lost slot is told the same fix
    const tail = await cli(['cdc', 'tail', '--slot', SLOT, '--consume', '--limit', '1', '--timeout', '10s'])
    expect(tail.exitCode, tail.stderr).toBe(1)
    expect(tail.stderr).toContain(`replication slot ${SLOT} is lost`)
    expect(tail.stderr).toContain(`singularity cdc slots drop ${SLOT} --confirm ${SLOT}`)

    // the fix named works: drop, recreate, healthy again
    expect((await cli(['cdc', 'slots', 'drop', SLOT, '--confirm', SLOT])).exitCode).toBe(0)
    expect((await cli(['db', 'init', '--passwords-file', join(dir, 'pw.json')])).exitCode).toBe(0)
    expect((await slotRow()).wal_status).toBe('reserved')
  })
})

async function waitFor(what: string, test: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await test()) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`timed out waiting for ${what}`)
}
