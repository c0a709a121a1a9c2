import {Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {BACKUP_KINDS} from '../../lib/backup/manifest.js'
import {listBackups, type BackupStatus} from '../../lib/backup/store.js'
import {resolveConfig} from '../../lib/config/resolve.js'
import {tableFlags} from '../../flags.js'
import {renderBackups} from '../../lib/render/backups.js'
import {formatBytes, formatDuration} from '../../lib/cli/format.js'
import {renderTable} from '../../lib/cli/table.js'
import {readPhysicalSetup} from '../../lib/backup/physical/layout.js'
import {listPhysical, type PhysicalListing} from '../../lib/backup/physical/list.js'
import {encryptionLine, windowLine} from '../../lib/backup/physical/render.js'

interface ListedBackup {
  id: string
  kind: string
  status: BackupStatus
  startedAt: string
  endedAt: string | null
  ageSeconds: number
  size: number | null
  databases: string[]
  verified: 'yes' | 'no' | 'failed'
  verifiedAt: string | null
  problem: string | null
  path: string
}

interface ListResult {
  dir: string
  backups: ListedBackup[]
  /** physical backups (pgBackRest) and the recovery window; null when never set up in this directory */
  physical: PhysicalListing | null
}

export default class BackupList extends BaseCommand<typeof BackupList> {
  static override summary = 'List backups, newest first: kind, size, age, whether verified.'
  static override description = `Complete backups, plus any that are being written (running) or were left by a killed or failed run (incomplete: never usable, \`backup prune\` removes them). "verified" is the result of the last \`backup verify\`: yes, no (never verified) or failed. Reads only the backup directory: no database connection. Physical backups (after \`backup setup --physical\`) are listed with the recovery window and the repository's encryption (--json: physical.encryption = {cipher, encrypted, keyId}); an encrypted repository needs its backup key (exit 1 naming the key id without it).`

  static override examples = [
    '<%= config.bin %> backup list',
    '<%= config.bin %> backup list --kind hourly',
    {description: 'The newest verified backup, for a script', command: `<%= config.bin %> backup list --json | jq -r '[.backups[] | select(.verified == "yes")][0].id'`},
  ]

  static override flags = {
    dir: Flags.string({description: 'Backup directory; default SINGULARITY_BACKUP_DIR, the config file, then next to the local cluster.'}),
    config: Flags.string({description: 'Config file (JSON); default SINGULARITY_CONFIG or ~/.config/singularity/config.json.', helpGroup: 'CONNECTION'}),
    kind: Flags.string({description: 'Only backups of this kind.', options: [...BACKUP_KINDS]}),
    complete: Flags.boolean({description: 'Only complete backups (hide running and incomplete ones).'}),
    'key-file': Flags.string({description: 'Backup key file for an encrypted physical repository; default SINGULARITY_BACKUP_KEY_FILE, else the one recorded at `backup setup --physical`.'}),
    ...tableFlags,
  }

  private table: string[] = []

  protected async execute(): Promise<ListResult> {
    const dir = this.flags.dir ?? resolveConfig({config: this.flags.config}).backupDir
    const now = Date.now()
    const backups = listBackups(dir)
      .filter((b) => !this.flags.kind || b.kind === this.flags.kind)
      .filter((b) => !this.flags.complete || b.status === 'complete')
      .map((b) => ({
        id: b.id,
        kind: b.kind,
        status: b.status,
        startedAt: b.startedAt,
        endedAt: b.endedAt,
        ageSeconds: Math.max(0, Math.round((now - Date.parse(b.startedAt)) / 1000)),
        size: b.size,
        databases: b.databases,
        verified: b.verified,
        verifiedAt: b.verifiedAt,
        problem: b.problem ?? null,
        path: b.path,
      }))
    if (!this.jsonMode && backups.length > 0) {
      this.table = renderBackups(backups, await this.tableOptions())
    }
    const physical = await this.physical(dir)
    return {dir, backups, physical}
  }

  private physicalTable = ''

  /** Physical backups, when `backup setup --physical` was run for this directory (pgbackrest info; no database connection). */
  private async physical(dir: string): Promise<PhysicalListing | null> {
    const setup = readPhysicalSetup(dir, this.flags['key-file'])
    if (!setup || setup.mode !== 'host') return null
    const listing = await listPhysical(dir, setup)
    if (!this.jsonMode && listing.backups.length > 0) {
      const now = Date.now()
      const rows = listing.backups.map((b) => [b.label, `physical ${b.type}`, b.status, formatBytes(b.repoSize), b.startedAt ? formatDuration(Math.max(0, (now - Date.parse(b.startedAt)) / 1000)) : '-', b.prior ?? '-'])
      this.physicalTable = renderTable(['LABEL', 'KIND', 'STATUS', 'SIZE', 'AGE', 'BUILDS ON'], rows, await this.tableOptions())
    }
    return listing
  }

  protected override human(r: ListResult): void {
    if (r.physical) {
      this.out(`physical (pgBackRest stanza ${r.physical.stanza}):`)
      this.out(this.physicalTable || '  none yet: singularity backup --physical --type full')
      this.out(windowLine(r.physical.window))
      this.out(encryptionLine(r.physical.encryption))
      if (r.backups.length === 0) return
      this.out('logical (pg_dump):')
    }
    if (r.backups.length === 0) {
      this.out(`no backups in ${r.dir}; take one with \`singularity backup\``)
      return
    }
    this.outTable(this.table)
    for (const b of r.backups.filter((x) => x.problem && x.status !== 'complete')) this.outFolded(`${b.id}: ${b.status}: ${b.problem}`)
  }
}
