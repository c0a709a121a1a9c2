import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import type {Verification} from '../../lib/backup/manifest.js'
import {verifyBackup} from '../../lib/backup/verify.js'
import {formatBytes} from '../../lib/cli/format.js'
import {resolveConfig} from '../../lib/config/resolve.js'
import {PHYSICAL_LABEL} from '../../lib/backup/physical/layout.js'
import {verifyPhysical, type PhysicalVerifyResult} from '../../lib/backup/physical/verify.js'
import {UsageError} from '../../lib/cli/errors.js'

type VerifyResult = Verification & {path: string}

export default class BackupVerify extends BaseCommand<typeof BackupVerify> {
  static override summary = 'Verify a backup: sha256 of every file against the manifest, and pg_restore --list reads every archive.'
  static override description = `The result is stored with the backup (verify.json) and shown by \`backup list\`; \`backup prune\` never deletes the newest verified backup. Needs no database connection.

Exit codes: 0 verified · 1 a file is missing, changed or unreadable (or the backup is incomplete) · 4 no such backup.`

  static override examples = [
    '<%= config.bin %> backup verify 20261123T201500Z-hourly',
    {description: 'The newest complete backup', command: '<%= config.bin %> backup verify latest'},
    '<%= config.bin %> backup verify 20261123T010000Z-daily --json',
    {description: 'Physical: pgBackRest verify of the whole repository (WAL and every backup)', command: '<%= config.bin %> backup verify --physical'},
    {description: 'Physical: one backup set', command: '<%= config.bin %> backup verify 20261125-163835F'},
  ]

  static override args = {
    id: Args.string({description: 'Backup id (see `backup list`), or "latest"; with --physical optional (default: the whole repository).'}),
  }

  static override flags = {
    dir: Flags.string({description: 'Backup directory; default SINGULARITY_BACKUP_DIR, the config file, then next to the local cluster.'}),
    config: Flags.string({description: 'Config file (JSON); default SINGULARITY_CONFIG or ~/.config/singularity/config.json.', helpGroup: 'CONNECTION'}),
    physical: Flags.boolean({description: 'Verify physical backups with pgBackRest verify (a physical label such as 20261125-163835F implies it).'}),
  }

  protected async execute(): Promise<VerifyResult | PhysicalVerifyResult> {
    const dir = this.flags.dir ?? resolveConfig({config: this.flags.config}).backupDir
    if (this.flags.physical || PHYSICAL_LABEL.test(this.args.id ?? '')) {
      const physical = await verifyPhysical({backupDir: dir, label: this.args.id, progress: (m) => this.note(m)})
      if (!physical.ok) this.exitAfterOutput(1)
      return physical
    }
    if (!this.args.id) throw new UsageError('missing backup id', {hint: 'singularity backup verify <id|latest>, or --physical (see `backup list`)'})
    const result = await verifyBackup({dir, id: this.args.id, progress: (m) => this.note(m)})
    if (!result.ok) this.exitAfterOutput(1)
    return result
  }

  protected override human(r: VerifyResult | PhysicalVerifyResult): void {
    if ('report' in r) {
      for (const line of r.report) this.out(`  ${line}`)
      this.out(r.ok ? `physical ${r.label ?? 'repository'} of ${r.stanza} verified` : `physical ${r.label ?? 'repository'} of ${r.stanza} FAILED verification: ${r.problem}`)
      return
    }
    for (const f of r.files) {
      const detail = f.ok ? `${formatBytes(f.size)}${f.entries === null ? '' : `, ${f.entries} archive entries`}` : f.problem
      this.out(`${f.ok ? 'ok    ' : 'FAILED'}  ${f.file}  ${detail}`)
    }
    this.out(r.ok ? `backup ${r.id} verified` : `backup ${r.id} FAILED verification: do not restore from it`)
  }
}
