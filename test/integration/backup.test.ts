import {spawn, type ChildProcess} from 'node:child_process'
import {chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {createHash} from 'node:crypto'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {runCli} from '../helpers/cli.js'
import {adminUrl, urlFor, withClient} from '../helpers/db.js'

/**
 * Backups against the real test server, on an estate of this file's own (prefix t_bk_) made by
 * `db init` (or by hand when db init is not usable), plus test data in schema bk_test of each
 * database. The estate's pg_cron jobs are paused so row counts stay still while we compare.
 */
const P = 't_bk_'
const KINDS = ['singularity', 'genesis', 'centralcloud', 'nexus', 'shared_queue'] as const
const DBS = KINDS.map((k) => `${P}${k}`)
const OWNER = `${P}genesis`
const root = mkdtempSync(join(tmpdir(), 'singularity-backup-test-'))
const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'run.js')

async function admin<T>(fn: (c: import('pg').Client) => Promise<T>): Promise<T> {
  return withClient(adminUrl(), fn)
}

/** Best effort: slots, cron jobs, databases and roles of the prefix. */
async function dropEstate(): Promise<void> {
  await admin(async (c) => {
    await c.query("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database LIKE 't\\_bk\\_%' AND NOT active").catch(() => {})
    await c.query("DELETE FROM cron.job WHERE jobname LIKE 'singularity:t\\_bk\\_%' OR database LIKE 't\\_bk\\_%'").catch(() => {})
    const {rows} = await c.query<{datname: string}>("SELECT datname FROM pg_database WHERE datname LIKE 't\\_bk\\_%'")
    for (const r of rows) await c.query(`DROP DATABASE IF EXISTS "${r.datname}" WITH (FORCE)`)
    const roles = await c.query<{rolname: string}>("SELECT rolname FROM pg_roles WHERE rolname LIKE 't\\_bk\\_%'")
    for (const r of roles.rows) {
      await c.query(`DROP OWNED BY "${r.rolname}"`).catch(() => {})
      await c.query(`DROP ROLE IF EXISTS "${r.rolname}"`).catch(() => {})
    }
  })
}

async function makeEstate(): Promise<void> {
  // the bundled engine: queue tables of the pgmq extension are extension members, which pg_dump leaves out
  const init = await runCli(['db', 'init', '--prefix', P, '--passwords-file', join(root, 'passwords.json'), '--queue-engine', 'bundled'], {timeoutMs: 180_000})
  if (init.exitCode !== 0) {
    process.stderr.write(`db init failed (${init.exitCode}); creating the ${P} databases by hand\n${init.stderr}\n`)
    await admin(async (c) => {
      if ((await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [OWNER])).rowCount === 0) await c.query(`CREATE ROLE "${OWNER}" NOLOGIN`)
      for (const db of DBS) {
        if ((await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [db])).rowCount === 0) await c.query(`CREATE DATABASE "${db}"${db === OWNER ? ` OWNER "${OWNER}"` : ''}`)
      }
    })
  }
  // pause the estate's scheduled jobs: they would change row counts while we compare
  await admin((c) => c.query("UPDATE cron.job SET active = false WHERE jobname LIKE 'singularity:t\\_bk\\_%' OR database LIKE 't\\_bk\\_%'")).catch(() => {})
  await withClient(urlFor(`${P}singularity`), async (c) => {
    await c.query(`CREATE EXTENSION IF NOT EXISTS pgcrypto; CREATE SCHEMA bk_test;
      CREATE TABLE bk_test.patterns (id bigserial PRIMARY KEY, pattern text NOT NULL, score float8, created_at timestamptz DEFAULT now());
      INSERT INTO bk_test.patterns (pattern, score) SELECT 'p' || g, g / 7.0 FROM generate_series(1, 2500) g;
      CREATE INDEX ON bk_test.patterns (score);
      CREATE TABLE bk_test.sessions (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), state jsonb);
      INSERT INTO bk_test.sessions (state) SELECT jsonb_build_object('n', g) FROM generate_series(1, 400) g;
      CREATE VIEW bk_test.top_patterns AS SELECT * FROM bk_test.patterns WHERE score > 100;`)
  })
  await withClient(urlFor(OWNER), async (c) => {
    await c.query(`CREATE SCHEMA bk_test AUTHORIZATION "${OWNER}"; SET ROLE "${OWNER}";
      CREATE TABLE bk_test.executions (id serial PRIMARY KEY, code text, ok boolean);
      INSERT INTO bk_test.executions (code, ok) SELECT md5(g::text), g % 3 = 0 FROM generate_series(1, 1200) g;`)
  })
  await withClient(urlFor(`${P}centralcloud`), (c) => c.query(`CREATE SCHEMA bk_test; CREATE TABLE bk_test.packages (name text PRIMARY KEY, version text); INSERT INTO bk_test.packages SELECT 'pkg' || g, '1.' || g FROM generate_series(1, 300) g;`))
  await withClient(urlFor(`${P}nexus`), (c) => c.query(`CREATE SCHEMA bk_test; CREATE TABLE bk_test.approvals (id int PRIMARY KEY, body jsonb); INSERT INTO bk_test.approvals SELECT g, jsonb_build_object('q', repeat('x', 50)) FROM generate_series(1, 700) g;`))
  await withClient(urlFor(`${P}shared_queue`), (c) =>
    c.query(`CREATE SCHEMA bk_test; CREATE TABLE bk_test.q_llm_requests (msg_id bigserial PRIMARY KEY, message jsonb, enqueued_at timestamptz DEFAULT now());
      INSERT INTO bk_test.q_llm_requests (message) SELECT jsonb_build_object('i', g) FROM generate_series(1, 150) g;`),
  )
}

