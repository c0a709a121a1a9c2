import {createHash} from 'node:crypto'
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'

import {sqlDir} from '../paths.js'

export type SqlFileKind = 'migration' | 'procedure'

/** One SQL file of a component: sql/<component>/NNN_slug.sql or sql/<component>/procedures/name.sql. */
export interface SqlFile {
  component: string
  kind: SqlFileKind
  /** path relative to sql/, the ledger key, e.g. "singularity/001_schema.sql" */
  name: string
  path: string
  sql: string
  sha256: string
  /** apply only where this extension is installed (header `-- requires-extension: x`) */
  requiresExtension?: string
  /** apply only where this extension is not installed (header `-- unless-extension: x`) */
  unlessExtension?: string
}

const MIGRATION_NAME = /^(\d{3,})_[a-z0-9_]+\.sql$/

function header(sql: string, key: string): string | undefined {
  for (const line of sql.split('\n').slice(0, 10)) {
    const match = new RegExp(`^--\\s*${key}:\\s*([a-z0-9_]+)\\s*$`).exec(line.trim())
    if (match) return match[1]
  }
  return undefined
}

function read(component: string, kind: SqlFileKind, relative: string): SqlFile {
  const path = join(sqlDir(), relative)
  const sql = readFileSync(path, 'utf8')
  return {
    component,
    kind,
    name: relative,
    path,
    sql,
    sha256: createHash('sha256').update(sql).digest('hex'),
    requiresExtension: header(sql, 'requires-extension'),
    unlessExtension: header(sql, 'unless-extension'),
  }
}

const cache = new Map<string, SqlFile[]>()

/** The files of a component in the order they apply: migrations by number, then procedures by name (read once per process). */
export function componentFiles(component: string): SqlFile[] {
  const known = cache.get(component)
  if (known) return known
  const files = readComponentFiles(component)
  cache.set(component, files)
  return files
}

function readComponentFiles(component: string): SqlFile[] {
  const dir = join(sqlDir(), component)
  if (!existsSync(dir)) throw new Error(`no SQL component '${component}' (expected ${dir})`)
  const migrations = readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .map((f) => {
      if (!MIGRATION_NAME.test(f)) throw new Error(`sql/${component}/${f}: migrations are named NNN_slug.sql`)
      return f
    })
    .sort((a, b) => Number(MIGRATION_NAME.exec(a)![1]) - Number(MIGRATION_NAME.exec(b)![1]) || a.localeCompare(b))
    .map((f) => read(component, 'migration', `${component}/${f}`))
  const procDir = join(dir, 'procedures')
  const procedures = existsSync(procDir)
    ? readdirSync(procDir)
        .filter((f) => f.endsWith('.sql'))
        .sort()
        .map((f) => read(component, 'procedure', `${component}/procedures/${f}`))
    : []
  return [...migrations, ...procedures]
}

/** Whether a file applies to a database with these extensions installed. */
export function appliesTo(file: SqlFile, installedExtensions: ReadonlySet<string>): boolean {
  if (file.requiresExtension && !installedExtensions.has(file.requiresExtension)) return false
  if (file.unlessExtension && installedExtensions.has(file.unlessExtension)) return false
  return true
}
