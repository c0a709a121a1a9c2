import {spawn, spawnSync, type ChildProcess} from 'node:child_process'
import {chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {createHash} from 'node:crypto'
import {hostname, tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {runCli, type CliOptions} from '../helpers/cli.js'
import {adminUrl, provisionedEstate, urlFor, withClient} from '../helpers/db.js'
import {TEMPLATE_QUEUE_ENGINE} from '../helpers/estate-template.js'

/**
 * Backups against the real test server, on an estate of this file's own (prefix t_bk_) copied from
 * the run's template estate and completed by `db init` (a failure fails the suite), plus test data in schema bk_test of each
 * database. The estate's pg_cron jobs are paused so row counts stay still while we compare.
 */
const P = 't_bk_'
const KINDS = ['singularity', 'genesis', 'centralcloud', 'nexus', 'shared_queue'] as const
const DBS = KINDS.map((k) => `${P}${k}`)
const OWNER = `${P}genesis`
const root = mkdtempSync(join(tmpdir(), 'singularity-backup-test-'))
const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'run.js')
/** Backups are encrypted by default; their key file lives outside every backup directory. */
const KEY_FILE = join(root, 'keys', 'backup-keys.json')

/** The CLI with this file's key file (SINGULARITY_BACKUP_KEY_FILE); options.env may override it. */
function cli(args: string[], options: CliOptions = {}) {
  return runCli(args, {...options, env: {SINGULARITY_BACKUP_KEY_FILE: KEY_FILE, ...options.env}})
}

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
  // a copy of the run's template estate completed by `db init` (bundled engine, named: this file's own
  // queue tests cover both, see below); throws, naming the step, when it fails
  await provisionedEstate(P, join(root, 'passwords.json'))
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

/** A backup file decrypted with this file's key file. */
async function plaintext(path: string): Promise<string> {
  const {openPlain} = await import('../../src/lib/backup/plain.js')
  const {keyLookup} = await import('../../src/lib/backup/keys.js')
  const chunks: Buffer[] = []
  for await (const chunk of openPlain(path, keyLookup(KEY_FILE))) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
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
  env.SINGULARITY_BACKUP_KEY_FILE = KEY_FILE
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

// generous limits for a loaded shared machine (nothing here asserts speed)
describe('backup: take, list, verify, prune, restore', {timeout: 900_000}, () => {
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
    const taken = await cli(['backup', '--prefix', P, '--dir', dir, '--kind', 'hourly', '--json'])
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
    // encrypted: the roles are there only for the key's holder
    expect(readFileSync(join(path, 'globals.sql')).includes(`CREATE ROLE ${OWNER}`)).toBe(false)
    expect(await plaintext(join(path, 'globals.sql'))).toContain(`CREATE ROLE ${OWNER}`)

    const verified = await cli(['backup', 'verify', result.id, '--dir', dir, '--json'])
    expect(verified.exitCode).toBe(0)
    expect(verified.json()).toMatchObject({id: result.id, ok: true})
    expect(verified.json().files).toHaveLength(6)

    const listed = await cli(['backup', 'list', '--dir', dir, '--json'])
    expect(listed.exitCode).toBe(0)
    expect(listed.json().backups).toEqual([expect.objectContaining({id: result.id, kind: 'hourly', status: 'complete', verified: 'yes', size: result.size})])

    // restore genesis into a new database (default name), and singularity under --as
    const restored = await cli(['backup', 'restore', result.id, '--db', 'genesis', '--dir', dir, '--prefix', P, '--json'])
    expect(restored.stderr).not.toMatch(/^error/m)
    expect(restored.exitCode).toBe(0)
    const r = restored.json()
    expect(r).toMatchObject({source: OWNER, replaced: false, owner: OWNER, ownerIsOriginal: true})
    // encrypted (the default): one pg_restore job through a pipe, said on stderr and in --json (--jobs defaults to 2)
    expect(r).toMatchObject({jobs: 1, singleStream: expect.stringContaining('the archive is encrypted: pg_restore reads it decrypted from a pipe with 1 job, not --jobs 2')})
    expect(restored.stderr).toContain('pg_restore reads it decrypted from a pipe with 1 job')
    expect(r.database).toMatch(/^t_bk_genesis_restored_\d{8}_\d{6}$/)
    expect(await rowCounts(r.database)).toEqual(await rowCounts(OWNER))
    const owner = await admin((c) => c.query('SELECT pg_get_userbyid(datdba) AS o FROM pg_database WHERE datname = $1', [r.database]))
    expect(owner.rows[0].o).toBe(OWNER)

    const copy = await cli(['backup', 'restore', 'latest', '--db', `${P}singularity`, '--as', `${P}singularity_copy`, '--dir', dir, '--json'])
    expect(copy.exitCode).toBe(0)
    const counts = await rowCounts(`${P}singularity_copy`)
    expect(counts).toEqual(await rowCounts(`${P}singularity`))
    expect(counts['bk_test.patterns']).toBe(2500)
    for (const db of [`${P}centralcloud`, `${P}nexus`, `${P}shared_queue`]) {
      const again = await cli(['backup', 'restore', result.id, '--db', db, '--as', `${db}_copy`, '--dir', dir])
      expect(again.exitCode).toBe(0)
      expect(await rowCounts(`${db}_copy`)).toEqual(await rowCounts(db))
    }
  })

  it('a flipped byte in an archive fails verify (exit 1); an unknown id exits 4', async () => {
    const dir = join(root, 'flip')
    const taken = await cli(['backup', '--prefix', P, '--db', 'singularity', '--dir', dir, '--json'])
    expect(taken.exitCode).toBe(0)
    const {id} = taken.json()
    const file = join(dir, id, `${P}singularity.dump`)
    const bytes = readFileSync(file)
    bytes[Math.floor(bytes.length / 2)] ^= 0x01
    chmodSync(file, 0o600)
    writeFileSync(file, bytes)

    const verified = await cli(['backup', 'verify', id, '--dir', dir, '--json'])
    expect(verified.exitCode).toBe(1)
    const body = verified.json()
    expect(body.ok).toBe(false)
    expect(body.files.find((f: {file: string}) => f.file === `${P}singularity.dump`)).toMatchObject({ok: false, sha256: 'mismatch'})
    expect((await cli(['backup', 'list', '--dir', dir, '--json'])).json().backups[0].verified).toBe('failed')

    const human = await cli(['backup', 'verify', id, '--dir', dir])
    expect(human.exitCode).toBe(1)
    expect(human.stdout).toContain('FAILED')

    // a corrupt backup is not restored
    const refused = await cli(['backup', 'restore', id, '--dir', dir, '--as', `${P}never`])
    expect(refused.exitCode).toBe(1)
    expect(await admin((c) => c.query('SELECT 1 FROM pg_database WHERE datname = $1', [`${P}never`]))).toMatchObject({rowCount: 0})

    const missing = await cli(['backup', 'verify', '20200101T000000Z-hourly', '--dir', dir, '--json'])
    expect(missing.exitCode).toBe(4)
    expect(missing.json().error.exitCode).toBe(4)
  })

  it('an archive that does not restore what its manifest recorded fails verify --restore-test, naming database and table', async () => {
    const dir = join(root, 'broken')
    const db = `${P}singularity`
    // a restore test killed outright left its scratch database behind: the next one drops it
    const leftover = 'singularity_rt_20200101000000_0badc0de'
    await admin(async (c) => {
      await c.query(`CREATE DATABASE ${leftover}`)
      await c.query(`COMMENT ON DATABASE ${leftover} IS '${JSON.stringify({by: 'test', host: hostname(), pid: 2 ** 22 + 1})}'`)
    })
    const taken = await cli(['backup', '--prefix', P, '--db', 'singularity', '--dir', dir, '--kind', 'daily', '--verify', '--no-encrypt', '--json'], {timeoutMs: 300_000})
    expect(taken.stderr).not.toMatch(/^error/m)
    expect(taken.exitCode).toBe(0)
    // daily + --verify: restore-tested by default
    expect(taken.json()).toMatchObject({verified: 'yes', verification: {ok: true, restoreTested: true}})
    expect(taken.stderr).toContain(`dropped ${leftover}`)
    expect((await admin((c) => c.query("SELECT datname FROM pg_database WHERE datname LIKE 'singularity\\_rt\\_%'"))).rows).toEqual([])
    const {id} = taken.json()

    // the same archive without one table's rows, its checksum updated: only a restore shows it
    const {findServerBinaries} = await import('../../src/lib/local-cluster/binaries.js')
    const file = join(dir, id, `${db}.dump`)
    const url = new URL(urlFor(db))
    const dumped = spawnSync(join(findServerBinaries().binDir, 'pg_dump'), ['--format=custom', '--exclude-table-data=bk_test.sessions', '-f', `${file}.broken`, '-d', db], {
      env: {...process.env, PGHOST: url.hostname, PGPORT: url.port, PGUSER: decodeURIComponent(url.username), PGPASSWORD: decodeURIComponent(url.password)},
    })
    expect(String(dumped.stderr)).toBe('')
    renameSync(`${file}.broken`, file)
    const manifestPath = join(dir, id, 'manifest.json')
    const m = JSON.parse(readFileSync(manifestPath, 'utf8'))
    Object.assign(m.databases[0], {sha256: sha256(file), size: statSync(file).size})
    writeFileSync(manifestPath, JSON.stringify(m))

    const listOnly = await cli(['backup', 'verify', id, '--dir', dir, '--json'])
    expect(listOnly.exitCode).toBe(0)
    const verified = await cli(['backup', 'verify', id, '--dir', dir, '--restore-test', '--json'], {timeoutMs: 300_000})
    expect(verified.exitCode).toBe(1)
    const f = verified.json().files.find((x: {file: string}) => x.file === `${db}.dump`)
    expect(f).toMatchObject({ok: false, sha256: 'ok', archive: 'ok', restore: {ok: false}})
    expect(f.problem).toBe(`database ${db} table bk_test.sessions: 400 rows at dump time, 0 restored`)
    const human = await cli(['backup', 'verify', id, '--dir', dir, '--restore-test'], {timeoutMs: 300_000})
    expect(human.exitCode).toBe(1)
    expect(human.stdout).toContain(`FAILED  ${db}.dump  database ${db} table bk_test.sessions: 400 rows at dump time, 0 restored`)
    expect((await admin((c) => c.query("SELECT datname FROM pg_database WHERE datname LIKE 'singularity\\_rt\\_%'"))).rows).toEqual([])
  }, 900_000)

  it('a restored copy keeps the source database\'s isolation: other services get 42501 on CONNECT, the source roles what they have on the source', async () => {
    const dir = join(root, 'isolation')
    const taken = await cli(['backup', '--prefix', P, '--db', 'genesis', '--db', 'shared_queue', '--dir', dir, '--json'], {timeoutMs: 180_000})
    expect(taken.exitCode).toBe(0)
    const {id} = taken.json()
    const passwords = JSON.parse(readFileSync(join(root, 'passwords.json'), 'utf8')) as Record<string, string>
    const roles = Object.keys(passwords).filter((r) => r.startsWith(P)).sort()
    // every login role of the estate (the topology's, read from db init's passwords file)
    expect(roles).toEqual(expect.arrayContaining([`${P}centralcloud`, `${P}centralcloud_analytics`, `${P}genesis`, `${P}nexus`, `${P}singularity`]))
    const connectAs = async (role: string, db: string) => {
      const url = new URL(urlFor(db))
      url.username = role
      url.password = passwords[role]
      try {
        await withClient(url.toString(), (c) => c.query('SELECT 1'))
        return 'ok'
      } catch (error) {
        return (error as {code?: string}).code ?? String(error)
      }
    }
    for (const [db, copy, extra] of [
      [OWNER, `${OWNER}_check`, []],
      [`${P}shared_queue`, `${P}shared_queue_check`, ['--no-owner']],
    ] as const) {
      const restored = await cli(['backup', 'restore', id, '--db', db, '--as', copy, '--dir', dir, ...extra, '--json'], {timeoutMs: 180_000})
      expect(restored.stderr).not.toMatch(/^error/m)
      expect(restored.exitCode).toBe(0)
      expect(restored.json().access.some((g: {grantee: string}) => g.grantee === 'PUBLIC')).toBe(false)
      const matrix = await admin(async (c) =>
        (await c.query<{role: string; source: boolean; copy: boolean; public_copy: boolean}>(
          `SELECT r AS role, has_database_privilege(r, $1, 'CONNECT') AS source, has_database_privilege(r, $2, 'CONNECT') AS copy,
                  EXISTS (SELECT 1 FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a WHERE d.datname = $2 AND a.grantee = 0) AS public_copy
             FROM unnest($3::text[]) r ORDER BY r`, [db, copy, roles])).rows,
      )
      for (const row of matrix) expect(row.copy, `${row.role} CONNECT on ${copy}`).toBe(row.source)
      expect(matrix.every((r) => !r.public_copy)).toBe(true)
      for (const role of roles) {
        const onSource = await connectAs(role, db)
        const onCopy = await connectAs(role, copy)
        expect(onCopy, `${role} connecting to ${copy}`).toBe(onSource)
        expect(['ok', '42501']).toContain(onCopy)
      }
      const owner = await admin((c) => c.query('SELECT pg_get_userbyid(datdba) AS o FROM pg_database WHERE datname = $1', [copy]))
      expect(owner.rows[0].o).toBe(extra.length === 0 ? OWNER : new URL(adminUrl()).username)
    }
    // genesis is its service's alone; shared_queue is open to the services (seed 003)
    expect(await connectAs(`${P}nexus`, `${OWNER}_check`)).toBe('42501')
    expect(await connectAs(`${P}genesis`, `${OWNER}_check`)).toBe('ok')
    expect(await connectAs(`${P}nexus`, `${P}shared_queue_check`)).toBe('ok')

    // the copies are on the registry, with their ACL; the estate's own databases are not
    const {listCopies} = await import('../../src/lib/backup/copies.js')
    const copies = await admin((c) => listCopies(c))
    expect(copies.map((x) => [x.database, x.source, x.backup, x.openToPublic])).toEqual(
      expect.arrayContaining([
        [`${OWNER}_check`, OWNER, id, false],
        [`${P}shared_queue_check`, `${P}shared_queue`, id, false],
      ]),
    )
    expect(copies.map((x) => x.database)).not.toContain(OWNER)

    // a copy opened beyond its source's access is security drift: db plan lists the revoke (exit 3),
    // db status says drifted, db init closes it again
    const init = ['--prefix', P, '--queue-engine', 'bundled', '--passwords-file', join(root, 'passwords.json')]
    await admin((c) => c.query(`GRANT CONNECT ON DATABASE "${OWNER}_check" TO PUBLIC`))
    expect(await connectAs(`${P}nexus`, `${OWNER}_check`)).toBe('ok')
    const planned = await cli(['db', 'plan', ...init, '--json'], {timeoutMs: 180_000})
    expect(planned.exitCode).toBe(3)
    const onCopy = planned.json().actions.filter((a: {database: string}) => a.database === `${OWNER}_check`)
    expect(onCopy).toEqual([expect.objectContaining({area: 'databases', destructive: true, reason: 'extra', sql: [`REVOKE CONNECT ON DATABASE "${OWNER}_check" FROM PUBLIC`]})])
    expect(planned.json().copies.find((x: {database: string}) => x.database === `${OWNER}_check`)).toMatchObject({source: OWNER, openToPublic: true})
    const status = await cli(['db', 'status', '--prefix', P, '--json'], {timeoutMs: 180_000})
    expect(status.exitCode).toBe(3)
    expect(status.json().verdict).toBe('drifted')
    const fixed = await cli(['db', 'init', ...init, '--json'], {timeoutMs: 180_000})
    expect(fixed.exitCode).toBe(0)
    const after = await cli(['db', 'plan', ...init, '--json'], {timeoutMs: 180_000})
    expect(after.json().actions.filter((a: {database: string}) => a.database === `${OWNER}_check`)).toEqual([])
    expect(await connectAs(`${P}nexus`, `${OWNER}_check`)).toBe('42501')
    expect(await connectAs(`${P}genesis`, `${OWNER}_check`)).toBe('ok')
  }, 900_000)

  it('encrypted backups: no plaintext in any file, tampering and truncation fail verify naming the file, keys are enforced, rotation keeps old backups readable', async () => {
    const dir = join(root, 'encrypted')
    const db = `${P}singularity`
    const planted = `planted-row-${Date.now()}-visible-only-to-the-key-holder`
    await withClient(urlFor(db), (c) => c.query("INSERT INTO bk_test.sessions (state) VALUES (jsonb_build_object('secret', $1::text))", [planted]))
    const verifier = (await admin((c) => c.query<{p: string}>('SELECT rolpassword AS p FROM pg_authid WHERE rolname = $1', [OWNER]))).rows[0].p
    expect(verifier).toMatch(/^SCRAM-SHA-256\$/)
    const sessionKey = await withClient(urlFor(db), async (c) =>
      (await c.query<{k: string}>('SELECT encode(key, $$hex$$) AS k FROM singularity_private.encryption_keys WHERE retired_at IS NULL LIMIT 1')).rows[0]?.k,
    )

    const taken = await cli(['backup', '--prefix', P, '--db', 'singularity', '--db', 'genesis', '--dir', dir, '--json'], {timeoutMs: 180_000})
    expect(taken.stderr).not.toMatch(/^error/m)
    expect(taken.exitCode).toBe(0)
    const first = taken.json().id as string
    const keys = JSON.parse(readFileSync(KEY_FILE, 'utf8'))
    expect(statSync(KEY_FILE).mode & 0o777).toBe(0o600)
    expect(KEY_FILE.startsWith(dir)).toBe(false)
    const manifest = JSON.parse(readFileSync(join(dir, first, 'manifest.json'), 'utf8'))
    expect(manifest).toMatchObject({encrypted: true, encryption: {cipher: 'aes-256-gcm-chunked-v1', keyId: keys.current}})
    const keyBytes = Buffer.from(keys.keys[keys.current], 'base64')
    const secrets = [verifier, planted, keys.keys[keys.current], keyBytes.toString('hex'), ...(sessionKey ? [sessionKey] : [])]
    const files = readdirSync(join(dir, first)).filter((f) => f !== 'manifest.json')
    expect(files.sort()).toEqual(['globals.sql', `${OWNER}.dump`, `${db}.dump`].sort())
    for (const f of files) {
      const bytes = readFileSync(join(dir, first, f))
      for (const secret of secrets) expect(bytes.includes(secret), `${f} holds a planted plaintext`).toBe(false)
      expect(bytes.includes(keyBytes), `${f} holds the key`).toBe(false)
    }
    // the probe works: the same verifier is there in a backup taken with --no-encrypt
    const clear = await cli(['backup', '--prefix', P, '--db', 'genesis', '--dir', join(root, 'clear'), '--no-encrypt', '--json'])
    expect(clear.exitCode).toBe(0)
    expect(JSON.parse(readFileSync(join(root, 'clear', clear.json().id, 'manifest.json'), 'utf8'))).toMatchObject({encrypted: false, encryption: null})
    expect(readFileSync(join(root, 'clear', clear.json().id, 'globals.sql')).includes(verifier)).toBe(true)
    // an unencrypted archive restores with --jobs as asked
    const clearCopy = await cli(['backup', 'restore', clear.json().id, '--db', 'genesis', '--as', `${P}genesis_clear`, '--dir', join(root, 'clear'), '--jobs', '2', '--json'], {timeoutMs: 180_000})
    expect(clearCopy.exitCode, clearCopy.stderr).toBe(0)
    expect(clearCopy.json()).toMatchObject({jobs: 2, singleStream: null})
    expect(clearCopy.stderr).not.toContain('1 job')
    // doctor: warns while the newest backup is not encrypted, ok for an encrypted one
    const backupRow = async (backupDir: string) =>
      ((await cli(['doctor', '--prefix', P, '--json'], {env: {SINGULARITY_BACKUP_DIR: backupDir}, timeoutMs: 180_000})).json().checks as {check: string; status: string; detail: string}[]).find((c) => c.check === 'backup encryption')
    expect(await backupRow(join(root, 'clear'))).toMatchObject({status: 'warn', detail: expect.stringContaining(`backup ${clear.json().id} is not encrypted`)})
    expect(await backupRow(dir)).toMatchObject({status: 'ok', detail: expect.stringMatching(/^the newest backup \(\S+\) is encrypted/)})
    // no backup at all: nothing to say about encryption (the backups row warns about their absence)
    expect(await backupRow(join(root, 'none-yet'))).toMatchObject({status: 'ok', detail: 'no backup yet: nothing to check'})

    const ok = await cli(['backup', 'verify', first, '--dir', dir, '--json'])
    expect(ok.exitCode).toBe(0)
    expect(ok.json().files.every((f: {decrypt?: string}) => f.decrypt === 'ok')).toBe(true)

    // wrong key file, missing key file: exit 1 naming the key id, nothing restored
    const other = join(root, 'keys-other', 'backup-keys.json')
    expect((await cli(['backup', 'key', 'rotate', '--key-file', other, '--json'])).exitCode).toBe(0)
    const wrongKeys = [other, join(root, 'no-such-dir', 'backup-keys.json')]
    for (const keyFile of wrongKeys) {
      const refused = await cli(['backup', 'restore', first, '--db', db, '--as', `${db}_never`, '--dir', dir, '--key-file', keyFile])
      expect(refused.exitCode).toBe(1)
      expect(refused.stderr).toContain(`backup key ${keys.current} is not in ${keyFile}`)
      expect((await admin((c) => c.query('SELECT 1 FROM pg_database WHERE datname = $1', [`${db}_never`]))).rowCount).toBe(0)
    }
    for (const keyFile of wrongKeys) {
      const unverified = await cli(['backup', 'verify', first, '--dir', dir, '--key-file', keyFile, '--json'])
      expect(unverified.exitCode).toBe(1)
      expect(unverified.json().files[0].problem).toContain(keys.current)
    }

    // rotation: new backups use the new key; old and new backups both verify and restore
    const rotated = await cli(['backup', 'key', 'rotate', '--json'])
    expect(rotated.exitCode).toBe(0)
    expect(rotated.json()).toMatchObject({previous: keys.current, keys: 2})
    const second = await cli(['backup', '--prefix', P, '--db', 'singularity', '--dir', dir, '--json'], {timeoutMs: 180_000})
    expect(second.exitCode).toBe(0)
    expect(JSON.parse(readFileSync(join(dir, second.json().id, 'manifest.json'), 'utf8')).encryption.keyId).toBe(rotated.json().keyId)
    for (const id of [first, second.json().id]) {
      const v = await cli(['backup', 'verify', id, '--dir', dir, '--restore-test', '--json'], {timeoutMs: 300_000})
      expect(v.json().files.filter((f: {ok: boolean}) => !f.ok)).toEqual([])
      expect(v.exitCode).toBe(0)
      const copy = `${db}_k${id === first ? 1 : 2}`
      const r = await cli(['backup', 'restore', id, '--db', db, '--as', copy, '--dir', dir, '--json'], {timeoutMs: 180_000})
      expect(r.stderr).not.toMatch(/^error/m)
      expect(r.exitCode).toBe(0)
      expect(await rowCounts(copy)).toEqual(await rowCounts(db))
    }

    // tampering: a flipped byte (checksum updated too, so only the chunk tag can tell) and a truncation
    for (const [name, damage, expected] of [
      ['globals.sql', (b: Buffer) => ((b[b.length - 20] ^= 0x40), b), /globals\.sql: chunk 0 failed authentication/],
      [`${db}.dump`, (b: Buffer) => b.subarray(0, b.length - 100), new RegExp(`${db}\\.dump: truncated after chunk`)],
    ] as const) {
      const id = second.json().id
      const file = join(dir, id, name)
      const original = readFileSync(file)
      writeFileSync(file, damage(Buffer.from(original)))
      const sized = await cli(['backup', 'verify', id, '--dir', dir, '--json'])
      expect(sized.exitCode).toBe(1)
      expect(sized.json().files.find((f: {file: string}) => f.file === name)).toMatchObject({ok: false, sha256: 'mismatch'})
      const mPath = join(dir, id, 'manifest.json')
      const m = JSON.parse(readFileSync(mPath, 'utf8'))
      const entry = name === 'globals.sql' ? m.globals : m.databases.find((d: {file: string}) => d.file === name)
      const saved = {sha256: entry.sha256, size: entry.size}
      Object.assign(entry, {sha256: sha256(file), size: statSync(file).size})
      writeFileSync(mPath, JSON.stringify(m))
      const tagged = await cli(['backup', 'verify', id, '--dir', dir, '--json'])
      expect(tagged.exitCode).toBe(1)
      const f = tagged.json().files.find((x: {file: string}) => x.file === name)
      expect(f).toMatchObject({ok: false, sha256: 'ok', decrypt: 'failed'})
      expect(f.problem).toMatch(expected)
      writeFileSync(file, original)
      Object.assign(entry, saved)
      writeFileSync(mPath, JSON.stringify(m))
    }
  }, 900_000)

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
    const listed = (await cli(['backup', 'list', '--dir', dir, '--json'])).json().backups
    expect(listed).toHaveLength(1)
    expect(listed[0]).toMatchObject({kind: 'hourly', status: 'incomplete'})
    expect((await cli(['backup', 'list', '--dir', dir, '--complete', '--json'])).json().backups).toEqual([])
    expect((await cli(['backup', 'verify', 'latest', '--dir', dir])).exitCode).toBe(4)
    const verifyPartial = await cli(['backup', 'verify', listed[0].id, '--dir', dir])
    expect(verifyPartial.exitCode).toBe(1)
    expect(verifyPartial.stderr).toContain('incomplete')

    // the rule itself: even a partial whose manifest already says complete is not a backup until renamed
    const ok = await cli(['backup', '--prefix', P, '--db', 'nexus', '--dir', dir, '--json'])
    expect(ok.exitCode).toBe(0)
    const fakeId = `${stamp(new Date(Date.now() + 3_600_000))}-hourly`
    cpSync(join(dir, ok.json().id), join(dir, `.${fakeId}.partial`), {recursive: true})
    const m = JSON.parse(readFileSync(join(dir, `.${fakeId}.partial`, 'manifest.json'), 'utf8'))
    writeFileSync(join(dir, `.${fakeId}.partial`, 'manifest.json'), JSON.stringify({...m, id: fakeId}))
    const statuses = (await cli(['backup', 'list', '--dir', dir, '--json'])).json().backups.map((b: {id: string; status: string}) => [b.id, b.status])
    expect(statuses).toContainEqual([fakeId, 'incomplete'])
    expect(statuses.filter(([, s]: string[]) => s === 'complete')).toEqual([[ok.json().id, 'complete']])

    const pruned = await cli(['backup', 'prune', '--dir', dir, '--confirm', 'prune', '--json'])
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
    const result = await cli(['backup', '--prefix', P, '--dir', dir, '--json'], {env: {SINGULARITY_PG_BIN: bin}})
    expect(result.exitCode).toBe(1)
    expect(result.json().error.message).toBe(`pg_dump of ${P}nexus failed: disk on fire`)
    expect(readdirSync(dir)).toEqual([])
    expect((await cli(['backup', 'list', '--dir', dir, '--json'])).json().backups).toEqual([])
  })

  it('prune keeps exactly the retention and never the newest verified backup', async () => {
    const dir = join(root, 'prune')
    const taken = await cli(['backup', '--prefix', P, '--db', 'nexus', '--dir', dir, '--kind', 'hourly', '--verify', '--json'])
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

    const dry = await cli(['backup', 'prune', '--dir', dir, '--dry-run', '--json'])
    expect(dry.exitCode).toBe(0)
    expect([...dry.json().deleteIds].sort()).toEqual([...dropHourly, ...dropDaily].sort())
    expect(dry.json().backups.find((b: {id: string}) => b.id === verifiedId)).toMatchObject({action: 'keep', reason: expect.stringContaining('newest verified')})
    expect(readdirSync(dir).sort()).toEqual(before)

    const human = await cli(['backup', 'prune', '--dir', dir, '--dry-run'])
    expect(human.stdout).toContain('would delete 4 backups')

    const refused = await cli(['backup', 'prune', '--dir', dir])
    expect(refused.exitCode).toBe(2)
    expect(refused.stderr).toContain('--confirm prune')
    expect(readdirSync(dir).sort()).toEqual(before)

    const pruned = await cli(['backup', 'prune', '--dir', dir, '--confirm', 'prune', '--json'])
    expect(pruned.exitCode).toBe(0)
    expect([...pruned.json().deleted].sort()).toEqual([...dropHourly, ...dropDaily].sort())
    expect(readdirSync(dir).sort()).toEqual([verifiedId, ...keepHourly, ...keepDaily].sort())

    const again = await cli(['backup', 'prune', '--dir', dir, '--confirm', 'prune', '--json'])
    expect(again.json().deleted).toEqual([])

    // keep nothing: the newest verified backup still stays
    const zero = await cli(['backup', 'prune', '--dir', dir, '--keep-hourly', '0', '--keep-daily', '0', '--confirm', 'prune', '--json'])
    expect(zero.exitCode).toBe(0)
    expect(readdirSync(dir)).toEqual([verifiedId])
  })

  it('restore refuses to overwrite an existing database without --confirm <name>', async () => {
    const dir = join(root, 'overwrite')
    const taken = await cli(['backup', '--prefix', P, '--db', 'centralcloud', '--dir', dir, '--json'])
    expect(taken.exitCode).toBe(0)
    const {id} = taken.json()
    const db = `${P}centralcloud`
    await withClient(urlFor(db), (c) => c.query("INSERT INTO bk_test.packages VALUES ('after-backup', '9')"))

    const refused = await cli(['backup', 'restore', id, '--as', db, '--dir', dir])
    expect(refused.exitCode).toBe(2)
    expect(refused.stderr).toMatch(/refusing to replace the existing database t_bk_centralcloud/)
    expect(refused.stderr).toContain(`--confirm ${db}`)
    const wrong = await cli(['backup', 'restore', id, '--as', db, '--confirm', 'yes', '--dir', dir])
    expect(wrong.exitCode).toBe(2)
    expect((await rowCounts(db))['bk_test.packages']).toBe(301)
    const leftovers = await admin((c) => c.query("SELECT datname FROM pg_database WHERE datname LIKE 't\\_bk\\_centralcloud\\_restoring\\_%'"))
    expect(leftovers.rows).toEqual([])

    const replaced = await cli(['backup', 'restore', id, '--as', db, '--confirm', db, '--dir', dir, '--json'])
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
    const result = await cli(['backup', '--prefix', P, '--dir', dir], {env: {SINGULARITY_PG_BIN: fake}})
    expect(result.exitCode).toBe(1)
    expect(result.stderr).toMatch(/pg_dump 9\.6\.24 .* is older than the server/)
    expect(result.stderr).toMatch(/hint: install the matching client: apt-get install -y postgresql-client-\d+/)
    expect(existsSync(dir)).toBe(false)
  })

  it('unknown --db exits 2 before anything is written; every command has --help examples', async () => {
    const dir = join(root, 'bad')
    const bad = await cli(['backup', '--prefix', P, '--db', 'nope', '--dir', dir])
    expect(bad.exitCode).toBe(2)
    expect(existsSync(dir)).toBe(false)
    for (const cmd of [['backup'], ['backup', 'list'], ['backup', 'verify'], ['backup', 'prune'], ['backup', 'restore']]) {
      const help = await cli([...cmd, '--help'])
      expect(help.exitCode).toBe(0)
      expect(help.stdout).toContain('EXAMPLES')
    }
  })
})

