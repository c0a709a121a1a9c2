import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

// in process: the same argv, output and exit codes as a child process, without a node start per run
import {runCliInProcess as runCli} from '../helpers/cli.js'
import {adminUrl, provisionedEstate, withClient} from '../helpers/db.js'
import {Terminal, type Screen} from '../helpers/tmux.js'
import {displayWidth} from '../../src/lib/cli/table.js'

const P = 't_term_'
const root = mkdtempSync(join(tmpdir(), 'singularity-term-'))
const backups = join(root, 'backups')
const LONG_FAILURE = 'ERROR: relation "learned_patterns_staging" does not exist; the learning run aborted before it could aggregate anything, retried next cycle'

/** The commands under test, each with the way to read its key column's values from its --json. */
const COMMANDS: {name: string; args: string[]; keys: (json: any) => string[]}[] = [
  {name: 'jobs list', args: ['jobs', 'list', '--prefix', P], keys: (j) => j.jobs.map((x: any) => (x.runner === 'system-cron' ? x.name : x.job))},
  {name: 'jobs history', args: ['jobs', 'history', 'learn-patterns', '--prefix', P], keys: (j) => j.runs.map((r: any) => String(r.runid))},
  {name: 'queue stats', args: ['queue', 'stats', '--prefix', P], keys: (j) => j.queues.map((q: any) => q.queue)},
  {name: 'db status', args: ['db', 'status', '--prefix', P], keys: (j) => j.databases.map((d: any) => d.name)},
  {name: 'doctor', args: ['doctor', '--prefix', P, '--backup-dir', backups], keys: (j) => j.checks.map((c: any) => c.check)},
  // other test files make and drop slots on the same server meanwhile: the estate's own slot is the one to find
  {name: 'cdc slots', args: ['cdc', 'slots', '--prefix', P], keys: (j) => j.slots.filter((s: any) => s.name.startsWith(P)).map((s: any) => s.name)},
  {name: 'backup list', args: ['backup', 'list', '--dir', backups], keys: (j) => j.backups.map((b: any) => b.id)},
]

/** The rows of the table: from the header line to the first blank line. */
function tableRows(screen: Screen, header: RegExp): string[] {
  const start = screen.lines.findIndex((l) => header.test(l))
  expect(start, `no table header ${header} on the screen:\n${screen.lines.join('\n')}`).toBeGreaterThanOrEqual(0)
  const rest = screen.lines.slice(start + 1)
  const end = rest.findIndex((l) => l.trim() === '' || l.startsWith('('))
  return end === -1 ? rest : rest.slice(0, end)
}

const HEADERS: Record<string, RegExp> = {
  'jobs list': /^JOB\s+STATUS/,
  'jobs history': /^RUN\s+STATUS/,
  'queue stats': /^DATABASE\s+QUEUE/,
  'db status': /^DATABASE\s+VERDICT/,
  doctor: /^CHECK\s+STATUS/,
  'cdc slots': /^SLOT\s+WAL_STATUS/,
  'backup list': /^ID\s+STATUS/,
}

