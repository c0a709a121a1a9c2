import {Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {connectionFlags} from '../../flags.js'
import {DEFAULT_ARCHIVE_TIMEOUT_SECONDS, DEFAULT_PHYSICAL_RETENTION, setupPhysical, type SetupResult} from '../../lib/backup/physical/setup.js'
import {ExitCode, UsageError} from '../../lib/cli/errors.js'
import {parseDuration} from '../../lib/cli/format.js'
import {resolveConfig} from '../../lib/config/resolve.js'
import {adminTarget} from '../../lib/estate/targets.js'

export default class BackupSetup extends BaseCommand<typeof BackupSetup> {
  static override summary = 'Prepare physical backups and WAL archiving with pgBackRest (point-in-time recovery).'
  static override description = `On a server this machine runs (the local cluster, or another server whose data directory is here): writes the pgBackRest configuration (repository, logs and locks under <backup dir>/physical/, a stanza named for the server: <prefix>singularity-local, or <prefix>singularity-<host>-<port>), sets archive_mode, archive_command and archive_timeout with ALTER SYSTEM, restarts the server when archive_mode was off (announced on stderr first; the local cluster is restarted by itself, another server only with --restart), then runs pgBackRest's stanza-create and check. As root, pgBackRest runs as the data directory's owner (postgres) and the repository belongs to that user. Safe to run again.

On a server it cannot reach as its host, it prints exactly what to set there (postgresql.conf lines, pgbackrest.conf, commands) and checks what it can see from here (archive settings, pg_stat_archiver): exit 3 while archiving is not working.

Retention (seed 001: hourly keep 6, daily keep 7, monthly keep 12) on pgBackRest's terms, with full backups weekly, diff daily, incr hourly: fulls are kept --retention-full (default 365d: weekly points for twelve months), diffs --retention-diff (default 7: seven days), each incr goes with the backup it builds on, and WAL for point-in-time recovery is kept back to the oldest of the newest --retention-pitr diff/full backups (default 7: any second of the last week). pgBackRest expires after each backup.

Encryption: a new repository uses pgBackRest's repository cipher (aes-256-cbc) with a passphrase derived from the backup key store (the key file of logical backups; a key is created 0600 on first use). The passphrase is never printed and never written into the backup directory: pgBackRest runs of this tool get it in their environment, and the server's archive_command (and a restored cluster's archive-get) read it from cipher.conf, mode 0600 and owned by the server's OS user, in a directory beside the key file. pgBackRest cannot change the cipher of an existing repository: an unencrypted one stays unencrypted (reported here, by \`backup list\` and \`doctor\`); to migrate, set up a new repository in another --dir and take a full backup there.

Exit codes: 0 set up · 1 failure (server, pgBackRest) · 2 bad flags, or a restart is needed and --restart not given · 3 (remote server) archiving not working yet.`

  static override examples = [
    {description: 'The local cluster (restarted once if archive_mode was off)', command: '<%= config.bin %> backup setup --physical'},
    {description: 'Another server on this machine, allowing its restart', command: '<%= config.bin %> backup setup --physical --admin-url postgres://postgres@localhost:5432/postgres --restart'},
    {description: 'Smaller retention: 4 fulls, 3 diffs', command: '<%= config.bin %> backup setup --physical --retention-full 4 --retention-diff 3'},
  ]

  static override flags = {
    ...connectionFlags,
    physical: Flags.boolean({description: 'Set up physical backups (pgBackRest). Logical dumps need no set-up.', required: true}),
    dir: Flags.string({description: 'Backup directory; default SINGULARITY_BACKUP_DIR, the config file, then next to the local cluster.'}),
    'archive-timeout': Flags.string({description: 'archive_timeout: the longest WAL waits before it is archived (the RPO bound under load).', default: `${DEFAULT_ARCHIVE_TIMEOUT_SECONDS}s`}),
    'retention-full': Flags.string({description: 'Full backups kept: a count (4) or an age in days (365d).', default: `${DEFAULT_PHYSICAL_RETENTION.full}d`}),
    'retention-diff': Flags.integer({description: 'Differential backups kept (their incrementals go with them).', default: DEFAULT_PHYSICAL_RETENTION.diff, min: 1}),
    'retention-pitr': Flags.integer({description: 'Point-in-time recovery reaches back to the oldest of this many newest diff/full backups.', default: DEFAULT_PHYSICAL_RETENTION.archiveDiffs, min: 1}),
    restart: Flags.boolean({description: 'Allow restarting a server on this machine that is not the local cluster (needed when archive_mode is off).'}),
    encrypt: Flags.boolean({
      description: "Encrypt a NEW repository with pgBackRest's cipher (aes-256-cbc), its passphrase derived from the backup key store; --no-encrypt for storage that encrypts itself. An existing repository keeps what it has (pgBackRest cannot change it).",
      default: true,
      allowNo: true,
    }),
    'key-file': Flags.string({description: 'Backup key file (created 0600 on first use); default SINGULARITY_BACKUP_KEY_FILE, else backup-keys.json beside the role passwords file (an existing repository: the one recorded at set-up). Keep it outside the backup directory.'}),
  }

  protected async execute(): Promise<SetupResult> {
    const timeout = parseDuration(this.flags['archive-timeout'])
    if (timeout === undefined || timeout < 1 || timeout > 3600) throw new UsageError(`invalid --archive-timeout '${this.flags['archive-timeout']}'`, {hint: 'a duration between 1s and 1h, e.g. 60s'})
    const full = /^(\d+)(d?)$/.exec(this.flags['retention-full'])
    if (!full || Number(full[1]) < 1) throw new UsageError(`invalid --retention-full '${this.flags['retention-full']}'`, {hint: 'a count (4) or days (365d)'})
    const config = resolveConfig(this.flags)
    const result = await setupPhysical({
      config,
      target: adminTarget(config),
      backupDir: this.flags.dir ?? config.backupDir,
      retention: {full: Number(full[1]), fullType: full[2] ? 'time' : 'count', diff: this.flags['retention-diff'], archiveDiffs: this.flags['retention-pitr']},
      archiveTimeoutSeconds: Math.round(timeout),
      allowRestart: this.flags.restart,
      encrypt: this.flags.encrypt,
      keyFileFlag: this.flags['key-file'],
      progress: (m) => this.note(m),
    })
    if (result.mode === 'remote' && result.problems.length > 0) this.exitAfterOutput(ExitCode.unhealthy)
    return result
  }

  protected override human(r: SetupResult): void {
    if (r.mode === 'host') {
      this.out(`physical backups set up for ${r.server}: stanza ${r.stanza}`)
      this.out(`  data directory  ${r.dataDir}`)
      this.out(`  pgBackRest      ${r.configFile}`)
      this.out(`  repository      ${r.repo}`)
      for (const c of r.changes) this.out(`  set ${c.name} = '${c.to}'`)
      if (r.restarted) this.out('  the server was restarted to turn archive_mode on')
      this.out(`  retention       ${r.retention.join(' ')}`)
      this.out(`  encryption      ${r.encryption.encrypted ? `${r.encryption.cipher}, passphrase from backup key ${r.encryption.keyId}` : 'none: the repository holds the data in clear'}`)
      if (r.encryptionNote) this.out(`  note            ${r.encryptionNote}`)
      this.out('  stanza-create and check: ok (a WAL segment was archived)')
      this.out('next: singularity backup --physical --type full')
      return
    }
    this.out(`${r.server} is not run by this machine: set these on it, then restart it (archive_mode needs a restart):`)
    for (const s of r.settings) this.out(`  ${s}`)
    this.out('pgbackrest.conf on that host (/etc/pgbackrest/pgbackrest.conf):')
    for (const l of r.pgbackrestConf.split('\n')) this.out(`  ${l}`)
    this.out('then, as the postgres OS user there:')
    for (const c of r.commands) this.out(`  ${c}`)
    this.out(`seen from here: archive_mode=${r.observed.archiveMode}, archive_command=${r.observed.archiveCommand || "''"}, archive_timeout=${r.observed.archiveTimeoutSeconds}s` +
      (r.observed.archiver?.lastArchivedAt ? `, last archived ${r.observed.archiver.lastArchivedWal} at ${r.observed.archiver.lastArchivedAt}` : ''))
    if (r.problems.length === 0) this.out('archiving works as far as this machine can see')
    for (const p of r.problems) this.out(`  not yet: ${p}`)
  }
}
