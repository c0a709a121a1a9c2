import {execFile} from 'node:child_process'
import {mkdtemp, rm, stat} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'

import type pg from 'pg'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {findClientTools, libpqEnv} from '../../src/lib/backup/tools.js'
import type {Target} from '../../src/lib/config/resolve.js'
import {pgDumpCompressionArgs, replicationSlotExtraColumns, slotStatsQuery, slotsHaveInactiveSince} from '../../src/lib/db/catalog-version.js'
import {adminUrl, connect, createTestDatabase, withClient} from '../helpers/db.js'

/**
 * The version-keyed catalog branch of the running server against its real catalog, and the
 * pg_dump options against the real pg_dump (issue 12). Only one major runs here (15 on the dev
 * machine); the other branches are in test/unit/catalog-version.test.ts.
 */

const run = promisify(execFile)
let client: pg.Client
let versionNum: number
let dir: string
let db: {name: string; url: string}
const target = (): Target => ({url: db.url, source: 'flag', origin: 'test'})

beforeAll(async () => {
  client = await connect()
  versionNum = Number((await client.query<{n: string}>("SELECT current_setting('server_version_num') AS n")).rows[0].n)
  dir = await mkdtemp(join(tmpdir(), 'singularity-catalog-version-'))
  db = await createTestDatabase('catalog_version')
})

afterAll(async () => {
  if (db) await withClient(adminUrl(), (c) => c.query(`DROP DATABASE IF EXISTS "${db.name}" WITH (FORCE)`)).catch(() => {})
  if (dir) await rm(dir, {recursive: true, force: true})
  await client?.end()
})

describe('this server against its branch', () => {
  it("pg_replication_slots has exactly the columns its version's branch names", async () => {
    const {rows} = await client.query<{column_name: string}>(
      "SELECT attname AS column_name FROM pg_attribute WHERE attrelid = 'pg_catalog.pg_replication_slots'::regclass AND attnum > 0",
    )
    const columns = rows.map((r) => r.column_name)
    for (const c of replicationSlotExtraColumns(versionNum)) expect(columns, c).toContain(c)
    for (const c of replicationSlotExtraColumns(170_000)) if (!replicationSlotExtraColumns(versionNum).includes(c)) expect(columns, c).not.toContain(c)
    expect(columns.includes('inactive_since')).toBe(slotsHaveInactiveSince(versionNum))
  })

  it('the pg_stat_replication_slots query runs and shows a logical slot', async () => {
    const query = slotStatsQuery(versionNum)!
    expect(query).not.toBeNull()
    const slot = `t_catalog_version_${process.pid}`
    // a temporary slot: dropped with this session at the latest
    await client.query("SELECT pg_create_logical_replication_slot($1, 'wal2json', true)", [slot])
    const {rows} = await client.query(query.sql)
    await client.query('SELECT pg_drop_replication_slot($1)', [slot])
    // 15+ lists every logical slot; 14's collector only those it has heard of
    if (query.statistics === 'shared-memory') expect(rows.map((r) => r.slot_name)).toContain(slot)
    for (const row of rows) expect(Object.keys(row)).toEqual(['slot_name', 'spill_txns', 'spill_count', 'spill_bytes', 'stream_txns', 'stream_count', 'stream_bytes', 'total_txns', 'total_bytes', 'stats_reset'])
  })

  it("pg_dump takes the compression options built for its version; what it cannot do is refused before it runs", async () => {
    const tools = await findClientTools(versionNum)
    const dump = async (args: string[], file: string) => {
      await run(tools.pgDump, ['--format=custom', '--no-password', ...args, '-f', join(dir, file)], {env: libpqEnv(target(), db.name)})
      return (await stat(join(dir, file))).size
    }
    const none = await dump(pgDumpCompressionArgs(tools.version.num, {method: 'none'}), 'none.dump')
    const best = await dump(pgDumpCompressionArgs(tools.version.num, {method: 'gzip', level: 9}), 'gzip9.dump')
    expect(none).toBeGreaterThan(0)
    expect(best).toBeGreaterThan(0)
    if (tools.version.num >= 160_000) {
      expect(await dump(pgDumpCompressionArgs(tools.version.num, {method: 'zstd', level: 3}), 'zstd.dump')).toBeGreaterThan(0)
    } else {
      expect(() => pgDumpCompressionArgs(tools.version.num, {method: 'zstd'})).toThrow(/needs pg_dump 16\+/)
      // and pg_dump itself would have refused it
      await expect(run(tools.pgDump, ['--format=custom', '--compress=zstd', '-f', join(dir, 'x.dump')], {env: libpqEnv(target(), db.name)})).rejects.toMatchObject({
        stderr: expect.stringContaining('--compress'),
      })
    }
  })
})
