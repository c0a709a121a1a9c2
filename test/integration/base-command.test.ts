import {describe, expect, it} from 'vitest'

import {runCli} from '../helpers/cli.js'

describe('the base command: exit codes, --json errors, redaction', () => {
  it('a bad flag value exits 2 with one error line and a hint, nothing on stdout', async () => {
    const result = await runCli(['local', 'start', '--port', 'abc'])
    expect(result.exitCode).toBe(2)
    expect(result.stdout).toBe('')
    const lines = result.stderr.trim().split('\n')
    expect(lines[0]).toMatch(/^error: /)
    expect(lines[1]).toMatch(/^hint: /)
    expect(lines).toHaveLength(2)
  })

  it('an unknown flag under --json is one JSON error document on stdout with exitCode 2', async () => {
    const result = await runCli(['local', 'status', '--bogus', '--json'])
    expect(result.exitCode).toBe(2)
    const body = result.json()
    expect(body.error).toMatchObject({code: 'USAGE', exitCode: 2})
    expect(body.error.message).toContain('--bogus')
  })

  it('a mistyped command is never run as a guess: exit 2 with the closest names', async () => {
    const result = await runCli(['local', 'stat'])
    expect(result.exitCode).toBe(2)
    expect(result.stderr).toContain('singularity local status')
    expect(result.stdout).toBe('')
  })

  it('a bad connection setting exits 2 naming the variable, never echoing the password', async () => {
    const result = await runCli(['local', 'env', '--json'], {env: {DATABASE_URL: 'mysql://root:Sup3rSecret@h/db'}})
    // local env does not read DATABASE_URL's value... but config resolution validates every variable.
    expect(result.exitCode).toBe(2)
    expect(result.stdout + result.stderr).not.toContain('Sup3rSecret')
    expect(result.json().error.message).toContain('DATABASE_URL')
  })

  it('not-found keeps its exit code under --json', async () => {
    const result = await runCli(['local', 'env', '--json', '--data-dir', '/nonexistent/nowhere'])
    expect(result.exitCode).toBe(4)
    expect(result.json().error.exitCode).toBe(4)
  })

  it('--help has examples and exits 0', async () => {
    const result = await runCli(['local', 'start', '--help'])
    expect(result.exitCode).toBe(0)
    expect(result.stdout).toContain('EXAMPLES')
  })
})
