/** How `jobs list` and `jobs history` look to people: their columns for the one table renderer. */
import {formatDuration} from '../cli/format.js'
import {statusTone} from '../cli/colour.js'
import {fold, formatTable, type Column, type TableOptions} from '../cli/table.js'
import {isFailing, type HistoryResult, type HistoryRun, type JobRow, type JobsListResult} from '../cron/jobs.js'

/** '2025-01-05 05:00' (UTC) from an ISO timestamp. */
export function shortTime(iso: string | null | undefined): string {
  return iso ? iso.slice(0, 16).replace('T', ' ') : '-'
}

function seconds(value: number | null): string {
  if (value === null) return ''
  return value < 60 ? `${value}s` : formatDuration(value)
}

/** The columns of `jobs list`, most important first: the job, how its last run went, when it runs. */
export const JOB_COLUMNS: Column<JobRow>[] = [
  {key: 'job', header: 'job', priority: 0, text: (j) => (j.runner === 'system-cron' ? j.name : j.job)},
  {key: 'status', header: 'status', priority: 1, text: (j) => j.lastRun?.status, tone: (j) => (isFailing(j) ? 'fail' : statusTone(j.lastRun?.status))},
  {key: 'schedule', header: 'schedule', priority: 2, min: Number.MAX_SAFE_INTEGER, text: (j) => j.schedule},
  {
    key: 'streak',
    header: 'streak',
    priority: 3,
    align: 'right',
    text: (j) => j.failureStreak,
    tone: (j) => (j.failureStreak ? 'fail' : undefined),
  },
  {
    key: 'drift',
    header: 'drift',
    priority: 4,
    below: true,
    text: (j) => [...j.drift, ...(j.missedRuns ? [`missed ${j.missedRuns >= 1000 ? '1000+' : j.missedRuns}`] : [])].join(', '),
    tone: () => 'warn',
  },
  {key: 'next-run', header: 'next run (UTC)', priority: 5, min: Number.MAX_SAFE_INTEGER, text: (j) => (j.schedule?.startsWith('@reboot') ? 'at startup' : shortTime(j.nextRun)), raw: (j) => j.nextRun},
  // a singularity instance's copy runs this many minutes after the declared time (staggered schedules)
  {key: 'offset', header: 'offset', priority: 6, align: 'right', text: (j) => (j.offsetMinutes ? `+${j.offsetMinutes} min` : j.offsetMinutes === 0 ? '0' : null), raw: (j) => j.offsetMinutes ?? null},
  {
    key: 'last-run',
    header: 'last run (UTC)',
    priority: 6,
    min: Number.MAX_SAFE_INTEGER,
    text: (j) => (j.lastRun ? `${shortTime(j.lastRun.start)}${j.lastRun.durationSeconds === null ? '' : ` (${seconds(j.lastRun.durationSeconds)})`}` : null),
    raw: (j) => j.lastRun?.start,
  },
  {key: 'database', header: 'database', priority: 7, text: (j) => j.database ?? '(host)'},
  {key: 'runner', header: 'runner', priority: 8, text: (j) => j.runner},
  {key: 'active', header: 'active', priority: 9, text: (j) => (j.active === null ? null : j.active ? 'yes' : 'no'), tone: (j) => (j.active === false ? 'warn' : undefined)},
  // Under the table when it does not fit: the messages of runs that did not succeed, and notes.
  {key: 'message', header: 'message / note', priority: 10, min: 20, below: (j) => j.lastRun?.status !== 'succeeded', text: (j) => j.lastRun?.message ?? j.note},
]

/** The table and summary lines of a jobs list, for people. */
export function renderJobs(result: JobsListResult, options: TableOptions, several = false): string[] {
  if (result.jobs.length === 0) return ['no jobs match; see `singularity jobs list` without filters']
  // the offset column where some copy is staggered (several instances), always in CSV/TSV for scripts
  const staggered = result.jobs.some((j) => j.offsetMinutes) || options.format === 'csv' || options.format === 'tsv'
  const shown = staggered ? JOB_COLUMNS : JOB_COLUMNS.filter((c) => c.key !== 'offset')
  // several servers: which server runs each job (the host's system cron is the admin server's)
  const server: Column<JobRow> = {key: 'server', header: 'server', priority: 1, text: (j) => j.server ?? 'main'}
  const columns = several ? [shown[0], server, ...shown.slice(1)] : shown
  const lines = formatTable(columns, result.jobs, options).lines
  if (options.format === 'csv' || options.format === 'tsv') return lines
  const c = result.counts
  const paint = options.paint
  const counts = `${c.jobs} jobs: ${c.failing} failing, ${c.missing} missing, ${c.drifted} drifted (${c.unknown} unknown)${result.cronDatabase ? `; pg_cron ${result.pgCron.version ?? '-'} in ${result.cronDatabase}` : ''}`
  const width = options.wide ? undefined : options.width
  const tone = c.failing + c.missing > 0 ? 'fail' : c.drifted > 0 ? 'warn' : undefined
  lines.push('', ...fold(counts, width, '  ').map((l) => (paint ? paint.tone(tone, l) : l)))
  if (c.missing > 0 || c.drifted > 0) lines.push(...fold('`singularity db init` installs missing jobs and brings drifted ones back to the declared schedule', width, '  '))
  return lines
}

const FAILED_RUN = new Set(['failed', 'retryable', 'discarded'])

/** The columns of `jobs history`; JOB and DATABASE only when the runs come from several jobs. */
export function historyColumns(result: HistoryResult, severalServers = false): Column<HistoryRun>[] {
  const several = new Set(result.runs.map((r) => `${r.job}@${r.database}`)).size > 1
  return [
    {key: 'run', header: result.runner === 'oban' ? 'job id' : 'run', priority: 0, align: 'right', text: (r) => r.runid},
    // several servers: whose pg_cron (or database) the run is from; run ids are per server
    ...(severalServers ? [{key: 'server', header: 'server', priority: 1, text: (r: HistoryRun) => r.server}] : []),
    ...(several
      ? [
          {key: 'job', header: 'job', priority: 2, text: (r: HistoryRun) => r.job},
          {key: 'database', header: 'database', priority: 4, text: (r: HistoryRun) => r.database},
        ]
      : []),
    {key: 'status', header: 'status', priority: 1, text: (r) => r.status, tone: (r) => (FAILED_RUN.has(r.status) ? 'fail' : statusTone(r.status))},
    {key: 'start', header: 'start (UTC)', priority: 1, min: 19, text: (r) => (r.start ? `${shortTime(r.start)}:${r.start.slice(17, 19)}` : null), raw: (r) => r.start},
    {key: 'duration', header: 'duration', priority: 3, align: 'right', text: (r) => (r.durationSeconds === null ? null : `${r.durationSeconds}s`), raw: (r) => r.durationSeconds},
    {key: 'message', header: 'message', priority: 5, min: 20, below: true, text: (r) => r.message},
  ]
}

/** The runs of a job, for people. */
export function renderHistory(name: string, result: HistoryResult, options: TableOptions, severalServers = false): string[] {
  if (result.runs.length === 0) return [`no runs of ${name} recorded${result.note ? ` (${result.note})` : ''}`]
  const lines = formatTable(historyColumns(result, severalServers), result.runs, options).lines
  if (result.note && options.format !== 'csv' && options.format !== 'tsv') lines.push('', ...fold(result.note, options.wide ? undefined : options.width, '  '))
  return lines
}
