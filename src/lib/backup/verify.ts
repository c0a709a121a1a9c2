/**
 * Verifying a backup: every file's size and sha256 against the manifest, and `pg_restore --list`
 * reads every archive. The result is stored in `<id>/verify.json` (list shows it).
 */
import {existsSync} from 'node:fs'
import {join} from 'node:path'

import {CliError} from '../cli/errors.js'
import {VERIFY_FILE, type Verification} from './manifest.js'
import {findBackup, hashFile, writeFileAtomic} from './store.js'
import {findClientTools, parseToolVersion} from './tools.js'

export interface VerifyOptions {
  dir: string
  id: string
  progress?: (message: string) => void
  now?: () => Date
}

export async function verifyBackup(options: VerifyOptions): Promise<Verification & {path: string}> {
  const progress = options.progress ?? (() => {})
  const entry = findBackup(options.dir, options.id)
  if (entry.status !== 'complete' || !entry.manifest) {
    throw new CliError(`backup ${entry.id} is ${entry.status} (${entry.problem ?? 'no manifest'}) and cannot be verified`, {
      hint: entry.status === 'running' ? 'wait for it to finish' : '`singularity backup prune` removes leftovers; take a new backup',
      code: 'BACKUP_INCOMPLETE',
    })
  }
  const manifest = entry.manifest
  const archiveNum = parseToolVersion(`(PostgreSQL) ${manifest.tools.pgDump}`)?.num ?? manifest.server.versionNum
  const tools = await findClientTools(archiveNum, {purpose: 'restore'})
  const {execa} = await import('execa')

  const files: Verification['files'] = []
  const expected = [
    ...(manifest.globals ? [{...manifest.globals, archive: false}] : []),
    ...manifest.databases.map((d) => ({file: d.file, size: d.size, sha256: d.sha256, archive: true})),
  ]
  for (const f of expected) {
    const path = join(entry.path, f.file)
    if (!existsSync(path)) {
      files.push({file: f.file, ok: false, size: null, sha256: 'missing', archive: f.archive ? 'unreadable' : 'n/a', entries: null, problem: 'file is missing'})
      progress(`${f.file}: MISSING`)
      continue
    }
    progress(`checking ${f.file}…`)
    const actual = await hashFile(path)
    const shaOk = actual.sha256 === f.sha256 && actual.size === f.size
    let archive: 'ok' | 'unreadable' | 'n/a' = 'n/a'
    let entries: number | null = null
    let problem: string | null = shaOk ? null : actual.size === f.size ? 'sha256 differs from the manifest' : `size ${actual.size} differs from the manifest (${f.size})`
    if (f.archive) {
      const listed = await execa(tools.pgRestore, ['--list', path], {reject: false, stdin: 'ignore', extendEnv: true})
      if (listed.exitCode === 0) {
        archive = 'ok'
        entries = String(listed.stdout).split('\n').filter((l) => l.trim() && !l.startsWith(';')).length
      } else {
        archive = 'unreadable'
        const reason = String(listed.stderr).trim().split('\n').pop()?.replace(/^pg_restore: (error: )?/, '') ?? `exit ${listed.exitCode}`
        problem = problem ? `${problem}; pg_restore --list: ${reason}` : `pg_restore --list: ${reason}`
      }
    }
    const ok = shaOk && archive !== 'unreadable'
    files.push({file: f.file, ok, size: actual.size, sha256: shaOk ? 'ok' : 'mismatch', archive, entries, problem})
  }

  const verification: Verification = {
    id: entry.id,
    ok: files.every((f) => f.ok),
    verifiedAt: (options.now ?? (() => new Date()))().toISOString(),
    pgRestore: tools.version.version,
    files,
  }
  await writeFileAtomic(join(entry.path, VERIFY_FILE), JSON.stringify(verification, null, 2) + '\n')
  return {...verification, path: entry.path}
}
