import {describe, expect, it} from 'vitest'

import {runCli} from '../helpers/cli.js'

describe('singularity ping: is the server up? (one query)', () => {
  it('answers with the server version and time under --json, exit 0', async () => {
    const result = await runCli(['ping', '--json'])
    expect(result.exitCode).toBe(0)
    const body = result.json()
    expect(body).toMatchObject({ok: true, source: 'env'})
    expect(body.versionNum).toBeGreaterThanOrEqual(150_000)
    expect(body.version).toMatch(/^PostgreSQL \d+/)
    expect(Number.isNaN(Date.parse(body.serverTime))).toBe(false)
    expect(typeof body.latencyMs).toBe('number')
  })

  it('prints one line for people', async () => {
    const result = await runCli(['ping'])
    expect(result.exitCode).toBe(0)
    expect(result.stdout).toMatch(/^ok: PostgreSQL \d+.*server time .* ms \(env\)\n$/)
  })

  it('exits 1 with a hint when the server does not answer, the error as JSON under --json', async () => {
    const result = await runCli(['ping', '--json', '--admin-url', 'postgres://nobody:Pw0rdSecret@127.0.0.1:1/postgres'])
    expect(result.exitCode).toBe(1)
    expect(result.json().error).toMatchObject({code: 'CONNECTION_REFUSED', exitCode: 1})
    expect(result.stdout + result.stderr).not.toContain('Pw0rdSecret')
  })

  it('exits 1 naming the missing configuration when there is none', async () => {
    const result = await runCli(['ping'], {noAdmin: true})
    expect(result.exitCode).toBe(1)
    expect(result.stderr).toMatch(/^error: no database configured/)
  })

  it('has help with examples', async () => {
    const result = await runCli(['ping', '--help'])
    expect(result.exitCode).toBe(0)
    expect(result.stdout).toContain('singularity ping --json')
  })
})
