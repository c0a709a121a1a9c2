import type pg from 'pg'

import {quoteIdent} from '../sql/quote.js'
import type {Access} from '../../topology.js'

const TABLE_PRIVILEGES: Record<Access, string> = {readwrite: 'SELECT, INSERT, UPDATE, DELETE', read: 'SELECT'}
const SEQUENCE_PRIVILEGES: Record<Access, string> = {readwrite: 'USAGE, SELECT, UPDATE', read: 'SELECT'}

/** Statements that give a role its access to a schema, now and for objects created later by the admin. */
export function grantStatements(grant: {role: string; schema: string; access: Access}): string[] {
  const role = quoteIdent(grant.role)
  const schema = quoteIdent(grant.schema)
  const statements = [
    `GRANT USAGE ON SCHEMA ${schema} TO ${role}`,
    `GRANT ${TABLE_PRIVILEGES[grant.access]} ON ALL TABLES IN SCHEMA ${schema} TO ${role}`,
    `GRANT ${SEQUENCE_PRIVILEGES[grant.access]} ON ALL SEQUENCES IN SCHEMA ${schema} TO ${role}`,
    `ALTER DEFAULT PRIVILEGES IN SCHEMA ${schema} GRANT ${TABLE_PRIVILEGES[grant.access]} ON TABLES TO ${role}`,
    `ALTER DEFAULT PRIVILEGES IN SCHEMA ${schema} GRANT ${SEQUENCE_PRIVILEGES[grant.access]} ON SEQUENCES TO ${role}`,
  ]
  if (grant.access === 'readwrite') {
    statements.push(
      `GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA ${schema} TO ${role}`,
      `ALTER DEFAULT PRIVILEGES IN SCHEMA ${schema} GRANT EXECUTE ON FUNCTIONS TO ${role}`,
    )
  }
  return statements
}

/** Applies the grants of one database (idempotent; schemas that do not exist yet are skipped). */
export async function applyGrants(client: pg.Client, grants: {role: string; schema: string; access: Access}[]): Promise<number> {
  const {rows} = await client.query<{nspname: string}>('SELECT nspname FROM pg_namespace WHERE nspname = ANY($1)', [grants.map((g) => g.schema)])
  const schemas = new Set(rows.map((r) => r.nspname))
  let applied = 0
  for (const grant of grants) {
    if (!schemas.has(grant.schema)) continue
    for (const statement of grantStatements(grant)) await client.query(statement)
    applied++
  }
  return applied
}

/** CONNECT only for the owner and the roles the topology names; nobody else (PUBLIC revoked). */
export async function restrictConnect(client: pg.Client, database: string, owner: string, connect: string[]): Promise<void> {
  const db = quoteIdent(database)
  await client.query(`REVOKE CONNECT, TEMPORARY ON DATABASE ${db} FROM PUBLIC`)
  await client.query(`GRANT CONNECT ON DATABASE ${db} TO ${[owner, ...connect].map(quoteIdent).join(', ')}`)
}
