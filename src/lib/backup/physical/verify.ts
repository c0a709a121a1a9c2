/** `backup verify --physical`: pgBackRest's verify over the repository (WAL and backups, checksums and sizes). */
import {NotFoundError} from '../../cli/errors.js'
import {requirePhysicalSetup} from './layout.js'
import {listPhysical} from './list.js'
import {pgBackRestError, runPgBackRest} from './pgbackrest.js'

export interface PhysicalVerifyResult {
  kind: 'physical'
  stanza: string
  /** the backup checked, or null for the whole repository */
  label: string | null
  ok: boolean
  /** pgBackRest's report, one line each: status, WAL checked, each backup's result */
  report: string[]
  problem: string | null
}

export async function verifyPhysical(options: {backupDir: string; label?: string; keyFile?: string; progress: (m: string) => void}): Promise<PhysicalVerifyResult> {
  const setup = requirePhysicalSetup(options.backupDir, options.keyFile)
  let label = options.label ?? null
  if (label === 'latest') {
    const newest = (await listPhysical(options.backupDir, setup)).backups.find((b) => b.status === 'complete')
    if (!newest) throw new NotFoundError(`no physical backup of ${setup.stanza}`, {hint: 'take one: singularity backup --physical --type full', code: 'BACKUP_NOT_FOUND'})
    label = newest.label
  }
  options.progress(`pgbackrest verify ${label ?? 'the whole repository'} of ${setup.stanza}`)
  const result = await runPgBackRest(options.backupDir, setup, 'verify', ['--output=text', '--verbose', ...(label ? [`--set=${label}`] : [])], {reject: false})
  const report = result.stdout.split('\n').map((l) => l.trim()).filter(Boolean)
  const status = report.find((l) => l.startsWith('status:'))
  const invalid = report.some((l) => /checksum invalid: [1-9]|missing: [1-9]|size invalid: [1-9]|other: [1-9]|status: (?!valid|ok)/.test(l))
  const ok = result.exitCode === 0 && status === 'status: ok' && !invalid
  return {
    kind: 'physical',
    stanza: setup.stanza,
    label,
    ok,
    report,
    problem: ok ? null : (pgBackRestError(result.output) ?? status ?? `pgbackrest verify exited ${result.exitCode}`),
  }
}
