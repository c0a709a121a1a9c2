/**
 * Runs Debian's pgBackRest for our stanza: always with our own configuration file, always as the
 * OS user that owns the data directory (as root: runuser), so that the repository stays owned by
 * the same user as the WAL that archive_command pushes into it.
 */
import {existsSync} from 'node:fs'

import {CliError} from '../../cli/errors.js'
import {cipherEnv, REPO_CIPHER} from './cipher.js'
import {physicalLayout, type PhysicalRetention, type PhysicalSetup} from './layout.js'

export const PGBACKREST = 'pgbackrest'

const isRoot = () => process.getuid?.() === 0

/**
 * pgBackRest's --config options for a backup directory (never the system's /etc/pgbackrest). The
 * include path is our own: the empty conf.d of the backup directory, or, for an encrypted
 * repository, the directory of cipher.conf outside it (see cipher.ts).
 */
export function configArgs(backupDir: string, stanza: string, includeDir?: string): string[] {
  const paths = physicalLayout(backupDir)
  return [`--config=${paths.config}`, `--config-include-path=${includeDir ?? paths.includeDir}`, `--stanza=${stanza}`]
}

/** pgbackrest's absolute path (the server's own PATH may be short), or its bare name. */
export function pgBackRestBinary(): string {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) if (dir && existsSync(`${dir}/${PGBACKREST}`)) return `${dir}/${PGBACKREST}`
  return PGBACKREST
}

/** The archive_command that hands each WAL segment to pgBackRest. */
export function archiveCommand(backupDir: string, stanza: string, includeDir?: string): string {
  return `${pgBackRestBinary()} ${configArgs(backupDir, stanza, includeDir).join(' ')} archive-push %p`
}

/** pgBackRest.conf for the stanza (retention as `backup setup` mapped it; see retentionLines). */
export function renderConfig(backupDir: string, setup: Pick<PhysicalSetup, 'stanza' | 'dataDir' | 'port' | 'socketDir' | 'dbUser' | 'retention' | 'cipher'>): string {
  const paths = physicalLayout(backupDir)
  const lines = [
    '# Written by `singularity backup setup --physical`; rewritten by it. Repository, logs and locks live next to this file.',
    '[global]',
    `repo1-path=${paths.repo}`,
    `log-path=${paths.log}`,
    `lock-path=${paths.lock}`,
    'log-level-console=warn',
    'log-level-file=info',
    // lz4: cheap on CPU (two cores shared with the server), still a third of the size
    'compress-type=lz4',
    'process-max=2',
    // a backup starts at once (immediate checkpoint) instead of waiting for the next one
    'start-fast=y',
    ...retentionLines(setup.retention),
    // the passphrase is never here: our runs get it in their environment, the server's archive-push
    // from cipher.conf outside the backup directory (--config-include-path)
    ...(setup.cipher ? [`repo1-cipher-type=${REPO_CIPHER}`] : []),
    '',
    `[${setup.stanza}]`,
    `pg1-path=${setup.dataDir}`,
    `pg1-port=${setup.port}`,
    ...(setup.socketDir ? [`pg1-socket-path=${setup.socketDir}`] : []),
    `pg1-user=${setup.dbUser}`,
    '',
  ]
  return lines.join('\n')
}

/**
 * Seed 001's policy (hourly keep 6, daily keep 7, monthly keep 12) on pgBackRest's terms:
 * full backups kept by count or age (repo1-retention-full), differentials by count
 * (repo1-retention-diff; each incremental goes with the backup it depends on), and WAL kept for
 * point-in-time recovery back to the oldest of the newest N diff/full backups. Older fulls stay
 * restorable to their own end (pgBackRest always keeps the WAL that makes a backup consistent).
 */
export function retentionLines(r: PhysicalRetention): string[] {
  return [
    `repo1-retention-full-type=${r.fullType}`,
    `repo1-retention-full=${r.full}`,
    `repo1-retention-diff=${r.diff}`,
    'repo1-retention-archive-type=diff',
    `repo1-retention-archive=${r.archiveDiffs}`,
  ]
}

export interface RunOptions {
  /** environment for the run (e.g. PGPASSWORD for commands that connect) */
  env?: Record<string, string>
  /** every output line, for progress on stderr */
  onLine?: (line: string) => void
  signal?: AbortSignal
  /** a failing exit is returned, not thrown */
  reject?: boolean
  /** console log level (info for commands that report progress) */
  logLevel?: 'warn' | 'info' | 'detail'
}

export interface RunResult {
  exitCode: number
  output: string
  stdout: string
}

