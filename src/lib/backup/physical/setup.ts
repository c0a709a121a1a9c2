/**
 * `backup setup --physical`: pgBackRest configuration, archive settings and stanza for the
 * estate's server. On a server this machine runs, it does the work (restart announced first);
 * on any other it says exactly what to set there and checks what it can see (pg_stat_archiver).
 */
import {chmodSync, chownSync, existsSync, mkdirSync, statSync} from 'node:fs'
import {hostname} from 'node:os'
import {dirname, join} from 'node:path'

import {CliError, UsageError} from '../../cli/errors.js'
import type {ResolvedConfig, Target} from '../../config/resolve.js'
import {connect} from '../../db/connect.js'
import {writeFileAtomic} from '../store.js'
import {physicalLayout, readPhysicalSetup, type PhysicalRetention, type PhysicalSetup} from './layout.js'
import {currentKey, keyFilePath} from '../keys.js'
import {cipherEnv, cipherIncludeDir, MIGRATE_HINT, REPO_CIPHER, repoEncryption, writeCipherConf, type RepoCipher, type RepoEncryption} from './cipher.js'
import {archiveCommand, PGBACKREST, renderConfig, retentionLines, runPgBackRest} from './pgbackrest.js'
import {isLocalClusterData, osUserIds, ownerOf, passwordFor, runsOnThisMachine, serverFacts, type ServerFacts} from './server.js'
import {archiverStatus, type ArchiverStatus} from './archiver.js'

/** Seed 001: hourly keep 6, daily keep 7, monthly keep 12 — on pgBackRest's full/diff/incr (see README). */
export const DEFAULT_PHYSICAL_RETENTION: PhysicalRetention = {full: 365, fullType: 'time', diff: 7, archiveDiffs: 7}
export const DEFAULT_ARCHIVE_TIMEOUT_SECONDS = 60

export interface SetupOptions {
  config: ResolvedConfig
  target: Target
  backupDir: string
  retention: PhysicalRetention
  archiveTimeoutSeconds: number
  /** a server on this machine that is not the local cluster is restarted only when allowed */
  allowRestart: boolean
  /** a NEW repository is encrypted (pgBackRest's repository cipher); an existing one keeps what it has */
  encrypt: boolean
  /** --key-file: where the backup keys are (default SINGULARITY_BACKUP_KEY_FILE, then beside the passwords file; an existing repository: the key file recorded at set-up) */
  keyFileFlag?: string
  progress: (message: string) => void
}

export interface SettingChange {
  name: string
  from: string
  to: string
}

export interface HostSetupResult {
  mode: 'host'
  stanza: string
  server: string
  dataDir: string
  configFile: string
  repo: string
  changes: SettingChange[]
  restarted: boolean
  stanzaCreated: boolean
  checked: boolean
  retention: string[]
  archiveCommand: string
  /** the repository's cipher and key id (never the passphrase) */
  encryption: RepoEncryption
  /** set when the repository's encryption differs from what was asked: why, and how to migrate */
  encryptionNote: string | null
}

export interface RemoteSetupResult {
  mode: 'remote'
  stanza: string
  server: string
  /** postgresql.conf lines to set on the server (then restart it) */
  settings: string[]
  /** pgbackrest.conf for that server's host */
  pgbackrestConf: string
  /** commands to run there, as the postgres OS user */
  commands: string[]
  /** what we can see from here */
  observed: {archiveMode: string; archiveCommand: string; archiveTimeoutSeconds: number; archiver: ArchiverStatus | null}
  problems: string[]
}

export type SetupResult = HostSetupResult | RemoteSetupResult

/** The stanza is named for the estate's server: the local cluster, or host and port of another. */
export function stanzaName(prefix: string, local: boolean, port: number, host = hostname()): string {
  const name = local ? `${prefix}singularity-local` : `${prefix}singularity-${host}-${port}`
  return name.replace(/[^A-Za-z0-9_.-]/g, '-')
}

function serverLabel(target: Target, facts: ServerFacts): string {
  if (target.source === 'local') return `the local cluster (port ${facts.port})`
  const host = target.url ? new URL(target.url).hostname : process.env.PGHOST ?? 'localhost'
  return `${host}:${facts.port}`
}

