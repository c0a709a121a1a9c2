/**
 * Point-in-time recovery with real pgBackRest. archive_mode needs a restart, which the shared
 * test cluster must not suffer, so this file runs its OWN cluster (the `local start` code, in a
 * temp dir) as the "local cluster" of the CLI, and always destroys it and every cluster it
 * restored in afterAll.
 */
import {spawn} from 'node:child_process'
import {chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import pg from 'pg'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {repoCipherPass} from '../../src/lib/backup/physical/cipher.js'
import {destroyCluster, startCluster} from '../../src/lib/local-cluster/cluster.js'
import {readLocalState} from '../../src/lib/local-cluster/paths.js'
import {runCli, type CliOptions} from '../helpers/cli.js'
import {withClient} from '../helpers/db.js'

const root = mkdtempSync(join(tmpdir(), 'singularity-pitr-'))
// as root, the postgres OS user must pass through the temp dir to reach its data directory
chmodSync(root, 0o755)
const localDir = join(root, 'local')
const backupDir = join(root, 'backups')
const restored: string[] = []
const ESTATE = ['singularity', 'genesis', 'centralcloud', 'nexus', 'shared_queue']

const env = {SINGULARITY_LOCAL_DIR: localDir, SINGULARITY_BACKUP_DIR: backupDir}
const cli = (args: string[], options: CliOptions = {}) => runCli(args, {noAdmin: true, timeoutMs: 300_000, ...options, env: {...env, ...options.env}})

function url(database: string, dir = localDir): string {
  const state = readLocalState(dir)
  if (!state) throw new Error(`no cluster state in ${dir}`)
  const u = new URL(state.adminUrl)
  u.pathname = `/${database}`
  return u.toString()
}

const sql = <T extends pg.QueryResultRow = any>(database: string, text: string, values: unknown[] = [], dir = localDir): Promise<T[]> =>
  withClient(url(database, dir), async (client) => (await client.query<T>(text, values)).rows)

/** Polls until fn is true; a timeout fails naming what was awaited. */
async function waitFor(what: string, fn: () => Promise<boolean> | boolean, timeoutMs = 180_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 300))
  }
}

const physical = async () => (await cli(['backup', 'list', '--json'])).json().physical

/** Every regular file under a directory (one removed while we walk is left out). */
function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    const stat = lstatSync(path, {throwIfNoEntry: false})
    return stat?.isDirectory() ? filesUnder(path) : stat?.isFile() ? [path] : []
  })
}

/** The files under `dir` that hold `needle`. A live data directory drops files as it goes (a relcache init file, say): one gone between listing and reading holds nothing. */
const holding = (dir: string, needle: string | Buffer) => filesUnder(dir).filter((f) => readIfPresent(f)?.includes(needle))

