import {Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {connectionFlags, nonBlank, readFlags, tableFlags} from '../../flags.js'
import {ExitCode} from '../../lib/cli/errors.js'
import {parseWatchInterval, runWatch, watchFlag, withWatchDefault} from '../../lib/cli/watch.js'
import {jobsConfig, openJobsContextFor, type JobsContext} from '../../lib/cron/context.js'
import {listJobs, type JobsListResult} from '../../lib/cron/jobs.js'
import type {ResolvedConfig} from '../../lib/config/resolve.js'
import type {JobsAcrossServers} from '../../lib/cron/servers.js'
import {selectDatabases, severalServers} from '../../lib/estate/targets.js'
import {renderJobs} from '../../lib/render/jobs.js'
import type {Runner} from '../../topology.js'

const RUNNERS = ['pg_cron', 'oban', 'system-cron'] as const

export default class JobsList extends BaseCommand<typeof JobsList> {
  static override summary = 'Every scheduled job: runner, schedule and next run (UTC), database, last run, failure streak, drift.'
  static override description = `One view of the estate's schedules (seeds 000/001/003/004): the pg_cron jobs db init installs, the Oban workers of the Elixir applications and the system-cron entries (backups).

pg_cron: the job as installed in cron.job, its last run from cron.job_run_details (status, start, duration, message), the number of consecutive failed runs, and drift against the declared schedule: missing, schedule/command/database differs, or unknown (a job under our name prefix that is not declared; db init removes it). Jobs without our prefix are not shown.
Oban: read from oban_jobs in the service's database where that table exists (newest state per worker, failure streak, runs missed since the newest job, jobs waiting); where it does not, the row says so.
System cron: schedule, next run, the crontab line and whether the installed /etc/cron.d/singularity-backup (SINGULARITY_BACKUP_CRON_FILE) has it (\`singularity backup schedule --install\` writes it); a line that differs is drift.

The services' databases are read at once, at most --concurrency at a time (default 8, never more than a quarter of the server's free connections), each within --db-timeout (default 10s): one that refuses or does not answer in time is named (its rows say so; "unreadable" under --json) and the others are still listed.

Several servers (the config's servers and placement): each server's pg_cron is read for the databases placed there, each row names its server; a server that does not answer is named ("servers" under --json) and the others are still listed (exit 1, as for a database that could not be read); --watch reads every server on each tick.

Times are UTC (pg_cron 1.4 schedules in GMT). Exit codes: 0 ok; 1 a database or a server could not be read (the rest is printed); 2 bad flags or unknown --db; 3 with --fail-on-error when a job's last run failed or a declared pg_cron job is missing.`
  static override examples = [
    {description: 'Every job', command: '<%= config.bin %> jobs list'},
    {description: 'Only pg_cron jobs whose last run failed', command: '<%= config.bin %> jobs list --runner pg_cron --failing'},
    {description: 'From cron/CI: alert when a job failed or is missing', command: '<%= config.bin %> jobs list --fail-on-error --json > /dev/null'},
    {description: 'Jobs of one database', command: '<%= config.bin %> jobs list --db shared_queue'},
    {description: 'Give a slow database 2 s before naming it and going on', command: '<%= config.bin %> jobs list --db-timeout 2s'},
  ]

  static override flags = {
    ...connectionFlags,
    ...readFlags,
    runner: Flags.string({description: 'Only jobs of this runner; repeatable.', options: [...RUNNERS], multiple: true}),
    failing: Flags.boolean({description: 'Only jobs whose last run failed.'}),
    'fail-on-error': Flags.boolean({description: 'Exit 3 when a job’s last run failed or a declared pg_cron job is missing.'}),
    db: Flags.string({parse: nonBlank, description: 'Database name or kind (singularity, shared_queue, …); repeatable. Default: all.', multiple: true}),
    ...tableFlags,
    watch: watchFlag,
  }

  override async init(): Promise<void> {
    this.argv = withWatchDefault(this.argv)
    await super.init()
  }

  /** The --db selection as concrete database names (the cron database may be named too). */
  private selected(ctx: JobsContext): string[] | undefined {
    if (!this.flags.db || this.flags.db.length === 0) return undefined
    const all = [...ctx.estate.databases]
    const cronDb = ctx.cronInfo?.database
    const wantsCron = cronDb !== undefined && this.flags.db.includes(cronDb) && !all.some((d) => d.name === cronDb)
    const rest = this.flags.db.filter((d) => !(wantsCron && d === cronDb))
    return [...(rest.length > 0 ? selectDatabases(all, rest).map((d) => d.name) : []), ...(wantsCron ? [cronDb] : [])]
  }

  /**
   * --watch: the list every interval over kept connections (reopened when lost); over several
   * servers, each tick reads every server afresh and names one that does not answer. Ctrl-C exits 130.
   */
  private async watch(intervalSec: number, config: ResolvedConfig): Promise<never> {
    const ndjson = this.jsonMode || !process.stdout.isTTY
    if (severalServers(config)) {
      return runWatch({
        intervalSec,
        ndjson,
        tick: () => this.readAcrossServers(config),
        document: (current) => current.value,
        frame: async (current) => (await this.acrossServersLines(current.value)).join('\n'),
      })
    }
    let ctx: JobsContext | null = null
    return runWatch({
      intervalSec,
      ndjson,
      tick: async () => {
        ctx ??= await openJobsContextFor(config)
        try {
          return await listJobs(ctx, {runners: this.flags.runner as Runner[] | undefined, failing: this.flags.failing, databases: this.selected(ctx)})
        } catch (error) {
          await ctx.close()
          ctx = null
          throw error
        }
      },
      close: async () => ctx?.close(),
      document: (current) => current.value,
      frame: async (current) => renderJobs(current.value, await this.tableOptions()).join('\n'),
    })
  }

  protected async execute(): Promise<JobsListResult> {
    const config = jobsConfig(this.flags)
    if (this.flags.watch !== undefined) return this.watch(parseWatchInterval(this.flags.watch), config)
    if (severalServers(config)) return this.acrossServers(config)
    const ctx = await openJobsContextFor(config)
    try {
      const databases = this.selected(ctx)
      const listed = await listJobs(ctx, {runners: this.flags.runner as Runner[] | undefined, failing: this.flags.failing, databases})
      // the backup lines as installed in the host's crontab (singularity backup schedule)
      const {annotateBackupRows, backupCronFile} = await import('../../lib/backup/schedule.js')
      const jobs = annotateBackupRows(listed.jobs, ctx.schedules, backupCronFile())
      const result = {...listed, jobs, counts: {...listed.counts, drifted: jobs.filter((j) => j.drift.length > 0).length}}
      if (this.flags['fail-on-error'] && (result.counts.failing > 0 || result.counts.missing > 0)) this.exitAfterOutput(3)
      if (result.unreadable.length > 0) this.exitAfterOutput(ExitCode.failure)
      if (!this.jsonMode) this.lines = renderJobs(result, await this.tableOptions())
      return result
    } finally {
      await ctx.close()
    }
  }

  /** Several servers: every server's jobs, each row naming its server; a server down is reported (exit 1). */
  private async acrossServers(config: ResolvedConfig): Promise<JobsAcrossServers> {
    const result = await this.readAcrossServers(config)
    if (this.flags['fail-on-error'] && (result.counts.failing > 0 || result.counts.missing > 0)) this.exitAfterOutput(3)
    // a server (or a database) that could not be read: the rest is printed, exit 1 (as with one server)
    if (result.servers.some((s) => !s.reachable) || result.unreadable.length > 0) this.exitAfterOutput(1)
    if (!this.jsonMode) this.lines = await this.acrossServersLines(result)
    return result
  }

  /** Every server's jobs with the host's backup lines annotated; a server that does not answer is in `servers`, never thrown. */
  private async readAcrossServers(config: ResolvedConfig): Promise<JobsAcrossServers> {
    const [{listJobsAcrossServers}, {schedulesFor}, {annotateBackupRows, backupCronFile}] = await Promise.all([
      import('../../lib/cron/servers.js'), import('../../schedules.js'), import('../../lib/backup/schedule.js'),
    ])
    const schedules = schedulesFor(process.env)
    const listed = await listJobsAcrossServers(config, schedules, {runners: this.flags.runner as Runner[] | undefined, failing: this.flags.failing, databases: this.flags.db})
    const jobs = annotateBackupRows(listed.jobs, schedules, backupCronFile())
    return {...listed, jobs, counts: {...listed.counts, drifted: jobs.filter((j) => j.drift.length > 0).length}}
  }

  /** The table with a SERVER column, then a line per server that did not answer. */
  private async acrossServersLines(result: JobsAcrossServers): Promise<string[]> {
    const lines = renderJobs(result, await this.tableOptions(), true)
    for (const s of result.servers.filter((x) => !x.reachable)) lines.push(`server ${s.name}: UNREACHABLE (${s.error}): its jobs are not listed`)
    return lines
  }

  private lines: string[] = []

  protected override human(result: JobsListResult & {servers?: JobsAcrossServers['servers']}): void {
    if (result.servers) {
      for (const s of result.servers) if (s.pgCron.problem) this.note(`warning: server ${s.name}: ${s.pgCron.problem}`)
    } else if (result.pgCron.problem) this.note(`warning: ${result.pgCron.problem}`)
    for (const u of result.unreadable) this.note(`${u.timed_out ? 'timed out' : 'unreadable'}: ${u.database}: ${u.reason}`)
    this.outTable(this.lines)
  }
}
