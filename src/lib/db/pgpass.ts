import {existsSync, readFileSync, statSync} from 'node:fs'
import {homedir} from 'node:os'
import {join} from 'node:path'

/** Splits one .pgpass line on unescaped colons, unescaping \: and \\. */
function fields(line: string): string[] {
  const out: string[] = []
  let current = ''
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]
    if (ch === '\\' && i + 1 < line.length) current += line[++i]
    else if (ch === ':') {
      out.push(current)
      current = ''
    } else current += ch
  }
  out.push(current)
  return out
}

/**
 * The password libpq would take from the password file (PGPASSFILE or ~/.pgpass) for this
 * host/port/database/user, with the same rules: * matches anything, first match wins, and a file
 * that group or others can read is ignored.
 */
export function pgpassLookup(target: {host: string; port: number; database: string; user: string}, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const file = env.PGPASSFILE || join(homedir(), '.pgpass')
  if (!existsSync(file)) return undefined
  try {
    if ((statSync(file).mode & 0o077) !== 0) return undefined
  } catch {
    return undefined
  }
  const host = target.host.startsWith('/') ? 'localhost' : target.host
  const wanted = [host, String(target.port), target.database, target.user]
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim() || line.startsWith('#')) continue
    const parts = fields(line)
    if (parts.length < 5) continue
    if (wanted.every((value, i) => parts[i] === '*' || parts[i] === value)) return parts.slice(4).join(':')
  }
  return undefined
}