describe('tables in a real terminal (tmux) at 80 and 120 columns', () => {
  const terminal = new Terminal()

  beforeAll(async () => {
    // a copy of the run's template estate completed by `db init` (throws on failure)
    await provisionedEstate(P, join(root, 'pw.json'))
    await withClient(adminUrl(), async (c) => {
      // The estate's own jobs stay still; the runs below are the history the tables show.
      await c.query("UPDATE cron.job SET active = false WHERE jobname LIKE 'singularity:' || $1 || '%'", [P])
      const {rows} = await c.query<{jobid: string}>("SELECT jobid FROM cron.job WHERE jobname = 'singularity:' || $1 || 'learn-patterns'", [P])
      await c.query('DELETE FROM cron.job_run_details WHERE jobid = $1', [rows[0].jobid])
      for (const [status, message, minutesAgo] of [['succeeded', 'SELECT 1', 12], ['succeeded', 'SELECT 1', 7], ['failed', LONG_FAILURE, 2]] as const) {
        await c.query(
          `INSERT INTO cron.job_run_details (jobid, runid, job_pid, database, username, command, status, return_message, start_time, end_time)
           VALUES ($1, nextval('cron.runid_seq'), 0, $2, 'postgres', 'SELECT learn()', $3, $4, now() - make_interval(mins => $5), now() - make_interval(mins => $5) + interval '1.5 seconds')`,
          [rows[0].jobid, `${P}singularity`, status, message, minutesAgo],
        )
      }
    })
    const backup = await runCli(['backup', '--prefix', P, '--db', 'genesis', '--dir', backups, '--kind', 'daily', '--json'], {timeoutMs: 180_000})
    expect(backup.exitCode, backup.stderr).toBe(0)
  })

  afterAll(() => terminal.close())

  for (const command of COMMANDS) {
    it(`${command.name}: no line wider than the terminal, key values whole, at 80 and 120 columns`, async () => {
      const json = await runCli([...command.args, '--json'], {timeoutMs: 120_000})
      expect([0, 3], json.stderr).toContain(json.exitCode)
      const keys = command.keys(json.json())
      expect(keys.length, `${command.name} has rows`).toBeGreaterThan(0)
      for (const width of [80, 120]) {
        const screen = await terminal.run(width, command.args)
        const shown = screen.lines.join('\n')
        expect([0, 3], shown).toContain(screen.exitCode)
        for (const line of screen.lines) expect(displayWidth(line), `${command.name} at ${width}: ${line}`).toBeLessThanOrEqual(width)
        const rows = tableRows(screen, HEADERS[command.name])
        expect(rows.length, shown).toBeGreaterThanOrEqual(keys.length)
        for (const key of keys) {
          // the whole value, between column gaps (or the line's ends): never cut, never wrapped
          const whole = new RegExp(`(^|\\s)${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(\\s|$)`)
          expect(rows.some((r) => whole.test(r)), `${command.name} at ${width}: '${key}' whole in\n${shown}`).toBe(true)
        }
        expect(shown).not.toContain('\u001B[') // what a person sees: no stray escape codes
      }
    })
  }

  it('a long free-text value is never wrapped in the table: it moves under it, folded at word boundaries', async () => {
    const screen = await terminal.run(80, ['jobs', 'history', 'learn-patterns', '--prefix', P])
    const rows = tableRows(screen, HEADERS['jobs history'])
    expect(rows).toHaveLength(3)
    const under = screen.lines.slice(screen.lines.indexOf('', screen.lines.findIndex((l) => HEADERS['jobs history'].test(l))) + 1)
    const text = under.join(' ').replace(/\s+/g, ' ')
    expect(text).toContain(LONG_FAILURE)
    for (const line of under) expect(displayWidth(line)).toBeLessThanOrEqual(80)
  })
})

afterAll(() => rmSync(root, {recursive: true, force: true}))

