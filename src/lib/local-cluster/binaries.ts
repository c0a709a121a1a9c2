import {existsSync, readdirSync} from 'node:fs'
import {join} from 'node:path'

import {CliError} from '../cli/errors.js'

export interface ServerBinaries {
  binDir: string
  major: number
  sharedir: string
  pkglibdir: string
}

/** Optional extension packages the estate uses, and whether they are required. */
export const EXTENSION_PACKAGES = [
  {extension: 'pg_cron', file: (b: ServerBinaries) => join(b.sharedir, 'extension', 'pg_cron.control'), pkg: (m: number) => `postgresql-${m}-cron`, required: true},
  {extension: 'wal2json', file: (b: ServerBinaries) => join(b.pkglibdir, 'wal2json.so'), pkg: (m: number) => `postgresql-${m}-wal2json`, required: true},
  {extension: 'pg_partman', file: (b: ServerBinaries) => join(b.sharedir, 'extension', 'pg_partman.control'), pkg: (m: number) => `postgresql-${m}-partman`, required: false},
] as const

function majorOf(binDir: string): number | undefined {
  const match = /postgresql\/(\d+)\/bin\/?$/.exec(binDir)
  return match ? Number(match[1]) : undefined
}

/** Candidate server bin dirs: $SINGULARITY_PG_BIN, then /usr/lib/postgresql/<newest>/bin. */
function candidates(): string[] {
  const out: string[] = []
  if (process.env.SINGULARITY_PG_BIN) out.push(process.env.SINGULARITY_PG_BIN)
  const root = '/usr/lib/postgresql'
  if (existsSync(root)) {
    const versions = readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a))
    for (const v of versions) out.push(join(root, v, 'bin'))
  }
  return out
}

/** Finds initdb/pg_ctl/postgres; exit 1 with the install command when there are none. */
export function findServerBinaries(): ServerBinaries {
  for (const binDir of candidates()) {
    if (!existsSync(join(binDir, 'initdb')) || !existsSync(join(binDir, 'pg_ctl'))) continue
    const major = majorOf(binDir) ?? 15
    const base = binDir.replace(/\/bin\/?$/, '')
    const sharedir = existsSync(`/usr/share/postgresql/${major}`) ? `/usr/share/postgresql/${major}` : join(base, 'share')
    return {binDir, major, sharedir, pkglibdir: join(base, 'lib')}
  }
  throw new CliError('no PostgreSQL server binaries found (initdb, pg_ctl)', {
    hint: 'install them: apt-get install -y postgresql-15 postgresql-15-cron postgresql-15-wal2json (or set SINGULARITY_PG_BIN)',
    code: 'NO_SERVER_BINARIES',
  })
}

export interface ExtensionCheck {
  extension: string
  available: boolean
  required: boolean
  package: string
}

/** Which extension packages are on disk for these binaries. */
export function checkExtensionPackages(binaries: ServerBinaries): ExtensionCheck[] {
  return EXTENSION_PACKAGES.map((e) => ({
    extension: e.extension,
    available: existsSync(e.file(binaries)),
    required: e.required,
    package: e.pkg(binaries.major),
  }))
}

export function installCommand(packages: string[]): string {
  return `apt-get update && apt-get install -y ${packages.join(' ')}`
}
