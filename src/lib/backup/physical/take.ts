/**
 * `backup --physical`: one pgBackRest backup (full, diff or incr) of the whole cluster, then
 * pgBackRest's own expiry under the retention `backup setup` configured.
 */
import {realpathSync} from 'node:fs'

import {CliError} from '../../cli/errors.js'
import type {Target} from '../../config/resolve.js'
import {connect} from '../../db/connect.js'
import type {RepoEncryption} from './cipher.js'
import {requirePhysicalSetup} from './layout.js'
import {listPhysical, type PhysicalBackup, type RecoveryWindow} from './list.js'
import {pgBackRestInfo, runPgBackRest} from './pgbackrest.js'
import {serverFacts} from './server.js'
import {pgEnv} from './setup.js'

export const PHYSICAL_TYPES = ['full', 'diff', 'incr'] as const
export type PhysicalType = (typeof PHYSICAL_TYPES)[number]

export interface PhysicalBackupResult {
  kind: 'physical'
  stanza: string
  label: string
  /** what was asked; pgBackRest takes a full one when a diff/incr has nothing to build on */
  requestedType: PhysicalType
  type: PhysicalType
  status: 'complete'
  startedAt: string
  stoppedAt: string
  durationMs: number
  size: number
  repoSize: number
  prior: string | null
  /** backups pgBackRest's expiry removed after this one */
  expired: string[]
  window: RecoveryWindow | null
  /** the repository's cipher and key id */
  encryption: RepoEncryption
}

function sameDir(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b)
  } catch {
    return a === b
  }
}

export async function takePhysicalBackup(options: {
  backupDir: string
  target: Target
  type: PhysicalType
  /** --key-file (an encrypted repository's key) */
  keyFile?: string
  progress: (message: string) => void
  signal?: AbortSignal
}): Promise<PhysicalBackupResult> {
  const setup = requirePhysicalSetup(options.backupDir, options.keyFile)
  const client = await connect(options.target, {applicationName: 'singularity backup', statementTimeoutMs: 30_000})
  let facts
  try {
    facts = await serverFacts(client)
  } finally {
    await client.end().catch(() => {})
  }
  if (!facts.dataDir || !sameDir(facts.dataDir, setup.dataDir)) {
    throw new CliError(`this server (data directory ${facts.dataDir ?? 'unknown'}) is not the one physical backups in ${options.backupDir} were set up for (${setup.dataDir})`, {
      hint: 'pass the --dir of this server\'s physical backups, or run `singularity backup setup --physical`',
      code: 'OTHER_SERVER',
    })
  }
  const before = new Set((await pgBackRestInfo(options.backupDir, setup)).backup.map((b) => b.label))
  const started = Date.now()
  options.progress(`pgbackrest ${options.type} backup of ${setup.stanza} (${setup.dataDir})`)
  // The port and socket are the server's current ones (the local cluster may have moved port).
  const args = [`--type=${options.type}`, `--pg1-port=${facts.port}`, ...(facts.socketDir ? [`--pg1-socket-path=${facts.socketDir}`] : [])]
  await runPgBackRest(options.backupDir, setup, 'backup', args, {
    env: pgEnv(options.target),
    logLevel: 'info',
    signal: options.signal,
    onLine: (line) => {
      // the interesting lines: label, WAL range, size, expiry; not every file copied
      if (/backup label|backup start|backup stop|size =|expire|WARN|ERROR|full backup|diff backup|incr backup/i.test(line) && !/command begin/.test(line)) options.progress(line)
    },
  })
  const listing = await listPhysical(options.backupDir, setup)
  const complete = listing.backups.filter((b) => b.status === 'complete')
  const taken = complete.find((b) => !before.has(b.label)) as PhysicalBackup | undefined
  if (!taken) throw new CliError('pgbackrest reported success but no new backup is listed', {hint: 'run `singularity backup list`'})
  const after = new Set(complete.map((b) => b.label))
  return {
    kind: 'physical',
    stanza: setup.stanza,
    label: taken.label,
    requestedType: options.type,
    type: taken.type,
    status: 'complete',
    startedAt: taken.startedAt!,
    stoppedAt: taken.stoppedAt!,
    durationMs: Date.now() - started,
    size: taken.size ?? 0,
    repoSize: taken.repoSize ?? 0,
    prior: taken.prior,
    expired: [...before].filter((l) => !after.has(l)),
    window: listing.window,
    encryption: listing.encryption,
  }
}
