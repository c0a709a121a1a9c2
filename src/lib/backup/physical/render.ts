/** Lines people read for physical backups (commands print them; --json prints the data). */
import {formatBytes} from '../../cli/format.js'
import type {RepoEncryption} from './cipher.js'
import type {RecoveryWindow} from './list.js'
import type {RestoreToTimeResult} from './restore.js'
import type {PhysicalBackupResult} from './take.js'

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`

export function windowLine(window: RecoveryWindow | null): string {
  return window ? `recovery window: ${window.earliest} … ${window.latest} (any second in between; last archived WAL ${window.lastWal})` : 'recovery window: none yet (needs a physical backup and archived WAL)'
}

export function encryptionLine(e: RepoEncryption): string {
  return e.encrypted
    ? `repository encrypted: ${e.cipher}, passphrase from backup key ${e.keyId ?? '(unknown: set up by hand?)'}`
    : 'repository NOT encrypted: its files hold the data in clear (pgBackRest cannot encrypt it in place: set up a new repository with `backup setup --physical --dir <new dir>`)'
}

export function physicalBackupLines(r: PhysicalBackupResult): string[] {
  const fellBack = r.type !== r.requestedType ? ` (asked for ${r.requestedType}: nothing to build on yet)` : ''
  return [
    `physical ${r.type} backup ${r.label} complete${fellBack}: ${formatBytes(r.size)} of cluster, ${formatBytes(r.repoSize)} in the repository, ${seconds(r.durationMs)}`,
    ...(r.prior ? [`  builds on ${r.prior}`] : []),
    ...(r.expired.length > 0 ? [`  expired by retention: ${r.expired.join(', ')}`] : []),
    windowLine(r.window),
    encryptionLine(r.encryption),
  ]
}

export function restoredLines(r: RestoreToTimeResult): string[] {
  const lines = [
    `restored ${r.stanza} to ${r.toTime}${r.backupSet ? ` from backup ${r.backupSet}` : ''} in ${seconds(r.durationMs)}${r.lastCommitAt ? `; last transaction committed at ${r.lastCommitAt}` : ''}`,
    `  data directory  ${r.dataDir}`,
  ]
  if (r.clusterDir) {
    lines.push(`  running         pid ${r.pid ?? '?'} on port ${r.port}`, `  connect         ${r.url}`, `  stop it         ${r.stop}`)
  } else {
    lines.push(`  next            ${r.stop}`)
  }
  if (r.status) {
    lines.push(`db status of the restored cluster: ${r.status.verdict}`)
    for (const d of r.status.databases) lines.push(`  ${d.name.padEnd(16)} ${d.verdict.padEnd(11)} ${d.reachable ? `${d.migrations.applied} sql files applied` : (d.error ?? '')}`)
  }
  return lines
}
