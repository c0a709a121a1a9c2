import {existsSync, mkdtempSync, rmSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'

import {runCli} from '../helpers/cli.js'
import {connect} from '../helpers/db.js'

// A second, private cluster made through the CLI itself, next to the run's shared test server.
const dir = mkdtempSync(join(tmpdir(), 'singularity-local-test-'))
const local = (args: string[]) => runCli(['local', ...args, '--data-dir', dir], {noAdmin: true, timeoutMs: 120_000})

describe('singularity local start | status | env | stop', () => {
  afterAll(async () => {
    await local(['stop'])
    rmSync(dir, {recursive: true, force: true})
  })

  it('status of a cluster never created exits 4 and says how to create it', async () => {
    const result = await local(['status'])
    expect(result.exitCode).toBe(4)
    expect(result.stdout).toContain('singularity local start')
  })

  it('start creates and starts it; a second start says already running and exits 0', async () => {
    const first = await local(['start', '--json'])
    expect(first.exitCode).toBe(0)
    const body = first.json()
    expect(body.action).toBe('created')
    expect(body.status).toMatchObject({running: true, created: true})
    expect(body.status.pid).toBeGreaterThan(0)
    expect(statSync(join(dir, 'superuser.password')).mode & 0o777).toBe(0o600)

    const second = await local(['start'])
    expect(second.exitCode).toBe(0)
    expect(second.stdout).toContain('already running')
  })

  it('status reports pid, port, version and extension packages', async () => {
    const result = await local(['status', '--json'])
    expect(result.exitCode).toBe(0)
    const s = result.json()
    expect(s.running).toBe(true)
    expect(s.port).toBeGreaterThan(0)
    expect(s.version).toMatch(/^\d+/)
    expect(s.extensions.map((e: {extension: string}) => e.extension)).toEqual(expect.arrayContaining(['pg_cron', 'wal2json']))
  })

  it('env prints exports without the password, and they work', async () => {
    const result = await local(['env'])
    expect(result.exitCode).toBe(0)
    const password = (await import('node:fs')).readFileSync(join(dir, 'superuser.password'), 'utf8').trim()
    expect(result.stdout).not.toContain(password)
    const env = Object.fromEntries([...result.stdout.matchAll(/^export (\w+)='([^']*)'$/gm)].map((m) => [m[1], m[2]]))
    expect(Object.keys(env)).toEqual(expect.arrayContaining(['SINGULARITY_ADMIN_URL', 'PGPASSFILE', 'PGPORT']))
    // The URL has no password; the 0600 pgpass file supplies it, as libpq would.
    process.env.PGPASSFILE = env.PGPASSFILE
    const client = await connect(env.SINGULARITY_ADMIN_URL)
    try {
      const {rows} = await client.query("SELECT current_setting('wal_level') AS wal_level, current_setting('shared_preload_libraries') AS preload")
      expect(rows[0]).toEqual({wal_level: 'logical', preload: 'pg_cron'})
    } finally {
      await client.end()
      delete process.env.PGPASSFILE
    }
  })

  it('stop stops it cleanly; stopping again is not an error', async () => {
    const result = await local(['stop', '--json'])
    expect(result.exitCode).toBe(0)
    expect(result.json().action).toBe('stopped')
    expect(existsSync(join(dir, 'data', 'postmaster.pid'))).toBe(false)
    expect((await local(['stop', '--json'])).json().action).toBe('not-running')
    expect((await local(['status'])).exitCode).toBe(3)
  })
})
