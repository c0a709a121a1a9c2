import {execFile} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import pg from 'pg'

import {quoteIdent} from '../../src/lib/sql/quote.js'
import {estate} from '../../src/topology.js'

/**
 * A provisioned estate made ONCE per test run by `db init` (test/global-setup.ts), which test files
 * copy with CREATE DATABASE … TEMPLATE instead of each running a full `db init` (as graphile-worker's
 * tests copy a migrated template database per file).
 *
 * Roles are server-wide, and a copied database still names the template's roles (owners, grants).
 * A test estate with its own --prefix needs its own roles, so estateFromTemplate:
 *  1. copies each of the template's databases to its <prefix><kind> name;
 *  2. runs `db init --prefix <prefix>` on the copies: it creates that prefix's roles, passwords,
 *     CONNECT and grants, pg_cron jobs and CDC slot (none of which a copy carries), and finds every
 *     migration, procedure and queue already there (its ledger is copied too);
 *  3. in each copy, REASSIGN OWNED BY / DROP OWNED BY every template role, to the same role of the
 *     prefix: afterwards nothing in the copy belongs to or is granted to a template role, so tests
 *     of isolation (42501) see exactly the access `db init --prefix` gives.
 * The role list is the topology's (estate()), so roles added to the estate are mapped without a
 * change here. The template's databases are owned by the superuser and closed to connections, its
 * pg_cron jobs removed and its slots dropped: nothing runs in them, and step 3 never touches them.
 * The template uses the bundled queue engine (named, so a pgmq extension on the server changes
 * nothing); a file that tests the extension engine runs its own `db init --queue-engine extension`.
 */

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const BIN = join(ROOT, 'bin', 'run.js')
const NOISE = /^(PG|SINGULARITY_|DATABASE_URL$|GENESIS_|CENTRALCLOUD_|NEXUS_|SHARED_QUEUE_)/

export const TEMPLATE_QUEUE_ENGINE = 'bundled'

/** The built CLI against adminUrl, with a clean environment; rejects naming the command on failure or timeout. */
function cli(adminUrl: string, args: string[], timeoutMs: number): Promise<{stdout: string; stderr: string}> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !NOISE.test(k)) env[k] = v
  env.SINGULARITY_ADMIN_URL = adminUrl
  env.SINGULARITY_LOCAL_DIR = '/nonexistent/singularity-test-local'
  env.XDG_CONFIG_HOME = '/nonexistent/singularity-test-config'
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, ...args], {env, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024}, (error, stdout, stderr) => {
      if (error) reject(new Error(`\`singularity ${args.join(' ')}\` failed (${error.killed ? `killed after ${timeoutMs / 1000}s` : `exit ${error.code}`}):\n${stderr}`))
      else resolve({stdout, stderr})
    })
  })
}

async function withAdmin<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({connectionString: url})
  client.on('error', () => {})
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

function onDatabase(url: string, database: string): string {
  const u = new URL(url)
  u.pathname = `/${encodeURIComponent(database)}`
  return u.toString()
}

/** Makes the template estate (global set-up); returns its prefix. Throws, naming the step, when it cannot. */
export async function createEstateTemplate(adminUrl: string, passwordsFile: string): Promise<string> {
  const prefix = `t_tpl_${randomBytes(3).toString('hex')}_`
  await cli(adminUrl, ['db', 'init', '--prefix', prefix, '--queue-engine', TEMPLATE_QUEUE_ENGINE, '--passwords-file', passwordsFile], 300_000)
  const template = estate({prefix})
  await withAdmin(adminUrl, async (c) => {
    await c.query("SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE 'singularity:' || $1 || '%'", [prefix])
    for (const db of template.databases) {
      // both slots (CentralCloud's and the CDC bridge's): unread for the whole run, they would retain its WAL
      const slots = [db.cdcSlot, db.cdcBridgeSlot].filter((s): s is string => Boolean(s))
      if (slots.length > 0) await c.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = ANY($1)', [slots])
      await c.query(`ALTER DATABASE ${quoteIdent(db.name)} OWNER TO CURRENT_USER`)
      await c.query(`ALTER DATABASE ${quoteIdent(db.name)} WITH ALLOW_CONNECTIONS false`)
      // the template roles keep no right on the template databases (shared objects): so the copies'
      // DROP OWNED BY <template role> (which also revokes such rights) never updates these rows, which
      // files copying at the same time would otherwise do at once ("tuple concurrently updated")
      await c.query(`REVOKE ALL ON DATABASE ${quoteIdent(db.name)} FROM PUBLIC, ${template.roles.map((r) => quoteIdent(r.name)).join(', ')}`)
      await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [db.name])
    }
  })
  return prefix
}

/** Drops the template's databases and roles (global tear-down, on a server that outlives the run). */
export async function dropEstateTemplate(adminUrl: string, prefix: string): Promise<void> {
  const template = estate({prefix})
  await withAdmin(adminUrl, async (c) => {
    for (const db of template.databases) await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(db.name)} WITH (FORCE)`)
    for (const role of template.roles) await c.query(`DROP ROLE IF EXISTS ${quoteIdent(role.name)}`)
  })
}

/**
 * A test file's own provisioned estate under prefix, copied from the run's template (see above);
 * the same state as `db init --prefix <prefix> --queue-engine bundled`. Returns db init's output.
 */
export async function estateFromTemplate(adminUrl: string, templatePrefix: string, prefix: string, passwordsFile: string): Promise<{stdout: string; stderr: string}> {
  const template = estate({prefix: templatePrefix})
  const target = estate({prefix})
  // The five copies at once, one session each (CREATE DATABASE cannot share a transaction): the
  // server copies while it waits on disk, and the one-by-one version spent most of its time waiting.
  await Promise.all(
    target.databases.map((db, i) =>
      withAdmin(adminUrl, async (c) => {
        await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(db.name)} WITH (FORCE)`)
        await c.query(`CREATE DATABASE ${quoteIdent(db.name)} TEMPLATE ${quoteIdent(template.databases[i].name)}`)
      }),
    ),
  )
  const init = await cli(adminUrl, ['db', 'init', '--prefix', prefix, '--queue-engine', TEMPLATE_QUEUE_ENGINE, '--passwords-file', passwordsFile], 300_000)
  // One database after the other: DROP OWNED also revokes the role's rights on shared objects (every
  // database's CONNECT), which concurrent sessions would update at once ("tuple concurrently updated").
  for (const db of target.databases) {
    await withAdmin(onDatabase(adminUrl, db.name), async (c) => {
      for (const [i, role] of template.roles.entries()) {
        await c.query(`REASSIGN OWNED BY ${quoteIdent(role.name)} TO ${quoteIdent(target.roles[i].name)}`)
        await c.query(`DROP OWNED BY ${quoteIdent(role.name)}`)
      }
    })
  }
  return init
}