/** Row count of every user table, keyed schema.table. */
async function rowCounts(db: string): Promise<Record<string, number>> {
  return withClient(urlFor(db), async (c) => {
    const {rows} = await c.query<{t: string}>("SELECT format('%I.%I', schemaname, tablename) AS t FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1")
    const out: Record<string, number> = {}
    for (const {t} of rows) out[t] = Number((await c.query<{n: string}>(`SELECT count(*) AS n FROM ${t}`)).rows[0].n)
    return out
  })
}

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex')
const adminPassword = () => decodeURIComponent(new URL(adminUrl()).password)

/** Like runCli, but returns the child so a test can kill it. */
function spawnCli(args: string[]): {child: ChildProcess; stderr: () => string; exited: Promise<{code: number | null; signal: NodeJS.Signals | null}>} {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(PG|SINGULARITY_|DATABASE_URL$|GENESIS_|CENTRALCLOUD_|NEXUS_|SHARED_QUEUE_)/.test(k)) env[k] = v
  env.SINGULARITY_LOCAL_DIR = '/nonexistent/singularity-test-local'
  env.XDG_CONFIG_HOME = '/nonexistent/singularity-test-config'
  env.SINGULARITY_ADMIN_URL = adminUrl()
  const child = spawn(process.execPath, [BIN, ...args], {env, stdio: ['ignore', 'pipe', 'pipe']})
  let stderr = ''
  child.stderr!.on('data', (d) => (stderr += d))
  child.stdout!.resume()
  const exited = new Promise<{code: number | null; signal: NodeJS.Signals | null}>((resolve) => child.on('exit', (code, signal) => resolve({code, signal})))
  return {child, stderr: () => stderr, exited}
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`timed out waiting for ${what}`)
}

/** A copy of a complete backup under another id and start time (for retention tests). */
function cloneBackup(dir: string, fromId: string, toId: string, startedAt: Date): void {
  cpSync(join(dir, fromId), join(dir, toId), {recursive: true})
  rmSync(join(dir, toId, 'verify.json'), {force: true})
  const manifestPath = join(dir, toId, 'manifest.json')
  const m = JSON.parse(readFileSync(manifestPath, 'utf8'))
  m.id = toId
  m.kind = toId.split('-')[1]
  m.startedAt = startedAt.toISOString()
  m.endedAt = new Date(startedAt.getTime() + 1000).toISOString()
  writeFileSync(manifestPath, JSON.stringify(m))
}

const stamp = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '')

