import {spawn, type ChildProcessWithoutNullStreams} from 'node:child_process'
import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import type pg from 'pg'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {streamingTails} from '../helpers/cdc.js'
import {runCli} from '../helpers/cli.js'
import {adminUrl, connect, createTestDatabase, provisionedEstate, urlFor} from '../helpers/db.js'
import {waitFor} from '../helpers/wait.js'
import {ensureCdcSlot} from '../../src/lib/cdc/ensure.js'
import {estate} from '../../src/topology.js'

const P = 't_cdc_'
const DB = `${P}singularity`
const ESTATE_SLOT = `${DB}_centralcloud_cdc`
const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'run.js')

let db: pg.Client
let admin: pg.Client

/** The CLI as a child process we can watch and kill (runCli waits for the end). */
interface Running {
  child: ChildProcessWithoutNullStreams
  stdout: () => string
  stderr: () => string
  done: Promise<{code: number | null; signal: NodeJS.Signals | null}>
}

function startCli(args: string[]): Running {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(PG|SINGULARITY_|DATABASE_URL$|GENESIS_|CENTRALCLOUD_|NEXUS_|SHARED_QUEUE_)/.test(k)) env[k] = v
  }
  env.SINGULARITY_ADMIN_URL = adminUrl()
  env.SINGULARITY_LOCAL_DIR = '/nonexistent/singularity-test-local'
  env.XDG_CONFIG_HOME = '/nonexistent/singularity-test-config'
  const child = spawn(process.execPath, [BIN, ...args], {env, stdio: ['pipe', 'pipe', 'pipe']})
  let out = ''
  let err = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (err += d))
  const done = new Promise<{code: number | null; signal: NodeJS.Signals | null}>((resolve) => child.on('close', (code, signal) => resolve({code, signal})))
  child.stdin.end()
  return {child, stdout: () => out, stderr: () => err, done}
}

/** Temporary slots of our database (tail's own). */
async function temporarySlots(): Promise<{slot_name: string; active_pid: number | null}[]> {
  const {rows} = await admin.query('SELECT slot_name, active_pid FROM pg_replication_slots WHERE database = $1 AND temporary', [DB])
  return rows
}

async function slotRow(name: string): Promise<Record<string, any> | undefined> {
  const {rows} = await admin.query(
    `SELECT slot_name, plugin, database, active, temporary, wal_status, confirmed_flush_lsn::text, restart_lsn::text
       FROM pg_replication_slots WHERE slot_name = $1`,
    [name],
  )
  return rows[0]
}

async function lsnCompare(a: string, b: string): Promise<number> {
  const {rows} = await admin.query('SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::float8 AS d', [a, b])
  return Math.sign(rows[0].d)
}

const jsonLines = (text: string) => text.split('\n').filter(Boolean).map((l) => JSON.parse(l))

beforeAll(async () => {
  const secrets = mkdtempSync(join(tmpdir(), 'sing-cdc-'))
  await provisionedEstate(P, join(secrets, 'pw.json'))
  admin = await connect(adminUrl())
  db = await connect(urlFor(DB))
  await db.query("INSERT INTO agents (id, name) VALUES ('agent-cdc', 'cdc test agent') ON CONFLICT DO NOTHING")
}, 240_000)

afterAll(async () => {
  await db?.end()
  await admin?.end()
})

describe('db init and the estate slot', () => {
  it('db init created the persistent wal2json slot on the singularity database', async () => {
    const slot = await slotRow(ESTATE_SLOT)
    expect(slot).toMatchObject({plugin: 'wal2json', database: DB, temporary: false})
  })
})

