/** How `backup list` looks to people: newest first, one row per backup. */
import {formatBytes, formatDuration} from '../cli/format.js'
import {statusTone} from '../cli/colour.js'
import {formatTable, type Column, type TableOptions} from '../cli/table.js'

export interface BackupListRow {
  id: string
  kind: string
  status: string
  ageSeconds: number
  size: number | null
  databases: string[]
  verified: 'yes' | 'no' | 'failed'
}

export const BACKUP_COLUMNS: Column<BackupListRow>[] = [
  {key: 'id', header: 'id', priority: 0, text: (b) => b.id},
  {key: 'status', header: 'status', priority: 1, text: (b) => b.status, tone: (b) => statusTone(b.status)},
  {
    key: 'verified',
    header: 'verified',
    priority: 1,
    text: (b) => (b.status === 'complete' ? b.verified : null),
    tone: (b) => (b.verified === 'yes' ? 'ok' : b.verified === 'failed' ? 'fail' : 'warn'),
  },
  {key: 'age', header: 'age', priority: 2, align: 'right', text: (b) => formatDuration(b.ageSeconds), raw: (b) => b.ageSeconds},
  {key: 'kind', header: 'kind', priority: 3, text: (b) => b.kind},
  {key: 'size', header: 'size', priority: 4, align: 'right', text: (b) => formatBytes(b.size), raw: (b) => b.size},
  {key: 'dbs', header: 'dbs', priority: 5, align: 'right', text: (b) => b.databases.length || null, raw: (b) => b.databases.join(' ')},
]

export function renderBackups(backups: BackupListRow[], options: TableOptions): string[] {
  return formatTable(BACKUP_COLUMNS, backups, options).lines
}
