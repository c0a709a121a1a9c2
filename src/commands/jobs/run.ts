import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {connectionFlags, nonBlank} from '../../flags.js'
import {renderTable, type TableOptions} from '../../lib/cli/table.js'
import {jobsConfig, openJobsContextFor} from '../../lib/cron/context.js'
import {resolveJob, runResolved, type RunOutcome} from '../../lib/cron/jobs.js'
import {resolveJobAlias} from '../../lib/cron/names.js'
import {parseObanArgs} from '../../lib/cron/oban.js'
import {selectDatabases, severalServers} from '../../lib/estate/targets.js'
import {validateName} from '../../lib/names.js'

export interface RunResult {
  name: string
  /** the seed's job name as typed, when it was one (learn-patterns-every-5min) */
  alias?: string
  runs: RunOutcome[]
}

export default class JobsRun extends BaseCommand<typeof JobsRun> {
  static override summary = "Run a pg_cron job's command now, or enqueue an Oban worker's job."
  static override description = `pg_cron: runs the job's command (as installed in cron.job, else as declared) in its database as its user (SET ROLE when that is not the admin), and prints what it returned and how long it took. The run is not recorded in cron.job_run_details. A singularity job runs in every singularity instance unless --db names one.

Oban: inserts an available job into oban_jobs as Oban.insert would (UTC timestamps, state available, priority 0..9, --args a JSON object); the application's Oban picks it up.

Several servers (the config's servers and placement): the job runs on the server its database is placed on (the cron database's jobs on each server); a server it needs that does not answer stops the command before anything runs (exit 1); each run names its server ("server" under --json).

Exit codes: 0 ok; 1 the command failed (or the database/oban_jobs is absent, or a server it needs does not answer); 2 bad input (name, --args, --priority, --db); 4 no such job (the closest names are suggested).`
  static override examples = [
    {description: 'Assign pending tasks now', command: '<%= config.bin %> jobs run assign-tasks'},
    {description: 'What would run, without running it', command: '<%= config.bin %> jobs run prune-queue-archives --dry-run'},
    {description: 'Enqueue an Oban job with args', command: `<%= config.bin %> jobs run Singularity.Jobs.TemplateSyncWorker --args '{"force":true}'`},
    {description: 'One instance of several', command: '<%= config.bin %> jobs run learn-patterns --db singularity_2 --json'},
    {description: "The seeds' job names work too", command: '<%= config.bin %> jobs run learn-patterns-every-5min'},
  ]

  static override args = {
    name: Args.string({description: "Schedule name (learn-patterns), the seeds' name (learn-patterns-every-5min), pg_cron job name (singularity:learn-patterns) or Oban worker module.", required: true}),
  }

  static override flags = {
    ...connectionFlags,
    db: Flags.string({parse: nonBlank, description: 'Only in this database (name or kind); repeatable.', multiple: true}),
    args: Flags.string({description: 'Oban: the job args, a JSON object.'}),
    queue: Flags.string({description: 'Oban: the queue.', default: 'default'}),
    priority: Flags.integer({description: 'Oban: priority 0 (highest) .. 9.', default: 0}),
    'max-attempts': Flags.integer({description: 'Oban: attempts before the job is discarded.', default: 20}),
    'dry-run': Flags.boolean({description: 'Show what would run (database, user, command) and do nothing.'}),
  }

  protected async execute(): Promise<RunResult> {
    const typed = validateName('job', this.args.name)
    const obanArgs = parseObanArgs(this.flags.args)
    const options = {
      argsGiven: this.flags.args !== undefined,
      insert: {args: obanArgs, queue: this.flags.queue, priority: this.flags.priority, maxAttempts: this.flags['max-attempts']},
      dryRun: this.flags['dry-run'],
    }
    const config = jobsConfig(this.flags)
    if (severalServers(config)) {
      // each job runs on the server its database is placed on
      const [{runJobAcrossServers}, {schedulesFor}] = await Promise.all([import('../../lib/cron/across.js'), import('../../schedules.js')])
      const {name, alias, runs} = await runJobAcrossServers(config, schedulesFor(process.env), typed, {...options, databases: this.flags.db})
      return this.done(name, alias, runs)
    }
    const ctx = await openJobsContextFor(config, {statementTimeoutMs: 0})
    try {
      const {name, alias} = resolveJobAlias(typed, ctx.schedules, ctx.estate.prefix)
      const databases = this.flags.db && this.flags.db.length > 0 ? this.databaseNames(ctx.estate.databases, ctx.cronInfo?.database) : undefined
      const resolved = await resolveJob(ctx, name, databases)
      const runs = await runResolved(name, resolved.map((job) => ({ctx, job})), options)
      return await this.done(name, alias, runs)
    } finally {
      await ctx.close()
    }
  }

