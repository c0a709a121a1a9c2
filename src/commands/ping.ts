import {BaseCommand} from '../base-command.js'
import {connectionFlags} from '../flags.js'
import {resolveConfig} from '../lib/config/resolve.js'
import {withClient} from '../lib/db/connect.js'
import {adminTarget} from '../lib/estate/targets.js'

export interface PingResult {
  ok: true
  /** server_version_num, e.g. 150004 */
  versionNum: number
  /** version(), e.g. "PostgreSQL 15.4 (Debian …) on x86_64…" */
  version: string
  /** now() on the server, ISO 8601 */
  serverTime: string
  /** round trip of the one query in ms (the connection not included) */
  latencyMs: number
  /** where the connection came from (flag, env, config, libpq, local) */
  source: string
}

export default class Ping extends BaseCommand<typeof Ping> {
  static override summary = "Is the estate's server up? One query: the server version and time."
  static override description =
    'Connects with the admin connection (as every other command would) and runs one query. Exit 0 when the server answers, 1 when it is unreachable or refuses the login.'

  static override examples = [
    {description: 'Check the configured server', command: '<%= config.bin %> ping'},
    {description: 'For scripts and health checks', command: '<%= config.bin %> ping --json'},
    {description: 'Another server', command: '<%= config.bin %> ping --admin-url postgres://postgres@db.example:5432/postgres'},
  ]

  static override flags = {...connectionFlags}

  protected async execute(): Promise<PingResult> {
    const target = adminTarget(resolveConfig(this.flags))
    return withClient(
      target,
      async (client) => {
        const started = performance.now()
        const {rows} = await client.query<{version: string; version_num: string; now: string}>(
          "SELECT version() AS version, current_setting('server_version_num') AS version_num, to_json(now())#>>'{}' AS now",
        )
        const latencyMs = Math.round((performance.now() - started) * 10) / 10
        return {ok: true, versionNum: Number(rows[0].version_num), version: rows[0].version, serverTime: rows[0].now, latencyMs, source: target.source}
      },
      {applicationName: 'singularity ping', statementTimeoutMs: 10_000},
    )
  }

  protected override human(result: PingResult): void {
    this.out(`ok: ${result.version.split(' on ')[0]}, server time ${result.serverTime}, ${result.latencyMs} ms (${result.source})`)
  }
}
