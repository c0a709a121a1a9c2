import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {connectionFlags, nonBlank, readFlags, tableFlags} from '../../flags.js'
import {UsageError} from '../../lib/cli/errors.js'
import {parseDuration} from '../../lib/cli/format.js'
import type {ResolvedConfig} from '../../lib/config/resolve.js'
import {jobsConfig, openJobsContextFor} from '../../lib/cron/context.js'
import type {HistoryAcrossServers} from '../../lib/cron/across.js'
import {jobHistory, resolveJob, type HistoryResult} from '../../lib/cron/jobs.js'
import {resolveJobAlias} from '../../lib/cron/names.js'
import {selectDatabases, severalServers} from '../../lib/estate/targets.js'
import {validateName} from '../../lib/names.js'
import {renderHistory} from '../../lib/render/jobs.js'

/** --since: a duration back from now (90s, 10m, 1h, 7d) or an ISO 8601 time; exit 2 otherwise. */
export function parseSince(text: string, now = new Date()): Date {
  const seconds = parseDuration(text)
  if (seconds !== undefined) return new Date(now.getTime() - seconds * 1000)
  if (/^\d{4}-\d{2}-\d{2}/.test(text) && !Number.isNaN(Date.parse(text))) return new Date(text)
  throw new UsageError(`invalid --since ${JSON.stringify(text)}`, {hint: 'a duration back from now (30m, 1h, 7d) or an ISO time (2025-01-05T05:00:00Z)'})
}

export default class JobsHistory extends BaseCommand<typeof JobsHistory> {
  static override summary = 'The last runs of a job: status, start (UTC), duration, message.'
  static override description = `pg_cron jobs: from cron.job_run_details (kept 14 days by the cron-history-cleanup job). A singularity job shows the runs of every instance unless --db names one. Oban workers: their newest oban_jobs rows (state, attempt, last error).

Several servers (the config's servers and placement): each server's cron.job_run_details holds the runs of the jobs of the databases placed there; every server is read at once (each within twice --db-timeout), the runs merged newest first, each naming its server (a SERVER column; "server" under --json). A server that does not answer is named ("servers" under --json) and the others' runs are still shown (exit 1, as jobs list).

Exit codes: 0 ok (also when there are no runs yet); 1 a server could not be read (the rest is printed); 2 bad input; 4 no such job.`
  static override examples = [
    {description: 'The last 20 runs of the task assignment', command: '<%= config.bin %> jobs history assign-tasks'},
    {description: 'Runs in the last hour, as JSON', command: '<%= config.bin %> jobs history learn-patterns --since 1h --json'},
    {description: "By the seeds' name", command: '<%= config.bin %> jobs history daily-vacuum-analyze'},
    {description: 'The newest jobs of an Oban worker', command: '<%= config.bin %> jobs history Singularity.Jobs.TemplateSyncWorker --limit 5'},
  ]

  static override args = {
    name: Args.string({description: "Schedule name, the seeds' name (daily-vacuum-analyze), pg_cron job name or Oban worker module.", required: true}),
  }

  static override flags = {
    ...connectionFlags,
    ...readFlags,
    limit: Flags.integer({description: 'At most this many runs, newest first.', default: 20, min: 1, max: 10_000}),
    since: Flags.string({description: 'Only runs started since: a duration back from now (1h, 7d) or an ISO time.'}),
    db: Flags.string({parse: nonBlank, description: 'Only in this database (name or kind); repeatable.', multiple: true}),
    ...tableFlags,
  }

  private lines: string[] = []

  protected async execute(): Promise<HistoryResult & {alias?: string}> {
    const typed = validateName('job', this.args.name)
    const since = this.flags.since === undefined ? undefined : parseSince(this.flags.since)
    const config = jobsConfig(this.flags)
    if (severalServers(config)) return this.acrossServers(config, typed, since)
    const ctx = await openJobsContextFor(config)
    try {
      const {name, alias} = resolveJobAlias(typed, ctx.schedules, ctx.estate.prefix)
      let databases: string[] | undefined
      if (this.flags.db && this.flags.db.length > 0) {
        const cron = ctx.cronInfo?.database
        const wantsCron = cron !== undefined && this.flags.db.includes(cron) && !ctx.estate.databases.some((d) => d.name === cron)
        const rest = this.flags.db.filter((d) => !(wantsCron && d === cron))
        databases = [...(rest.length > 0 ? selectDatabases(ctx.estate.databases, rest).map((d) => d.name) : []), ...(wantsCron ? [cron] : [])]
      }
      const resolved = await resolveJob(ctx, name, databases)
      const result = await jobHistory(ctx, resolved, {limit: this.flags.limit, since})
      if (!this.jsonMode) this.lines = [...(alias ? [`${alias} is the seeds' name of ${name}`] : []), ...renderHistory(name, result, await this.tableOptions())]
      return alias ? {...result, alias} : result
    } finally {
      await ctx.close()
    }
  }

  /** Several servers: every server's runs merged, each naming its server; a server down is named (exit 1). */
  private async acrossServers(config: ResolvedConfig, typed: string, since: Date | undefined): Promise<HistoryAcrossServers> {
    const [{jobHistoryAcrossServers}, {schedulesFor}] = await Promise.all([import('../../lib/cron/across.js'), import('../../schedules.js')])
    const result = await jobHistoryAcrossServers(config, schedulesFor(process.env), typed, {limit: this.flags.limit, since, databases: this.flags.db})
    if (result.servers.some((s) => !s.reachable || s.error)) this.exitAfterOutput(1)
    if (!this.jsonMode) {
      this.lines = [...(result.alias ? [`${result.alias} is the seeds' name of ${result.name}`] : []), ...renderHistory(result.name, result, await this.tableOptions(), true)]
      for (const s of result.servers.filter((x) => !x.reachable)) this.lines.push(`server ${s.name}: UNREACHABLE (${s.error}): its runs are not shown`)
      for (const s of result.servers.filter((x) => x.reachable && x.error)) this.lines.push(`server ${s.name}: ${s.error}: its runs are not shown`)
    }
    return result
  }

  protected override human(): void {
    this.outTable(this.lines)
  }
}
