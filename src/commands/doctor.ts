import {Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {connectionFlags, readFlags, tableFlags} from '../flags.js'
import {ExitCode, UsageError} from '../lib/cli/errors.js'
import {parseDuration, parseSize} from '../lib/cli/format.js'
import {resolveConfig} from '../lib/config/resolve.js'
import {runDoctor, type DoctorReport} from '../lib/doctor/doctor.js'
import {DEFAULT_THRESHOLDS} from '../lib/doctor/types.js'
import {renderDoctor} from '../lib/render/doctor.js'
import {parseWatchInterval, runWatch, watchFlag, withWatchDefault} from '../lib/cli/watch.js'

export default class Doctor extends BaseCommand<typeof Doctor> {
  static override summary = 'One health verdict for the on-call engineer: every check ok / warn / fail, with the command to look closer.'
  static override description = `Checks: every database reachable; migrations current and without drift; pg_cron running; failed pg_cron jobs and failure streaks; Oban workers that missed their schedule; queue backlog and oldest message; replication slots (invalidated by the cap: fail, naming the fix; retaining more than --max-slot-retained: fail; without a consumer for longer than --max-slot-idle, past --slot-cap-warn percent of max_slot_wal_keep_size, or with no cap at all: warn); the newest verified backup of each kind; WAL archiving (the last archived segment's age against --max-archive-age, archive_command failing since its last success) and the newest physical backup of each type; the session encryption key; capacity: pg_cron jobs that can start in the same minute against cron.max_running_jobs, the estate's connections against max_connections, and the p95 start delay pg_cron recorded over the last hour against --max-start-delay (warn, naming the minute that stampedes).

The databases are read at once, at most --concurrency at a time (default 8, never more than a quarter of the server's free connections), each within --db-timeout (default 10s): a database that refuses or does not answer in time fails "databases reachable" by name, is listed under "unreadable" in --json ({database, reason, timed_out}), and every other database is still checked.

Several servers (the config's servers and placement): a servers row (fails when one does not answer, naming its databases), and the pg_cron, jobs and slot checks once per server that answers, named after it.

Exit 0 when nothing fails (warnings allowed), 3 when any check fails (an unreadable database included). --json for monitoring.`
  static override examples = [
    '<%= config.bin %> doctor',
    {description: 'From a monitoring cron: alert on exit 3', command: '<%= config.bin %> doctor --json > /var/lib/singularity/doctor.json || page-oncall'},
    {description: 'Tighter thresholds', command: '<%= config.bin %> doctor --max-queue-length 1000 --max-oldest 10m --max-slot-retained 512MB'},
    {description: 'A hundred instances: 16 databases at once, 3 s each before one is named timed out', command: '<%= config.bin %> doctor --concurrency 16 --db-timeout 3s'},
  ]

  static override flags = {
    ...connectionFlags,
    ...readFlags,
    'max-queue-length': Flags.integer({description: 'A queue with more messages fails.', default: DEFAULT_THRESHOLDS.maxQueueLength, min: 0}),
    'max-oldest': Flags.string({description: 'A queue whose oldest message is older fails (e.g. 10m, 1h).', default: '1h'}),
    'max-slot-retained': Flags.string({description: 'A replication slot retaining more WAL fails (e.g. 1GB).', default: '1GB'}),
    'max-slot-idle': Flags.string({description: 'A replication slot without a consumer for longer warns (e.g. 30m, 1h).', default: '1h'}),
    'slot-cap-warn': Flags.integer({description: 'A replication slot retaining more than this percentage of max_slot_wal_keep_size warns.', default: 50, min: 1, max: 100}),
    'max-archive-age': Flags.string({description: 'WAL archiving fails when the last archived segment is older than this while WAL is waiting (e.g. 5m).', default: '5m'}),
    'max-start-delay': Flags.string({description: 'Warns when the p95 start delay of the estate’s pg_cron jobs over the last hour (start after the scheduled minute) is longer, naming the minute that stampedes; also the threshold of the pg_cron capacity check (e.g. 10s).', default: '10s'}),
    'backup-dir': Flags.string({description: 'Where backups live (default SINGULARITY_BACKUP_DIR or the config).'}),
    ...tableFlags,
    watch: watchFlag,
  }

  override async init(): Promise<void> {
    this.argv = withWatchDefault(this.argv)
    await super.init()
  }

  protected async execute(): Promise<DoctorReport> {
    const maxOldestSeconds = parseDuration(this.flags['max-oldest'])
    if (maxOldestSeconds === undefined) throw new UsageError(`invalid --max-oldest '${this.flags['max-oldest']}'`, {hint: 'a duration such as 30s, 10m, 1h, 2d'})
    const maxSlotRetainedBytes = parseSize(this.flags['max-slot-retained'])
    if (maxSlotRetainedBytes === undefined) throw new UsageError(`invalid --max-slot-retained '${this.flags['max-slot-retained']}'`, {hint: 'a size such as 512MB or 1GB'})
    const maxSlotIdleSeconds = parseDuration(this.flags['max-slot-idle'])
    if (maxSlotIdleSeconds === undefined) throw new UsageError(`invalid --max-slot-idle '${this.flags['max-slot-idle']}'`, {hint: 'a duration such as 30m, 1h, 1d'})
    const maxArchiveAgeSeconds = parseDuration(this.flags['max-archive-age'])
    if (maxArchiveAgeSeconds === undefined) throw new UsageError(`invalid --max-archive-age '${this.flags['max-archive-age']}'`, {hint: 'a duration such as 60s, 5m, 1h'})
    const maxStartDelaySeconds = parseDuration(this.flags['max-start-delay'])
    if (maxStartDelaySeconds === undefined || maxStartDelaySeconds <= 0) throw new UsageError(`invalid --max-start-delay '${this.flags['max-start-delay']}'`, {hint: 'a duration such as 5s, 10s, 1m'})
    const config = resolveConfig(this.flags)
    if (this.flags['backup-dir']) config.backupDir = this.flags['backup-dir']
    const thresholds = {
      maxQueueLength: this.flags['max-queue-length'],
      maxOldestSeconds,
      maxSlotRetainedBytes,
      maxSlotIdleSeconds,
      slotCapWarnFraction: this.flags['slot-cap-warn'] / 100,
      maxArchiveAgeSeconds,
      maxStartDelaySeconds,
    }
    if (this.flags.watch !== undefined) {
      // The doctor's checks open their connections per run (a lost one is simply opened again).
      return runWatch({
        intervalSec: parseWatchInterval(this.flags.watch),
        ndjson: this.jsonMode || !process.stdout.isTTY,
        tick: () => runDoctor(config, thresholds),
        document: (current) => current.value,
        frame: async (current) => renderDoctor(current.value, await this.tableOptions()).join('\n'),
      })
    }
    const report = await runDoctor(config, thresholds)
    if (report.verdict === 'fail') this.exitAfterOutput(ExitCode.unhealthy)
    return report
  }

  protected override async human(report: DoctorReport): Promise<void> {
    this.outTable(renderDoctor(report, await this.tableOptions()))
  }
}