describe('ensureCdcSlot (what db init calls)', () => {
  it('creates the slot once, fixes replica identities it can and says what the operator must fix', async () => {
    const {name, url} = await createTestDatabase('cdc_ensure')
    const template = estate({prefix: 'x_'}).databases.find((d) => d.kind === 'singularity')!
    const target = {...template, name, cdcSlot: `${name}_centralcloud_cdc`}
    const client = await connect(url)
    try {
      // learned_patterns: no primary key but a unique NOT NULL index; agent_sessions: REPLICA IDENTITY NOTHING
      await client.query('CREATE TABLE learned_patterns (id bigint NOT NULL, pattern jsonb)')
      await client.query('CREATE UNIQUE INDEX learned_patterns_id ON learned_patterns (id)')
      await client.query('CREATE TABLE agent_sessions (id text PRIMARY KEY)')
      await client.query('ALTER TABLE agent_sessions REPLICA IDENTITY NOTHING')
      const first = await ensureCdcSlot(client, target)
      expect(first).toMatchObject({slot: target.cdcSlot, created: true, warnings: []})
      expect(first.replicaIdentityFixed).toHaveLength(2)
      expect(first.replicaIdentityFixed.join('\n')).toMatch(/public\.learned_patterns: replica identity set to unique index learned_patterns_id/)
      expect(first.replicaIdentityFixed.join('\n')).toMatch(/public\.agent_sessions: replica identity set to DEFAULT/)
      expect(await slotRow(target.cdcSlot)).toMatchObject({plugin: 'wal2json', database: name, temporary: false})

      const again = await ensureCdcSlot(client, target)
      expect(again).toEqual({slot: target.cdcSlot, created: false, warnings: [], replicaIdentityFixed: []})

      // without any key, UPDATE/DELETE lose their old keys: a warning with the fix, nothing changed
      await client.query('DROP INDEX learned_patterns_id')
      const warned = await ensureCdcSlot(client, target)
      expect(warned.warnings).toHaveLength(1)
      expect(warned.warnings[0]).toMatch(/learned_patterns has no primary key.*REPLICA IDENTITY FULL/)
    } finally {
      await client.end()
      await admin.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1', [name])
      await admin.query(`DROP DATABASE "${name}"`)
    }
  })
})

describe('ensureCdcSlot waits for the running transactions', () => {
  it("waits past the session's short lock_timeout for a transaction running on the server, then creates the slot", async () => {
    const {name, url} = await createTestDatabase('cdc_wait')
    const template = estate({prefix: 'x_'}).databases.find((d) => d.kind === 'singularity')!
    const target = {...template, name, cdcSlot: `${name}_centralcloud_cdc`}
    const client = await connect(url)
    const holder = await connect(url)
    try {
      // db init's sessions carry a lock_timeout for DDL; here a short one makes the difference visible
      await client.query("SET lock_timeout = '500ms'")
      await holder.query('BEGIN')
      await holder.query('CREATE TABLE held_open (n int)') // a transaction with an xid, still running
      const creating = ensureCdcSlot(client, target)
      const waited = await waitFor('the slot creation to wait on the open transaction', async () => {
        const {rows} = await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock' AND query LIKE '%pg_create_logical_replication_slot%'", [name])
        return rows[0].n > 0
      })
      expect(waited).toBe(true)
      await new Promise((resolve) => setTimeout(resolve, 1500)) // three times the session's lock_timeout
      await holder.query('COMMIT')
      expect(await creating).toMatchObject({slot: target.cdcSlot, created: true})
      // the session's own lock_timeout is back afterwards
      expect((await client.query('SHOW lock_timeout')).rows[0].lock_timeout).toBe('500ms')
    } finally {
      await holder.end()
      await client.end()
      await admin.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1', [name])
      await admin.query(`DROP DATABASE "${name}"`)
    }
  })
})

