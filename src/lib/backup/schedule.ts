import {chmodSync, existsSync, readFileSync, renameSync, unlinkSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'

import {CliError} from '../cli/errors.js'
import type {JobSpec} from '../../schedules.js'

/**
 * The backup crontab: the system-cron schedules of schedules.ts as /etc/cron.d/singularity-backup,
 * exactly the file the README shows: each line takes a lock (two backups never overlap), verifies
 * the backup it took, then prunes by the retention of each kind.
 */

export const DEFAULT_BACKUP_CRON_FILE = '/etc/cron.d/singularity-backup'
/** The README's backup directory for the host's cron jobs. */
export const DEFAULT_CRON_BACKUP_DIR = '/var/backups/singularity'
const LOCK = '/run/lock/singularity-backup'
const LOG = '/var/log/singularity-backup.log'

/** Where the crontab lives: SINGULARITY_BACKUP_CRON_FILE (tests, other layouts), else /etc/cron.d/singularity-backup. */
export function backupCronFile(env: NodeJS.ProcessEnv = process.env): string {
  return env.SINGULARITY_BACKUP_CRON_FILE || DEFAULT_BACKUP_CRON_FILE
}

export interface CrontabEntry {
  /** schedule name, e.g. backup-hourly */
  name: string
  comment: string
  line: string
}

const KEEP: Record<string, number> = {'backup-hourly': 6, 'backup-daily': 7, 'backup-monthly': 12}

function comment(spec: JobSpec): string {
  const keep = KEEP[spec.name]
  if (spec.name === 'backup-hourly') return `# hourly, keep ${keep}`
  if (spec.name === 'backup-daily') return `# daily 01:00, keep ${keep}`
  if (spec.maxDayOfMonth) return `# monthly archival, first Sunday 05:00, keep ${keep} (cron ORs day-of-month and day-of-week, so the date is checked)`
  return `# ${spec.description}`
}

/** One crontab line of a system-cron schedule: locked, logged; "first <weekday>" as days 1-N plus a weekday check. */
export function crontabLine(spec: JobSpec): string {
  const run = `flock -w 3000 ${LOCK} sh -c '${spec.command}' >>${LOG} 2>&1`
  const fields = spec.schedule.split(/\s+/)
  if (spec.maxDayOfMonth && fields.length === 5 && /^[0-7]$/.test(fields[4])) {
    const isoWeekday = fields[4] === '0' ? '7' : fields[4]
    // '%' ends a crontab command unless escaped
    return `${fields[0]} ${fields[1]} 1-${spec.maxDayOfMonth} ${fields[3]} * root [ "$(date +\\%u)" = ${isoWeekday} ] && ${run}`
  }
  return `${spec.schedule.padEnd(11)} root ${run}`
}

/** The entries of the backup crontab, in the order of the schedules. */
export function backupCrontabEntries(schedules: JobSpec[]): CrontabEntry[] {
  return schedules
    .filter((s) => s.runner === 'system-cron' && s.name.startsWith('backup-'))
    .map((s) => ({name: s.name, comment: comment(s), line: crontabLine(s)}))
}

/** The whole file, as the README shows it. */
export function renderBackupCrontab(schedules: JobSpec[], backupDir = DEFAULT_CRON_BACKUP_DIR): string {
  const lines = ['SHELL=/bin/sh', 'PATH=/usr/local/bin:/usr/bin:/bin', `SINGULARITY_BACKUP_DIR=${backupDir}`]
  for (const entry of backupCrontabEntries(schedules)) lines.push(entry.comment, entry.line)
  return lines.join('\n') + '\n'
}

export interface CrontabStatus {
  file: string
  installed: boolean
  /** the installed file is exactly the expected one */
  matches: boolean
  entries: {name: string; expected: string; installed: boolean}[]
  /** installed lines that are not expected (changed by hand, or an older version) */
  unexpected: string[]
}

function readIfExists(file: string): string | null {
  try {
    return readFileSync(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw new CliError(`cannot read ${file}: ${(error as Error).message}`, {code: 'IO'})
  }
}

/** The installed crontab compared with the expected one, line by line. */
export function backupCrontabStatus(file: string, expected: string): CrontabStatus {
  const installed = readIfExists(file)
  const expectedLines = expected.split('\n').filter(Boolean)
  const installedLines = installed === null ? [] : installed.split('\n').map((l) => l.trimEnd()).filter(Boolean)
  const entries = expectedLines
    .filter((l) => !l.startsWith('#') && !/^[A-Z_]+=/.test(l))
    .map((line) => ({name: line, expected: line, installed: installedLines.includes(line)}))
  return {
    file,
    installed: installed !== null,
    matches: installed === expected,
    entries,
    unexpected: installedLines.filter((l) => !expectedLines.includes(l)),
  }
}

/** Writes the crontab atomically (mode 0644, as cron requires: not group- or world-writable). */
export function installBackupCrontab(file: string, content: string): {changed: boolean} {
  if (readIfExists(file) === content) return {changed: false}
  if (!existsSync(dirname(file))) {
    throw new CliError(`${dirname(file)} does not exist: is cron installed?`, {hint: 'install cron (apt-get install cron), or pass --file', code: 'NO_CRON_DIR'})
  }
  // cron skips files whose names contain a dot: the temporary name has one, the final one not
  const temporary = join(dirname(file), `.${file.split('/').pop()}.tmp-${process.pid}`)
  try {
    writeFileSync(temporary, content, {mode: 0o644})
    chmodSync(temporary, 0o644)
    renameSync(temporary, file)
  } catch (error) {
    try {
      unlinkSync(temporary)
    } catch {
      // never written
    }
    throw new CliError(`cannot write ${file}: ${(error as Error).message}`, {hint: 'run as root (cron.d belongs to root)', code: 'IO'})
  }
  return {changed: true}
}

/** Deletes the crontab; false when there was none. */
export function removeBackupCrontab(file: string): boolean {
  try {
    unlinkSync(file)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw new CliError(`cannot delete ${file}: ${(error as Error).message}`, {hint: 'run as root (cron.d belongs to root)', code: 'IO'})
  }
}

/** What `jobs list` adds to a system-cron row: its crontab line and whether the installed file has it. */
export interface CrontabAnnotation {
  file: string
  line: string
  /** the file exists */
  fileInstalled: boolean
  /** the file has exactly this line */
  installed: boolean
}

/**
 * Annotates the backup rows of a jobs list with the installed crontab: the line, whether it is
 * there; a line that differs is drift ("crontab differs"), a missing file only a note.
 */
export function annotateBackupRows<R extends {runner: string; name: string; drift: string[]; note?: string}>(
  rows: R[],
  schedules: JobSpec[],
  file: string,
): (R & {crontab?: CrontabAnnotation})[] {
  const entries = backupCrontabEntries(schedules)
  const installed = readIfExists(file)
  const lines = installed === null ? [] : installed.split('\n').map((l) => l.trimEnd())
  return rows.map((row) => {
    const entry = row.runner === 'system-cron' ? entries.find((e) => e.name === row.name) : undefined
    if (!entry) return row
    const has = lines.includes(entry.line)
    const note =
      installed === null
        ? `not installed: \`singularity backup schedule --install\` writes ${file}`
        : has
          ? `installed in ${file}`
          : `${file} lacks this line: \`singularity backup schedule --install\` rewrites it`
    return {
      ...row,
      drift: installed !== null && !has ? [...row.drift, 'crontab differs'] : row.drift,
      note,
      crontab: {file, line: entry.line, fileInstalled: installed !== null, installed: has},
    }
  })
}
