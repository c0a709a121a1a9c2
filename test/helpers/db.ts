import {randomBytes} from 'node:crypto'
import pg from 'pg'
import {inject} from 'vitest'

import {applyComponents} from '../../src/lib/migrate/runner.js'
import {estateFromTemplate} from './estate-template.js'

/** Superuser URL of the run's test server. */
export function adminUrl(): string {
  return inject('adminUrl')
}

/** The same server, another database. */
export function urlFor(database: string, base = adminUrl()): string {
  const url = new URL(base)
  url.pathname = `/${encodeURIComponent(database)}`
  return url.toString()
}

/** A connected client; the caller ends it. */
export async function connect(url: string = adminUrl()): Promise<pg.Client> {
  const client = new pg.Client({connectionString: url})
  client.on('error', () => {})
  await client.connect()
  return client
}

/** Runs fn with a client on url and ends it afterwards. */
export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = await connect(url)
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

/** A short random name part: test files never collide on the shared server. */
export function uniqueSuffix(): string {
  return randomBytes(4).toString('hex')
}

/** A fresh, empty database of this test file's own. */
export async function createTestDatabase(prefix: string): Promise<{name: string; url: string}> {
  const name = `t_${prefix.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 30)}_${uniqueSuffix()}`
  await withClient(adminUrl(), (c) => c.query(`CREATE DATABASE "${name}"`))
  return {name, url: urlFor(name)}
}

/** Applies sql/<component>/ files with the product's own migration runner. */
export async function installComponents(url: string, components: string[]): Promise<void> {
  await withClient(url, async (client) => {
    await applyComponents(client, components)
  })
}

/**
 * This file's own provisioned estate under prefix (databases, roles, grants, pg_cron jobs, CDC slot):
 * a copy of the run's template estate plus `db init --prefix <prefix> --queue-engine bundled`
 * (test/helpers/estate-template.ts says how roles are handled). Throws, naming the step, on failure.
 */
export async function provisionedEstate(prefix: string, passwordsFile: string): Promise<{stdout: string; stderr: string}> {
  return estateFromTemplate(adminUrl(), inject('estateTemplate'), prefix, passwordsFile)
}
