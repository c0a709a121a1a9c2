/**
 * Databases the tool creates from a backup (`restore --as`, the default `<db>_restored_<time>`,
 * restore-test scratch databases) keep their source's isolation: CONNECT/TEMP are revoked from
 * PUBLIC and granted exactly as the source database had them when it was dumped (pg_dump does not
 * carry database-level grants). Without this a copy of genesis would be readable by every role on
 * the server.
 *
 * The registry of restored copies is the copy's own COMMENT ON DATABASE (a small JSON document):
 * it lives and dies with the copy, needs no table in another database (managed servers may not let
 * us create one), and every tool that can list databases can read it. `listCopies` returns the
 * copies with their ACL, for `db plan`/`db status` (an open copy is security drift).
 */
import type pg from 'pg'
import {z} from 'zod'

/** One grantee's database privileges (CONNECT, TEMPORARY, CREATE); grantee 'PUBLIC' for everyone. */
export const databaseGrantSchema = z.object({grantee: z.string(), privileges: z.array(z.string())})
export type DatabaseGrant = z.infer<typeof databaseGrantSchema>

/** SQL: a database's effective grants as [{grantee, privileges}] (the default ACL when datacl is null). */
export const DATABASE_ACCESS_SQL = `
  (SELECT coalesce(json_agg(json_build_object('grantee', g.grantee, 'privileges', g.privileges) ORDER BY g.grantee), '[]'::json)
     FROM (SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END AS grantee,
                  array_agg(DISTINCT a.privilege_type ORDER BY a.privilege_type) AS privileges
             FROM aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
            GROUP BY 1) g)`

const COPY_MARK = 'singularity-copy'

export interface CopyInfo {
  database: string
  source: string
  backup: string
  restoredAt: string
  owner: string
  access: DatabaseGrant[]
  /** CONNECT for PUBLIC: every role on the server may connect */
  openToPublic: boolean
}

async function ddl(client: pg.Client, template: string, ...args: string[]): Promise<void> {
  const params = args.map((_, i) => `$${i + 1}::text`).join(', ')
  const {rows} = await client.query<{sql: string}>(`SELECT format('${template}', ${params}) AS sql`, args)
  await client.query(rows[0].sql)
}

/**
 * Gives a database created from a backup its source's access: everything revoked from PUBLIC,
 * then each grant the source had (to roles that exist here). Without recorded access (backups
 * older than this field) the copy stays closed: only its owner and superusers may connect.
 */
export async function applySourceAccess(client: pg.Client, database: string, access: DatabaseGrant[] | undefined): Promise<{granted: DatabaseGrant[]; missingRoles: string[]}> {
  await ddl(client, 'REVOKE ALL ON DATABASE %I FROM PUBLIC', database)
  const granted: DatabaseGrant[] = []
  const missingRoles: string[] = []
  for (const grant of access ?? []) {
    const privileges = grant.privileges.filter((p) => ['CONNECT', 'TEMPORARY', 'CREATE'].includes(p))
    if (privileges.length === 0) continue
    if (grant.grantee !== 'PUBLIC') {
      const {rowCount} = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [grant.grantee])
      if (!rowCount) {
        missingRoles.push(grant.grantee)
        continue
      }
    }
    const to = grant.grantee === 'PUBLIC' ? 'PUBLIC' : '%I'
    await ddl(client, `GRANT ${privileges.join(', ')} ON DATABASE %I TO ${to}`, database, ...(grant.grantee === 'PUBLIC' ? [] : [grant.grantee]))
    granted.push({grantee: grant.grantee, privileges})
  }
  return {granted, missingRoles}
}

/** Records in the copy itself that the tool restored it, from which database and backup. */
export async function markCopy(client: pg.Client, database: string, origin: {source: string; backup: string; restoredAt: string}): Promise<void> {
  await ddl(client, 'COMMENT ON DATABASE %I IS %L', database, JSON.stringify({[COPY_MARK]: origin}))
}

/** The databases on the server that the tool restored from a backup, with their owner and ACL. */
export async function listCopies(client: pg.Client): Promise<CopyInfo[]> {
  const {rows} = await client.query<{datname: string; comment: string | null; owner: string; access: DatabaseGrant[]}>(
    `SELECT d.datname, shobj_description(d.oid, 'pg_database') AS comment, pg_get_userbyid(d.datdba) AS owner, ${DATABASE_ACCESS_SQL} AS access
       FROM pg_database d WHERE shobj_description(d.oid, 'pg_database') LIKE '%${COPY_MARK}%' ORDER BY d.datname`,
  )
  const out: CopyInfo[] = []
  for (const r of rows) {
    let origin: {source?: unknown; backup?: unknown; restoredAt?: unknown} | undefined
    try {
      origin = (JSON.parse(r.comment ?? '') as Record<string, typeof origin>)[COPY_MARK]
    } catch {
      origin = undefined
    }
    if (!origin || typeof origin.source !== 'string') continue
    out.push({
      database: r.datname,
      source: origin.source,
      backup: String(origin.backup ?? ''),
      restoredAt: String(origin.restoredAt ?? ''),
      owner: r.owner,
      access: r.access,
      openToPublic: r.access.some((g) => g.grantee === 'PUBLIC' && g.privileges.includes('CONNECT')),
    })
  }
  return out
}
