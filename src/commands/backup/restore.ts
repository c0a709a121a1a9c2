import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {connectionFlags, nonBlank} from '../../flags.js'
import {restoreBackup, type RestoreResult} from '../../lib/backup/restore.js'
import {confirmDestructive} from '../../lib/cli/confirm.js'
import {formatDuration} from '../../lib/cli/format.js'

const seconds = (ms: number) => (ms < 10_000 ? `${(ms / 1000).toFixed(1)}s` : formatDuration(ms / 1000))
import {resolveConfig} from '../../lib/config/resolve.js'
import {connect} from '../../lib/db/connect.js'
import {adminTarget} from '../../lib/estate/targets.js'

export default class BackupRestore extends BaseCommand<typeof BackupRestore> {
  static override summary = 'Restore one database of a backup into a NEW database (default <db>_restored_<time>, or --as).'
  static override description = `Nothing existing is touched by default. When the target database exists (e.g. --as with the original name), it is replaced only with --confirm <name> (or a typed answer on a terminal): the backup is restored into a scratch database first, and only when that succeeded is the old database dropped (its sessions are ended) and the new one renamed into place. A failed restore drops what it created.

The database is created owned by the original owner when that role exists here, with the original encoding and locale. Objects keep their owners and grants; on a server without the estate's roles restore the backup's globals.sql with psql first, or pass --no-owner (everything owned by the connecting user, no grants). The archive's checksum is checked before anything is created. Replication slots and pg_cron schedules are not part of a database backup: \`singularity db init\` recreates them.

Exit codes: 0 restored · 1 restore failed (nothing left behind) · 2 bad input or overwrite refused · 4 no such backup.`

  static override examples = [
    {description: 'Restore genesis from a backup into genesis_restored_<time>', command: '<%= config.bin %> backup restore 20261123T201500Z-hourly --db genesis'},
    {description: 'Into a chosen name', command: '<%= config.bin %> backup restore latest --db nexus --as nexus_check'},
    {description: 'Replace the live database (sessions are ended)', command: '<%= config.bin %> backup restore 20261123T010000Z-daily --db nexus --as nexus --confirm nexus'},
  ]

  static override args = {
    id: Args.string({description: 'Backup id (see `backup list`), or "latest".', required: true}),
  }

  static override flags = {
    ...connectionFlags,
    dir: Flags.string({description: 'Backup directory; default SINGULARITY_BACKUP_DIR, the config file, then next to the local cluster.'}),
    db: Flags.string({parse: nonBlank, description: 'Database of the backup to restore: its name or kind (singularity, genesis, …). Optional when the backup holds one.'}),
    as: Flags.string({parse: nonBlank, description: 'Name of the database to restore into (default <db>_restored_<YYYYMMDD_HHMMSS>).'}),
    confirm: Flags.string({description: 'Allow replacing an existing database: pass its name.'}),
    jobs: Flags.integer({description: 'Parallel pg_restore jobs.', default: 2, min: 1, max: 16}),
    'no-owner': Flags.boolean({description: 'Do not restore object owners and grants (pg_restore --no-owner --no-privileges).'}),
  }

  protected async execute(): Promise<RestoreResult> {
    const config = resolveConfig(this.flags)
    const dir = this.flags.dir ?? config.backupDir
    const target = adminTarget(config)
    const admin = await connect(target, {applicationName: 'singularity-backup', statementTimeoutMs: 0, lockTimeoutMs: 30_000})
    const controller = new AbortController()
    const onSignal = () => controller.abort()
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
    try {
      return await this.withProgress('restore', (progress) => restoreBackup({
        admin,
        adminTarget: target,
        dir,
        id: this.args.id,
        db: this.flags.db,
        as: this.flags.as,
        confirmOverwrite: (name) => progress.aside(() =>
          confirmDestructive({
            action: `replace the existing database ${name} with the backup's copy (its sessions are ended, its data is lost)`,
            name,
            confirmFlag: this.flags.confirm,
            command: `singularity backup restore ${this.args.id}${this.flags.db ? ` --db ${this.flags.db}` : ''} --as ${name}`,
          })),
        jobs: this.flags.jobs,
        noOwner: this.flags['no-owner'],
        signal: controller.signal,
        progress: (m) => progress.line(m),
      }))
    } finally {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
      await admin.end().catch(() => {})
    }
  }

  protected override human(r: RestoreResult): void {
    this.out(`${r.replaced ? 'replaced' : 'restored'} ${r.database} from ${r.source} in backup ${r.id}: ${r.tables} table${r.tables === 1 ? '' : 's'}, owner ${r.owner}, ${seconds(r.durationMs)}`)
    if (!r.replaced) this.out(`inspect it with: psql -d ${r.database}   (drop it when done: DROP DATABASE ${r.database})`)
  }
}
