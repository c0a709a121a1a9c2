import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'

import {redact} from '../../src/lib/cli/redact.js'
import {resolveConfig} from '../../src/lib/config/resolve.js'
import {configuredEstate, databaseTarget, instancesFrom, placementOf, serverNames} from '../../src/lib/estate/targets.js'
import {serverParts} from '../../src/lib/reconcile/plan.js'
import {selectAcrossServers} from '../../src/lib/cron/across.js'
import {historyColumns} from '../../src/lib/render/jobs.js'
import {estate} from '../../src/topology.js'
import {cliErrorOf} from '../helpers/errors.js'

const none = {XDG_CONFIG_HOME: '/nonexistent', SINGULARITY_LOCAL_DIR: '/nonexistent/local'}

function withConfig(content: unknown, extra: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'sing-servers-'))
  const file = join(dir, 'config.json')
  writeFileSync(file, JSON.stringify(content))
  return resolveConfig({}, {...none, SINGULARITY_CONFIG: file, ...extra})
}


const A = 'postgres://admin:secret-a@db-a:5432/postgres'
const B = 'postgres://admin:secret-b@db-b:5432/postgres'

describe('config: servers and placement', () => {
  it('without servers, main is the admin URL and every database is placed there', () => {
    const config = resolveConfig({}, {...none, SINGULARITY_ADMIN_URL: A})
    expect(serverNames(config)).toEqual(['main'])
    expect(config.servers.main.url).toBe(A)
    expect(configuredEstate(config).databases.every((d) => d.server === 'main')).toBe(true)
  })

  it('servers.main is the admin URL; a database is placed by name before kind; unplaced ones go to main', () => {
    const config = withConfig({servers: {main: A, queues: B}, placement: {singularity: 'queues', singularity_1: 'main', shared_queue: 'queues'}, instances: 3})
    expect(config.admin).toMatchObject({url: A, source: 'config'})
    expect(serverNames(config)).toEqual(['main', 'queues'])
    const placed = Object.fromEntries(configuredEstate(config).databases.map((d) => [d.name, d.server]))
    expect(placed).toEqual({singularity_1: 'main', singularity_2: 'queues', singularity_3: 'queues', genesis: 'main', centralcloud: 'main', nexus: 'main', shared_queue: 'queues'})
  })

  it('the admin flag or env still decides main; the other servers come from the file', () => {
    const config = withConfig({servers: {queues: B}, placement: {shared_queue: 'queues'}}, {SINGULARITY_ADMIN_URL: A})
    expect(config.servers.main.url).toBe(A)
    expect(config.servers.queues.url).toBe(B)
  })

  it('databaseTarget reaches a database on its server; a seed 003 URL of the service still wins', () => {
    const config = withConfig({servers: {main: A, queues: B}, placement: {shared_queue: 'queues'}})
    const e = configuredEstate(config)
    const sq = e.databases.find((d) => d.kind === 'shared_queue')!
    const genesis = e.databases.find((d) => d.kind === 'genesis')!
    expect(databaseTarget(config, sq).url).toBe('postgres://admin:secret-b@db-b:5432/shared_queue')
    expect(databaseTarget(config, genesis).url).toBe('postgres://admin:secret-a@db-a:5432/genesis')
    const service = withConfig({servers: {main: A, queues: B}, placement: {shared_queue: 'queues'}}, {SHARED_QUEUE_DB_URL: 'postgres://genesis:pw@db-b/shared_queue'})
    expect(databaseTarget(service, sq).url).toBe('postgres://genesis:pw@db-b/shared_queue')
  })

  it('with a prefix, placement takes the kind or the prefixed name', () => {
    const config = withConfig({prefix: 'dev_', servers: {main: A, queues: B}, placement: {dev_shared_queue: 'queues', nexus: 'queues'}})
    expect(placementOf(config, {kind: 'shared_queue', name: 'dev_shared_queue'})).toBe('queues')
    expect(placementOf(config, {kind: 'nexus', name: 'dev_nexus'})).toBe('queues')
    expect(placementOf(config, {kind: 'genesis', name: 'dev_genesis'})).toBe('main')
  })

  it('an unknown server in the placement exits 2 naming the servers', () => {
    const error = cliErrorOf(() => withConfig({servers: {main: A, queues: B}, placement: {shared_queue: 'elsewhere'}}))
    expect(error.exitCode).toBe(2)
    expect(error.message).toMatch(/unknown server 'elsewhere'/)
    expect(error.hint).toMatch(/main, queues/)
  })

  it('placing an unknown database exits 2 with a hint; an instance number must be one the estate can have', () => {
    for (const key of ['shared_queues', 'singularity_0', 'singularity_65', 'dev_genesis']) {
      const error = cliErrorOf(() => withConfig({servers: {main: A, queues: B}, placement: {[key]: 'queues'}}))
      expect(error.exitCode, key).toBe(2)
      expect(error.message, key).toMatch(/placement of an unknown database/)
      expect(error.hint, key).toMatch(/place a kind/)
    }
  })

  it('refuses a bad server name, and adminUrl disagreeing with servers.main (exit 2)', () => {
    expect(cliErrorOf(() => withConfig({servers: {'Bad Name': B}})).exitCode).toBe(2)
    const both = cliErrorOf(() => withConfig({adminUrl: A, servers: {main: B}}))
    expect(both.exitCode).toBe(2)
    expect(both.message).toMatch(/adminUrl and servers.main/)
  })

  it("never prints a server URL's password", () => {
    withConfig({servers: {main: A, queues: B}, placement: {shared_queue: 'queues'}})
    expect(redact(`connecting to ${B}`)).not.toContain('secret-b')
    expect(redact(`connecting to ${A}`)).not.toContain('secret-a')
  })
})