/**
 * Queues survive backup → restore on both queue engines: the bundled SQL (ordinary tables, carried
 * by pg_dump) and the pgmq extension (queue tables are extension members, which pg_dump leaves out:
 * carried by the backup's queue file). The extension is the test fixture that the test
 * prerequisites install (.ci/install-pgmq-fixture.sh), or a real pgmq where the server has one.
 */
type QueueState = {
  queues: {name: string; partitioned: boolean; unlogged: boolean}[]
  rows: Record<string, {q: unknown[]; a: unknown[]; maxId: number}>
}

async function queueState(db: string): Promise<QueueState> {
  return withClient(urlFor(db), async (c) => {
    const queues = (await c.query('SELECT queue_name AS name, is_partitioned AS partitioned, is_unlogged AS unlogged FROM pgmq.meta ORDER BY 1')).rows
    const rows: QueueState['rows'] = {}
    for (const {name} of queues) {
      const t = (k: string) => `pgmq."${k}_${name.toLowerCase()}"`
      const q = (await c.query(`SELECT msg_id::text, read_ct, enqueued_at, vt, message, headers FROM ${t('q')} ORDER BY msg_id`)).rows
      const a = (await c.query(`SELECT msg_id::text, read_ct, enqueued_at, archived_at, vt, message, headers FROM ${t('a')} ORDER BY msg_id`)).rows
      const seq = (await c.query<{v: string | null}>(`SELECT last_value AS v FROM pg_sequences WHERE format('%I.%I', schemaname, sequencename) = pg_get_serial_sequence($1, 'msg_id')`, [t('q')])).rows[0]
      rows[name] = {q, a, maxId: Number(seq?.v ?? 0)}
    }
    return {queues, rows}
  })
}

