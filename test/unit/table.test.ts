import {describe, expect, it} from 'vitest'

import {loadPaint, PLAIN} from '../../src/lib/cli/colour.js'
import {cut, displayWidth, fold, formatTable, sortRows, type Column} from '../../src/lib/cli/table.js'
import {terminalWidth} from '../../src/lib/cli/terminal.js'
import {slotCapFinding} from '../../src/lib/cdc/cap.js'
import {serverWarnings} from '../../src/lib/reconcile/server.js'
import type {ServerObservation} from '../../src/lib/reconcile/observe.js'
import {withGrowth, type SlotRow, type SlotsReport} from '../../src/lib/cdc/slots.js'

interface Job {
  name: string
  status: string | null
  schedule: string
  runs: number
  message: string
}

const JOBS: Job[] = [
  {name: 'singularity:assign-tasks', status: 'succeeded', schedule: '*/2 * * * *', runs: 120, message: 'SELECT 1'},
  {name: 'Singularity.Jobs.TemplateDistributionWorker', status: 'failed', schedule: '0 */4 * * *', runs: 3, message: 'ERROR: relation "templates" does not exist, the application has not migrated its tables yet'},
  {name: 'backup-daily', status: null, schedule: '0 1 * * *', runs: 0, message: ''},
]

const COLUMNS: Column<Job>[] = [
  {key: 'job', header: 'job', priority: 0, text: (j) => j.name},
  {key: 'status', header: 'status', priority: 1, text: (j) => j.status, tone: (j) => (j.status === 'failed' ? 'fail' : undefined)},
  {key: 'schedule', header: 'schedule', priority: 2, min: 99, text: (j) => j.schedule},
  {key: 'runs', header: 'runs', priority: 3, align: 'right', text: (j) => j.runs.toLocaleString('en-US'), raw: (j) => j.runs},
  {key: 'message', header: 'message', priority: 4, min: 12, below: true, text: (j) => j.message},
]

const widest = (lines: string[]) => Math.max(...lines.map(displayWidth))