describe('the estate per server', () => {
  it('each server gets its databases and the roles they use', () => {
    const config = withConfig({servers: {main: A, queues: B}, placement: {shared_queue: 'queues', singularity_2: 'queues'}, instances: 2})
    const parts = serverParts(configuredEstate(config), serverNames(config))
    expect(parts.map((p) => [p.name, p.estate.databases.map((d) => d.name)])).toEqual([
      ['main', ['singularity_1', 'genesis', 'centralcloud', 'nexus']],
      ['queues', ['singularity_2', 'shared_queue']],
    ])
    const roles = (name: string) => parts.find((p) => p.name === name)!.estate.roles.map((r) => r.key)
    expect(roles('main')).not.toContain('centralcloud_analytics')
    expect(roles('queues')).toEqual(expect.arrayContaining(['singularity', 'genesis', 'nexus', 'centralcloud', 'centralcloud_analytics', 'centralcloud_cdc', 'centralcloud_consumer']))
  })

  it('one server: one part with the whole estate (every role, as before)', () => {
    const e = estate()
    expect(serverParts(e, ['main'])).toEqual([{name: 'main', estate: e}])
  })

  it('a server without databases takes no part', () => {
    const config = withConfig({servers: {main: A, queues: B, spare: B}, placement: {shared_queue: 'queues'}})
    expect(serverParts(configuredEstate(config), serverNames(config)).map((p) => p.name)).toEqual(['main', 'queues'])
  })

  it('counts instances from the names found, at least the highest one the placement names', () => {
    expect(instancesFrom(['singularity'], {placement: {}, prefix: ''})).toBe(1)
    expect(instancesFrom(['singularity_1', 'singularity_2'], {placement: {}, prefix: ''})).toBe(2)
    expect(instancesFrom(['singularity_1'], {placement: {singularity_3: 'b'}, prefix: ''})).toBe(3)
    expect(instancesFrom([], {placement: {p_singularity_2: 'b'}, prefix: 'p_'})).toBe(2)
  })
})

describe('jobs over several servers', () => {
  const config = withConfig({adminUrl: 'postgres://a@h/postgres', servers: {queues: 'postgres://a@q/postgres'}, placement: {shared_queue: 'queues', singularity_2: 'queues'}, instances: 2})
  const e = configuredEstate(config)

  it('--db: the estate\'s databases by name or kind; other names are left for a server\'s cron database', () => {
    expect(selectAcrossServers(e, undefined)).toBeUndefined()
    expect(selectAcrossServers(e, ['singularity', 'postgres'])).toEqual({databases: ['singularity_1', 'singularity_2'], cronNames: ['postgres'], typed: ['singularity', 'postgres']})
    expect(selectAcrossServers(e, ['shared_queue'])).toMatchObject({databases: ['shared_queue'], cronNames: []})
  })

  it('jobs history: a server column only when asked for (several servers)', () => {
    const result = {runner: 'pg_cron' as const, jobs: ['x'], runs: [{job: 'x', database: 'd', runid: 1, status: 'succeeded', start: null, end: null, durationSeconds: null, message: null}]}
    expect(historyColumns(result).map((c) => c.key)).not.toContain('server')
    expect(historyColumns(result, true).map((c) => c.key)).toEqual(['run', 'server', 'status', 'start', 'duration', 'message'])
  })
})
