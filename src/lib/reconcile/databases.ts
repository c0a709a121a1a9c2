import {quoteIdent} from '../sql/quote.js'
import type {ConcreteDatabase, Estate} from '../../topology.js'
import {sqlAction, type Action} from './action.js'
import type {CopyInfo} from '../backup/copies.js'
import type {AclEntry, ObservedDatabase} from './observe.js'
import {grantee, privilegeList} from './grants.js'

/** PostgreSQL's default database ACL: what a database created without one grants PUBLIC. */
export const DEFAULT_DATABASE_ACL = (owner: string): AclEntry[] => [
  {grantee: 'PUBLIC', privilege: 'TEMPORARY'},
  {grantee: 'PUBLIC', privilege: 'CONNECT'},
  ...['CREATE', 'TEMPORARY', 'CONNECT'].map((privilege) => ({grantee: owner, privilege})),
]

/**
 * Databases: created with their owner; a database owned by the admin (an interrupted create) is
 * given to its owner; CONNECT only for the roles the topology names (the owner has it), TEMPORARY
 * for nobody else. Any other privilege of PUBLIC or an estate role on the database is security
 * drift, revoked. Databases of another owner never reach here (refused before planning).
 */
export function diffDatabases(estate: Estate, observed: ObservedDatabase[]): Action[] {
  const actions: Action[] = []
  const estateRoles = new Set(estate.roles.map((r) => r.name))
  for (const db of estate.databases) {
    const current = observed.find((d) => d.name === db.name)
    if (!current) {
      actions.push(
        sqlAction(
          {area: 'databases', database: db.name, description: `create database ${db.name} owned by ${db.owner}`, destructive: false, privilege: 'createdb', reason: 'missing', subject: db.name},
          'admin',
          [`CREATE DATABASE ${quoteIdent(db.name)} OWNER ${quoteIdent(db.owner)}`],
        ),
      )
    } else if (current.owner !== db.owner) {
      actions.push(
        sqlAction(
          {area: 'databases', database: db.name, description: `give database ${db.name} to ${db.owner} (owned by ${current.owner})`, destructive: false, privilege: 'superuser', reason: 'changed', subject: db.name, differences: ['owner']},
          'admin',
          [`ALTER DATABASE ${quoteIdent(db.name)} OWNER TO ${quoteIdent(db.owner)}`],
        ),
      )
    }
    actions.push(...diffDatabaseAcl(db, current ? current.acl : DEFAULT_DATABASE_ACL(db.owner), estateRoles))
  }
  return actions
}

/**
 * Copies of estate databases restored by the tool (backup restore --as, restore tests): each keeps
 * its source's access (seed 003's isolation holds for copies too), so CONNECT/TEMP beyond what the
 * source database declares, for PUBLIC or another service, is security drift. The copy's own owner
 * (the admin with --no-owner) is left alone; its data is never touched.
 */
export function diffCopies(estate: Estate, copies: CopyInfo[]): Action[] {
  const estateRoles = new Set(estate.roles.map((r) => r.name))
  const actions: Action[] = []
  for (const copy of copies) {
    const source = estate.databases.find((d) => d.name === copy.source)
    if (!source) continue
    const acl: AclEntry[] = copy.access.filter((g) => g.grantee !== copy.owner).flatMap((g) => g.privileges.map((privilege) => ({grantee: g.grantee, privilege})))
    actions.push(...diffDatabaseAcl({...source, name: copy.database}, acl, estateRoles).map((a) => ({...a, description: `${a.description} (a copy of ${copy.source}, restored from backup ${copy.backup})`})))
  }
  return actions
}

function diffDatabaseAcl(db: ConcreteDatabase, acl: AclEntry[], estateRoles: Set<string>): Action[] {
  const actions: Action[] = []
  const has = (role: string, privilege: string) => acl.some((a) => a.grantee === role && a.privilege === privilege)
  const missing = db.connect.filter((role) => !has(role, 'CONNECT'))
  if (missing.length > 0) {
    actions.push(
      sqlAction(
        {area: 'databases', database: db.name, description: `grant CONNECT on database ${db.name} to ${missing.join(', ')}`, destructive: false, privilege: 'owner', reason: 'missing', subject: db.name},
        'admin',
        [`GRANT CONNECT ON DATABASE ${quoteIdent(db.name)} TO ${missing.map(quoteIdent).join(', ')}`],
      ),
    )
  }
  const extra = new Map<string, string[]>()
  for (const entry of acl) {
    if (entry.grantee === db.owner) continue
    if (entry.grantee !== 'PUBLIC' && !estateRoles.has(entry.grantee)) continue // not ours to judge
    if (entry.privilege === 'CONNECT' && db.connect.includes(entry.grantee)) continue
    extra.set(entry.grantee, [...(extra.get(entry.grantee) ?? []), entry.privilege])
  }
  for (const [role, privileges] of extra) {
    const list = privilegeList(privileges)
    actions.push(
      sqlAction(
        {area: 'databases', database: db.name, description: `revoke ${list} on database ${db.name} from ${role}`, destructive: true, privilege: 'owner', reason: 'extra', subject: db.name},
        'admin',
        [`REVOKE ${list} ON DATABASE ${quoteIdent(db.name)} FROM ${grantee(role)}`],
      ),
    )
  }
  return actions
}