describe('backup: take, list, verify, prune, restore', () => {
  beforeAll(async () => {
    await dropEstate()
    await makeEstate()
  }, 240_000)

  afterAll(async () => {
    await dropEstate()
    rmSync(root, {recursive: true, force: true})
  })

  it('backup → verify → restore into a new database gives equal row counts per table', async () => {
    const dir = join(root, 'main')
    const taken = await runCli(['backup', '--prefix', P, '--dir', dir, '--kind', 'hourly', '--json'])
    expect(taken.stderr).not.toMatch(/^error/m)
    expect(taken.exitCode).toBe(0)
    const result = taken.json()
    expect(result.id).toMatch(/^\d{8}T\d{6}Z-hourly$/)
    expect(result.databases.map((d: {name: string}) => d.name)).toEqual(DBS)
    // progress per database on stderr, nothing secret anywhere
    for (const db of DBS) expect(taken.stderr).toContain(`${db}: dumping`)
    expect(taken.stdout + taken.stderr).not.toContain(adminPassword())
    expect(taken.stdout + taken.stderr).not.toMatch(/SCRAM-SHA-256\$/)

    const path = join(dir, result.id)
    expect(readdirSync(dir)).toEqual([result.id])
    const manifest = JSON.parse(readFileSync(join(path, 'manifest.json'), 'utf8'))
    expect(manifest).toMatchObject({id: result.id, kind: 'hourly', status: 'complete', server: {versionNum: expect.any(Number)}, tools: {pgDump: expect.any(String)}})
    expect(manifest.writer).toBeUndefined()
    for (const d of manifest.databases) expect(sha256(join(path, d.file))).toBe(d.sha256)
    expect(manifest.databases.find((d: {name: string}) => d.name === OWNER).owner).toBe(OWNER)
    // globals hold role password hashes: private file
    expect(statSync(join(path, 'globals.sql')).mode & 0o777).toBe(0o600)
    expect(readFileSync(join(path, 'globals.sql'), 'utf8')).toContain(`CREATE ROLE ${OWNER}`)

    const verified = await runCli(['backup', 'verify', result.id, '--dir', dir, '--json'])
    expect(verified.exitCode).toBe(0)
    expect(verified.json()).toMatchObject({id: result.id, ok: true})
    expect(verified.json().files).toHaveLength(6)

    const listed = await runCli(['backup', 'list', '--dir', dir, '--json'])
    expect(listed.exitCode).toBe(0)
    expect(listed.json().backups).toEqual([expect.objectContaining({id: result.id, kind: 'hourly', status: 'complete', verified: 'yes', size: result.size})])

    // restore genesis into a new database (default name), and singularity under --as
    const restored = await runCli(['backup', 'restore', result.id, '--db', 'genesis', '--dir', dir, '--prefix', P, '--json'])
    expect(restored.stderr).not.toMatch(/^error/m)
    expect(restored.exitCode).toBe(0)
    const r = restored.json()
    expect(r).toMatchObject({source: OWNER, replaced: false, owner: OWNER, ownerIsOriginal: true})
    expect(r.database).toMatch(/^t_bk_genesis_restored_\d{8}_\d{6}$/)
    expect(await rowCounts(r.database)).toEqual(await rowCounts(OWNER))
    const owner = await admin((c) => c.query('SELECT pg_get_userbyid(datdba) AS o FROM pg_database WHERE datname = $1', [r.database]))
    expect(owner.rows[0].o).toBe(OWNER)

    const copy = await runCli(['backup', 'restore', 'latest', '--db', `${P}singularity`, '--as', `${P}singularity_copy`, '--dir', dir, '--json'])
    expect(copy.exitCode).toBe(0)
    const counts = await rowCounts(`${P}singularity_copy`)
    expect(counts).toEqual(await rowCounts(`${P}singularity`))
    expect(counts['bk_test.patterns']).toBe(2500)
    for (const db of [`${P}centralcloud`, `${P}nexus`, `${P}shared_queue`]) {
      const again = await runCli(['backup', 'restore', result.id, '--db', db, '--as', `${db}_copy`, '--dir', dir])
      expect(again.exitCode).toBe(0)
      expect(await rowCounts(`${db}_copy`)).toEqual(await rowCounts(db))
    }
  })

  it('a flipped byte in an archive fails verify (exit 1); an unknown id exits 4', async () => {
    const dir = join(root, 'flip')
    const taken = await runCli(['backup', '--prefix', P, '--db', 'singularity', '--dir', dir, '--json'])
    expect(taken.exitCode).toBe(0)
    const {id} = taken.json()
    const file = join(dir, id, `${P}singularity.dump`)
    const bytes = readFileSync(file)
    bytes[Math.floor(bytes.length / 2)] ^= 0x01
    chmodSync(file, 0o600)
    writeFileSync(file, bytes)

    const verified = await runCli(['backup', 'verify', id, '--dir', dir, '--json'])
    expect(verified.exitCode).toBe(1)
    const body = verified.json()
    expect(body.ok).toBe(false)
    expect(body.files.find((f: {file: string}) => f.file === `${P}singularity.dump`)).toMatchObject({ok: false, sha256: 'mismatch'})
    expect((await runCli(['backup', 'list', '--dir', dir, '--json'])).json().backups[0].verified).toBe('failed')

    const human = await runCli(['backup', 'verify', id, '--dir', dir])
    expect(human.exitCode).toBe(1)
    expect(human.stdout).toContain('FAILED')

    // a corrupt backup is not restored
    const refused = await runCli(['backup', 'restore', id, '--dir', dir, '--as', `${P}never`])
    expect(refused.exitCode).toBe(1)
    expect(await admin((c) => c.query('SELECT 1 FROM pg_database WHERE datname = $1', [`${P}never`]))).toMatchObject({rowCount: 0})

    const missing = await runCli(['backup', 'verify', '20200101T000000Z-hourly', '--dir', dir, '--json'])
    expect(missing.exitCode).toBe(4)
    expect(missing.json().error.exitCode).toBe(4)
  })

  it('a backup killed mid-dump is never listed as complete, and prune removes what it left', async () => {
    const dir = join(root, 'killed')
    // hold a lock so pg_dump of genesis waits: the backup is certainly in the middle when killed
    const locker = await import('../helpers/db.js').then((m) => m.connect(urlFor(OWNER)))
    try {
      await locker.query('BEGIN')
      await locker.query('LOCK TABLE bk_test.executions IN ACCESS EXCLUSIVE MODE')
      const run = spawnCli(['backup', '--prefix', P, '--db', 'genesis', '--dir', dir, '--kind', 'hourly'])
      await until('pg_dump waiting on the lock', async () =>
        admin(async (c) => (await c.query("SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND application_name = 'singularity-backup' AND wait_event_type = 'Lock'", [OWNER])).rowCount! > 0),
      )
      expect(run.stderr()).toContain(`${OWNER}: dumping`)
      run.child.kill('SIGKILL')
      expect((await run.exited).signal).toBe('SIGKILL')
    } finally {
      await locker.query('ROLLBACK').catch(() => {})
      await locker.end()
    }
    // the orphaned pg_dump finishes its file, but nothing renames the partial directory
    await until('the orphaned pg_dump to finish', async () =>
      admin(async (c) => (await c.query("SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND application_name = 'singularity-backup'", [OWNER])).rowCount === 0),
    )
    const listed = (await runCli(['backup', 'list', '--dir', dir, '--json'])).json().backups
    expect(listed).toHaveLength(1)
    expect(listed[0]).toMatchObject({kind: 'hourly', status: 'incomplete'})
    expect((await runCli(['backup', 'list', '--dir', dir, '--complete', '--json'])).json().backups).toEqual([])
    expect((await runCli(['backup', 'verify', 'latest', '--dir', dir])).exitCode).toBe(4)
    const verifyPartial = await runCli(['backup', 'verify', listed[0].id, '--dir', dir])
    expect(verifyPartial.exitCode).toBe(1)
    expect(verifyPartial.stderr).toContain('incomplete')

    // the rule itself: even a partial whose manifest already says complete is not a backup until renamed
    const ok = await runCli(['backup', '--prefix', P, '--db', 'nexus', '--dir', dir, '--json'])
    expect(ok.exitCode).toBe(0)
    const fakeId = `${stamp(new Date(Date.now() + 3_600_000))}-hourly`
    cpSync(join(dir, ok.json().id), join(dir, `.${fakeId}.partial`), {recursive: true})
    const m = JSON.parse(readFileSync(join(dir, `.${fakeId}.partial`, 'manifest.json'), 'utf8'))
    writeFileSync(join(dir, `.${fakeId}.partial`, 'manifest.json'), JSON.stringify({...m, id: fakeId}))
    const statuses = (await runCli(['backup', 'list', '--dir', dir, '--json'])).json().backups.map((b: {id: string; status: string}) => [b.id, b.status])
    expect(statuses).toContainEqual([fakeId, 'incomplete'])
    expect(statuses.filter(([, s]: string[]) => s === 'complete')).toEqual([[ok.json().id, 'complete']])

    const pruned = await runCli(['backup', 'prune', '--dir', dir, '--confirm', 'prune', '--json'])
    expect(pruned.exitCode).toBe(0)
    expect(pruned.json().removedLeftovers).toHaveLength(2)
    expect(pruned.json().deleted).toEqual([])
    expect(readdirSync(dir)).toEqual([ok.json().id])
  })

  it('a backup that fails half-way keeps nothing and is never listed', async () => {
    const {findServerBinaries} = await import('../../src/lib/local-cluster/binaries.js')
    const real = findServerBinaries().binDir
    const bin = join(root, 'failing-bin')
    mkdirSync(bin, {recursive: true})
    // pg_dump fails for nexus only; the other tools are the real ones
    writeFileSync(join(bin, 'pg_dump'), `#!/bin/sh\nif [ "$PGDATABASE" = "${P}nexus" ]; then echo "pg_dump: error: disk on fire" >&2; exit 1; fi\nexec ${real}/pg_dump "$@"\n`, {mode: 0o755})
    for (const tool of ['pg_dumpall', 'pg_restore']) writeFileSync(join(bin, tool), `#!/bin/sh\nexec ${real}/${tool} "$@"\n`, {mode: 0o755})
    const dir = join(root, 'failed')
    const result = await runCli(['backup', '--prefix', P, '--dir', dir, '--json'], {env: {SINGULARITY_PG_BIN: bin}})
    expect(result.exitCode).toBe(1)
    expect(result.json().error.message).toBe(`pg_dump of ${P}nexus failed: disk on fire`)
    expect(readdirSync(dir)).toEqual([])
    expect((await runCli(['backup', 'list', '--dir', dir, '--json'])).json().backups).toEqual([])
  })

  it('prune keeps exactly the retention and never the newest verified backup', async () => {
    const dir = join(root, 'prune')
    const taken = await runCli(['backup', '--prefix', P, '--db', 'nexus', '--dir', dir, '--kind', 'hourly', '--verify', '--json'])
    expect(taken.exitCode).toBe(0)
    expect(taken.json().verified).toBe('yes')
    const verifiedId: string = taken.json().id
    const t0 = Date.parse(taken.json().startedAt)
    // 8 newer hourly (unverified) and 9 daily (unverified): the only verified backup is the oldest hourly
    const hourly = Array.from({length: 8}, (_, i) => new Date(t0 + (i + 1) * 3_600_000))
    const daily = Array.from({length: 9}, (_, i) => new Date(t0 - (i + 1) * 86_400_000))
    for (const at of hourly) cloneBackup(dir, verifiedId, `${stamp(at)}-hourly`, at)
    for (const at of daily) cloneBackup(dir, verifiedId, `${stamp(at)}-daily`, at)
    const keepHourly = hourly.slice(-6).map((at) => `${stamp(at)}-hourly`)
    const dropHourly = hourly.slice(0, 2).map((at) => `${stamp(at)}-hourly`)
    const keepDaily = daily.slice(0, 7).map((at) => `${stamp(at)}-daily`)
    const dropDaily = daily.slice(7).map((at) => `${stamp(at)}-daily`)
    const before = readdirSync(dir).sort()

    const dry = await runCli(['backup', 'prune', '--dir', dir, '--dry-run', '--json'])
    expect(dry.exitCode).toBe(0)
    expect([...dry.json().deleteIds].sort()).toEqual([...dropHourly, ...dropDaily].sort())
    expect(dry.json().backups.find((b: {id: string}) => b.id === verifiedId)).toMatchObject({action: 'keep', reason: expect.stringContaining('newest verified')})
    expect(readdirSync(dir).sort()).toEqual(before)

    const human = await runCli(['backup', 'prune', '--dir', dir, '--dry-run'])
    expect(human.stdout).toContain('would delete 4 backups')

    const refused = await runCli(['backup', 'prune', '--dir', dir])
    expect(refused.exitCode).toBe(2)
    expect(refused.stderr).toContain('--confirm prune')
    expect(readdirSync(dir).sort()).toEqual(before)

    const pruned = await runCli(['backup', 'prune', '--dir', dir, '--confirm', 'prune', '--json'])
    expect(pruned.exitCode).toBe(0)
    expect([...pruned.json().deleted].sort()).toEqual([...dropHourly, ...dropDaily].sort())
    expect(readdirSync(dir).sort()).toEqual([verifiedId, ...keepHourly, ...keepDaily].sort())

    const again = await runCli(['backup', 'prune', '--dir', dir, '--confirm', 'prune', '--json'])
    expect(again.json().deleted).toEqual([])

    // keep nothing: the newest verified backup still stays
    const zero = await runCli(['backup', 'prune', '--dir', dir, '--keep-hourly', '0', '--keep-daily', '0', '--confirm', 'prune', '--json'])
    expect(zero.exitCode).toBe(0)
    expect(readdirSync(dir)).toEqual([verifiedId])
  })

  it('restore refuses to overwrite an existing database without --confirm <name>', async () => {
    const dir = join(root, 'overwrite')
    const taken = await runCli(['backup', '--prefix', P, '--db', 'centralcloud', '--dir', dir, '--json'])
    expect(taken.exitCode).toBe(0)
    const {id} = taken.json()
    const db = `${P}centralcloud`
    await withClient(urlFor(db), (c) => c.query("INSERT INTO bk_test.packages VALUES ('after-backup', '9')"))

    const refused = await runCli(['backup', 'restore', id, '--as', db, '--dir', dir])
    expect(refused.exitCode).toBe(2)
    expect(refused.stderr).toMatch(/refusing to replace the existing database t_bk_centralcloud/)
    expect(refused.stderr).toContain(`--confirm ${db}`)
    const wrong = await runCli(['backup', 'restore', id, '--as', db, '--confirm', 'yes', '--dir', dir])
    expect(wrong.exitCode).toBe(2)
    expect((await rowCounts(db))['bk_test.packages']).toBe(301)
    const leftovers = await admin((c) => c.query("SELECT datname FROM pg_database WHERE datname LIKE 't\\_bk\\_centralcloud\\_restoring\\_%'"))
    expect(leftovers.rows).toEqual([])

    const replaced = await runCli(['backup', 'restore', id, '--as', db, '--confirm', db, '--dir', dir, '--json'])
    expect(replaced.exitCode).toBe(0)
    expect(replaced.json()).toMatchObject({database: db, replaced: true})
    expect((await rowCounts(db))['bk_test.packages']).toBe(300)
    const after = await admin((c) => c.query("SELECT datname FROM pg_database WHERE datname LIKE 't\\_bk\\_centralcloud\\_restoring\\_%'"))
    expect(after.rows).toEqual([])
  })

  it('pg_dump older than the server: exit 1 with the fix, nothing written', async () => {
    const fake = join(root, 'old-bin')
    mkdirSync(fake, {recursive: true})
    for (const tool of ['pg_dump', 'pg_dumpall', 'pg_restore']) {
      writeFileSync(join(fake, tool), `#!/bin/sh\necho "${tool} (PostgreSQL) 9.6.24"\n`, {mode: 0o755})
    }
    const dir = join(root, 'never')
    const result = await runCli(['backup', '--prefix', P, '--dir', dir], {env: {SINGULARITY_PG_BIN: fake}})
    expect(result.exitCode).toBe(1)
    expect(result.stderr).toMatch(/pg_dump 9\.6\.24 .* is older than the server/)
    expect(result.stderr).toMatch(/hint: install the matching client: apt-get install -y postgresql-client-\d+/)
    expect(existsSync(dir)).toBe(false)
  })

  it('unknown --db exits 2 before anything is written; every command has --help examples', async () => {
    const dir = join(root, 'bad')
    const bad = await runCli(['backup', '--prefix', P, '--db', 'nope', '--dir', dir])
    expect(bad.exitCode).toBe(2)
    expect(existsSync(dir)).toBe(false)
    for (const cmd of [['backup'], ['backup', 'list'], ['backup', 'verify'], ['backup', 'prune'], ['backup', 'restore']]) {
      const help = await runCli([...cmd, '--help'])
      expect(help.exitCode).toBe(0)
      expect(help.stdout).toContain('EXAMPLES')
    }
  })
})
