import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {connectionFlags, nonBlank} from '../../flags.js'
import {keyFilePath} from '../../lib/backup/keys.js'
import {restoreBackup, restoreServer, type RestoreResult} from '../../lib/backup/restore.js'
import {findBackup} from '../../lib/backup/store.js'
import {confirmDestructive} from '../../lib/cli/confirm.js'
import {formatDuration} from '../../lib/cli/format.js'

const seconds = (ms: number) => (ms < 10_000 ? `${(ms / 1000).toFixed(1)}s` : formatDuration(ms / 1000))
import {resolveConfig} from '../../lib/config/resolve.js'
import {connect} from '../../lib/db/connect.js'
import {serverTarget, severalServers} from '../../lib/estate/targets.js'
import {restoreToTime, type RestoreToTimeResult} from '../../lib/backup/physical/restore.js'
import {restoredLines} from '../../lib/backup/physical/render.js'
import {UsageError} from '../../lib/cli/errors.js'
import {onInterrupt} from '../../lib/cli/interrupt.js'

export default class BackupRestore extends BaseCommand<typeof BackupRestore> {
  static override summary = 'Restore one database of a backup into a NEW database (default <db>_restored_<time>, or --as).'
  static override description = `Nothing existing is touched by default. When the target database exists (e.g. --as with the original name), it is replaced only with --confirm <name> (or a typed answer on a terminal): the backup is restored into a scratch database first, and only when that succeeded is the old database dropped (its sessions are ended) and the new one renamed into place. A failed restore drops what it created.

The database is created owned by the original owner when that role exists here (the connecting user with --no-owner), with the original encoding and locale, and with the source database's access: CONNECT/TEMP revoked from PUBLIC and granted exactly as the source had them when it was dumped, so a copy of one service's database is as closed as the original. Copies are marked as such (COMMENT ON DATABASE: source, backup, time) so the estate's status can list them. Objects keep their owners and grants; on a server without the estate's roles restore the backup's globals.sql with psql first, or pass --no-owner (everything owned by the connecting user, no grants). The archive's checksum is checked before anything is created. Replication slots and pg_cron schedules are not part of a database backup: \`singularity db init\` recreates them.

Several servers: a database goes back to the server it was dumped from (the backup's manifest says which), or to --server.

Exit codes: 0 restored · 1 restore failed (nothing left behind) · 2 bad input or overwrite refused · 4 no such backup.`

  static override examples = [
    {description: 'Restore genesis from a backup into genesis_restored_<time>', command: '<%= config.bin %> backup restore 20261123T201500Z-hourly --db genesis'},
    {description: 'Into a chosen name', command: '<%= config.bin %> backup restore latest --db nexus --as nexus_check'},
    {description: 'Replace the live database (sessions are ended)', command: '<%= config.bin %> backup restore 20261123T010000Z-daily --db nexus --as nexus --confirm nexus'},
    {description: 'Several servers: a copy of an instance on the main server instead of its own', command: '<%= config.bin %> backup restore latest --db singularity_2 --server main'},
    {description: 'The whole cluster as it was at 10:59 UTC (physical), started as a new cluster on a free port', command: "<%= config.bin %> backup restore --to-time '2026-11-25 10:59:00+00' --into /srv/restore-1059"},
    {description: 'Stop that restored cluster when done', command: '<%= config.bin %> local stop --data-dir /srv/restore-1059'},
  ]

  static override args = {
    id: Args.string({description: 'Backup id (see `backup list`), or "latest" (not with --to-time).'}),
  }

  static override flags = {
    ...connectionFlags,
    dir: Flags.string({description: 'Backup directory; default SINGULARITY_BACKUP_DIR, the config file, then next to the local cluster.'}),
    db: Flags.string({parse: nonBlank, description: 'Database of the backup to restore: its name or kind (singularity, genesis, …). Optional when the backup holds one.'}),
    as: Flags.string({parse: nonBlank, description: 'Name of the database to restore into (default <db>_restored_<YYYYMMDD_HHMMSS>).'}),
    confirm: Flags.string({description: 'Allow replacing an existing database: pass its name.'}),
    jobs: Flags.integer({description: 'Parallel pg_restore jobs (an unencrypted backup only: an encrypted archive is decrypted into pg_restore through a pipe, one job; stderr and --json say so).', default: 2, min: 1, max: 16}),
    'key-file': Flags.string({description: 'Backup key file for encrypted backups; default SINGULARITY_BACKUP_KEY_FILE, else backup-keys.json beside the role passwords file.'}),
    server: Flags.string({parse: nonBlank, description: 'Several servers: restore onto this server of the config (default: the server the database was dumped from).'}),
    'no-owner': Flags.boolean({description: 'The connecting user owns the new database and its objects; object grants are not restored (pg_restore --no-owner --no-privileges). Database access is still as on the source.'}),
    'to-time': Flags.string({description: "Physical: restore the whole cluster as it was at this time (e.g. '2026-11-25 10:59:00+00'; UTC when no zone), inside the recovery window of `backup list`.", helpGroup: 'POINT-IN-TIME'}),
    into: Flags.string({description: 'Physical: a new or empty directory for the restored cluster; it is started there (stop it with `local stop --data-dir <dir>`).', helpGroup: 'POINT-IN-TIME', dependsOn: ['to-time']}),
    port: Flags.integer({description: 'Physical: port for the restored cluster (default: a free one).', helpGroup: 'POINT-IN-TIME', dependsOn: ['to-time'], min: 1, max: 65_535}),
    'in-place': Flags.boolean({description: 'Physical: replace the server itself (it must be stopped; needs --confirm <stanza>).', helpGroup: 'POINT-IN-TIME', dependsOn: ['to-time']}),
  }

