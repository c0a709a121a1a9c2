import {Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {applyPrune, planPrune, type PrunePlan} from '../../lib/backup/prune.js'
import {DEFAULT_RETENTION, type RetentionPolicy} from '../../lib/backup/retention.js'
import {confirmDestructive} from '../../lib/cli/confirm.js'
import {formatBytes} from '../../lib/cli/format.js'
import {resolveConfig} from '../../lib/config/resolve.js'

interface PruneResult extends PrunePlan {
  dryRun: boolean
  deleted: string[]
  removedLeftovers: string[]
}

export default class BackupPrune extends BaseCommand<typeof BackupPrune> {
  static override summary = 'Delete backups beyond the retention (seed 001: hourly keep 6, daily keep 7, monthly keep 12) and leftovers of killed runs.'
  static override description = `Per kind, the newest N complete backups are kept; older ones are deleted. The newest verified backup is never deleted, whatever its kind and age. Manual backups (taken without --kind) are kept unless --keep-manual is given. Partial directories of killed or failed runs are removed too; a backup being written is never touched.

Deleting needs --confirm prune (or a typed answer on a terminal); without a terminal it refuses with exit 2. --dry-run shows the plan and changes nothing.`

  static override examples = [
    {description: 'What would be deleted', command: '<%= config.bin %> backup prune --dry-run'},
    {description: 'From system cron (no terminal)', command: '<%= config.bin %> backup prune --confirm prune'},
    {description: 'Keep 24 hourly backups instead of 6', command: '<%= config.bin %> backup prune --keep-hourly 24 --confirm prune'},
  ]

  static override flags = {
    dir: Flags.string({description: 'Backup directory; default SINGULARITY_BACKUP_DIR, the config file, then next to the local cluster.'}),
    config: Flags.string({description: 'Config file (JSON); default SINGULARITY_CONFIG or ~/.config/singularity/config.json.', helpGroup: 'CONNECTION'}),
    'keep-hourly': Flags.integer({description: 'Hourly backups to keep.', default: DEFAULT_RETENTION.hourly, min: 0}),
    'keep-daily': Flags.integer({description: 'Daily backups to keep.', default: DEFAULT_RETENTION.daily, min: 0}),
    'keep-monthly': Flags.integer({description: 'Monthly backups to keep.', default: DEFAULT_RETENTION.monthly, min: 0}),
    'keep-manual': Flags.integer({description: 'Manual backups to keep (default: all).', min: 0}),
    'dry-run': Flags.boolean({description: 'Show what would be deleted; change nothing.'}),
    confirm: Flags.string({description: 'Confirm deletion without a prompt: pass the word "prune".'}),
  }

  protected async execute(): Promise<PruneResult> {
    const dir = this.flags.dir ?? resolveConfig({config: this.flags.config}).backupDir
    const policy: RetentionPolicy = {
      hourly: this.flags['keep-hourly'],
      daily: this.flags['keep-daily'],
      monthly: this.flags['keep-monthly'],
      manual: this.flags['keep-manual'],
    }
    const plan = await planPrune(dir, policy)
    const nothing = plan.deleteIds.length === 0 && plan.leftovers.length === 0
    if (this.flags['dry-run'] || nothing) return {...plan, dryRun: this.flags['dry-run'], deleted: [], removedLeftovers: []}
    const parts = []
    if (plan.deleteIds.length > 0) parts.push(`delete ${plan.deleteIds.length} backup${plan.deleteIds.length === 1 ? '' : 's'} (${formatBytes(plan.freedBytes)}): ${plan.deleteIds.join(', ')}`)
    if (plan.leftovers.length > 0) parts.push(`remove ${plan.leftovers.length} leftover${plan.leftovers.length === 1 ? '' : 's'} of killed or failed runs`)
    await confirmDestructive({action: `${parts.join(' and ')} in ${dir}`, name: 'prune', confirmFlag: this.flags.confirm, command: 'singularity backup prune'})
    const applied = await applyPrune(plan, (m) => this.note(m))
    return {...plan, dryRun: false, ...applied}
  }

  protected override human(r: PruneResult): void {
    const verb = r.dryRun ? 'would delete' : 'deleted'
    const label = (s: string) => s.padEnd(8)
    for (const b of r.backups) this.out(`${label(b.action === 'delete' ? (r.dryRun ? 'delete' : 'deleted') : 'keep')}${b.id}  ${b.verified === 'yes' ? '(verified) ' : ''}${b.reason}`)
    for (const l of r.leftovers) this.out(`${label(r.dryRun ? 'remove' : 'removed')}${l.name}  ${l.reason}`)
    for (const u of r.untouched) this.out(`${label('skip')}${u.id}  ${u.status}${u.problem ? `: ${u.problem}` : ''}`)
    const n = r.deleteIds.length
    if (n === 0 && r.leftovers.length === 0) this.out(`nothing to prune in ${r.dir} (${r.backups.length} backup${r.backups.length === 1 ? '' : 's'} within retention)`)
    else this.out(`${verb} ${n} backup${n === 1 ? '' : 's'} (${formatBytes(r.freedBytes)})${r.leftovers.length ? ` and ${r.leftovers.length} leftover${r.leftovers.length === 1 ? '' : 's'}` : ''}${r.dryRun ? '; rerun with --confirm prune to do it' : ''}`)
  }
}
