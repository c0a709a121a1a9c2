import type pg from 'pg'

import {archiverStatus, type ArchiverStatus} from '../backup/physical/archiver.js'
import {cipherEnv, MIGRATE_HINT} from '../backup/physical/cipher.js'
import type {PhysicalSetup} from '../backup/physical/layout.js'
import type {PhysicalBackup} from '../backup/physical/list.js'
import {formatBytes, formatDuration} from '../cli/format.js'
import type {CheckResult} from './types.js'

/** How old the newest physical backup of a type (or a bigger one) may be: its cron interval plus slack. */
export const PHYSICAL_MAX_AGE_SECONDS: Record<'full' | 'diff' | 'incr', number> = {
  full: 8 * 86_400,
  diff: 26 * 3600,
  incr: 2 * 3600,
}
const COVERS: Record<'full' | 'diff' | 'incr', ('full' | 'diff' | 'incr')[]> = {full: ['full'], diff: ['full', 'diff'], incr: ['full', 'diff', 'incr']}

/**
 * WAL archiving rows: the last archived segment's age against --max-archive-age (an idle server
 * with nothing waiting to be archived is fine however long ago that was), and archive_command
 * failing since its last success.
 */
export function archivingChecks(a: ArchiverStatus, setUp: boolean, maxAgeSeconds: number): CheckResult[] {
  if (a.archiveMode === 'off') {
    return [
      setUp
        ? {check: 'WAL archiving', status: 'fail', detail: 'archive_mode is off, but physical backups are set up: no WAL is archived', next: 'singularity backup setup --physical'}
        : {check: 'WAL archiving', status: 'warn', detail: 'not set up: no point-in-time recovery (only the logical dumps)', next: 'singularity backup setup --physical'},
    ]
  }
  const waiting = a.pendingBytes ?? 0
  let age: CheckResult
  if (a.lastArchivedAt === null) {
    age = {check: 'WAL archiving', status: a.failing ? 'fail' : 'warn', detail: 'nothing archived yet', next: 'singularity backup setup --physical'}
  } else if ((a.lastArchivedAgeSeconds ?? 0) > maxAgeSeconds && waiting > 0) {
    age = {
      check: 'WAL archiving',
      status: 'fail',
      detail: `last WAL archived ${formatDuration(a.lastArchivedAgeSeconds)} ago (> ${formatDuration(maxAgeSeconds)}) with ${formatBytes(waiting)} of WAL waiting (${a.lastArchivedWal})`,
      next: 'singularity doctor --json',
    }
  } else {
    age = {
      check: 'WAL archiving',
      status: 'ok',
      detail: `last WAL ${a.lastArchivedWal} archived ${formatDuration(a.lastArchivedAgeSeconds)} ago${waiting === 0 ? ', nothing waiting' : ''}`,
      next: 'singularity backup list',
    }
  }
  const failures: CheckResult = a.failing
    ? {
        check: 'archive failures',
        status: 'fail',
        detail: `archive_command failing since ${a.lastFailedAt} on ${a.lastFailedWal}${a.lastArchivedAt ? ` (last success ${a.lastArchivedAt})` : ''}; ${a.failedCount} failed attempt(s) since statistics reset`,
        next: 'check archive_command and the server log; singularity backup setup --physical rewrites it',
      }
    : {check: 'archive failures', status: 'ok', detail: `no failure since the last success${a.failedCount > 0 ? ` (${a.failedCount} earlier failed attempt(s) since statistics reset)` : ''}`, next: 'singularity doctor'}
  return [age, failures]
}

/** The newest physical backup of each type in use is younger than that type's interval (a bigger type covers a smaller one). */
export function physicalBackupCheck(backups: PhysicalBackup[], now = new Date()): CheckResult {
  const complete = backups.filter((b) => b.status === 'complete' && b.stoppedAt)
  if (complete.length === 0) {
    return {check: 'physical backups', status: 'fail', detail: 'none yet: archived WAL alone cannot be restored', next: 'singularity backup --physical --type full'}
  }
  const problems: string[] = []
  const notes: string[] = []
  for (const type of ['full', 'diff', 'incr'] as const) {
    if (!complete.some((b) => b.type === type)) continue
    const newest = complete.filter((b) => COVERS[type].includes(b.type)).sort((a, b) => Date.parse(b.stoppedAt!) - Date.parse(a.stoppedAt!))[0]
    const age = (now.getTime() - Date.parse(newest.stoppedAt!)) / 1000
    if (age > PHYSICAL_MAX_AGE_SECONDS[type]) problems.push(`newest ${type} is ${formatDuration(age)} old (> ${formatDuration(PHYSICAL_MAX_AGE_SECONDS[type])})`)
    else notes.push(`${type} ${formatDuration(age)} ago`)
  }
  return {
    check: 'physical backups',
    status: problems.length > 0 ? 'fail' : 'ok',
    detail: problems.length > 0 ? problems.join('; ') : `newest: ${notes.join(', ')}`,
    next: 'singularity backup list',
  }
}

/**
 * Whether the physical repository is encrypted (warn when not: it holds role password hashes and
 * the session key in clear), and whether the key store still holds its key (fail when not: no
 * backup, list or restore works without it).
 */
export function physicalEncryptionCheck(setup: PhysicalSetup): CheckResult {
  if (!setup.cipher) {
    return {check: 'physical encryption', status: 'warn', detail: `the pgBackRest repository of ${setup.stanza} is not encrypted: its files hold role password hashes and the session key in clear. ${MIGRATE_HINT}`, next: 'singularity backup setup --physical --dir <new dir>'}
  }
  try {
    cipherEnv(setup.stanza, setup.cipher)
  } catch (error) {
    return {check: 'physical encryption', status: 'fail', detail: (error as Error).message, next: 'singularity backup list --key-file <file>'}
  }
  return {check: 'physical encryption', status: 'ok', detail: `the pgBackRest repository of ${setup.stanza} is encrypted (${setup.cipher.type}, passphrase from backup key ${setup.cipher.keyId}, in ${setup.cipher.keyFile})`, next: 'singularity backup list'}
}

/** Every archive row of the doctor (physical backups only when set up in the backup directory). */
export async function archiveChecks(admin: pg.Client, backupDir: string, setup: PhysicalSetup | undefined, maxAgeSeconds: number): Promise<CheckResult[]> {
  const rows = archivingChecks(await archiverStatus(admin), Boolean(setup), maxAgeSeconds)
  if (setup) {
    rows.push(physicalEncryptionCheck(setup))
    const {listPhysical} = await import('../backup/physical/list.js')
    try {
      rows.push(physicalBackupCheck((await listPhysical(backupDir, setup)).backups))
    } catch (error) {
      rows.push({check: 'physical backups', status: 'fail', detail: `could not list them: ${(error as Error).message.split('\n')[0]}`, next: 'singularity backup list'})
    }
  }
  return rows
}
