/**
 * Physical backups as `backup list` shows them, and the recovery window: the earliest and the
 * latest time a point-in-time restore can reach, read from the repository alone (no connection).
 */
import {existsSync, readdirSync, statSync} from 'node:fs'
import {join} from 'node:path'

import {physicalLayout, PHYSICAL_LABEL, type PhysicalSetup} from './layout.js'
import {pgBackRestInfo, type PgBackRestInfo} from './pgbackrest.js'

export interface PhysicalBackup {
  label: string
  type: 'full' | 'diff' | 'incr'
  /** complete: listed by pgBackRest; incomplete: a directory a killed or failed run left (never restorable) */
  status: 'complete' | 'running' | 'incomplete'
  startedAt: string | null
  stoppedAt: string | null
  /** cluster size the backup restores to, and what it takes in the repository */
  size: number | null
  repoSize: number | null
  /** the backup it depends on (diff → full, incr → diff or full) */
  prior: string | null
}

export interface RecoveryWindow {
  /** the earliest restorable time: the end of the oldest backup whose WAL reaches to the present */
  earliest: string
  /** the latest time the archive certainly holds: when its newest WAL segment was archived */
  latest: string
  /** newest archived WAL segment */
  lastWal: string
}

export interface PhysicalListing {
  stanza: string
  repo: string
  backups: PhysicalBackup[]
  window: RecoveryWindow | null
  /** a backup is being taken right now */
  backupRunning: boolean
}

const iso = (epochSeconds: number) => new Date(epochSeconds * 1000).toISOString()

/** When the newest WAL segment reached the archive (its file's modification time). */
function archivedAt(backupDir: string, stanza: string, archiveId: string, segment: string): Date | undefined {
  const dir = join(physicalLayout(backupDir).repo, 'archive', stanza, archiveId, segment.slice(0, 16))
  if (!existsSync(dir)) return undefined
  const file = readdirSync(dir).find((f) => f.startsWith(segment) && !f.endsWith('.backup'))
  return file ? statSync(join(dir, file)).mtime : undefined
}

/** The recovery window from pgBackRest's info: needs a backup and WAL from its start onwards. */
export function recoveryWindow(info: PgBackRestInfo, lastArchivedAt: (archiveId: string, segment: string) => Date | undefined): RecoveryWindow | null {
  const archive = info.archive.at(-1)
  if (!archive?.min || !archive.max) return null
  const usable = info.backup
    .filter((b) => !b.error && b.database.id === archive.database.id && b.archive.start && b.archive.start >= archive.min!)
    .sort((a, b) => a.timestamp.stop - b.timestamp.stop)
  const oldest = usable[0]
  const at = lastArchivedAt(archive.id, archive.max)
  if (!oldest || !at) return null
  const earliest = iso(oldest.timestamp.stop)
  return {earliest, latest: new Date(Math.max(at.getTime(), Date.parse(earliest))).toISOString(), lastWal: archive.max}
}

/** Every physical backup, newest first, plus partial ones left by killed runs, and the window. */
export async function listPhysical(backupDir: string, setup: PhysicalSetup): Promise<PhysicalListing> {
  const info = await pgBackRestInfo(backupDir, setup)
  const complete: PhysicalBackup[] = info.backup.map((b) => ({
    label: b.label,
    type: b.type,
    status: 'complete',
    startedAt: iso(b.timestamp.start),
    stoppedAt: iso(b.timestamp.stop),
    size: b.info.size,
    repoSize: b.info.repository.size,
    prior: b.prior,
  }))
  const known = new Set(complete.map((b) => b.label))
  const backupRoot = join(physicalLayout(backupDir).repo, 'backup', setup.stanza)
  const running = info.status.lock?.backup?.held ?? false
  const leftovers: PhysicalBackup[] = existsSync(backupRoot)
    ? readdirSync(backupRoot)
        .filter((name) => PHYSICAL_LABEL.test(name) && !known.has(name))
        .map((label): PhysicalBackup => ({
          label,
          type: (label.endsWith('F') ? 'full' : label.endsWith('D') ? 'diff' : 'incr') as PhysicalBackup['type'],
          status: running ? 'running' : 'incomplete',
          startedAt: null,
          stoppedAt: null,
          size: null,
          repoSize: null,
          prior: null,
        }))
    : []
  // newest first, by when each backup was started (the last part of its label)
  const key = (label: string) => label.split('_').at(-1)!
  const backups = [...complete, ...leftovers].sort((a, b) => (key(a.label) < key(b.label) ? 1 : key(a.label) > key(b.label) ? -1 : 0))
  return {
    stanza: setup.stanza,
    repo: physicalLayout(backupDir).repo,
    backups,
    window: recoveryWindow(info, (id, segment) => archivedAt(backupDir, setup.stanza, id, segment)),
    backupRunning: running,
  }
}
