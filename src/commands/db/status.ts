import {BaseCommand} from '../../base-command.js'
import {connectionFlags, readFlags, tableFlags} from '../../flags.js'
import {ExitCode} from '../../lib/cli/errors.js'
import {resolveConfig} from '../../lib/config/resolve.js'
import {estateStatus, type EstateStatus} from '../../lib/provision/status.js'
import {renderDbStatus} from '../../lib/render/db-status.js'

export default class DbStatus extends BaseCommand<typeof DbStatus> {
  static override summary = 'How the server stands against the estate: per database reachability, owner, extensions, migrations, queue engine, drift.'
  static override description = 'Read from the same plan as `db plan`: a database with actions to do is pending, one with extra privileges, a changed job or a changed migration is drifted. Exit 0 when there is nothing to do; 3 when something is missing, pending or drifted, or a database could not be read (scripts can gate on it); 1 when the server cannot be reached (with several servers: when none answers). Several servers (the config\'s servers and placement): a server column; a server that does not answer is shown UNREACHABLE with its databases, the others as usual, and the exit is 3. The databases are read at once, at most --concurrency at a time (default 8, never more than a quarter of the server\'s free connections), each within --db-timeout (default 10s): one that refuses or does not answer in time is shown unreachable with the reason (under --json: databases[].error and timedOut, and "unreadable"), and the others are still read.'
  static override examples = [
    '<%= config.bin %> db status',
    {description: 'Gate a deploy on it', command: '<%= config.bin %> db status --json | jq -e \'.verdict == "ok"\''},
    {description: 'Many instances on a busy server: 4 databases at once, 3 s each', command: '<%= config.bin %> db status --concurrency 4 --db-timeout 3s'},
  ]

  static override flags = {...connectionFlags, ...readFlags, ...tableFlags}

  protected async execute(): Promise<EstateStatus> {
    const status = await estateStatus(resolveConfig(this.flags))
    if (status.verdict !== 'ok') this.exitAfterOutput(ExitCode.unhealthy)
    return status
  }

  protected override async human(s: EstateStatus): Promise<void> {
    const {before, table, after} = renderDbStatus(s, await this.tableOptions())
    for (const line of before) this.out(line)
    this.outTable(table)
    for (const line of after) this.out(line)
  }
}