  /** The result: exit 1 when a run failed, and the lines for people. */
  private async done(name: string, alias: string | undefined, runs: RunOutcome[]): Promise<RunResult> {
    if (runs.some((r) => !r.ok)) this.exitAfterOutput(1)
    if (!this.jsonMode) this.lines = [...(alias ? [`${alias} is the seeds' name of ${name}`] : []), ...renderRuns(runs, await this.tableOptions())]
    return {name, ...(alias ? {alias} : {}), runs}
  }

  private lines: string[] = []

  private databaseNames(all: Parameters<typeof selectDatabases>[0], cronDatabase: string | undefined): string[] {
    const wanted = this.flags.db ?? []
    const cron = cronDatabase && wanted.includes(cronDatabase) && !all.some((d) => d.name === cronDatabase) ? [cronDatabase] : []
    const rest = wanted.filter((w) => !cron.includes(w))
    return [...(rest.length > 0 ? selectDatabases(all, rest).map((d) => d.name) : []), ...cron]
  }

  protected override human(result: RunResult): void {
    for (const line of this.lines) this.out(line)
    for (const run of result.runs) if (!run.ok) this.note(`error: ${run.job} failed in ${run.database}: ${run.error?.message ?? 'unknown error'}`)
  }
}

function renderRuns(runs: RunOutcome[], options: TableOptions): string[] {
  const lines: string[] = []
  for (const run of runs) {
    const where = `in ${run.database}${run.server ? ` on server ${run.server}` : ''}${run.username ? ` as ${run.username}` : ''}`
    if (run.dryRun) {
      lines.push(`would run ${run.job} ${where}:`, `  ${run.command}`)
      if (run.note) lines.push(`  (${run.note})`)
      continue
    }
    if (run.runner === 'oban' && run.obanJob) {
      const j = run.obanJob
      lines.push(`enqueued ${j.worker} in ${run.database}${run.server ? ` on server ${run.server}` : ''}: oban job ${j.id}, queue ${j.queue}, state ${j.state}, priority ${j.priority ?? 0}, scheduled ${j.scheduledAt?.toISOString() ?? '-'}`)
      continue
    }
    const took = run.durationMs === null ? '' : ` in ${run.durationMs < 1000 ? `${run.durationMs} ms` : `${(run.durationMs / 1000).toFixed(2)} s`}`
    if (!run.ok) {
      lines.push(`${run.job} ${where}: FAILED${took}: ${run.error?.message ?? ''}`)
      continue
    }
    lines.push(`${run.job} ${where}: ${run.output?.commandTag ?? 'ok'}${took}`)
    const out = run.output
    if (out && out.columns.length > 0 && out.rows.length > 0) {
      const table = renderTable(out.columns, out.rows.map((r) => out.columns.map((c) => formatCell(r[c]))), {...options, width: options.width === undefined ? undefined : options.width - 2})
      lines.push(...table.split('\n').map((l) => `  ${l}`))
      if ((out.rowCount ?? 0) > out.rows.length) lines.push(`  … ${(out.rowCount ?? 0) - out.rows.length} more rows (--json shows 50)`)
    }
    for (const notice of out?.notices ?? []) lines.push(`  notice: ${notice}`)
    if (run.note) lines.push(`  (${run.note})`)
  }
  return lines
}

function formatCell(value: unknown): string {
  if (value === null || value === undefined) return '-'
  if (value instanceof Date) return value.toISOString()
  if (typeof value === 'object') return JSON.stringify(value)
  return String(value)
}