export async function setupPhysical(options: SetupOptions): Promise<SetupResult> {
  const client = await connect(options.target, {applicationName: 'singularity backup setup', statementTimeoutMs: 30_000})
  let facts: ServerFacts
  try {
    facts = await serverFacts(client)
  } finally {
    await client.end().catch(() => {})
  }
  if (!facts.superuser) {
    throw new CliError(`physical backups need a superuser connection; ${facts.user} is not one`, {hint: 'connect as the server superuser (--admin-url)', code: 'NOT_SUPERUSER'})
  }
  if (facts.inRecovery) throw new UsageError('this server is a standby; set up physical backups on the primary')
  if (facts.walLevel === 'minimal') throw new CliError('wal_level is minimal: WAL cannot be archived', {hint: 'set wal_level = replica (or logical) and restart the server'})
  const local = facts.dataDir !== null && isLocalClusterData(facts.dataDir, options.config.localDir)
  const stanza = stanzaName(options.config.prefix, local, facts.port)
  if (!runsOnThisMachine(facts)) return remoteSetup(options, facts, stanza)
  return hostSetup(options, facts, stanza, local)
}

async function remoteSetup(options: SetupOptions, facts: ServerFacts, stanza: string): Promise<RemoteSetupResult> {
  const command = `pgbackrest --stanza=${stanza} archive-push %p`
  const settings = ["archive_mode = 'on'", `archive_command = '${command}'`, `archive_timeout = '${options.archiveTimeoutSeconds}s'`]
  const pgbackrestConf = [
    '[global]',
    'repo1-path=/var/lib/pgbackrest',
    'compress-type=lz4',
    'start-fast=y',
    ...retentionLines(options.retention),
    ...(options.encrypt
      ? [`repo1-cipher-type=${REPO_CIPHER}`, 'repo1-cipher-pass=<a passphrase of your own: openssl rand -base64 48; keep this file 0600 and a copy of it away from the repository>']
      : []),
    '',
    `[${stanza}]`,
    `pg1-path=${facts.dataDir ?? '<the data directory>'}`,
    `pg1-port=${facts.port}`,
    '',
  ].join('\n')
  const commands = [
    `pgbackrest --stanza=${stanza} stanza-create`,
    `pgbackrest --stanza=${stanza} check`,
    `pgbackrest --stanza=${stanza} --type=full backup`,
  ]
  const client = await connect(options.target, {applicationName: 'singularity backup setup', statementTimeoutMs: 30_000})
  let archiver: ArchiverStatus | null = null
  try {
    archiver = await archiverStatus(client)
  } finally {
    await client.end().catch(() => {})
  }
  const problems: string[] = []
  if (facts.archiveMode === 'off') problems.push('archive_mode is off')
  if (!facts.archiveCommand || facts.archiveCommand === '(disabled)') problems.push('archive_command is empty')
  else if (!facts.archiveCommand.includes('pgbackrest')) problems.push(`archive_command does not call pgBackRest: ${facts.archiveCommand}`)
  if (facts.archiveTimeoutSeconds === 0 || facts.archiveTimeoutSeconds > options.archiveTimeoutSeconds) {
    problems.push(`archive_timeout is ${facts.archiveTimeoutSeconds}s: WAL may wait longer than ${options.archiveTimeoutSeconds}s to be archived`)
  }
  if (archiver?.failing) problems.push(`archiving fails since ${archiver.lastFailedAt} (${archiver.lastFailedWal})`)
  if (archiver && !archiver.lastArchivedAt && facts.archiveMode !== 'off') problems.push('nothing archived yet')
  return {
    mode: 'remote',
    stanza,
    server: serverLabel(options.target, facts),
    settings,
    pgbackrestConf,
    commands,
    observed: {archiveMode: facts.archiveMode, archiveCommand: facts.archiveCommand, archiveTimeoutSeconds: facts.archiveTimeoutSeconds, archiver},
    problems,
  }
}

/** Makes a directory owned by the server's OS user (as root), mode 0750. */
function serverOwnedDir(path: string, ids: {uid: number; gid: number} | undefined): void {
  mkdirSync(path, {recursive: true, mode: 0o750})
  if (ids) chownSync(path, ids.uid, ids.gid)
}