describe('cdc tail (temporary slot)', () => {
  it('streams inserts, updates and deletes of learned_patterns in order with the right fields; other tables are filtered out', async () => {
    const estateBefore = await slotRow(ESTATE_SLOT)
    const tail = startCli(['cdc', 'tail', '--prefix', P, '--json', '--table', 'learned_patterns', '--limit', '4', '--timeout', '60s'])
    await waitFor('the tail to stream', async () => (await streamingTails(admin, DB)) === 1)
    await db.query('BEGIN')
    const {rows} = await db.query(
      `INSERT INTO learned_patterns (agent_id, pattern, confidence) VALUES ('agent-cdc', '{"kind":"a"}', 0.5), (NULL, '{"kind":"b"}', 0.25) RETURNING id`,
    )
    await db.query("UPDATE agents SET name = 'renamed' WHERE id = 'agent-cdc'") // not a captured table here
    await db.query('COMMIT')
    const [a, b] = rows.map((r) => Number(r.id))
    await db.query('UPDATE learned_patterns SET confidence = 0.75 WHERE id = $1', [a])
    await db.query('DELETE FROM learned_patterns WHERE id = $1', [b])
    const {code} = await tail.done
    expect(code, tail.stderr()).toBe(0)

    const lines = jsonLines(tail.stdout())
    expect(lines.map((l) => l.action)).toEqual(['insert', 'insert', 'update', 'delete'])
    for (const line of lines) {
      expect(Object.keys(line)).toEqual(['lsn', 'xid', 'commitTime', 'action', 'schema', 'table', 'columns', 'identity'])
      expect(line).toMatchObject({schema: 'public', table: 'learned_patterns'})
      expect(line.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/)
      expect(typeof line.xid).toBe('number')
      expect(line.commitTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/)
    }
    expect(lines[0].columns).toMatchObject({id: a, agent_id: 'agent-cdc', pattern: '{"kind": "a"}', confidence: 0.5})
    expect(lines[0].identity).toBeNull()
    expect(lines[1].columns).toMatchObject({id: b, agent_id: null, confidence: 0.25})
    expect(lines[0].xid).toBe(lines[1].xid) // one transaction
    expect(lines[2].columns).toMatchObject({id: a, confidence: 0.75})
    expect(lines[2].identity).toEqual({id: a})
    expect(lines[3].columns).toBeNull()
    expect(lines[3].identity).toEqual({id: b})
    for (let i = 1; i < lines.length; i++) expect(await lsnCompare(lines[i].lsn, lines[i - 1].lsn)).toBe(1)

    expect(tail.stderr()).toMatch(/last confirmed LSN [0-9A-F]+\/[0-9A-F]+/)
    expect(tail.stderr()).toMatch(new RegExp(`^tailing ${DB} \\(temporary slot singularity_tail_\\d+_[0-9a-f]+, tables public\\.learned_patterns\\); Ctrl-C to stop$`, 'm'))
    // nothing left behind; the production slot was neither held nor advanced
    await waitFor('no temporary slot', async () => (await temporarySlots()).length === 0)
    expect((await slotRow(ESTATE_SLOT))!.confirmed_flush_lsn).toBe(estateBefore!.confirmed_flush_lsn)
  })

  it('a temporary tail killed with SIGKILL leaves no slot behind', async () => {
    const tail = startCli(['cdc', 'tail', '--prefix', P, '--json'])
    const slots = await waitFor('the temporary slot', async () => {
      const s = await temporarySlots()
      return s.some((x) => x.active_pid !== null) && s
    })
    expect(slots).toHaveLength(1)
    tail.child.kill('SIGKILL')
    expect((await tail.done).signal).toBe('SIGKILL')
    await waitFor('the temporary slot to disappear', async () => (await temporarySlots()).length === 0, {timeoutMs: 20_000})
  })

  it('readable lines when not --json; --raw passes wal2json format-version 2 through', async () => {
    const human = startCli(['cdc', 'tail', '--prefix', P, '--table', 'public.learned_patterns', '--limit', '1', '--timeout', '60s'])
    const raw = startCli(['cdc', 'tail', '--prefix', P, '--raw', '--table', 'learned_patterns', '--limit', '1', '--timeout', '60s'])
    await waitFor('both tails to stream', async () => (await streamingTails(admin, DB)) === 2)
    // transactions the table filter empties (DDL, another table) print nothing, not even BEGIN/COMMIT
    await db.query('CREATE TABLE cdc_raw_noise (n int)')
    await db.query('INSERT INTO cdc_raw_noise VALUES (1)')
    const {rows} = await db.query(`INSERT INTO learned_patterns (pattern, confidence) VALUES ('{"kind":"h"}', 0.1) RETURNING id`)
    const [h, r] = await Promise.all([human.done, raw.done])
    expect(h.code, human.stderr()).toBe(0)
    expect(r.code, raw.stderr()).toBe(0)
    const line = human.stdout().trim()
    expect(line.split('\n')).toHaveLength(1)
    expect(line).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z\\s+INSERT\\s+public\\.learned_patterns\\s+id=${rows[0].id}\\b`))
    expect(line).not.toContain('\u001B[') // no colour off a terminal
    const objects = jsonLines(raw.stdout())
    expect(objects.map((o) => o.action)).toEqual(['B', 'I'])
    expect(objects[1]).toMatchObject({schema: 'public', table: 'learned_patterns'})
    expect(objects[1].columns.find((c: {name: string}) => c.name === 'id')).toMatchObject({type: 'bigint', value: Number(rows[0].id)})
    await waitFor('no temporary slot', async () => (await temporarySlots()).length === 0)
    await db.query('DROP TABLE cdc_raw_noise')
  })
})

describe('cdc tail --slot', () => {
  it("reads the estate slot's backlog through a temporary copy: action filter, and the slot's position does not move", async () => {
    const before = await slotRow(ESTATE_SLOT)
    const result = await runCli(['cdc', 'tail', '--prefix', P, '--slot', ESTATE_SLOT, '--json', '--action', 'delete', '--table', 'learned_patterns', '--timeout', '3s'])
    expect(result.exitCode, result.stderr).toBe(0)
    const lines = result.jsonLines()
    expect(lines.length).toBeGreaterThanOrEqual(1)
    expect(lines.every((l) => l.action === 'delete' && l.table === 'learned_patterns')).toBe(true)
    const after = await slotRow(ESTATE_SLOT)
    expect(after!.confirmed_flush_lsn).toBe(before!.confirmed_flush_lsn)
    expect(after!.active).toBe(false)
    expect(result.stderr).toContain(`${ESTATE_SLOT} untouched`)
  })

  it('--consume: killed mid-stream and restarted, every committed change arrives at least once; the slot advances', async () => {
    const slot = `${P}export`
    await db.query("SELECT pg_create_logical_replication_slot($1, 'wal2json')", [slot])
    const batches = 40
    const perBatch = 200
    const ids = new Set<number>()
    for (let i = 0; i < batches; i++) {
      const {rows} = await db.query(
        `INSERT INTO learned_patterns (pattern, confidence, code_snippet)
         SELECT jsonb_build_object('n', g), 0.5, repeat('x', 200) FROM generate_series(1, $1) g RETURNING id`,
        [perBatch],
      )
      for (const r of rows) ids.add(Number(r.id))
    }
    const {rows: endRows} = await db.query('SELECT pg_current_wal_lsn()::text AS lsn')
    const end = endRows[0].lsn
    const start = (await slotRow(slot))!.confirmed_flush_lsn

    // First run: stop reading its output (the pipe fills, the CLI blocks) and kill it mid-stream.
    const first = startCli(['cdc', 'tail', '--prefix', P, '--slot', slot, '--consume', '--json', '--table', 'learned_patterns'])
    first.child.stdout.once('data', () => first.child.stdout.pause())
    await waitFor('the first lines', async () => first.stdout().length > 0)
    await new Promise((r) => setTimeout(r, 1500)) // it writes until the pipe is full, then waits
    first.child.kill('SIGKILL')
    first.child.stdout.resume() // whatever it wrote before dying is delivered
    expect((await first.done).signal).toBe('SIGKILL')
    const firstLines = jsonLines(first.stdout().slice(0, first.stdout().lastIndexOf('\n') + 1))
    expect(firstLines.length).toBeGreaterThan(0)
    expect(firstLines.length).toBeLessThan(ids.size) // it really died mid-stream
    await waitFor('the slot to be released', async () => (await slotRow(slot))!.active === false)
    const afterKill = (await slotRow(slot))!.confirmed_flush_lsn

    // Second run: read to the end.
    const second = await runCli(['cdc', 'tail', '--prefix', P, '--slot', slot, '--consume', '--json', '--table', 'learned_patterns', '--until-lsn', end, '--timeout', '60s'])
    expect(second.exitCode, second.stderr).toBe(0)
    const secondLines = second.jsonLines()

    const seen = new Set<number>()
    let delivered = 0
    for (const line of [...firstLines, ...secondLines]) {
      if (line.action !== 'insert') continue
      const id = line.columns.id as number
      if (ids.has(id)) {
        seen.add(id)
        delivered++
      }
    }
    expect(seen.size).toBe(ids.size) // every committed change at least once
    expect(delivered).toBeGreaterThanOrEqual(ids.size)
    // the position moved with --consume only, and not past what the first run had written out
    expect(await lsnCompare(afterKill, start)).toBeGreaterThanOrEqual(0)
    const final = (await slotRow(slot))!.confirmed_flush_lsn
    expect(await lsnCompare(final, secondLines.at(-1).lsn)).toBe(1)
    expect(second.stderr).toContain(`last confirmed LSN ${final} on slot ${slot}`)

    // A copy-read of the now consumed slot sees nothing old; the slot does not move.
    const peek = await runCli(['cdc', 'tail', '--prefix', P, '--slot', slot, '--json', '--timeout', '2s'])
    expect(peek.exitCode).toBe(0)
    expect(peek.jsonLines().filter((l) => ids.has(l.columns?.id))).toHaveLength(0)
    expect((await slotRow(slot))!.confirmed_flush_lsn).toBe(final)
  })

  it('--consume of a slot another consumer holds exits 1 with the fix', async () => {
    const slot = `${P}export`
    const holder = startCli(['cdc', 'tail', '--prefix', P, '--slot', slot, '--consume', '--json', '--timeout', '60s'])
    await waitFor('the holder', async () => (await slotRow(slot))!.active === true)
    const second = await runCli(['cdc', 'tail', '--prefix', P, '--slot', slot, '--consume'])
    expect(second.exitCode).toBe(1)
    expect(second.stderr).toMatch(/^error: replication slot t_cdc_export is in use by PID \d+/)
    expect(second.stderr).toMatch(/hint: watch without --consume/)
    // `cdc slots drop` refuses an active slot
    const drop = await runCli(['cdc', 'slots', 'drop', slot, '--confirm', slot, '--prefix', P])
    expect(drop.exitCode).toBe(1)
    expect(drop.stderr).toMatch(/in use/)
    holder.child.kill('SIGINT') // Ctrl-C: confirms, exits 0
    const {code} = await holder.done
    expect(code).toBe(0)
    expect(holder.stderr()).toMatch(/interrupted.*last confirmed LSN/)
  })
})

describe('cdc slots', () => {
  it('figures match pg_replication_slots; --fail-if-retained-gt exits 3 above the threshold', async () => {
    const result = await runCli(['cdc', 'slots', '--prefix', P, '--json'])
    expect(result.exitCode, result.stderr).toBe(0)
    const report = result.json()
    const mine = report.slots.find((s: {name: string}) => s.name === ESTATE_SLOT)
    const row = await slotRow(ESTATE_SLOT)
    expect(mine).toMatchObject({
      plugin: 'wal2json',
      database: DB,
      active: row!.active,
      temporary: false,
      confirmedFlushLsn: row!.confirmed_flush_lsn,
      restartLsn: row!.restart_lsn,
      walStatus: row!.wal_status,
      estate: true,
    })
    const {rows} = await admin.query('SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::bigint::text AS d', [report.currentLsn, row!.restart_lsn])
    expect(mine.retainedBytes).toBe(Number(rows[0].d))
    expect(mine.retained).toMatch(/^\d+(\.\d)? (B|kB|MB|GB|TB)$/)
    expect(report.missing).toEqual([])
    const {rows: all} = await admin.query('SELECT count(*)::int AS n FROM pg_replication_slots')
    expect(report.slots.length).toBeLessThanOrEqual(all[0].n + 2) // other test files may add or drop slots meanwhile

    const over = await runCli(['cdc', 'slots', '--prefix', P, '--fail-if-retained-gt', '1', '--json'])
    expect(over.exitCode).toBe(3)
    expect(over.json().threshold.exceeded).toContain(ESTATE_SLOT)
    const under = await runCli(['cdc', 'slots', '--prefix', P, '--fail-if-retained-gt', '1TB'])
    expect(under.exitCode).toBe(0)
    expect(under.stdout).toContain(ESTATE_SLOT)
  })

  it('drop: refused without --confirm (no TTY), --dry-run changes nothing, unknown exits 4, --confirm drops', async () => {
    const slot = `${P}to_drop`
    await db.query("SELECT pg_create_logical_replication_slot($1, 'wal2json')", [slot])
    const refused = await runCli(['cdc', 'slots', 'drop', slot, '--prefix', P])
    expect(refused.exitCode).toBe(2)
    expect(refused.stderr).toContain(`--confirm ${slot}`)
    const dry = await runCli(['cdc', 'slots', 'drop', slot, '--prefix', P, '--dry-run', '--json'])
    expect(dry.exitCode).toBe(0)
    expect(dry.json()).toMatchObject({slot, dropped: false, dryRun: true})
    expect(await slotRow(slot)).toBeDefined()
    const dropped = await runCli(['cdc', 'slots', 'drop', slot, '--prefix', P, '--confirm', slot, '--json'])
    expect(dropped.exitCode, dropped.stderr).toBe(0)
    expect(dropped.json()).toMatchObject({slot, dropped: true})
    expect(await slotRow(slot)).toBeUndefined()
    const unknown = await runCli(['cdc', 'slots', 'drop', slot, '--prefix', P, '--confirm', slot, '--json'])
    expect(unknown.exitCode).toBe(4)
    expect(unknown.json().error.code).toBe('SLOT_NOT_FOUND')
  })
})

describe('cdc tail errors: one line with the fix', () => {
  it.each([
    [['--until-lsn', 'not-an-lsn'], 2, /invalid LSN for --until-lsn/],
    [['--from-lsn', '0/XYZ', '--slot', ESTATE_SLOT], 2, /invalid LSN for --from-lsn/],
    [['--from-lsn', '0/1'], 2, /--from-lsn needs --slot/],
    [['--table', 'no_such_table'], 2, /table not found: no_such_table/],
    [['--table', 'bad;name'], 2, /invalid table name/],
    [['--action', 'insert,upsert'], 2, /unknown action 'upsert'/],
    [['--slot', `${P}nope`], 4, /replication slot not found/],
    [['--raw', '--json'], 2, /choose one/],
    [['--db', 'genesis'], 2, /unknown database 'genesis'/],
    [['--timeout', 'soon'], 2, /invalid --timeout/],
  ])('cdc tail %j exits %i', async (args, exitCode, message) => {
    const result = await runCli(['cdc', 'tail', '--prefix', P, ...(args as string[])])
    expect(result.exitCode).toBe(exitCode)
    if ((args as string[]).includes('--json')) {
      expect(result.json().error.message).toMatch(message as RegExp)
    } else {
      const lines = result.stderr.trim().split('\n')
      expect(lines[0]).toMatch(message as RegExp)
      expect(lines[1]).toMatch(/^hint: /)
      expect(lines).toHaveLength(2)
      expect(result.stdout).toBe('')
    }
  })

  it('under --json an error is one JSON document on stdout, keeping the exit code', async () => {
    const result = await runCli(['cdc', 'tail', '--prefix', P, '--json', '--until-lsn', 'zz'])
    expect(result.exitCode).toBe(2)
    expect(result.json().error).toMatchObject({code: 'BAD_LSN', exitCode: 2})
  })
})
