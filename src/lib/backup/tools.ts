/**
 * The PostgreSQL client programs a backup needs (pg_dump, pg_dumpall, pg_restore), chosen to match
 * the server, and the libpq environment that hands them a connection without a password on any
 * command line.
 */
import {existsSync, readdirSync} from 'node:fs'
import {delimiter, join} from 'node:path'

import {CliError} from '../cli/errors.js'
import type {Target} from '../config/resolve.js'

export interface ToolVersion {
  /** as printed, e.g. "15.18" */
  version: string
  /** like server_version_num: 150018, 90624 */
  num: number
}

export interface ClientTools {
  binDir: string
  pgDump: string
  pgDumpAll: string
  pgRestore: string
  version: ToolVersion
}

/** Comparable major version from a server_version_num: 150018 → 1500, 90624 → 906 (9.6). */
export function majorOf(num: number): number {
  return num >= 100_000 ? Math.floor(num / 10_000) * 100 : Math.floor(num / 100)
}

/** Human major: 15, or 9.6. */
export function majorLabel(num: number): string {
  return num >= 100_000 ? String(Math.floor(num / 10_000)) : `${Math.floor(num / 10_000)}.${Math.floor(num / 100) % 100}`
}

/** Parses `pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)` (also 9.6.24, 17devel, 16beta1). */
export function parseToolVersion(output: string): ToolVersion | undefined {
  const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(output)
  if (!m) return undefined
  const major = Number(m[1])
  const minor = Number(m[2] ?? 0)
  const patch = Number(m[3] ?? 0)
  const num = major >= 10 ? major * 10_000 + minor : major * 10_000 + minor * 100 + patch
  return {version: [m[1], m[2], m[3]].filter((p) => p !== undefined).join('.'), num}
}

/** Directories that may hold the client programs, most specific first. */
function candidateDirs(serverMajor: number): string[] {
  if (process.env.SINGULARITY_PG_BIN) return [process.env.SINGULARITY_PG_BIN]
  const out: string[] = []
  const root = '/usr/lib/postgresql'
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => /^\d+$/.test(v))
      .map((v) => Number(v) * 100)
      // the server's own major first, then newer ones (oldest newer first), then older ones
      .sort((a, b) => rank(a) - rank(b))
    for (const v of versions) out.push(join(root, String(v / 100), 'bin'))
  }
  for (const dir of (process.env.PATH ?? '').split(delimiter)) if (dir && !out.includes(dir)) out.push(dir)
  return out

  function rank(v: number): number {
    if (v === serverMajor) return 0
    if (v > serverMajor) return v - serverMajor
    return 100_000 + (serverMajor - v)
  }
}

async function versionOf(file: string): Promise<ToolVersion | undefined> {
  const {execa} = await import('execa')
  const result = await execa(file, ['--version'], {reject: false, stdin: 'ignore', timeout: 15_000})
  return result.exitCode === 0 ? parseToolVersion(String(result.stdout)) : undefined
}

function installHint(serverNum: number): string {
  const major = majorLabel(serverNum)
  return `install the matching client: apt-get install -y postgresql-client-${major} (or set SINGULARITY_PG_BIN to a PostgreSQL ${major}+ bin directory)`
}

/**
 * pg_dump/pg_dumpall/pg_restore from one directory, at least as new as the server (`minNum`,
 * a server_version_num). pg_dump cannot dump a newer server: exit 1 with the fix, before
 * anything is written.
 */