  protected async execute(): Promise<(RestoreResult & {server: string}) | RestoreToTimeResult> {
    if (this.flags['to-time'] !== undefined) return this.toTime()
    if (!this.args.id) throw new UsageError('missing backup id', {hint: 'singularity backup restore <id|latest> --db <name>, or --to-time <timestamp> --into <dir> (see `backup list`)'})
    const id = this.args.id
    const config = resolveConfig(this.flags)
    this.several = severalServers(config)
    const dir = this.flags.dir ?? config.backupDir
    const entry = findBackup(dir, id)
    const server = restoreServer(config, entry, this.flags.db, this.flags.server)
    const target = serverTarget(config, server)
    const admin = await connect(target, {applicationName: 'singularity-backup', statementTimeoutMs: 0, lockTimeoutMs: 30_000})
    const interrupt = onInterrupt()
    try {
      const restored = await this.withProgress('restore', (progress) => restoreBackup({
        admin,
        adminTarget: target,
        entry,
        db: this.flags.db,
        as: this.flags.as,
        confirmOverwrite: (name) => progress.aside(() =>
          confirmDestructive({
            action: `replace the existing database ${name} with the backup's copy (its sessions are ended, its data is lost)`,
            name,
            confirmFlag: this.flags.confirm,
            command: `singularity backup restore ${id}${this.flags.db ? ` --db ${this.flags.db}` : ''} --as ${name}`,
          })),
        jobs: this.flags.jobs,
        noOwner: this.flags['no-owner'],
        keyFile: keyFilePath(this.flags['key-file'], config.localDir),
        signal: interrupt.signal,
        progress: (m) => progress.line(m),
      }))
      return {...restored, server}
    } finally {
      interrupt.release()
      await admin.end().catch(() => {})
    }
  }

  /** Point in time, physical: its own module (src/lib/backup/physical/restore.ts). */
  private async toTime(): Promise<RestoreToTimeResult> {
    if (this.args.id) throw new UsageError('--to-time restores the whole cluster from the physical backups: give no backup id')
    const config = resolveConfig(this.flags)
    const interrupt = onInterrupt()
    try {
      return await restoreToTime({
        config,
        backupDir: this.flags.dir ?? config.backupDir,
        target: config.admin,
        toTime: this.flags['to-time']!,
        keyFile: this.flags['key-file'],
        into: this.flags.into,
        port: this.flags.port,
        inPlace: this.flags['in-place'],
        confirmInPlace: (stanza) =>
          confirmDestructive({
            action: `replace the cluster of ${stanza} with its state at ${this.flags['to-time']} (everything after that time is gone from it)`,
            name: stanza,
            confirmFlag: this.flags.confirm,
            command: `singularity backup restore --to-time '${this.flags['to-time']}' --in-place`,
          }),
        signal: interrupt.signal,
        progress: (m) => this.note(m),
      })
    } finally {
      interrupt.release()
    }
  }

  /** the config names several servers: the lines say which server the database went to */
  private several = false

  protected override human(r: (RestoreResult & {server: string}) | RestoreToTimeResult): void {
    if ('stanza' in r) {
      for (const line of restoredLines(r)) this.out(line)
      return
    }
    const where = this.several ? ` on server ${r.server}` : ''
    this.out(`${r.replaced ? 'replaced' : 'restored'} ${r.database}${where} from ${r.source} in backup ${r.id}: ${r.tables} table${r.tables === 1 ? '' : 's'}, owner ${r.owner}, ${seconds(r.durationMs)}`)
    const connect = r.access.filter((g) => g.privileges.includes('CONNECT')).map((g) => g.grantee)
    this.out(`access:   as on ${r.source}: CONNECT for ${connect.length > 0 ? connect.join(', ') : 'its owner only'}${connect.includes('PUBLIC') ? '' : ' (not PUBLIC)'}`)
    if (r.singleStream) this.out(`jobs:     1 (${r.singleStream})`)
    if (!r.replaced) this.out(`inspect it with: psql -d ${r.database}   (drop it when done: DROP DATABASE ${r.database})`)
  }
}
