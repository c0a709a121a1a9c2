/**
 * What physical backups need to know about the server: its archive settings, whether this
 * machine runs it (then we may write its settings, restart it and run pgBackRest next to it),
 * the OS user that owns its data directory, and how pgBackRest authenticates to it.
 */
import {existsSync, readFileSync, realpathSync, statSync} from 'node:fs'
import {userInfo} from 'node:os'
import {join} from 'node:path'

import type pg from 'pg'

import {CliError} from '../../cli/errors.js'
import type {Target} from '../../config/resolve.js'
import {pgpassLookup} from '../../db/pgpass.js'

export interface ServerFacts {
  dataDir: string | null
  port: number
  socketDir: string | null
  archiveMode: string
  archiveCommand: string
  archiveTimeoutSeconds: number
  walLevel: string
  user: string
  superuser: boolean
  versionNum: number
  systemIdentifier: string | null
  inRecovery: boolean
}

/** Archive-related settings and identity of the server (pg_settings: hidden rows stay null for non-superusers). */
export async function serverFacts(client: pg.Client): Promise<ServerFacts> {
  const {rows} = await client.query<{name: string; setting: string}>(
    `SELECT name, setting FROM pg_settings
      WHERE name IN ('data_directory', 'port', 'unix_socket_directories', 'archive_mode', 'archive_command', 'archive_timeout', 'wal_level', 'server_version_num')`,
  )
  const s = new Map(rows.map((r) => [r.name, r.setting]))
  const who = await client.query<{user: string; superuser: boolean; recovery: boolean}>(
    'SELECT current_user AS user, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser, pg_is_in_recovery() AS recovery',
  )
  let systemIdentifier: string | null = null
  try {
    const sys = await client.query<{id: string}>('SELECT system_identifier::text AS id FROM pg_control_system()')
    systemIdentifier = sys.rows[0].id
  } catch {
    // pg_control_system() needs superuser or pg_monitor-like rights on some servers
  }
  const sockets = (s.get('unix_socket_directories') ?? '').split(',').map((x) => x.trim()).filter(Boolean)
  return {
    dataDir: s.get('data_directory') ?? null,
    port: Number(s.get('port') ?? 5432),
    socketDir: sockets[0] ?? null,
    archiveMode: s.get('archive_mode') ?? 'off',
    archiveCommand: s.get('archive_command') ?? '',
    archiveTimeoutSeconds: Number(s.get('archive_timeout') ?? 0),
    walLevel: s.get('wal_level') ?? 'replica',
    user: who.rows[0].user,
    superuser: who.rows[0].superuser,
    versionNum: Number(s.get('server_version_num') ?? 0),
    systemIdentifier,
    inRecovery: who.rows[0].recovery,
  }
}

/** The OS user who owns a path (name from /etc/passwd). */
export function ownerOf(path: string): string {
  const uid = statSync(path).uid
  const entry = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .map((l) => l.split(':'))
    .find((f) => Number(f[2]) === uid)
  return entry?.[0] ?? String(uid)
}

/** uid/gid of an OS user. */
export function osUserIds(name: string): {uid: number; gid: number} {
  const entry = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .map((l) => l.split(':'))
    .find((f) => f[0] === name)
  if (!entry) throw new CliError(`there is no OS user '${name}'`, {hint: 'the data directory owner must be a user of this machine'})
  return {uid: Number(entry[2]), gid: Number(entry[3])}
}

/**
 * Whether this machine runs the server: its data directory is here and holds a postmaster.pid
 * for the same port. Only then may we change its settings, restart it and run pgBackRest.
 */
export function runsOnThisMachine(facts: ServerFacts): boolean {
  if (!facts.dataDir || !existsSync(join(facts.dataDir, 'PG_VERSION'))) return false
  try {
    const lines = readFileSync(join(facts.dataDir, 'postmaster.pid'), 'utf8').split('\n')
    return Number(lines[3]) === facts.port
  } catch {
    return false
  }
}

/** Whether a data directory is the local cluster's (singularity local). */
export function isLocalClusterData(dataDir: string, localDir: string): boolean {
  const data = join(localDir, 'data')
  if (!existsSync(data)) return false
  try {
    return realpathSync(data) === realpathSync(dataDir)
  } catch {
    return false
  }
}

/** The password pgBackRest's libpq needs (URL, PGPASSWORD, then the password file), passed in its environment only. */
export function passwordFor(target: Target): string | undefined {
  const url = target.url ? new URL(target.url) : undefined
  if (url?.password) return decodeURIComponent(url.password)
  if (process.env.PGPASSWORD) return process.env.PGPASSWORD
  const user = (url?.username ? decodeURIComponent(url.username) : undefined) ?? process.env.PGUSER ?? userInfo().username
  return pgpassLookup({
    host: url?.hostname || process.env.PGHOST || 'localhost',
    port: Number(url?.port || process.env.PGPORT || 5432),
    database: target.database ?? (decodeURIComponent(url?.pathname.slice(1) ?? '') || process.env.PGDATABASE || user),
    user,
  })
}

/** A server's postmaster.pid names a live process. */
export function postmasterRunning(dataDir: string): boolean {
  const file = join(dataDir, 'postmaster.pid')
  if (!existsSync(file)) return false
  const pid = Number(readFileSync(file, 'utf8').split('\n')[0])
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}