async function hostSetup(options: SetupOptions, facts: ServerFacts, stanza: string, local: boolean): Promise<HostSetupResult> {
  const dataDir = facts.dataDir!
  const paths = physicalLayout(options.backupDir)
  const previous = readPhysicalSetup(options.backupDir)
  if (previous && previous.mode === 'host' && (previous.stanza !== stanza || previous.dataDir !== dataDir)) {
    throw new UsageError(`${options.backupDir} already holds physical backups of ${previous.stanza} (${previous.dataDir})`, {
      hint: 'use another --dir for this server',
      code: 'OTHER_STANZA',
    })
  }
  const isRoot = process.getuid?.() === 0
  const osUser = isRoot ? ownerOf(dataDir) : (await import('node:os')).userInfo().username
  const ids = isRoot && osUser !== 'root' ? osUserIds(osUser) : undefined
  const {findServerBinaries} = await import('../../local-cluster/binaries.js')
  const binDir = process.env.SINGULARITY_PG_BIN ?? join('/usr/lib/postgresql', String(Math.floor(facts.versionNum / 10_000)), 'bin')
  const binaries = existsSync(join(binDir, 'pg_ctl')) ? binDir : findServerBinaries().binDir

  // The backup directory may be root's (0700): the server's user must be able to pass through it.
  mkdirSync(options.backupDir, {recursive: true, mode: 0o700})
  if (ids) {
    chmodSync(options.backupDir, (statSync(options.backupDir).mode & 0o7777) | 0o711)
    checkTraversable(dirname(options.backupDir), osUser, options.backupDir, 'choose a backup directory outside /root, e.g. SINGULARITY_BACKUP_DIR=/var/backups/singularity')
  }
  for (const dir of [paths.root, paths.includeDir, paths.repo, paths.log, paths.lock]) serverOwnedDir(dir, ids)

  // The repository's cipher is chosen when the repository is created and kept for life:
  // pgBackRest cannot change the cipher or passphrase of an existing repository.
  const repoExists = existsSync(join(paths.repo, 'backup', stanza, 'backup.info')) || existsSync(join(paths.repo, 'archive', stanza, 'archive.info'))
  const kept = previous?.mode === 'host' ? readPhysicalSetup(options.backupDir, options.keyFileFlag)?.cipher ?? null : null
  let cipher: RepoCipher | null
  let encryptionNote: string | null = null
  if (kept) {
    cipher = kept
    if (!options.encrypt) encryptionNote = `the repository ${paths.repo} is encrypted (key ${kept.keyId}) and stays so: pgBackRest cannot decrypt an existing repository (an unencrypted one needs another --dir)`
  } else if (repoExists) {
    cipher = null
    if (options.encrypt) encryptionNote = `the repository ${paths.repo} is not encrypted and stays so: ${MIGRATE_HINT}`
  } else if (options.encrypt) {
    const keyFile = keyFilePath(options.keyFileFlag, options.config.localDir)
    cipher = {type: REPO_CIPHER, keyId: currentKey(keyFile).id, keyFile, includeDir: cipherIncludeDir(keyFile, paths.repo, stanza)}
  } else {
    cipher = null
  }
  let pass: string | undefined
  if (cipher) {
    // the key must be there before anything changes (exit 1 naming its id)
    pass = cipherEnv(stanza, cipher).PGBACKREST_REPO1_CIPHER_PASS
    if (ids) checkTraversable(dirname(dirname(cipher.includeDir)), osUser, 'pgBackRest\'s passphrase file (beside the backup key file)', 'put the key file where it can pass through, e.g. SINGULARITY_BACKUP_KEY_FILE=/var/lib/singularity/keys/backup-keys.json (directories mode 0711), or pass --no-encrypt')
  }

  const setup: PhysicalSetup = {
    version: 1,
    stanza,
    mode: 'host',
    dataDir,
    port: facts.port,
    socketDir: facts.socketDir,
    dbUser: facts.user,
    osUser,
    binDir: binaries,
    localDir: local ? options.config.localDir : null,
    archiveTimeoutSeconds: options.archiveTimeoutSeconds,
    retention: options.retention,
    cipher,
    setupAt: new Date().toISOString(),
  }
  await writeFileAtomic(paths.config, renderConfig(options.backupDir, setup), 0o640)
  if (ids) chownSync(paths.config, ids.uid, ids.gid)
  if (cipher && pass) {
    const file = writeCipherConf(cipher.includeDir, stanza, pass, ids)
    options.progress(`repository encrypted (${REPO_CIPHER}, passphrase from backup key ${cipher.keyId}); the server's archive-push reads it from ${file} (mode 0600${ids ? `, owned by ${osUser}` : ''})`)
  }
  if (encryptionNote) options.progress(encryptionNote)

  const command = archiveCommand(options.backupDir, stanza, cipher?.includeDir)
  const wanted: [string, string, string][] = [
    ['archive_mode', facts.archiveMode, 'on'],
    ['archive_command', facts.archiveCommand, command],
    ['archive_timeout', String(facts.archiveTimeoutSeconds), String(options.archiveTimeoutSeconds)],
  ]
  const changes = wanted.filter(([, from, to]) => from !== to && !(from === 'always' && to === 'on')).map(([name, from, to]) => ({name, from, to}))
  const needsRestart = changes.some((c) => c.name === 'archive_mode')
  const server = serverLabel(options.target, facts)
  if (needsRestart && !local && !options.allowRestart) {
    throw new UsageError(`archive_mode is off on ${server}: turning it on needs a restart of that server`, {
      hint: 'rerun with --restart (sessions are ended, for a few seconds), or set the settings and restart it yourself: see `singularity backup setup --physical --help`',
      code: 'RESTART_NEEDED',
    })
  }
  if (changes.length > 0) {
    const client = await connect(options.target, {applicationName: 'singularity backup setup', statementTimeoutMs: 30_000})
    try {
      for (const c of changes) {
        options.progress(`ALTER SYSTEM SET ${c.name} (was ${c.from || "''"})`)
        await client.query(`ALTER SYSTEM SET ${c.name} = ${quoteLiteral(c.to)}`)
      }
      if (!needsRestart) await client.query('SELECT pg_reload_conf()')
    } finally {
      await client.end().catch(() => {})
    }
  }
  // The setup is recorded before the restart: a restart that fails leaves a setup a rerun finishes.
  await writeFileAtomic(paths.setup, JSON.stringify(setup, null, 2) + '\n', 0o644)

  let restarted = false
  if (needsRestart) {
    options.progress(`restarting ${server} now to turn archive_mode on: open sessions are ended, it is back in a few seconds`)
    await restartServer(setup)
    restarted = true
  }

  const env = pgEnv(options.target)
  options.progress(`pgbackrest stanza-create ${stanza}`)
  await runPgBackRest(options.backupDir, setup, 'stanza-create', [], {env})
  options.progress('pgbackrest check (forces a WAL switch and waits for it to be archived)')
  await runPgBackRest(options.backupDir, setup, 'check', [], {env})
  return {
    mode: 'host',
    stanza,
    server,
    dataDir,
    configFile: paths.config,
    repo: paths.repo,
    changes,
    restarted,
    stanzaCreated: true,
    checked: true,
    retention: retentionLines(options.retention),
    archiveCommand: command,
    encryption: repoEncryption(cipher),
    encryptionNote,
  }
}

