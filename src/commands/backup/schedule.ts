import {Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {confirmDestructive} from '../../lib/cli/confirm.js'
import {UsageError} from '../../lib/cli/errors.js'
import {
  backupCronFile,
  backupCrontabStatus,
  DEFAULT_CRON_BACKUP_DIR,
  installBackupCrontab,
  removeBackupCrontab,
  renderBackupCrontab,
  type CrontabStatus,
} from '../../lib/backup/schedule.js'

export interface BackupScheduleResult {
  action: 'status' | 'install' | 'remove'
  file: string
  dryRun: boolean
  /** install: the file was written (false: it was already exactly so); remove: it was deleted */
  changed: boolean
  content: string
  status: CrontabStatus
}

const CONFIRM_NAME = 'singularity-backup'

export default class BackupSchedule extends BaseCommand<typeof BackupSchedule> {
  static override summary = "The host's backup crontab: show it, --install it into /etc/cron.d/singularity-backup, or --remove it."
  static override description = `Backups write files, so the host's cron runs them (seed 001: hourly keep 6, daily 01:00 keep 7, monthly on the first Sunday 05:00 keep 12). The file is the one the README shows: each line takes a lock (flock, so two backups never overlap), takes the backup with --verify, then prunes by retention; output goes to /var/log/singularity-backup.log.

Without --install or --remove: whether the file is installed and matches, line by line (\`jobs list\` shows the same). --install writes it atomically with mode 0644 (a no-op when it is already exactly so). --remove deletes it: backups stop, so it needs --confirm ${CONFIRM_NAME} (or a typed answer on a terminal).

The file is --file, else SINGULARITY_BACKUP_CRON_FILE, else /etc/cron.d/singularity-backup. Exit codes: 0 ok; 1 the file cannot be written or deleted; 2 bad flags or no confirmation; 3 (status) installed but different from what --install writes.`

  static override examples = [
    {description: 'Is the backup crontab installed, and as it should be?', command: '<%= config.bin %> backup schedule'},
    {description: 'Install it (as root)', command: '<%= config.bin %> backup schedule --install'},
    {description: 'What would be written, without writing', command: '<%= config.bin %> backup schedule --install --dry-run'},
    {description: 'Stop scheduled backups', command: `<%= config.bin %> backup schedule --remove --confirm ${CONFIRM_NAME}`},
  ]

  static override flags = {
    install: Flags.boolean({description: 'Write the crontab (replaces a different one).', exclusive: ['remove']}),
    remove: Flags.boolean({description: 'Delete the crontab (needs --confirm singularity-backup).', exclusive: ['install']}),
    file: Flags.string({description: 'The crontab file; default SINGULARITY_BACKUP_CRON_FILE or /etc/cron.d/singularity-backup.'}),
    'backup-dir': Flags.string({description: `SINGULARITY_BACKUP_DIR of the cron jobs (default ${DEFAULT_CRON_BACKUP_DIR}).`}),
    'dry-run': Flags.boolean({description: 'Show what would change and change nothing.'}),
    confirm: Flags.string({description: `--remove without a prompt: pass ${CONFIRM_NAME}.`}),
  }

  protected async execute(): Promise<BackupScheduleResult> {
    const file = this.flags.file ?? backupCronFile()
    if (!file.startsWith('/')) throw new UsageError(`--file must be an absolute path, got ${JSON.stringify(file)}`)
    const backupDir = this.flags['backup-dir'] ?? DEFAULT_CRON_BACKUP_DIR
    if (!backupDir.startsWith('/') || /\s/.test(backupDir)) throw new UsageError('--backup-dir must be an absolute path without spaces')
    const {schedulesFor} = await import('../../schedules.js')
    const content = renderBackupCrontab(schedulesFor(process.env), backupDir)
    const dryRun = Boolean(this.flags['dry-run'])
    let action: BackupScheduleResult['action'] = 'status'
    let changed = false
    if (this.flags.install) {
      action = 'install'
      const before = backupCrontabStatus(file, content)
      changed = !before.matches
      if (!dryRun && changed) installBackupCrontab(file, content)
    } else if (this.flags.remove) {
      action = 'remove'
      const before = backupCrontabStatus(file, content)
      if (before.installed && !dryRun) {
        await confirmDestructive({action: `delete ${file} (scheduled backups stop)`, name: CONFIRM_NAME, confirmFlag: this.flags.confirm, command: 'singularity backup schedule --remove'})
        changed = removeBackupCrontab(file)
      } else {
        changed = before.installed
      }
    }
    const status = backupCrontabStatus(file, content)
    if (action === 'status' && status.installed && !status.matches) this.exitAfterOutput(3)
    return {action, file, dryRun, changed, content, status}
  }

  protected override human(r: BackupScheduleResult): void {
    const would = r.dryRun ? 'would ' : ''
    if (r.action === 'install') {
      this.out(r.changed ? `${would}write ${r.file}:` : `${r.file} is installed and matches; nothing to do`)
      if (r.changed) for (const line of r.content.trimEnd().split('\n')) this.out(`  ${line}`)
      return
    }
    if (r.action === 'remove') {
      this.out(r.changed ? `${would}delete ${r.file}: scheduled backups ${r.dryRun ? 'would stop' : 'stopped'}` : `${r.file} is not installed; nothing to do`)
      return
    }
    if (!r.status.installed) {
      this.out(`${r.file} is not installed: backups are not scheduled`)
      this.out('`singularity backup schedule --install` writes it:')
      for (const line of r.content.trimEnd().split('\n')) this.out(`  ${line}`)
      return
    }
    this.out(`${r.file}: ${r.status.matches ? 'installed, matches' : 'installed, DIFFERS from what --install writes'}`)
    for (const e of r.status.entries) this.out(`  ${e.installed ? 'ok     ' : 'missing'} ${e.expected}`)
    for (const line of r.status.unexpected) this.out(`  extra   ${line}`)
    if (!r.status.matches) this.out('`singularity backup schedule --install` rewrites it')
  }
}