/** The first ERROR line pgBackRest printed, without its timestamp prefix. */
export function pgBackRestError(output: string): string | undefined {
  const line = output.split('\n').find((l) => /ERROR: \[\d+\]/.test(l))
  return line?.replace(/^.*?ERROR: /, '').trim()
}

/** Runs `pgbackrest <command>` for the stanza, as the data directory's OS user. */
export async function runPgBackRest(
  backupDir: string,
  setup: Pick<PhysicalSetup, 'stanza' | 'osUser' | 'cipher'>,
  command: string,
  args: string[] = [],
  options: RunOptions = {},
): Promise<RunResult> {
  ensureInstalled()
  const {execa} = await import('execa')
  // the repository passphrase, from the key store (exit 1 naming the key id when it is missing)
  const cipher = cipherEnv(setup.stanza, setup.cipher)
  const pgbArgs = [...configArgs(backupDir, setup.stanza, setup.cipher?.includeDir), `--log-level-console=${options.logLevel ?? 'warn'}`, ...args, command]
  const asUser = isRoot() && setup.osUser !== 'root'
  const [file, argv] = asUser ? ['runuser', ['-u', setup.osUser, '--', PGBACKREST, ...pgbArgs]] : [PGBACKREST, pgbArgs]
  const child = execa(file, argv, {
    reject: false,
    stdin: 'ignore',
    all: true,
    env: {...options.env, ...cipher},
    cancelSignal: options.signal,
    // a cancelled run is ended with SIGTERM: pgBackRest then stops cleanly and leaves no lock
    killSignal: 'SIGTERM',
    forceKillAfterDelay: 30_000,
  })
  if (options.onLine && child.all) {
    let buffer = ''
    child.all.on('data', (chunk: Buffer) => {
      buffer += chunk.toString()
      const lines = buffer.split('\n')
      buffer = lines.pop() ?? ''
      for (const line of lines) if (line.trim()) options.onLine!(line.replace(/^\d{4}-\d{2}-\d{2} [\d:.]+ P\d+\s+/, ''))
    })
  }
  const result = await child
  const output = String(result.all ?? '')
  if (result.isCanceled || options.signal?.aborted) {
    throw new CliError(`pgbackrest ${command} interrupted`, {exitCode: 130, code: 'INTERRUPTED'})
  }
  if (result.exitCode !== 0 && options.reject !== false) {
    const message = pgBackRestError(output) ?? (output.trim().split('\n').pop() || `exit ${result.exitCode}`)
    throw new CliError(`pgbackrest ${command} failed: ${message}`, {
      hint: `see ${physicalLayout(backupDir).log}/${setup.stanza}-${command}.log`,
      code: 'PGBACKREST_FAILED',
    })
  }
  return {exitCode: result.exitCode ?? 1, output, stdout: String(result.stdout ?? '')}
}

function ensureInstalled(): void {
  const onPath = (process.env.PATH ?? '/usr/bin:/bin').split(':').some((dir) => dir && existsSync(`${dir}/${PGBACKREST}`))
  if (!onPath) {
    throw new CliError('pgbackrest is not installed', {hint: 'install it: apt-get install -y pgbackrest', code: 'NO_PGBACKREST'})
  }
}

/** The parts of `pgbackrest info --output=json` we use. */
export interface PgBackRestInfo {
  name: string
  /** the repository's cipher: aes-256-cbc or none */
  cipher: string
  status: {code: number; message: string; lock?: {backup?: {held: boolean}}}
  archive: {id: string; min: string | null; max: string | null; database: {id: number}}[]
  backup: {
    label: string
    type: 'full' | 'diff' | 'incr'
    prior: string | null
    error?: boolean
    timestamp: {start: number; stop: number}
    archive: {start: string | null; stop: string | null}
    info: {size: number; delta: number; repository: {size: number; delta: number}}
    database: {id: number}
  }[]
  db: {id: number; version: string}[]
}

/** `pgbackrest info` for the stanza. */
export async function pgBackRestInfo(backupDir: string, setup: Pick<PhysicalSetup, 'stanza' | 'osUser' | 'cipher'>): Promise<PgBackRestInfo> {
  const result = await runPgBackRest(backupDir, setup, 'info', ['--output=json'])
  const parsed = JSON.parse(result.stdout) as PgBackRestInfo[]
  const stanza = parsed.find((s) => s.name === setup.stanza)
  if (!stanza) throw new CliError(`pgbackrest info does not know stanza ${setup.stanza}`, {hint: 'rerun `singularity backup setup --physical`'})
  return stanza
}
