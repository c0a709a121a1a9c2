import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {beforeAll, describe, expect, it} from 'vitest'

import {runCli} from '../helpers/cli.js'
import {adminUrl, withClient} from '../helpers/db.js'

/**
 * Issue 18 / seed 004: SHARED_QUEUE_ENABLED=false makes the shared_queue part of every command say
 * that it is disabled (stderr note, "disabled" in --json), not fail; a bad value exits 2.
 */

const P = 't_sqoff_'
const secrets = mkdtempSync(join(tmpdir(), 'sing-sqoff-'))
const off = {SHARED_QUEUE_ENABLED: 'false'}
const cli = (args: string[], env: Record<string, string> = off) => runCli([...args, '--prefix', P], {env, timeoutMs: 180_000})
const disabled = [{database: `${P}shared_queue`, reason: 'SHARED_QUEUE_ENABLED=false'}]
const NOTE = `note: ${P}shared_queue is disabled (SHARED_QUEUE_ENABLED=false): its part of this command was skipped`

describe('SHARED_QUEUE_ENABLED=false', () => {
  beforeAll(async () => {
    const init = await cli(['db', 'init', '--passwords-file', join(secrets, 'pw.json'), '--json'])
    expect(init.exitCode, init.stdout + init.stderr).toBe(0)
    expect(init.json().disabled).toEqual(disabled)
  })

  it('db init provisions the rest and not shared_queue, and says so', async () => {
    const {rows} = await withClient(adminUrl(), (c) => c.query<{datname: string}>(`SELECT datname FROM pg_database WHERE datname LIKE $1 || '%' ORDER BY 1`, [P]))
    expect(rows.map((r) => r.datname)).toEqual([`${P}centralcloud`, `${P}genesis`, `${P}nexus`, `${P}singularity`])
    const again = await cli(['db', 'init', '--passwords-file', join(secrets, 'pw.json')])
    expect(again.exitCode, again.stderr).toBe(0)
    expect(again.stderr).toContain(NOTE)
  })

  it('db status is healthy without it and names it disabled', async () => {
    const status = await cli(['db', 'status', '--json'])
    expect(status.exitCode, status.stdout).toBe(0)
    expect(status.json().disabled).toEqual(disabled)
    expect(status.json().databases.map((d: {name: string}) => d.name)).not.toContain(`${P}shared_queue`)
    const human = await cli(['db', 'status'])
    expect(human.exitCode).toBe(0)
    expect(human.stderr).toContain(NOTE)
  })

  it('queue stats reads the singularity queues; asked for shared_queue, it says disabled (exit 0)', async () => {
    const all = await cli(['queue', 'stats', '--json'])
    expect(all.exitCode, all.stdout).toBe(0)
    expect(all.json().disabled).toEqual(disabled)
    expect(all.json().queues.length).toBeGreaterThan(0)
    const only = await cli(['queue', 'stats', '--db', 'shared_queue', '--json'])
    expect(only.exitCode, only.stdout).toBe(0)
    expect(only.json()).toMatchObject({queues: [], disabled})
  })

  it('jobs list has no shared_queue job and nothing missing', async () => {
    const list = await cli(['jobs', 'list', '--runner', 'pg_cron', '--fail-on-error', '--json'])
    expect(list.exitCode, list.stdout).toBe(0)
    expect(list.json().jobs.some((j: {database: string}) => j.database === `${P}shared_queue`)).toBe(false)
    expect(list.json().disabled).toEqual(disabled)
  })

  it('a value that is neither true nor false exits 2 naming the variable', async () => {
    const bad = await cli(['db', 'status', '--json'], {SHARED_QUEUE_ENABLED: 'maybe'})
    expect(bad.exitCode).toBe(2)
    expect(bad.json().error.message).toBe('invalid SHARED_QUEUE_ENABLED: must be true or false')
  })
})
