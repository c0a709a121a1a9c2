/**
 * Physical backups as `backup list` shows them, and the recovery window: the earliest and the
 * latest time a point-in-time restore can reach, read from the repository alone (no connection).
 */
import {existsSync, readdirSync, statSync} from 'node:fs'
import {join} from 'node:path'

import {physicalLayout, PHYSICAL_LABEL, type PhysicalSetup} from './layout.js'
import {repoEncryption, type RepoEncryption} from './cipher.js'
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
  /** the earliest restorable time: the second after the oldest backup whose WAL reaches to the present stopped */
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
  /** the repository's cipher as pgBackRest reports it, and the backup key its passphrase comes from */
  encryption: RepoEncryption
}

const iso = (epochSeconds: number) => new Date(epochSeconds * 1000).toISOString()

/** What the repository holds of the current archive: WAL segment names (sorted), and when the newest was archived. */
export interface ArchiveContents {
  segments: string[]
  newestArchivedAt: Date | undefined
}

function archiveContents(backupDir: string, stanza: string, archiveId: string): ArchiveContents {
  const root = join(physicalLayout(backupDir).repo, 'archive', stanza, archiveId)
  const segments: string[] = []
  let newest: {name: string; path: string} | undefined
  if (existsSync(root)) {
    for (const dir of readdirSync(root).filter((d) => /^[0-9A-F]{16}$/.test(d))) {
      for (const file of readdirSync(join(root, dir))) {
        const m = /^([0-9A-F]{24})-/.exec(file)
        if (!m) continue
        segments.push(m[1])
        if (!newest || m[1] > newest.name) newest = {name: m[1], path: join(root, dir, file)}
      }
    }
  }
  segments.sort()
  return {segments, newestArchivedAt: newest ? statSync(newest.path).mtime : undefined}
}

/** A segment's position in the WAL stream (timeline aside), for 16 MB segments (PostgreSQL's default). */
const SEGMENTS_PER_LOG = 0x1_0000_0000 / (16 * 1024 * 1024)
const position = (segment: string) => parseInt(segment.slice(8, 16), 16) * SEGMENTS_PER_LOG + parseInt(segment.slice(16, 24), 16)

/**
 * The recovery window: from the end of the oldest backup whose WAL is continuous from its start
 * to the newest archived segment (expiry keeps older backups' own WAL but drops what lies between
 * them), to the time that newest segment was archived.
 */
export function recoveryWindow(info: PgBackRestInfo, contents: ArchiveContents): RecoveryWindow | null {
  const archive = info.archive.at(-1)
  if (!archive?.max || contents.segments.length === 0 || !contents.newestArchivedAt) return null
  const positions = [...new Set(contents.segments.map(position))].sort((a, b) => a - b)
  let first = positions.length - 1
  while (first > 0 && positions[first - 1] === positions[first] - 1) first--
  const continuousFrom = positions[first]
  const usable = info.backup
    .filter((b) => !b.error && b.database.id === archive.database.id && b.archive.start && position(b.archive.start) >= continuousFrom)
    .sort((a, b) => a.timestamp.stop - b.timestamp.stop)
  const oldest = usable[0]
  if (!oldest) return null
  // pgBackRest keeps stop times in whole seconds and restores to a time only from a backup that
  // stopped strictly before that time's second: the first second after the stop is the earliest.
  const earliest = iso(oldest.timestamp.stop + 1)
  return {earliest, latest: new Date(Math.max(contents.newestArchivedAt.getTime(), Date.parse(earliest))).toISOString(), lastWal: archive.max}
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
    window: info.archive.at(-1) ? recoveryWindow(info, archiveContents(backupDir, setup.stanza, info.archive.at(-1)!.id)) : null,
    backupRunning: running,
    encryption: repoEncryption(setup.cipher, info.cipher),
  }
}
