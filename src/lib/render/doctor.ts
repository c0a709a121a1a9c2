/** How `doctor` looks to people: one row per check, the verdict, and where to look closer. */
import {fold, formatTable, type Column, type TableOptions} from '../cli/table.js'
import type {DoctorReport} from '../doctor/doctor.js'
import type {CheckResult} from '../doctor/types.js'

export const DOCTOR_COLUMNS: Column<CheckResult>[] = [
  {key: 'check', header: 'check', priority: 0, text: (c) => c.check},
  {key: 'status', header: 'status', priority: 1, text: (c) => (c.status === 'fail' ? 'FAIL' : c.status), raw: (c) => c.status, tone: (c) => c.status},
  {key: 'detail', header: 'detail', priority: 2, min: 24, below: true, text: (c) => c.detail},
  // A command is no use cut: it is shown whole, or under the table for the checks that need a look.
  {key: 'next', header: 'look closer', priority: 3, min: Number.MAX_SAFE_INTEGER, text: (c) => c.next},
]

/** The checks as a table, then the verdict. */
export function renderDoctor(report: DoctorReport, options: TableOptions): string[] {
  const table = formatTable(DOCTOR_COLUMNS, report.checks, options)
  const lines = table.lines
  if (options.format === 'csv' || options.format === 'tsv') return lines
  if (table.hidden.includes('next')) {
    const attention = report.checks.filter((c) => c.status !== 'ok')
    if (attention.length > 0 && lines.at(-1) !== '') lines.push('')
    for (const c of attention) lines.push(...fold(`${c.check}: look closer with \`${c.next}\``, options.width, '    '))
  }
  const verdict = report.verdict === 'fail' ? 'verdict: UNHEALTHY' : report.verdict === 'warn' ? 'verdict: healthy, with warnings' : 'verdict: healthy'
  lines.push(options.paint ? options.paint.tone(report.verdict, verdict) : verdict)
  return lines
}
