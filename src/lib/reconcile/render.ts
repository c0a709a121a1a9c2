import type {PublicAction} from './action.js'

/**
 * The plan for people: actions grouped by database (server-wide steps first), one line each with
 * why and what it needs, the SQL indented below (an SQL file is named, not printed).
 */
export function renderPlan(actions: PublicAction[], options: {sql?: boolean} = {}): string[] {
  const lines: string[] = []
  const groups = new Map<string, PublicAction[]>()
  for (const a of actions) {
    const key = `${a.database ?? '(server)'}${a.server ? ` on ${a.server}` : ''}`
    groups.set(key, [...(groups.get(key) ?? []), a])
  }
  for (const [database, list] of groups) {
    lines.push(`${database} (${list.length} action${list.length === 1 ? '' : 's'})`)
    for (const a of list) {
      const tags = [a.reason, a.destructive ? 'destructive' : null, a.refused ? 'REFUSED' : null, `needs ${a.privilege}`].filter(Boolean).join(', ')
      lines.push(`  ${a.destructive ? '-' : a.refused ? '!' : '+'} ${a.description}  [${a.area}: ${tags}]`)
      if (options.sql !== false) for (const statement of a.sql) lines.push(`      ${statement.length > 200 ? `${statement.slice(0, 197)}...` : statement}`)
    }
  }
  return lines
}

/** The steps only the provider can take, for people: what to ask for, and why nothing stopped. */
export function renderProviderSteps(steps: PublicAction[], admin: string): string[] {
  if (steps.length === 0) return []
  const lines = [`provider steps (${steps.length}): '${admin}' is not a superuser; ask the server's provider for these (db init did the rest and lists them until they are done):`]
  for (const s of steps) lines.push(`  * ${s.database ? `${s.database}: ` : ''}${s.description}`)
  return lines
}