function readIfPresent(file: string): Buffer | undefined {
  try {
    return readFileSync(file)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
}

// a row value planted before the first physical backup: it must never appear in the repository
const CANARY = `pitr-canary-${Date.now().toString(36)}-plaintext`
// the default key file: beside the passwords file, i.e. next to the local cluster's directory
const KEY_FILE = join(root, 'backup-keys.json')
let keyId = ''

/** Waits until the server's clock is inside the recovery window, so a mark taken next can be restored to. */
async function waitForWindowStart(): Promise<void> {
  const earliest = Date.parse((await physical()).window.earliest)
  await waitFor(`the server clock to reach the recovery window's start ${new Date(earliest).toISOString()}`, async () => {
    const [{now}] = await sql<{now: Date}>('postgres', 'SELECT now() AS now')
    return now.getTime() >= earliest
  }, 10_000)
}

// Every step runs pgBackRest and PostgreSQL restarts or recoveries: generous time on a loaded machine.
describe('point-in-time recovery (pgBackRest)', {timeout: 900_000}, () => {
  beforeAll(async () => {
    await startCluster({dir: localDir, progress: () => {}})
    const init = await cli(['db', 'init', '--passwords-file', join(root, 'pw.json')])
    expect(init.exitCode, init.stderr).toBe(0)
    // The estate's own pg_cron jobs stay off: rows and the doctor's verdict depend only on this test.
    await sql('postgres', "UPDATE cron.job SET active = false WHERE jobname LIKE 'singularity:%'")
  })

  afterAll(async () => {
    for (const dir of restored) await destroyCluster(dir).catch(() => {})
    await destroyCluster(localDir).catch(() => {})
    rmSync(root, {recursive: true, force: true})
  })

  it('setup turns archiving on (restart announced), runs stanza-create and check; again it changes nothing', async () => {
    const before = (await sql('postgres', 'SELECT pg_postmaster_start_time() AS t'))[0].t
    const setup = await cli(['backup', 'setup', '--physical', '--json'])
    expect(setup.exitCode, setup.stderr).toBe(0)
    const r = setup.json()
    expect(r).toMatchObject({mode: 'host', stanza: 'singularity-local', restarted: true, checked: true})
    expect(r.changes.map((c: {name: string}) => c.name)).toEqual(['archive_mode', 'archive_command', 'archive_timeout'])
    expect(setup.stderr).toMatch(/restarting the local cluster .* now to turn archive_mode on/)
    const settings = (await sql('postgres', "SELECT current_setting('archive_mode') AS mode, current_setting('archive_command') AS command, current_setting('archive_timeout') AS timeout, pg_postmaster_start_time() AS t"))[0]
    expect(settings).toMatchObject({mode: 'on', timeout: '1min'})
    expect(settings.command).toContain('archive-push %p')
    expect(settings.t.getTime()).toBeGreaterThan(before.getTime())
    // the repository belongs to the server's OS user (as root: postgres)
    if (process.getuid?.() === 0) {
      const {statSync} = await import('node:fs')
      expect(statSync(join(backupDir, 'physical', 'repo')).uid).toBe(statSync(join(localDir, 'data')).uid)
    }

    // a new repository is encrypted with pgBackRest's cipher, its passphrase derived from the backup key store
    expect(r.encryption).toEqual({cipher: 'aes-256-cbc', encrypted: true, keyId: expect.stringMatching(/^[0-9a-f]{32}$/)})
    keyId = r.encryption.keyId
    const keys = JSON.parse(readFileSync(KEY_FILE, 'utf8'))
    expect(keys.current).toBe(keyId)
    const pass = repoCipherPass(Buffer.from(keys.keys[keyId], 'base64'), 'singularity-local')
    // never printed, never in the backup directory (pgbackrest.conf names the cipher only)
    expect(setup.stdout + setup.stderr).not.toContain(pass)
    expect(holding(backupDir, pass)).toEqual([])
    expect(readFileSync(join(backupDir, 'physical', 'pgbackrest.conf'), 'utf8')).toContain('repo1-cipher-type=aes-256-cbc')
    const recorded = JSON.parse(readFileSync(join(backupDir, 'physical', 'setup.json'), 'utf8'))
    expect(recorded.cipher).toMatchObject({type: 'aes-256-cbc', keyId, keyFile: KEY_FILE})
    // the server's archive-push reads it from cipher.conf: outside the backup directory, 0600, the server's OS user's
    const conf = join(recorded.cipher.includeDir, 'cipher.conf')
    expect(conf.startsWith(backupDir)).toBe(false)
    expect(statSync(conf).mode & 0o777).toBe(0o600)
    expect(statSync(recorded.cipher.includeDir).mode & 0o777).toBe(0o700)
    expect(statSync(conf).uid).toBe(statSync(join(localDir, 'data')).uid)
    expect(readFileSync(conf, 'utf8')).toContain(`repo1-cipher-pass=${pass}`)
    expect(settings.command).toContain(`--config-include-path=${recorded.cipher.includeDir}`)

    const again = await cli(['backup', 'setup', '--physical', '--json'])
    expect(again.exitCode, again.stderr).toBe(0)
    expect(again.json()).toMatchObject({changes: [], restarted: false, encryption: {encrypted: true, keyId}, encryptionNote: null})
  })

  it('`local start` keeps the archive settings once set up', async () => {
    const command = (await sql('postgres', "SELECT current_setting('archive_command') AS c"))[0].c
    expect((await cli(['local', 'stop'])).exitCode).toBe(0)
    const start = await cli(['local', 'start'])
    expect(start.exitCode, start.stderr).toBe(0)
    const after = (await sql('postgres', "SELECT current_setting('archive_mode') AS mode, current_setting('archive_command') AS c"))[0]
    expect(after).toEqual({mode: 'on', c: command})
  })

  let marks: string[] = []

  it('restores the whole cluster to a time: exactly the rows committed before the mark, in every estate database', async () => {
    for (const db of ESTATE) await sql(db, 'CREATE TABLE pitr_probe (n int PRIMARY KEY)')
    await sql('genesis', 'CREATE TABLE pitr_secret AS SELECT $1::text AS v', [CANARY])
    const full = await cli(['backup', '--physical', '--type', 'full', '--json'])
    expect(full.exitCode, full.stderr).toBe(0)
    expect(full.json()).toMatchObject({kind: 'physical', type: 'full', status: 'complete', encryption: {cipher: 'aes-256-cbc', encrypted: true, keyId}})
    expect(full.stderr).toContain('new backup label')

    // no plaintext in the repository: the planted value is in the data directory (the backup's
    // checkpoint wrote it there), in no repository file (backups and archived WAL), and every
    // repository file is pgBackRest-encrypted (OpenSSL's "Salted__" header); pgBackRest says so too
    expect(holding(join(localDir, 'data', 'base'), CANARY).length).toBeGreaterThan(0)
    const repo = join(backupDir, 'physical', 'repo')
    const repoFiles = filesUnder(repo)
    expect(repoFiles.filter((f) => f.includes('/archive/')).length).toBeGreaterThan(0)
    expect(holding(repo, CANARY)).toEqual([])
    expect(repoFiles.filter((f) => !readFileSync(f).subarray(0, 8).equals(Buffer.from('Salted__')))).toEqual([])
    expect((await physical()).encryption).toEqual({cipher: 'aes-256-cbc', encrypted: true, keyId})
    await waitForWindowStart()

    marks = []
    for (let n = 1; n <= 3; n++) {
      // one transaction per database, then a mark between this round and the next
      for (const db of ESTATE) await sql(db, 'INSERT INTO pitr_probe VALUES ($1)', [n])
      marks.push((await sql('postgres', 'SELECT now()::text AS t'))[0].t)
    }

    const into = join(root, 'restored-at-2')
    restored.push(into)
    const restore = await cli(['backup', 'restore', '--to-time', marks[1], '--into', into, '--json'])
    expect(restore.exitCode, restore.stderr).toBe(0)
    const r = restore.json()
    expect(r).toMatchObject({kind: 'physical', inPlace: false, clusterDir: into, stop: `singularity local stop --data-dir ${into}`})
    expect(r.url).toMatch(/^postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/postgres$/)
    expect(r.port).not.toBe(readLocalState(localDir)!.port)
    // `db status` against the restored cluster: the whole estate is there
    expect(r.status.databases.map((d: {name: string; reachable: boolean}) => [d.name, d.reachable])).toEqual(ESTATE.map((n) => [n, true]))
    for (const db of ESTATE) {
      const rows = await sql<{n: number}>(db, 'SELECT n FROM pitr_probe ORDER BY n', [], into)
      expect(rows.map((x) => x.n), db).toEqual([1, 2])
    }
    // the copy never archives into its source's repository
    expect((await sql('postgres', "SELECT current_setting('archive_mode') AS m", [], into))[0].m).toBe('off')
    // the source is untouched
    expect((await sql<{n: number}>('genesis', 'SELECT n FROM pitr_probe ORDER BY n')).map((x) => x.n)).toEqual([1, 2, 3])

    // the tool stops what it started
    const stop = await cli(['local', 'stop', '--data-dir', into])
    expect(stop.exitCode, stop.stderr).toBe(0)
    expect(existsSync(join(into, 'data', 'postmaster.pid'))).toBe(false)
  })

  it('backup list shows the physical backups with the recovery window', async () => {
    const p = await physical()
    expect(p.stanza).toBe('singularity-local')
    expect(p.backups.filter((b: {status: string}) => b.status === 'complete').length).toBeGreaterThanOrEqual(1)
    expect(Date.parse(p.window.earliest)).toBeLessThanOrEqual(Date.parse(marks[0]))
    expect(Date.parse(p.window.latest)).toBeGreaterThanOrEqual(Date.parse(p.window.earliest))
    const human = await cli(['backup', 'list'])
    expect(human.exitCode).toBe(0)
    expect(human.stdout).toMatch(/recovery window: \S+ … \S+/)
    expect(human.stdout).toMatch(/physical full/)
  })

  it('refuses a time outside the window and a non-empty --into with exit 2, changing nothing', async () => {
    const p = await physical()
    const fresh = join(root, 'never-created')
    const early = await cli(['backup', 'restore', '--to-time', '2000-01-01 00:00:00+00', '--into', fresh])
    expect(early.exitCode).toBe(2)
    expect(early.stderr).toContain(`outside the recovery window ${p.window.earliest}`)
    expect(existsSync(fresh)).toBe(false)

    const future = await cli(['backup', 'restore', '--to-time', new Date(Date.now() + 3_600_000).toISOString(), '--into', fresh, '--json'])
    expect(future.exitCode).toBe(2)
    expect(future.json().error).toMatchObject({code: 'OUTSIDE_WINDOW', exitCode: 2})
    expect(existsSync(fresh)).toBe(false)

    const busy = join(root, 'busy')
    mkdirSync(busy)
    writeFileSync(join(busy, 'keep.txt'), 'mine')
    const notEmpty = await cli(['backup', 'restore', '--to-time', marks[1], '--into', busy])
    expect(notEmpty.exitCode).toBe(2)
    expect(notEmpty.stderr).toContain('is not empty; nothing was changed')
    expect(readdirSync(busy)).toEqual(['keep.txt'])
    expect(readFileSync(join(busy, 'keep.txt'), 'utf8')).toBe('mine')

    const bad = await cli(['backup', 'restore', '--to-time', 'yesterday', '--into', fresh])
    expect(bad.exitCode).toBe(2)
    expect(existsSync(fresh)).toBe(false)

    // the repository's key is enforced: a key file without it, or none at all, exits 1 naming the key id, changing nothing
    const otherKeys = join(root, 'other-keys', 'backup-keys.json')
    expect((await cli(['backup', 'key', 'rotate', '--key-file', otherKeys])).exitCode).toBe(0)
    for (const keyFile of [otherKeys, join(root, 'no-such-dir', 'backup-keys.json')]) {
      const wrong = await cli(['backup', 'restore', '--to-time', marks[1], '--into', fresh, '--key-file', keyFile, '--json'])
      expect(wrong.exitCode, wrong.stdout).toBe(1)
      expect(wrong.json().error).toMatchObject({code: 'BACKUP_KEY_MISSING', exitCode: 1})
      expect(wrong.json().error.message).toContain(`encrypted with backup key ${keyId}, which is not in ${keyFile}`)
      expect(existsSync(fresh)).toBe(false)
    }
    const before = (await physical()).backups.length
    const noKey = await cli(['backup', '--physical', '--type', 'incr'], {env: {SINGULARITY_BACKUP_KEY_FILE: otherKeys}})
    expect(noKey.exitCode).toBe(1)
    expect(noKey.stderr).toContain(`backup key ${keyId}`)
    expect((await physical()).backups.length).toBe(before)

    // never over the running server
    const running = await cli(['backup', 'restore', '--to-time', marks[1], '--in-place', '--confirm', 'singularity-local'])
    expect(running.exitCode).toBe(2)
    expect(running.stderr).toContain('is running')
    expect((await sql<{n: number}>('genesis', 'SELECT n FROM pitr_probe ORDER BY n')).map((x) => x.n)).toEqual([1, 2, 3])
  })

  it('a killed backup is not listed as complete, and the next one succeeds', async () => {
    // enough data that the backup is still copying when it is killed
    await sql('postgres', "CREATE TABLE filler AS SELECT g, md5(g::text) || md5((g * 7)::text) AS pad FROM generate_series(1, 1500000) g")
    const completeBefore = (await physical()).backups.filter((b: {status: string}) => b.status === 'complete').map((b: {label: string}) => b.label)
    const stanzaDir = join(backupDir, 'physical', 'repo', 'backup', 'singularity-local')
    const bin = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'run.js')
    const childEnv: Record<string, string> = {}
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(PG|SINGULARITY_)/.test(k)) childEnv[k] = v
    const child = spawn(process.execPath, [bin, 'backup', '--physical', '--type', 'full'], {env: {...childEnv, ...env, XDG_CONFIG_HOME: '/nonexistent'}, detached: true, stdio: 'ignore'})
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()))
    // half-way: pgBackRest has made the new backup's directory and is copying files into it
    let partial = ''
    await waitFor('a partial backup directory with files being copied', () => {
      if (!existsSync(stanzaDir)) return false
      partial = readdirSync(stanzaDir).find((n) => /^\d{8}-\d{6}F$/.test(n) && !completeBefore.includes(n) && existsSync(join(stanzaDir, n, 'pg_data'))) ?? ''
      return partial !== ''
    })
    process.kill(-child.pid!, 'SIGKILL')
    await exited
    // pgBackRest's own processes die with the group
    await waitFor('the killed backup to release its lock', async () => !(await physical()).backupRunning, 60_000)

    const listed = (await physical()).backups
    expect(listed.find((b: {label: string}) => b.label === partial)).toMatchObject({status: 'incomplete'})
    expect(listed.filter((b: {status: string}) => b.status === 'complete').map((b: {label: string}) => b.label)).toEqual(completeBefore)

    await sql('postgres', 'DROP TABLE filler')
    const next = await cli(['backup', '--physical', '--type', 'full', '--json'])
    expect(next.exitCode, next.stderr).toBe(0)
    const label = next.json().label
    expect((await physical()).backups.find((b: {label: string}) => b.label === label)).toMatchObject({status: 'complete', type: 'full'})
    const verify = await cli(['backup', 'verify', label, '--json'])
    expect(verify.exitCode, verify.stdout).toBe(0)
    expect(verify.json()).toMatchObject({kind: 'physical', ok: true, label})
  })

  it('a flipped byte in an encrypted physical backup fails verify (exit 1); put back, the backup verifies again', async () => {
    const label = (await physical()).backups.find((b: {status: string}) => b.status === 'complete').label as string
    const dataDir = join(backupDir, 'physical', 'repo', 'backup', 'singularity-local', label, 'pg_data')
    const files = (readdirSync(dataDir, {recursive: true}) as string[]).map((f) => join(dataDir, f)).filter((f) => statSync(f).isFile())
    const largest = files.sort((a, b) => statSync(b).size - statSync(a).size)[0]
    const original = readFileSync(largest)
    const flipped = Buffer.from(original)
    const at = Math.floor(flipped.length / 2)
    flipped[at] ^= 0xff
    writeFileSync(largest, flipped)
    try {
      const bad = await cli(['backup', 'verify', label, '--json'])
      expect(bad.exitCode, bad.stdout).toBe(1)
      expect(bad.json()).toMatchObject({kind: 'physical', ok: false, label})
      expect(bad.json().report.join('\n')).toMatch(/checksum invalid: 1|other: 1/)
      const human = await cli(['backup', 'verify', label])
      expect(human.exitCode).toBe(1)
      expect(human.stdout).toContain(`physical ${label} of singularity-local FAILED verification`)
    } finally {
      writeFileSync(largest, original)
    }
    const good = await cli(['backup', 'verify', label, '--json'])
    expect(good.exitCode, good.stdout).toBe(0)
    expect(good.json()).toMatchObject({ok: true, label})
  })

  it('doctor fails the archive row while archive_command is broken, and is ok once it is fixed', async () => {
    await sql('postgres', "ALTER SYSTEM SET archive_command = '/bin/false'")
    await sql('postgres', 'SELECT pg_reload_conf()')
    await sql('postgres', 'CREATE TABLE wal_probe AS SELECT 1 AS x')
    await sql('postgres', 'SELECT pg_switch_wal()')
    await waitFor('pg_stat_archiver to record a failure after the last success', async () => {
      const [a] = await sql('postgres', 'SELECT last_failed_time > coalesce(last_archived_time, \'-infinity\') AS failing FROM pg_stat_archiver')
      return a.failing
    })
    const broken = await cli(['doctor', '--json'])
    expect(broken.exitCode, broken.stdout).toBe(3)
    const rows = broken.json().checks as {check: string; status: string; detail: string}[]
    expect(rows.find((c) => c.check === 'archive failures')).toMatchObject({status: 'fail'})
    expect(rows.find((c) => c.check === 'archive failures')!.detail).toContain('archive_command failing since')

    // the fix: setup writes archive_command again (and the reload wakes the archiver)
    const fix = await cli(['backup', 'setup', '--physical', '--json'])
    expect(fix.exitCode, fix.stderr).toBe(0)
    expect(fix.json().changes.map((c: {name: string}) => c.name)).toEqual(['archive_command'])
    await waitFor('the archiver to succeed again', async () => {
      const [a] = await sql('postgres', 'SELECT last_archived_time > last_failed_time AS ok FROM pg_stat_archiver')
      return a.ok
    })
    const healthy = await cli(['doctor', '--json'])
    const checks = healthy.json().checks as {check: string; status: string}[]
    expect(checks.filter((c) => ['WAL archiving', 'archive failures', 'physical encryption', 'physical backups'].includes(c.check)).map((c) => c.status)).toEqual(['ok', 'ok', 'ok', 'ok'])
    expect(healthy.exitCode, healthy.stdout).toBe(0)
  })

  it('retention: expiry keeps the fulls, diffs and WAL it promises', async () => {
    // a key rotation first: new logical backups get the new key, the physical repository keeps its own
    const rotated = await cli(['backup', 'key', 'rotate', '--json'])
    expect(rotated.exitCode, rotated.stderr).toBe(0)
    expect(rotated.json().keyId).not.toBe(keyId)
    expect(rotated.json()).toMatchObject({previous: keyId, physical: {stanza: 'singularity-local', keyId, rotated: false}})
    expect(rotated.json().physical.note).toContain("pgBackRest cannot change an existing repository's passphrase")
    const setup = await cli(['backup', 'setup', '--physical', '--retention-full', '2', '--retention-diff', '2', '--retention-pitr', '1', '--json'])
    expect(setup.exitCode, setup.stderr).toBe(0)
    expect(setup.json().encryption).toEqual({cipher: 'aes-256-cbc', encrypted: true, keyId})
    const take = async (type: string) => {
      await sql('genesis', 'INSERT INTO pitr_probe SELECT coalesce(max(n), 0) + 1 FROM pitr_probe')
      const r = await cli(['backup', '--physical', '--type', type, '--json'])
      expect(r.exitCode, r.stderr).toBe(0)
      return r.json()
    }
    const f3 = await take('full')
    const d1 = await take('diff')
    const d2 = await take('diff')
    const d3 = await take('diff')
    expect(d3.prior).toBe(f3.label)
    expect(d3.expired).toEqual([d1.label]) // the newest two diffs are kept
    const f4 = await take('full')
    // a full counts as the newest "diff" (pgBackRest): d3 stays, d2 goes; two fulls, the older ones go
    expect(f4.expired).toContain(d2.label)
    const p = await physical()
    const complete = p.backups.filter((b: {status: string}) => b.status === 'complete')
    expect(complete.filter((b: {type: string}) => b.type === 'full').map((b: {label: string}) => b.label)).toEqual([f4.label, f3.label])
    expect(complete.filter((b: {type: string}) => b.type === 'diff').map((b: {label: string}) => b.label)).toEqual([d3.label])
    // point-in-time recovery reaches back to the newest backup only (--retention-pitr 1),
    // from the second after it stopped …
    expect(Date.parse(p.window.earliest)).toBe(Date.parse(f4.stoppedAt) + 1000)
    const gone = await cli(['backup', 'restore', '--to-time', d3.stoppedAt, '--into', join(root, 'not-promised')])
    expect(gone.exitCode).toBe(2)
    expect(existsSync(join(root, 'not-promised'))).toBe(false)
    // … and every kept backup still verifies (its own WAL is kept)
    for (const label of [f3.label, d3.label]) {
      const v = await cli(['backup', 'verify', label, '--json'])
      expect(v.exitCode, v.stdout).toBe(0)
    }
  })

  it('in place, with the server stopped and --confirm <stanza>: the server itself goes back to the mark', async () => {
    await waitForWindowStart()
    const before = (await sql<{n: number}>('nexus', 'SELECT max(n) AS n FROM pitr_probe'))[0].n
    await sql('nexus', 'INSERT INTO pitr_probe VALUES ($1)', [before + 1])
    const mark = (await sql('postgres', 'SELECT now()::text AS t'))[0].t
    await sql('nexus', 'INSERT INTO pitr_probe VALUES ($1)', [before + 2])
    // archive what the mark needs while the server still runs
    const [{wal}] = await sql('postgres', 'SELECT pg_walfile_name(pg_switch_wal()) AS wal')
    await waitFor(`WAL ${wal} (with the mark) to be archived`, async () => {
      const [a] = await sql('postgres', 'SELECT last_archived_wal >= $1 AS done FROM pg_stat_archiver', [wal])
      return a.done
    })
    expect((await cli(['local', 'stop'])).exitCode).toBe(0)
    const noConfirm = await cli(['backup', 'restore', '--to-time', mark, '--in-place'])
    expect(noConfirm.exitCode).toBe(2)
    const r = await cli(['backup', 'restore', '--to-time', mark, '--in-place', '--confirm', 'singularity-local', '--json'])
    expect(r.exitCode, r.stderr).toBe(0)
    expect(r.json()).toMatchObject({inPlace: true, clusterDir: localDir})
    expect((await sql<{n: number}>('nexus', 'SELECT n FROM pitr_probe WHERE n > $1 ORDER BY n', [before - 1])).map((x) => x.n)).toEqual([before, before + 1])
    // it archives again, on its new timeline
    expect((await sql('postgres', "SELECT current_setting('archive_mode') AS m"))[0].m).toBe('on')
  })

  it('an unencrypted repository (--no-encrypt) is reported, and setting it up again never encrypts it silently', async () => {
    const clearDir = join(root, 'clear-backups')
    const setup = await cli(['backup', 'setup', '--physical', '--dir', clearDir, '--no-encrypt', '--json'])
    expect(setup.exitCode, setup.stderr).toBe(0)
    expect(setup.json()).toMatchObject({encryption: {cipher: 'none', encrypted: false, keyId: null}, encryptionNote: null})
    expect(readFileSync(join(clearDir, 'physical', 'pgbackrest.conf'), 'utf8')).not.toContain('repo1-cipher')
    // encryption is the default, but an existing repository keeps what it has: said, with the way to migrate
    const again = await cli(['backup', 'setup', '--physical', '--dir', clearDir, '--json'])
    expect(again.exitCode, again.stderr).toBe(0)
    expect(again.json()).toMatchObject({changes: [], encryption: {encrypted: false}})
    expect(again.json().encryptionNote).toContain('is not encrypted and stays so: pgBackRest cannot encrypt an existing repository: set up a new one in another directory')
    expect(again.stderr).toContain('pgBackRest cannot encrypt an existing repository')
    const full = await cli(['backup', '--physical', '--type', 'full', '--dir', clearDir, '--json'])
    expect(full.exitCode, full.stderr).toBe(0)
    expect(full.json().encryption).toEqual({cipher: 'none', encrypted: false, keyId: null})
    // the probe that finds nothing in the encrypted repository finds the planted value here
    expect(holding(join(clearDir, 'physical', 'repo'), CANARY).length).toBeGreaterThan(0)
    const listed = await cli(['backup', 'list', '--dir', clearDir, '--json'])
    expect(listed.json().physical.encryption).toEqual({cipher: 'none', encrypted: false, keyId: null})
    expect((await cli(['backup', 'list', '--dir', clearDir])).stdout).toContain('repository NOT encrypted')
    const doctor = await cli(['doctor', '--json'], {env: {SINGULARITY_BACKUP_DIR: clearDir}})
    const row = (doctor.json().checks as {check: string; status: string; detail: string}[]).find((c) => c.check === 'physical encryption')
    expect(row).toMatchObject({status: 'warn'})
    expect(row!.detail).toContain('is not encrypted')
  })
})