describe('the table renderer', () => {
  it('without a width (a pipe) shows every column and cuts nothing', () => {
    const {lines, hidden} = formatTable(COLUMNS, JOBS)
    expect(hidden).toEqual([])
    expect(lines[0]).toMatch(/^JOB\s+STATUS\s+SCHEDULE\s+RUNS\s+MESSAGE$/)
    expect(lines.join('\n')).toContain(JOBS[1].message)
    expect(lines.join('\n')).not.toContain('…')
    expect(lines).toHaveLength(4)
  })

  it('one header style: upper-case titles on the first line, no blank line under them', () => {
    const {lines} = formatTable(COLUMNS, JOBS, {width: 200})
    expect(lines[0]).toBe(lines[0].toUpperCase())
    expect(lines[1]).toMatch(/^singularity:assign-tasks/)
  })

  it('fits a width: the least important columns drop first, the key column stays whole', () => {
    for (const width of [80, 60, 50]) {
      const {lines, hidden} = formatTable(COLUMNS, JOBS, {width})
      const table = lines.slice(0, 4)
      expect(widest(lines), `width ${width}`).toBeLessThanOrEqual(width)
      for (const job of JOBS) expect(table.join('\n')).toContain(job.name)
      if (hidden.length > 0) expect(hidden[0]).toBe('message') // priority 4 goes before priority 3
    }
    const narrow = formatTable(COLUMNS, JOBS, {width: 70})
    expect(narrow.hidden).toEqual(['message', 'runs'])
    expect(narrow.lines[0]).toMatch(/^JOB\s+STATUS\s+SCHEDULE$/)
  })

  it('cuts long cells with … and never wraps them', () => {
    const {lines} = formatTable(COLUMNS, JOBS, {width: 100})
    const table = lines.slice(0, lines.indexOf(''))
    expect(table).toHaveLength(4) // one line per row: nothing wrapped
    const failed = table.find((l) => l.startsWith('Singularity.Jobs.TemplateDistributionWorker'))!
    expect(failed).toMatch(/…$/)
    expect(displayWidth(failed)).toBeLessThanOrEqual(100)
  })

  it('a `below` column that was cut or dropped moves under the table as key: value lines, folded at word boundaries', () => {
    const {lines} = formatTable(COLUMNS, JOBS, {width: 60})
    const at = lines.indexOf('')
    expect(at).toBeGreaterThan(3)
    const below = lines.slice(at + 1)
    expect(below[0]).toBe('singularity:assign-tasks: SELECT 1')
    expect(below[1]).toMatch(/^Singularity\.Jobs\.TemplateDistributionWorker: ERROR:/)
    expect(below.join('\n')).not.toContain('backup-daily') // nothing to say: no line
    expect(below.join(' ').replace(/\s+/g, ' ')).toContain(JOBS[1].message)
    for (const line of below) expect(displayWidth(line)).toBeLessThanOrEqual(60)
    // the words are whole: folding happened at spaces
    for (const word of JOBS[1].message.split(' ')) expect(below.join(' ')).toContain(word)
  })

  it('notes the hidden columns and how to show them', () => {
    const {lines} = formatTable(COLUMNS, JOBS, {width: 70})
    expect(lines.join(' ').replace(/\s+/g, ' ')).toMatch(/2 columns hidden to fit 70 columns: message, runs; --wide or --columns shows them/)
  })

  it('key columns are cut only when they alone are wider than the terminal, never below a readable minimum', () => {
    const {lines} = formatTable(COLUMNS, JOBS, {width: 20})
    const row = lines.find((l) => l.startsWith('Singularity.Jobs'))!
    expect(displayWidth(row)).toBeGreaterThanOrEqual(16)
    expect(row).toMatch(/…$/)
  })

  it('--wide: every column, nothing cut, whatever the width', () => {
    const {lines, hidden} = formatTable(COLUMNS, JOBS, {width: 40, wide: true})
    expect(hidden).toEqual([])
    expect(lines.join('\n')).toContain(JOBS[1].message)
    expect(lines[0]).toMatch(/MESSAGE$/)
  })

  it('--columns picks and orders columns by key or by header name; an unknown name is a usage error listing them', () => {
    const {lines} = formatTable(COLUMNS, JOBS, {columns: ['runs', 'job']})
    expect(lines[0]).toMatch(/^RUNS\s+JOB$/)
    expect(lines[1]).toMatch(/^\s*120\s+singularity:assign-tasks$/)
    expect(() => formatTable(COLUMNS, JOBS, {columns: ['nope']})).toThrow(/unknown column 'nope' for --columns/)
    try {
      formatTable(COLUMNS, JOBS, {columns: ['nope']})
    } catch (error) {
      expect((error as {exitCode: number}).exitCode).toBe(2)
      expect((error as {hint: string}).hint).toContain('job, status, schedule, runs, message')
    }
  })

  it('--sort sorts on the raw value (numbers as numbers), -col descending, empty values last', () => {
    expect(sortRows(COLUMNS, JOBS, 'runs').map((j) => j.runs)).toEqual([0, 3, 120])
    expect(sortRows(COLUMNS, JOBS, '-runs').map((j) => j.runs)).toEqual([120, 3, 0])
    expect(sortRows(COLUMNS, JOBS, 'status').map((j) => j.status)).toEqual(['failed', 'succeeded', null])
    expect(sortRows(COLUMNS, JOBS, '-status').map((j) => j.status)).toEqual(['succeeded', 'failed', null])
    expect(() => sortRows(COLUMNS, JOBS, 'bogus')).toThrow(/unknown column 'bogus' for --sort/)
  })

  it('--no-header leaves the header line out', () => {
    const {lines} = formatTable(COLUMNS, JOBS, {header: false})
    expect(lines[0]).toMatch(/^singularity:assign-tasks/)
    expect(formatTable(COLUMNS, JOBS, {header: false, format: 'csv'}).lines[0]).toMatch(/^singularity:assign-tasks,/)
  })

  it('--csv: keys as header, raw values, RFC 4180 quoting, nothing cut whatever the width', () => {
    const rows = [...JOBS, {name: 'quoted', status: 'ok', schedule: '@daily', runs: 1, message: 'a "b", c\nd'}]
    const {lines} = formatTable(COLUMNS, rows, {format: 'csv', width: 20, columns: ['job', 'runs', 'message']})
    expect(lines[0]).toBe('job,runs,message')
    expect(lines[1]).toBe('singularity:assign-tasks,120,SELECT 1')
    expect(lines[2]).toBe(`Singularity.Jobs.TemplateDistributionWorker,3,"${JOBS[1].message.replaceAll('"', '""')}"`)
    expect(lines[3]).toBe('backup-daily,0,')
    expect(lines.slice(4).join('\n')).toBe('quoted,1,"a ""b"", c\nd"')
  })

  it('--tsv: tabs between values, tabs and newlines inside values escaped', () => {
    const {lines} = formatTable(COLUMNS, [{name: 'x', status: 'ok', schedule: '@daily', runs: 1, message: 'a\tb\nc'}], {format: 'tsv', sort: 'job'})
    expect(lines).toEqual(['job\tstatus\tschedule\truns\tmessage', 'x\tok\t@daily\t1\ta\\tb\\nc'])
  })

  it('colour: one meaning through chalk (fail red, none dim, header bold), widths unaffected', async () => {
    const paint = await loadPaint(true)
    const {lines} = formatTable(COLUMNS, JOBS, {width: 80, paint})
    const plain = formatTable(COLUMNS, JOBS, {width: 80, paint: PLAIN}).lines
    const strip = (s: string) => s.replace(/\u001B\[[0-9;]*m/g, '')
    expect(lines.map(strip)).toEqual(plain)
    expect(lines[0]).toContain('\u001B[1m') // bold header
    expect(lines.find((l) => l.includes('failed'))).toContain('\u001B[31mfailed') // red
    expect(lines.find((l) => l.startsWith('backup-daily'))).toContain('\u001B[2m-') // dim none
  })
})

describe('text width, cutting and folding', () => {
  it('counts wide characters as two columns', () => {
    expect(displayWidth('abc')).toBe(3)
    expect(displayWidth('→ …')).toBe(3)
    expect(displayWidth('日本')).toBe(4)
    expect(cut('abcdef', 4)).toBe('abc…')
    expect(cut('日本語テキスト', 5)).toBe('日本…')
    expect(displayWidth(cut('日本語テキスト', 5))).toBeLessThanOrEqual(5)
  })

  it('folds at word boundaries with an indent, splitting only words longer than a line', () => {
    expect(fold('one two three four', 9, '  ')).toEqual(['one two', '  three', '  four'])
    expect(fold('short', 80)).toEqual(['short'])
    expect(fold('a long line that would not fit', undefined)).toEqual(['a long line that would not fit'])
    const split = fold('x abcdefghijklmnop', 8, '')
    expect(split.every((l) => displayWidth(l) <= 8)).toBe(true)
    expect(split.join('')).toBe('xabcdefghijklmnop')
  })
})

describe('the terminal width', () => {
  const tty = (columns?: number) => ({isTTY: true, columns}) as unknown as NodeJS.WriteStream
  const pipe = {isTTY: false} as unknown as NodeJS.WriteStream
  it('comes from the terminal, then COLUMNS; none for a pipe without COLUMNS', () => {
    expect(terminalWidth(tty(120), {COLUMNS: '80'})).toBe(120)
    expect(terminalWidth(tty(undefined), {COLUMNS: '90'})).toBe(90)
    expect(terminalWidth(tty(undefined), {})).toBe(80)
    expect(terminalWidth(pipe, {})).toBeUndefined()
    expect(terminalWidth(pipe, {COLUMNS: '100'})).toBe(100)
    expect(terminalWidth(pipe, {COLUMNS: 'wide'})).toBeUndefined()
  })
})

describe('slot safety, pure parts', () => {
  it('slotCapFinding warns on an unlimited cap with the exact setting to change, and is silent on a finite one', () => {
    const finding = slotCapFinding({max_slot_wal_keep_size: '-1'})
    expect(finding).toMatchObject({setting: 'max_slot_wal_keep_size', current: '-1', severity: 'warn'})
    expect(finding!.fix).toMatch(/ALTER SYSTEM SET max_slot_wal_keep_size = '\d+GB'; SELECT pg_reload_conf\(\)/)
    expect(slotCapFinding({max_slot_wal_keep_size: '4GB'})).toBeNull()
    expect(slotCapFinding({})!.message).toMatch(/PostgreSQL 13/)
  })

  it("the plan's server-settings area warns on an unlimited cap, with the exact setting to change", () => {
    const server = (cap: string | null) => ({facts: {maxSlotWalKeepSize: cap}}) as unknown as ServerObservation
    expect(serverWarnings(server('-1'))).toEqual([expect.stringMatching(/max_slot_wal_keep_size is unlimited .*fix: ALTER SYSTEM SET max_slot_wal_keep_size = '4GB'; SELECT pg_reload_conf\(\)/)])
    expect(serverWarnings(server('4GB'))).toEqual([])
  })

  const slot = (retainedBytes: number, safeWalSizeBytes: number | null): SlotRow =>
    ({name: 's', retainedBytes, safeWalSizeBytes, walStatus: 'reserved', growthBytesPerSecond: null, timeLeftSeconds: null, timeLeftUntil: null}) as SlotRow
  const report = (readAt: string, slots: SlotRow[], capBytes: number | null, diskFreeBytes: number | null = null): SlotsReport =>
    ({readAt, slots, capBytes, diskFreeBytes, capSetting: capBytes === null ? '-1' : '1GB', currentLsn: null, sampleSeconds: null, inactiveSinceAvailable: false}) as SlotsReport

  it('growth and time left come from two readings: until the cap, or until the disk is full without one', () => {
    const capped = withGrowth(report('2026-01-01T00:00:00Z', [slot(100, 1000)], 1100), report('2026-01-01T00:00:10Z', [slot(200, 900)], 1100))
    expect(capped.sampleSeconds).toBe(10)
    expect(capped.slots[0]).toMatchObject({growthBytesPerSecond: 10, timeLeftSeconds: 90, timeLeftUntil: 'cap'})
    const uncapped = withGrowth(report('2026-01-01T00:00:00Z', [slot(100, null)], null, 5000), report('2026-01-01T00:00:05Z', [slot(150, null)], null, 5000))
    expect(uncapped.slots[0]).toMatchObject({growthBytesPerSecond: 10, timeLeftSeconds: 500, timeLeftUntil: 'disk'})
    const shrinking = withGrowth(report('2026-01-01T00:00:00Z', [slot(300, 800)], 1100), report('2026-01-01T00:00:05Z', [slot(100, 1000)], 1100))
    expect(shrinking.slots[0]).toMatchObject({growthBytesPerSecond: -40, timeLeftSeconds: null})
  })
})
