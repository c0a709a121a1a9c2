/** How `db status` looks to people: the server line, one row per database, folded free text. */
import {fold, formatTable, type Column, type TableOptions} from '../cli/table.js'
import {sessionKeyLine} from '../provision/session-key.js'
import type {DatabaseStatus, EstateStatus} from '../provision/status.js'

const sqlFiles = (d: DatabaseStatus) =>
  d.reachable
    ? `${d.migrations.applied} applied${d.migrations.pending ? `, ${d.migrations.pending} pending` : ''}${d.migrations.changed ? `, ${d.migrations.changed} changed` : ''}${d.migrations.drifted ? `, ${d.migrations.drifted} DRIFTED` : ''}`
    : null

export const DB_STATUS_COLUMNS: Column<DatabaseStatus>[] = [
  {key: 'database', header: 'database', priority: 0, text: (d) => d.name},
  {key: 'server', header: 'server', priority: 1, text: (d) => d.server},
  {key: 'verdict', header: 'verdict', priority: 1, text: (d) => d.verdict, tone: (d) => (d.verdict === 'ok' ? 'ok' : d.verdict === 'pending' ? 'warn' : 'fail')},
  {key: 'sql-files', header: 'sql files', priority: 2, text: sqlFiles, tone: (d) => (d.migrations.drifted ? 'fail' : d.migrations.pending + d.migrations.changed > 0 ? 'warn' : undefined)},
  {key: 'owner', header: 'owner', priority: 3, text: (d) => d.owner, tone: (d) => (d.owner !== null && d.owner !== d.expectedOwner ? 'fail' : undefined)},
  {key: 'queues', header: 'queues', priority: 4, text: (d) => d.queueEngine},
  {key: 'extensions', header: 'extensions', priority: 5, min: 20, below: true, text: (d) => d.extensions.map((e) => `${e.name} ${e.version}`).join(', ')},
]

/** Every line of `db status` for people; free text folds at word boundaries to the width. */
export function renderDbStatus(s: EstateStatus, options: TableOptions): {table: string[]; before: string[]; after: string[]} {
  const width = options.width && !options.wide ? options.width : undefined
  const paint = options.paint
  const several = s.servers.length > 1 || s.servers.some((srv) => srv.name !== 'main')
  const before = several
    ? s.servers.flatMap((srv) =>
        fold(
          srv.reachable
            ? `server ${srv.name}: PostgreSQL ${srv.version}, wal_level=${srv.walLevel}, pg_cron ${srv.cronPreloaded ? 'preloaded' : 'NOT preloaded'} (cron database ${srv.cronDatabase}); ${srv.databases.join(', ')}`
            : `server ${srv.name}: UNREACHABLE (${srv.error}); ${srv.databases.join(', ')} not read`,
          width,
          '  ',
        ),
      )
    : fold(`server: PostgreSQL ${s.server.version}, wal_level=${s.server.walLevel}, pg_cron ${s.server.cronPreloaded ? 'preloaded' : 'NOT preloaded'} (cron database ${s.server.cronDatabase})`, width, '  ')
  // the server column only when the estate spans several servers
  const columns = several ? DB_STATUS_COLUMNS : DB_STATUS_COLUMNS.filter((c) => c.key !== 'server')
  const table = formatTable(columns, s.databases, options).lines
  const after: string[] = []
  const missingRoles = s.roles.filter((r) => !r.exists)
  if (missingRoles.length > 0) after.push(...fold(`missing roles: ${missingRoles.map((r) => r.name).join(', ')}`, width, '  '))
  for (const d of s.databases) {
    for (const f of d.migrations.files.filter((x) => x.state === 'drifted')) after.push(...fold(`drift: sql/${f.file} in ${d.name} changed after it was applied`, width, '  '))
    if (d.queuesMissing.length > 0) after.push(...fold(`${d.name}: missing queues ${d.queuesMissing.join(', ')}`, width, '  '))
    if (d.error) after.push(...fold(`${d.timedOut ? 'timed out' : 'unreadable'}: ${d.error.startsWith(d.name) ? d.error : `${d.name}: ${d.error}`}`, width, '  '))
  }
  if (s.plan.summary.actions > 0) {
    const byArea = Object.entries(s.plan.summary.byArea).map(([area, n]) => `${area} ${n}`).join(', ')
    after.push(
      ...fold(
        `plan: ${s.plan.summary.actions} action(s) (${byArea})${s.plan.summary.destructive > 0 ? `, ${s.plan.summary.destructive} destructive (security drift: extra privileges, foreign-looking jobs of ours)` : ''}; \`singularity db plan\` lists them`,
        width,
        '  ',
      ),
    )
  }
  for (const copy of s.copies) {
    const connect = copy.access.filter((g) => g.privileges.includes('CONNECT')).map((g) => g.grantee)
    after.push(...fold(`copy: ${copy.database} (of ${copy.source}, backup ${copy.backup}): CONNECT for ${[copy.owner, ...connect.filter((g) => g !== copy.owner)].join(', ')}${copy.openToPublic ? ' — OPEN TO PUBLIC: security drift, `singularity db init` closes it' : ''}`, width, '  '))
  }
  // a managed server: steps only the provider can take (never drift, so the verdict can be ok)
  if (s.plan.providerSteps.length > 0) after.push(...fold(`provider steps: ${s.plan.providerSteps.length} waiting for the server's provider; \`singularity db plan\` lists them`, width, '  '))
  const fallbacks = s.databases.find((d) => d.fallbacks.length > 0)?.fallbacks ?? []
  if (fallbacks.length > 0) after.push(...fold(`features: ${fallbacks.map((f) => `${f.feature} → ${f.implementation}`).join('; ')}`, width, '  '))
  if (s.sessionKey) after.push(...fold(sessionKeyLine(), width, '  '))
  // the server-settings area's capacity check: the server is too small for the estate
  for (const w of s.capacity?.warnings ?? []) after.push(...fold(`warning: ${w}`, width, '  ').map((l) => (paint ? paint.tone('warn', l) : l)))
  const next = s.plan.summary.refused > 0 ? 'restore the drifted file (applied migrations are never edited), then `singularity db init`' : '`singularity db plan` to see it, `singularity db init` to apply it'
  const verdict = s.verdict === 'ok' ? 'verdict: ok' : `verdict: ${s.verdict} — next: ${next}`
  after.push(...fold(verdict, width, '  ').map((l) => (paint ? paint.tone(s.verdict === 'ok' ? 'ok' : s.verdict === 'pending' ? 'warn' : 'fail', l) : l)))
  return {before, table, after}
}