export async function findClientTools(minNum: number, options: {purpose: 'dump' | 'restore'} = {purpose: 'dump'}): Promise<ClientTools> {
  const needed = options.purpose === 'dump' ? ['pg_dump', 'pg_dumpall', 'pg_restore'] : ['pg_restore']
  const minMajor = majorOf(minNum)
  let tooOld: {dir: string; version: ToolVersion} | undefined
  for (const dir of candidateDirs(minMajor)) {
    if (!needed.every((tool) => existsSync(join(dir, tool)))) continue
    const version = await versionOf(join(dir, needed[0]))
    if (!version) continue
    if (majorOf(version.num) < minMajor) {
      tooOld ??= {dir, version}
      continue
    }
    return {binDir: dir, pgDump: join(dir, 'pg_dump'), pgDumpAll: join(dir, 'pg_dumpall'), pgRestore: join(dir, 'pg_restore'), version}
  }
  const what = options.purpose === 'dump' ? 'the server' : 'the archive'
  if (tooOld) {
    throw new CliError(
      `${needed[0]} ${tooOld.version.version} (${tooOld.dir}) is older than ${what} (PostgreSQL ${majorLabel(minNum)}) and cannot ${options.purpose === 'dump' ? 'dump' : 'read'} it; nothing was written`,
      {hint: installHint(minNum), code: 'PG_TOOLS_TOO_OLD'},
    )
  }
  throw new CliError(`no ${needed.join('/')} found${process.env.SINGULARITY_PG_BIN ? ` in SINGULARITY_PG_BIN=${process.env.SINGULARITY_PG_BIN}` : ''}; nothing was written`, {
    hint: installHint(minNum),
    code: 'NO_PG_TOOLS',
  })
}

const PARAM_ENV: Record<string, string> = {
  host: 'PGHOST',
  hostaddr: 'PGHOSTADDR',
  port: 'PGPORT',
  user: 'PGUSER',
  password: 'PGPASSWORD',
  dbname: 'PGDATABASE',
  passfile: 'PGPASSFILE',
  service: 'PGSERVICE',
  options: 'PGOPTIONS',
  application_name: 'PGAPPNAME',
  connect_timeout: 'PGCONNECT_TIMEOUT',
  sslmode: 'PGSSLMODE',
  sslrootcert: 'PGSSLROOTCERT',
  sslcert: 'PGSSLCERT',
  sslkey: 'PGSSLKEY',
  sslcrl: 'PGSSLCRL',
  channel_binding: 'PGCHANNELBINDING',
  gssencmode: 'PGGSSENCMODE',
  target_session_attrs: 'PGTARGETSESSIONATTRS',
}

const TARGET_VARS = new Set(['PGHOST', 'PGHOSTADDR', 'PGPORT', 'PGUSER', 'PGDATABASE', 'PGSERVICE'])

/**
 * The environment for a libpq program connecting to `target` (PGHOST, PGPORT, PGUSER, PGPASSWORD,
 * PGDATABASE, …). The password travels only in the environment, never in argv or in output.
 * Without a URL (the PG* / .pgpass case) the caller's own PG* variables are used as they are; with
 * one, only the caller's PGHOST/PGPORT/PGUSER/PGDATABASE/PGSERVICE give way to it (a password-less
 * URL still finds its password in PGPASSFILE/.pgpass or PGPASSWORD, as node-postgres does).
 */
export function libpqEnv(target: Target | undefined, database?: string, base: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(base)) {
    if (v === undefined) continue
    // a URL names the server, user and database; other PG* settings (PGPASSFILE, PGSSLROOTCERT, …) still apply
    if (target?.url && TARGET_VARS.has(k)) continue
    env[k] = v
  }
  if (target?.url) {
    const url = new URL(target.url)
    const host = decodeURIComponent(url.hostname).replace(/^\[(.*)\]$/, '$1')
    if (host) env.PGHOST = host
    if (url.port) env.PGPORT = url.port
    if (url.username) env.PGUSER = decodeURIComponent(url.username)
    if (url.password) env.PGPASSWORD = decodeURIComponent(url.password)
    const db = decodeURIComponent(url.pathname.replace(/^\//, ''))
    if (db) env.PGDATABASE = db
    for (const [key, value] of url.searchParams) {
      const name = PARAM_ENV[key]
      if (name) env[name] = value
    }
  }
  const db = database ?? target?.database
  if (db) env.PGDATABASE = db
  env.PGAPPNAME ??= 'singularity-backup'
  return env
}
