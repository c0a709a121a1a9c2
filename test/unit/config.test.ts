import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'

import {resolveConfig} from '../../src/lib/config/resolve.js'
import {cliErrorOf} from '../helpers/errors.js'

const none = {XDG_CONFIG_HOME: '/nonexistent', SINGULARITY_LOCAL_DIR: '/nonexistent/local'}

function configFile(content: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'sing-config-'))
  const file = join(dir, 'config.json')
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content))
  return file
}


describe('resolveConfig', () => {
  it('takes the admin URL from the flag over env over the config file', () => {
    const file = configFile({adminUrl: 'postgres://fromfile@h/postgres'})
    const env = {...none, SINGULARITY_CONFIG: file, SINGULARITY_ADMIN_URL: 'postgres://fromenv@h/postgres'}
    expect(resolveConfig({'admin-url': 'postgres://fromflag@h/postgres'}, env).admin).toMatchObject({source: 'flag', url: 'postgres://fromflag@h/postgres'})
    expect(resolveConfig({}, env).admin).toMatchObject({source: 'env', origin: 'SINGULARITY_ADMIN_URL'})
    expect(resolveConfig({}, {...none, SINGULARITY_CONFIG: file}).admin).toMatchObject({source: 'config', url: 'postgres://fromfile@h/postgres'})
  })

  it("falls back to libpq's PG* variables, as psql does, before the local cluster", () => {
    expect(resolveConfig({}, {...none, PGHOST: 'db.internal'}).admin).toEqual({source: 'libpq', origin: 'PG* environment'})
    expect(resolveConfig({}, none).admin).toBeUndefined()
  })

  it('reads the per-database variables of seed 003, and composes SHARED_QUEUE_HOST/PORT/USER/PASSWORD', () => {
    const cfg = resolveConfig({}, {
      ...none,
      DATABASE_URL: 'postgres://singularity@h/singularity',
      GENESIS_DATABASE_URL: 'postgresql://genesis@h/genesis',
      SHARED_QUEUE_HOST: 'queue.internal',
      SHARED_QUEUE_PORT: '6543',
      SHARED_QUEUE_USER: 'nexus',
      SHARED_QUEUE_PASSWORD: 'p@ss word',
    })
    expect(cfg.databases.singularity?.url).toBe('postgres://singularity@h/singularity')
    expect(cfg.databases.genesis?.origin).toBe('GENESIS_DATABASE_URL')
    const sq = new URL(cfg.databases.shared_queue!.url!)
    expect([sq.hostname, sq.port, sq.username, decodeURIComponent(sq.password), sq.pathname]).toEqual(['queue.internal', '6543', 'nexus', 'p@ss word', '/shared_queue'])
  })

  it('SHARED_QUEUE_DB_URL wins over the separate SHARED_QUEUE_* parts', () => {
    const cfg = resolveConfig({}, {...none, SHARED_QUEUE_DB_URL: 'postgres://x@a/shared_queue', SHARED_QUEUE_HOST: 'b'})
    expect(cfg.databases.shared_queue?.url).toBe('postgres://x@a/shared_queue')
  })

  it('refuses a bad value naming the variable, never echoing it', () => {
    const error = cliErrorOf(() => resolveConfig({}, {...none, DATABASE_URL: 'mysql://root:topsecret@h/db'}))
    expect(error.exitCode).toBe(2)
    expect(error.message).toContain('DATABASE_URL')
    expect(error.message + (error.hint ?? '')).not.toContain('topsecret')
    expect(cliErrorOf(() => resolveConfig({}, {...none, SHARED_QUEUE_HOST: 'h', SHARED_QUEUE_PORT: '99999'})).message).toContain('SHARED_QUEUE_PORT')
    expect(cliErrorOf(() => resolveConfig({}, {...none, SINGULARITY_INSTANCES: '0'})).message).toContain('SINGULARITY_INSTANCES')
    expect(cliErrorOf(() => resolveConfig({}, {...none, SINGULARITY_PREFIX: 'Bad;Name'})).message).toContain('SINGULARITY_PREFIX')
  })

  it('validates the config file: unknown keys and bad URLs exit 2 with the key path', () => {
    expect(cliErrorOf(() => resolveConfig({}, {...none, SINGULARITY_CONFIG: configFile({adminUrl: 'nope'})})).message).toContain('adminUrl')
    expect(cliErrorOf(() => resolveConfig({}, {...none, SINGULARITY_CONFIG: configFile({colour: true})})).exitCode).toBe(2)
    expect(cliErrorOf(() => resolveConfig({}, {...none, SINGULARITY_CONFIG: configFile('{not json')})).message).toContain('not valid JSON')
    expect(cliErrorOf(() => resolveConfig({}, {...none, SINGULARITY_CONFIG: '/nonexistent/x.json'})).message).toContain('not found')
  })

  it('flags override env for instances and prefix', () => {
    expect(resolveConfig({instances: 3, prefix: 'stg_'}, {...none, SINGULARITY_INSTANCES: '2', SINGULARITY_PREFIX: 'x_'})).toMatchObject({instances: 3, prefix: 'stg_'})
    expect(resolveConfig({}, {...none, SINGULARITY_INSTANCES: '2'}).instances).toBe(2)
  })
})

describe('resolveConfig: how reading commands visit the databases', () => {
  it('takes --concurrency over SINGULARITY_CONCURRENCY over the config file; unset leaves the default to the visit', () => {
    const file = configFile({concurrency: 3, dbTimeout: '4s'})
    expect(resolveConfig({config: file}, none).read).toEqual({concurrency: 3, timeoutMs: 4000})
    expect(resolveConfig({config: file}, {...none, SINGULARITY_CONCURRENCY: '5', SINGULARITY_DB_TIMEOUT: '1500ms'}).read).toEqual({concurrency: 5, timeoutMs: 1500})
    expect(resolveConfig({config: file, concurrency: 7, 'db-timeout': '2m'}, {...none, SINGULARITY_CONCURRENCY: '5'}).read).toEqual({concurrency: 7, timeoutMs: 120_000})
    expect(resolveConfig({}, none).read).toEqual({concurrency: undefined, timeoutMs: undefined})
  })

  it('refuses a bad concurrency or timeout naming the setting (exit 2)', () => {
    for (const [env, name] of [
      [{SINGULARITY_CONCURRENCY: '0'}, 'SINGULARITY_CONCURRENCY'],
      [{SINGULARITY_CONCURRENCY: 'many'}, 'SINGULARITY_CONCURRENCY'],
      [{SINGULARITY_DB_TIMEOUT: 'soon'}, 'SINGULARITY_DB_TIMEOUT'],
      [{SINGULARITY_DB_TIMEOUT: '50ms'}, 'SINGULARITY_DB_TIMEOUT'],
      [{SINGULARITY_DB_TIMEOUT: '1h'}, 'SINGULARITY_DB_TIMEOUT'],
    ] as const) {
      const error = cliErrorOf(() => resolveConfig({}, {...none, ...env}))
      expect(error.exitCode).toBe(2)
      expect(error.message).toContain(name)
    }
    expect(cliErrorOf(() => resolveConfig({'db-timeout': '0s'}, none)).message).toContain('--db-timeout')
    expect(cliErrorOf(() => resolveConfig({config: configFile({dbTimeout: 'later'})}, none)).message).toContain('dbTimeout')
    expect(cliErrorOf(() => resolveConfig({config: configFile({concurrency: 1000})}, none)).message).toContain('concurrency')
  })
})