describe('the table options, through real commands', () => {
  beforeAll(async () => {
    // the estate exists (the terminal tests above made it in this file)
    const status = await runCli(['db', 'status', '--prefix', P, '--json'])
    expect(status.exitCode, status.stdout).toBe(0)
  })

  it('piped output is never cut: every column, no …, whatever the width of the terminal it came from', async () => {
    const piped = await runCli(['jobs', 'list', '--prefix', P])
    expect(piped.exitCode).toBe(0)
    expect(piped.stdout.split('\n')[0]).toMatch(/^JOB\s+STATUS\s+SCHEDULE\s+STREAK\s+DRIFT\s+NEXT RUN \(UTC\)\s+LAST RUN \(UTC\)\s+DATABASE\s+RUNNER\s+ACTIVE\s+MESSAGE \/ NOTE$/)
    expect(piped.stdout).toContain(LONG_FAILURE)
    expect(piped.stdout).not.toContain('…')
  })

  it('COLUMNS gives a pipe a width to fit; --wide shows every column, nothing cut', async () => {
    const fitted = await runCli(['jobs', 'list', '--prefix', P], {env: {COLUMNS: '70'}})
    for (const line of fitted.stdout.trimEnd().split('\n')) expect(displayWidth(line), line).toBeLessThanOrEqual(70)
    expect(fitted.stdout).toMatch(/columns hidden to fit 70 columns/)
    const wide = await runCli(['jobs', 'list', '--prefix', P, '--wide'], {env: {COLUMNS: '70'}})
    expect(wide.exitCode).toBe(0)
    expect(wide.stdout.split('\n')[0]).toMatch(/MESSAGE \/ NOTE$/)
    expect(wide.stdout).toContain(LONG_FAILURE)
    expect(wide.stdout).not.toContain('hidden to fit')
  })

  it('--columns picks and orders columns; an unknown one exits 2 naming the valid ones', async () => {
    const r = await runCli(['doctor', '--prefix', P, '--backup-dir', backups, '--columns', 'status,check'])
    expect(r.stdout.split('\n')[0]).toMatch(/^STATUS\s+CHECK$/)
    expect(r.stdout).toMatch(/^ok\s+databases reachable$/m)
    const bad = await runCli(['queue', 'stats', '--prefix', P, '--columns', 'queue,colour'])
    expect(bad.exitCode).toBe(2)
    expect(bad.stderr).toContain("unknown column 'colour' for --columns")
    expect(bad.stderr).toContain('database, queue, length')
  })

  it('--sort orders rows by a column, -col descending', async () => {
    const names = (out: string) => out.trimEnd().split('\n').slice(1).map((l) => l.split(/\s+/)[0])
    const up = await runCli(['queue', 'stats', '--prefix', P, '--columns', 'queue', '--sort', 'queue'])
    const down = await runCli(['queue', 'stats', '--prefix', P, '--columns', 'queue', '--sort=-queue'])
    expect(names(up.stdout).length).toBeGreaterThan(3)
    expect(names(up.stdout)).toEqual([...names(up.stdout)].sort())
    expect(names(down.stdout)).toEqual([...names(up.stdout)].reverse())
    const runs = await runCli(['jobs', 'history', 'learn-patterns', '--prefix', P, '--csv', '--columns', 'status,start', '--sort', 'start'])
    expect(runs.stdout.trim().split('\n').slice(1).map((l) => l.split(',')[0])).toEqual(['succeeded', 'succeeded', 'failed'])
  })

  it('--csv: only the table on stdout (header of column names, values whole and quoted), other lines on stderr', async () => {
    const r = await runCli(['jobs', 'list', '--prefix', P, '--csv', '--columns', 'job,status,message'], {env: {COLUMNS: '40'}})
    expect(r.exitCode).toBe(0)
    const lines = r.stdout.trimEnd().split('\n')
    expect(lines[0]).toBe('job,status,message')
    expect(lines).toContain(`singularity:${P}learn-patterns,failed,"${LONG_FAILURE.replaceAll('"', '""')}"`)
    expect(r.stdout).not.toMatch(/jobs: \d+ failing/)
    const noHeader = await runCli(['db', 'status', '--prefix', P, '--csv', '--no-header', '--columns', 'database,verdict'])
    expect(noHeader.stdout.trim().split('\n')).toEqual(expect.arrayContaining([`${P}singularity,ok`, `${P}shared_queue,ok`]))
    expect(noHeader.stdout).not.toContain('server:')
    expect(noHeader.stderr).toContain('verdict: ok')
  })

  it('--tsv, and --csv is refused with --json or --tsv (exit 2)', async () => {
    const r = await runCli(['backup', 'list', '--dir', backups, '--tsv', '--columns', 'kind,status,verified'])
    expect(r.stdout.trim().split('\n')).toEqual(['kind\tstatus\tverified', 'daily\tcomplete\tno'])
    expect((await runCli(['cdc', 'slots', '--prefix', P, '--csv', '--json', '--sample', '0'])).exitCode).toBe(2)
    expect((await runCli(['cdc', 'slots', '--prefix', P, '--csv', '--tsv', '--sample', '0'])).exitCode).toBe(2)
  })

  it('--json is unchanged by the table options', async () => {
    const plain = await runCli(['queue', 'stats', '--prefix', P, '--json'])
    const withOptions = await runCli(['queue', 'stats', '--prefix', P, '--json', '--columns', 'queue', '--wide'])
    expect(Object.keys(withOptions.json())).toEqual(Object.keys(plain.json()))
    expect(withOptions.json().queues.map((q: any) => Object.keys(q))).toEqual(plain.json().queues.map((q: any) => Object.keys(q)))
  })
})