/** Messages in flight (read, invisible), visible ones, archived ones, deleted ones (the highest id too). */
async function fillQueues(db: string, queues: string[]): Promise<void> {
  await withClient(urlFor(db), async (c) => {
    for (const [i, q] of queues.entries()) {
      await c.query(`SELECT pgmq.send_batch($1, array(SELECT jsonb_build_object('queue', $1::text, 'n', g, 'body', repeat('é', g % 7)) FROM generate_series(1, $2::int) g),
                                            array(SELECT jsonb_build_object('trace', md5(g::text), 'n', g) FROM generate_series(1, $2::int) g))`, [q, 12 + i])
      await c.query('SELECT pgmq.read($1, 600, 3)', [q]) // in flight
      await c.query('SELECT pgmq.archive($1, ARRAY[4, 5, 6]::bigint[])', [q])
      await c.query('SELECT pgmq.delete($1, $2::bigint)', [q, 12 + i]) // the highest id: the sequence must still continue above it
    }
  })
}

const ENGINES = ['bundled', 'extension'] as const

describe.each(ENGINES)('queues survive backup → restore (%s engine)', (engine) => {
  const Q = `t_bq${engine[0]}_`
  const dir = join(root, `queues-${engine}`)
  const SQ = `${Q}shared_queue`
  const SING = `${Q}singularity`
  const PARTITIONED = 'partitioned_work'

  async function dropQueueEstate(): Promise<void> {
    await admin(async (c) => {
      await c.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database LIKE $1 AND NOT active', [`${Q.replaceAll('_', '\\_')}%`]).catch(() => {})
      await c.query('DELETE FROM cron.job WHERE jobname LIKE $1 OR database LIKE $2', [`singularity:${Q.replaceAll('_', '\\_')}%`, `${Q.replaceAll('_', '\\_')}%`]).catch(() => {})
      const {rows} = await c.query<{datname: string}>('SELECT datname FROM pg_database WHERE datname LIKE $1', [`${Q.replaceAll('_', '\\_')}%`])
      for (const r of rows) await c.query(`DROP DATABASE IF EXISTS "${r.datname}" WITH (FORCE)`)
      const roles = await c.query<{rolname: string}>('SELECT rolname FROM pg_roles WHERE rolname LIKE $1', [`${Q.replaceAll('_', '\\_')}%`])
      for (const r of roles.rows) {
        await c.query(`DROP OWNED BY "${r.rolname}"`).catch(() => {})
        await c.query(`DROP ROLE IF EXISTS "${r.rolname}"`).catch(() => {})
      }
    })
  }

  beforeAll(async () => {
    await dropQueueEstate()
    // the template estate's engine: a copy of it (test/helpers/estate-template.ts); the other: its own db init
    if (engine === TEMPLATE_QUEUE_ENGINE) {
      await provisionedEstate(Q, join(root, `passwords-${engine}.json`))
    } else {
      const init = await cli(['db', 'init', '--prefix', Q, '--queue-engine', engine, '--passwords-file', join(root, `passwords-${engine}.json`)], {timeoutMs: 240_000})
      if (init.exitCode !== 0) throw new Error(`db init --prefix ${Q} --queue-engine ${engine} failed (exit ${init.exitCode}): ${init.stderr}`)
    }
    await admin((c) => c.query('UPDATE cron.job SET active = false WHERE jobname LIKE $1 OR database LIKE $2', [`singularity:${Q.replaceAll('_', '\\_')}%`, `${Q.replaceAll('_', '\\_')}%`]))
    // a partitioned queue (pg_partman is a test prerequisite), by msg_id in partitions of 5
    await withClient(urlFor(SQ), async (c) => {
      await c.query('CREATE SCHEMA IF NOT EXISTS partman; CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA partman')
      await c.query("SELECT pgmq.create_partitioned($1, '5', '1000')", [PARTITIONED])
    })
    await fillQueues(SQ, ['llm_requests', 'approval_requests', PARTITIONED])
    await fillQueues(SING, ['agent-sessions', 'centralcloud-new-patterns'])
  }, 300_000)

  afterAll(async () => {
    await dropQueueEstate()
  })

  it('carries every queue, in flight and archived messages, and new ids continue above the old ones', async () => {
    // the engine is what was asked for, read from the server
    const live = await withClient(urlFor(SQ), async (c) => (await c.query("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pgmq') AS ext")).rows[0].ext)
    expect(live).toBe(engine === 'extension')
    const before = {[SQ]: await queueState(SQ), [SING]: await queueState(SING)}
    expect(before[SQ].queues.find((q) => q.name === PARTITIONED)).toMatchObject({partitioned: true})
    expect(before[SQ].rows.llm_requests.q.length).toBe(12 - 3 - 1)
    expect(before[SQ].rows.llm_requests.a.length).toBe(3)

    const taken = await cli(['backup', '--prefix', Q, '--db', 'shared_queue', '--db', 'singularity', '--dir', dir, '--json'], {timeoutMs: 180_000})
    expect(taken.stderr).not.toMatch(/^error/m)
    expect(taken.exitCode).toBe(0)
    const {id} = taken.json()
    const manifest = JSON.parse(readFileSync(join(dir, id, 'manifest.json'), 'utf8'))
    for (const d of manifest.databases) {
      expect(d.contents.queueEngine).toBe(engine)
      const carriedBy = new Set(d.contents.queues.map((q: {carriedBy: string}) => q.carriedBy))
      expect([...carriedBy]).toEqual([engine === 'extension' ? 'queue-file' : 'archive'])
      if (engine === 'extension') {
        expect(d.queueFile).toMatchObject({file: `${d.name}.queues`})
        expect(sha256(join(dir, id, d.queueFile.file))).toBe(d.queueFile.sha256)
        expect(statSync(join(dir, id, d.queueFile.file)).mode & 0o777).toBe(0o600)
      } else {
        expect(d.queueFile).toBeNull()
      }
      const q = d.contents.queues.find((x: {name: string}) => x.name === (d.name === SQ ? 'llm_requests' : 'agent-sessions'))
      expect(q).toMatchObject({length: 8, archived: 3, lastMsgId: 12})
    }
    expect(manifest.databases.find((d: {name: string}) => d.name === SQ).contents.queues.find((q: {name: string}) => q.name === PARTITIONED)).toMatchObject({
      partitioned: true,
      partitionInterval: '5',
      retentionInterval: '1000',
    })

    const verified = await cli(['backup', 'verify', id, '--dir', dir, '--restore-test', '--json'], {timeoutMs: 300_000})
    expect(verified.stderr).not.toMatch(/^error/m)
    expect(verified.json().files.filter((f: {ok: boolean}) => !f.ok).map((f: {problem: string}) => f.problem)).toEqual([])
    expect(verified.exitCode).toBe(0)
    const files = verified.json().files.filter((f: {restore?: unknown}) => f.restore)
    expect(files).toHaveLength(2)
    for (const f of files) expect(f.restore).toMatchObject({ok: true, problems: []})
    // the scratch databases are gone
    expect((await admin((c) => c.query("SELECT datname FROM pg_database WHERE datname LIKE 'singularity\\_rt\\_%'"))).rows).toEqual([])

    for (const db of [SQ, SING]) {
      const copy = `${db}_copy`
      const restored = await cli(['backup', 'restore', id, '--db', db, '--as', copy, '--dir', dir, '--json'], {timeoutMs: 180_000})
      expect(restored.stderr).not.toMatch(/^error/m)
      expect(restored.exitCode).toBe(0)
      const after = await queueState(copy)
      // same queues, lengths, archive sizes, bodies, headers, read counts and times
      expect(after.queues).toEqual(before[db].queues)
      for (const name of Object.keys(before[db].rows)) {
        expect(after.rows[name].q).toEqual(before[db].rows[name].q)
        expect(after.rows[name].a).toEqual(before[db].rows[name].a)
      }
      await withClient(urlFor(copy), async (c) => {
        if (engine === 'extension') {
          // restored with pgmq's functions: the copy's queue tables are members of the extension again
          const members = await c.query(
            "SELECT count(*)::int AS n FROM pg_depend d JOIN pg_class k ON k.oid = d.objid WHERE d.deptype = 'e' AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pgmq') AND k.relkind IN ('r', 'p') AND k.relname ~ '^[qa]_'",
          )
          expect(members.rows[0].n).toBe(before[db].queues.length * 2)
        }
        for (const {name} of before[db].queues) {
          const old = Math.max(before[db].rows[name].maxId, ...before[db].rows[name].a.map((r) => Number((r as {msg_id: string}).msg_id)))
          const sent = await c.query<{id: string}>(`SELECT * FROM pgmq.send($1, '{"after":"restore"}'::jsonb) AS id`, [name])
          expect(Number(sent.rows[0].id)).toBeGreaterThan(old)
          expect(Number(sent.rows[0].id)).toBe(old + 1)
        }
      })
    }
  }, 900_000)
})
