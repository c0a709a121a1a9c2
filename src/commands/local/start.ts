import {Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {localFlags} from '../../flags.js'
import {DEFAULT_SLOT_WAL_CAP} from '../../lib/cdc/cap.js'
import {UsageError} from '../../lib/cli/errors.js'
import {parseSize} from '../../lib/cli/format.js'
import {resolveConfig} from '../../lib/config/resolve.js'
import {startCluster, type StartResult} from '../../lib/local-cluster/cluster.js'

export default class LocalStart extends BaseCommand<typeof LocalStart> {
  static override summary = 'Create (first time) and start the embedded PostgreSQL cluster.'
  static override description = `A private cluster for this product, run with the machine's own PostgreSQL binaries: pg_cron preloaded, wal_level=logical, replication slots, wal2json allowed, and max_slot_wal_keep_size capped (${DEFAULT_SLOT_WAL_CAP} unless --max-slot-wal-keep-size) so that a CDC slot nobody reads is invalidated before it can fill the disk. As root the server runs as the postgres OS user. Idempotent: a running cluster is left as it is (exit 0). Other commands use this cluster when no database is configured.`
  static override examples = [
    {description: 'Start the cluster (creates it the first time)', command: '<%= config.bin %> local start'},
    {description: 'On a fresh Debian machine, install missing packages too (root)', command: '<%= config.bin %> local start --install-deps'},
    {description: 'A second cluster on a chosen port', command: '<%= config.bin %> local start --data-dir /srv/sing2 --port 55432'},
  ]

  static override flags = {
    ...localFlags,
    port: Flags.integer({description: 'TCP port on 127.0.0.1 (default: the recorded one, else a free one).', min: 1, max: 65_535}),
    'install-deps': Flags.boolean({description: 'Install missing Debian packages (postgresql-15-cron, -wal2json, -partman) with apt-get; root only.'}),
    'max-slot-wal-keep-size': Flags.string({
      description: `Most WAL a replication slot may keep (e.g. 4GB, 512MB); past it the slot is invalidated instead of filling the disk. Recorded for later starts; default the recorded one, else ${DEFAULT_SLOT_WAL_CAP}. Applied to a running cluster by a reload.`,
    }),
  }

  protected async execute(): Promise<StartResult> {
    const capText = this.flags['max-slot-wal-keep-size']
    const capBytes = capText === undefined ? undefined : parseSize(capText)
    if (capText !== undefined && !(capBytes !== undefined && capBytes >= 1024 ** 2)) {
      throw new UsageError(`invalid --max-slot-wal-keep-size ${JSON.stringify(capText)}`, {hint: 'a size of at least 1MB, such as 512MB or 4GB'})
    }
    const config = resolveConfig({'data-dir': this.flags['data-dir']})
    return startCluster({
      dir: config.localDir,
      port: this.flags.port ?? config.localPort,
      installDeps: this.flags['install-deps'],
      // PostgreSQL takes this setting in whole megabytes.
      maxSlotWalKeepSize: capBytes === undefined ? undefined : `${Math.ceil(capBytes / 1024 ** 2)}MB`,
      progress: (message) => this.note(message),
    })
  }

  protected override human(result: StartResult): void {
    const s = result.status
    const verb = {created: 'created and started', started: 'started', 'already-running': 'already running'}[result.action]
    this.out(`local cluster ${verb}: PostgreSQL ${s.version} on 127.0.0.1:${s.port} (pid ${s.pid}), data in ${s.dataDir}`)
    this.out('next: `singularity db init` (or `eval "$(singularity local env)"` to point psql at it)')
  }
}