/** As root: the server's OS user must pass through every directory above `from` (inclusive). */
function checkTraversable(from: string, osUser: string, what: string, hint: string): void {
  for (let dir = from; dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(dir) && (statSync(dir).mode & 0o001) === 0) {
      throw new UsageError(`the ${osUser} OS user cannot reach ${what} (${dir} is closed to it); the server was not changed`, {hint})
    }
  }
}

/** PGPASSWORD (when we know it) for pgBackRest's connections: environment only, never argv. */
export function pgEnv(target: Target): Record<string, string> {
  const password = passwordFor(target)
  return password ? {PGPASSWORD: password} : {}
}

/** Restarts the server: the local cluster through its own code, another one with pg_ctl as its OS user. */
async function restartServer(setup: PhysicalSetup): Promise<void> {
  if (setup.localDir) {
    const {startCluster, stopCluster} = await import('../../local-cluster/cluster.js')
    await stopCluster(setup.localDir)
    await startCluster({dir: setup.localDir, port: setup.port})
    return
  }
  const {execa} = await import('execa')
  const pgCtl = join(setup.binDir, 'pg_ctl')
  const args = ['-D', setup.dataDir, '-m', 'fast', '-w', '-t', '120', 'restart']
  const isRoot = process.getuid?.() === 0
  const result = await execa(isRoot ? 'runuser' : pgCtl, isRoot ? ['-u', setup.osUser, '--', pgCtl, ...args] : args, {reject: false, stdin: 'ignore', all: true})
  if (result.exitCode !== 0) {
    throw new CliError(`pg_ctl restart failed: ${String(result.all).trim().split('\n').pop()}`, {hint: `see the server log of ${setup.dataDir}`})
  }
}

/** A SQL string literal (ALTER SYSTEM takes no parameters). */
function quoteLiteral(value: string): string {
  return `'${value.replaceAll("'", "''")}'`
}

export {PGBACKREST}
