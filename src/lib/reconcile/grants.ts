import {quoteIdent} from '../sql/quote.js'
import type {Access, ConcreteDatabase, Estate} from '../../topology.js'
import {sqlAction, type Action} from './action.js'
import type {AclEntry, DatabaseObservation, ObservedDefaultAcl} from './observe.js'
import {queueTable} from './queues.js'
import {deadLetterQueueName} from '../../queue-policies.js'

/**
 * Grants and default privileges of one database, as a pure diff of what the topology declares
 * against the ACLs observed on our schemas (MANAGED_SCHEMAS) and their tables, sequences and
 * routines:
 *  - schema-wide grants (DatabaseSpec.grants): USAGE, the table/sequence privileges of the access
 *    level on every relation of the schema, EXECUTE on its routines (readwrite), and the same as
 *    default privileges of the admin for objects created later;
 *  - per-queue grants (DatabaseSpec.queueAccess, archiveReaders), see QueueAccess in topology.ts;
 *    every role with queue access gets USAGE on pgmq, SELECT on pgmq.meta and EXECUTE on the pgmq
 *    routines (SECURITY INVOKER: the table grants decide).
 * Only PUBLIC and the estate's roles are judged: a privilege either holds that is not declared is
 * security drift, revoked (destructive). Grants to other roles, and other schemas, are not ours.
 * PostgreSQL's own defaults that we keep are tolerated: PUBLIC's USAGE on schema public and
 * EXECUTE on routines of public and pgmq.
 */

export const TABLE_PRIVILEGES: Record<Access, string[]> = {readwrite: ['SELECT', 'INSERT', 'UPDATE', 'DELETE'], read: ['SELECT']}
export const SEQUENCE_PRIVILEGES: Record<Access, string[]> = {readwrite: ['USAGE', 'SELECT', 'UPDATE'], read: ['SELECT']}

/** Per-queue privileges (see QueueAccess). */
export const QUEUE_PRIVILEGES = {
  publish: {queue: ['SELECT', 'INSERT'], sequence: ['USAGE'], archive: [] as string[]},
  consume: {queue: ['SELECT', 'UPDATE', 'DELETE'], sequence: [] as string[], archive: ['SELECT', 'INSERT']},
  observe: {queue: ['SELECT'], sequence: [] as string[], archive: ['SELECT']},
  'archive-read': {queue: [] as string[], sequence: [] as string[], archive: ['SELECT']},
} as const

const ORDER = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER', 'MAINTAIN', 'USAGE', 'CREATE', 'CONNECT', 'TEMPORARY', 'EXECUTE']

/** Privileges in PostgreSQL's order, comma-separated. */
export function privilegeList(privileges: Iterable<string>): string {
  return [...new Set(privileges)].sort((a, b) => ORDER.indexOf(a) - ORDER.indexOf(b) || a.localeCompare(b)).join(', ')
}

/** A grantee in SQL: PUBLIC is a keyword, roles are identifiers. */
export function grantee(role: string): string {
  return role === 'PUBLIC' ? 'PUBLIC' : quoteIdent(role)
}

type ObjectKind = 'table' | 'sequence' | 'routine' | 'schema'

interface Target {
  kind: ObjectKind
  schema: string
  /** schema.name, schema.name(args) or the schema name */
  display: string
  sql: string
  owner: string
  acl: AclEntry[]
}

const KEYWORD: Record<ObjectKind, string> = {table: 'TABLE', sequence: 'SEQUENCE', routine: 'ROUTINE', schema: 'SCHEMA'}
const DEFAULT_KEYWORD: Partial<Record<ObservedDefaultAcl['objtype'], string>> = {r: 'TABLES', S: 'SEQUENCES', f: 'ROUTINES'}

function relationTarget(kind: 'table' | 'sequence', schema: string, name: string, owner: string, acl: AclEntry[]): Target {
  return {kind, schema, display: `${schema}.${name}`, sql: `${quoteIdent(schema)}.${quoteIdent(name)}`, owner, acl}
}

const targetKey = (kind: ObjectKind, display: string) => `${kind}:${display}`

/** The objects whose ACLs we judge, plus the declared queue tables and schemas not created yet (so a plan can show their grants). */
function targets(db: ConcreteDatabase, observed: DatabaseObservation): Target[] {
  const out: Target[] = []
  // keyed by kind and display: a singularity database has hundreds of objects, diffed once per database
  const seen = new Set<string>()
  const add = (target: Target) => {
    seen.add(targetKey(target.kind, target.display))
    out.push(target)
  }
  for (const s of observed.schemas) add({kind: 'schema', schema: s.name, display: s.name, sql: quoteIdent(s.name), owner: s.owner, acl: s.acl})
  const virtualSchema = (name: string, acl: AclEntry[]) => {
    if (!seen.has(targetKey('schema', name))) add({kind: 'schema', schema: name, display: name, sql: quoteIdent(name), owner: '', acl})
  }
  if (!observed.exists) virtualSchema('public', [{grantee: 'PUBLIC', privilege: 'USAGE'}])
  if (db.spec.queues.length > 0) virtualSchema('pgmq', [])
  for (const r of observed.relations) add(relationTarget(r.kind, r.schema, r.name, r.owner, r.acl))
  for (const f of observed.routines) {
    add({kind: 'routine', schema: f.schema, display: `${f.schema}.${f.name}(${f.args})`, sql: `${quoteIdent(f.schema)}.${quoteIdent(f.name)}(${f.args})`, owner: f.owner, acl: f.acl})
  }
  const sequenceOwners = new Set(observed.relations.filter((r) => r.kind === 'sequence' && r.schema === 'pgmq' && r.ownedBy !== null).map((r) => r.ownedBy))
  for (const queue of db.spec.queues) {
    for (const kind of ['q', 'a'] as const) {
      const name = queueTable(queue, kind)
      if (!seen.has(targetKey('table', `pgmq.${name}`))) add(relationTarget('table', 'pgmq', name, '', []))
    }
    if (!sequenceOwners.has(queueTable(queue, 'q'))) add(relationTarget('sequence', 'pgmq', `${queueTable(queue, 'q')}_msg_id_seq`, '', []))
  }
  return out
}

/** Privileges the topology gives, per target (targetKey) and role. */
function desiredPrivileges(db: ConcreteDatabase, observed: DatabaseObservation, all: Target[]): Map<string, Map<string, Set<string>>> {
  const byKey = new Map<string, Target>()
  const inSchema = new Map<string, Target[]>()
  for (const t of all) {
    const key = targetKey(t.kind, t.display)
    if (!byKey.has(key)) byKey.set(key, t)
    const schema = inSchema.get(t.schema)
    if (schema) schema.push(t)
    else inSchema.set(t.schema, [t])
  }
  const want = new Map<string, Map<string, Set<string>>>()
  const give = (target: Target | undefined, role: string, privileges: readonly string[]) => {
    if (!target || privileges.length === 0) return
    const key = targetKey(target.kind, target.display)
    const byRole = want.get(key) ?? new Map<string, Set<string>>()
    const set = byRole.get(role) ?? new Set<string>()
    for (const p of privileges) set.add(p)
    byRole.set(role, set)
    want.set(key, byRole)
  }
  for (const g of db.grants) {
    give(byKey.get(targetKey('schema', g.schema)), g.role, ['USAGE'])
    for (const t of inSchema.get(g.schema) ?? []) {
      if (t.kind === 'table') give(t, g.role, TABLE_PRIVILEGES[g.access])
      if (t.kind === 'sequence') give(t, g.role, SEQUENCE_PRIVILEGES[g.access])
      if (t.kind === 'routine' && g.access === 'readwrite') give(t, g.role, ['EXECUTE'])
    }
  }
  const table = (name: string) => byKey.get(targetKey('table', `pgmq.${name}`))
  const sequenceOf = new Map<string, string>()
  for (const r of observed.relations) if (r.kind === 'sequence' && r.schema === 'pgmq' && r.ownedBy !== null && !sequenceOf.has(r.ownedBy)) sequenceOf.set(r.ownedBy, r.name)
  const users = new Set<string>()
  const readers = new Set<string>(db.archiveReaders)
  // A queue's dead-letter queue (<queue>_dlq, made by `queue dead-letter` when it exists) has the
  // same access as its queue: it is judged like it, never revoked as undeclared.
  for (const access of db.queueAccess) {
    for (const queue of [access.queue, deadLetterQueueName(access.queue)]) {
      const q = table(queueTable(queue, 'q'))
      const a = table(queueTable(queue, 'a'))
      const seq = byKey.get(targetKey('sequence', `pgmq.${sequenceOf.get(queueTable(queue, 'q')) ?? `${queueTable(queue, 'q')}_msg_id_seq`}`))
      for (const direction of ['publish', 'consume', 'observe'] as const) {
        for (const role of access[direction]) {
          users.add(role)
          give(q, role, QUEUE_PRIVILEGES[direction].queue)
          give(a, role, QUEUE_PRIVILEGES[direction].archive)
          give(seq, role, QUEUE_PRIVILEGES[direction].sequence)
        }
      }
    }
  }
  for (const queue of db.spec.queues.flatMap((name) => [name, deadLetterQueueName(name)])) for (const role of readers) give(table(queueTable(queue, 'a')), role, QUEUE_PRIVILEGES['archive-read'].archive)
  const pgmq = byKey.get(targetKey('schema', 'pgmq'))
  for (const role of [...users, ...readers]) give(pgmq, role, ['USAGE'])
  const pgmqRoutines = (inSchema.get('pgmq') ?? []).filter((x) => x.kind === 'routine')
  for (const role of users) {
    give(table('meta'), role, ['SELECT'])
    for (const t of pgmqRoutines) give(t, role, ['EXECUTE'])
  }
  return want
}

function tolerated(target: Target, role: string, privilege: string): boolean {
  if (role !== 'PUBLIC') return false
  if (target.kind === 'routine' && (target.schema === 'public' || target.schema === 'pgmq') && privilege === 'EXECUTE') return true
  return target.kind === 'schema' && target.schema === 'public' && privilege === 'USAGE'
}

interface Change {
  direction: 'grant' | 'revoke'
  target: Target
  role: string
  privileges: string[]
}

/** Grants and revokes of one database's objects; grouped so that one statement covers the objects of one kind, schema, role and privilege set. */
export function diffGrants(estate: Estate, db: ConcreteDatabase, observed: DatabaseObservation, admin: string): Action[] {
  const estateRoles = new Set(estate.roles.map((r) => r.name))
  const judged = (role: string) => role === 'PUBLIC' || estateRoles.has(role)
  const all = targets(db, observed)
  const want = desiredPrivileges(db, observed, all)
  const changes: Change[] = []
  for (const target of all) {
    const desired = want.get(targetKey(target.kind, target.display)) ?? new Map<string, Set<string>>()
    const roles = new Set([...desired.keys(), ...target.acl.map((a) => a.grantee).filter(judged)])
    for (const role of roles) {
      if (role === target.owner) continue
      const have = new Set(target.acl.filter((a) => a.grantee === role).map((a) => a.privilege))
      const wanted = desired.get(role) ?? new Set<string>()
      const missing = [...wanted].filter((p) => !have.has(p))
      const extra = [...have].filter((p) => !wanted.has(p) && !tolerated(target, role, p))
      if (missing.length > 0) changes.push({direction: 'grant', target, role, privileges: missing})
      if (extra.length > 0) changes.push({direction: 'revoke', target, role, privileges: extra})
    }
  }
  return [...groupChanges(db, changes), ...diffDefaultPrivileges(db, observed, admin, judged)]
}

function groupChanges(db: ConcreteDatabase, changes: Change[]): Action[] {
  const groups = new Map<string, Change[]>()
  for (const c of changes) {
    const key = [c.direction, c.target.kind, c.target.schema, c.role, privilegeList(c.privileges)].join('|')
    const group = groups.get(key)
    if (group) group.push(c)
    else groups.set(key, [c])
  }
  const actions: Action[] = []
  for (const group of groups.values()) {
    const {direction, target, role} = group[0]
    const list = privilegeList(group[0].privileges)
    const objects = group.map((c) => c.target)
    const what = objects.length === 1 ? `${target.kind} ${target.display}` : `${objects.length} ${target.kind === 'routine' ? 'routines' : `${target.kind}s`} in ${target.schema}`
    const names = objects.map((o) => o.sql).join(', ')
    const statement =
      direction === 'grant' ? `GRANT ${list} ON ${KEYWORD[target.kind]} ${names} TO ${grantee(role)}` : `REVOKE ${list} ON ${KEYWORD[target.kind]} ${names} FROM ${grantee(role)}`
    actions.push(
      sqlAction(
        {
          area: 'grants',
          database: db.name,
          description: direction === 'grant' ? `grant ${list} on ${what} to ${role}` : `revoke ${list} on ${what} from ${role}`,
          destructive: direction === 'revoke',
          privilege: 'owner',
          reason: direction === 'grant' ? 'missing' : 'extra',
          subject: objects.length === 1 ? target.display : `${target.schema}.*`,
        },
        'database',
        [statement],
      ),
    )
  }
  return actions
}

/** Default privileges: the admin's, in each schema with a schema-wide grant; any other for our roles is drift. */
function diffDefaultPrivileges(db: ConcreteDatabase, observed: DatabaseObservation, admin: string, judged: (role: string) => boolean): Action[] {
  const want = new Map<string, Set<string>>()
  const key = (owner: string, schema: string, objtype: string, role: string) => [owner, schema, objtype, role].join('|')
  const give = (k: string, privileges: string[]) => want.set(k, new Set([...(want.get(k) ?? []), ...privileges]))
  for (const g of db.grants) {
    give(key(admin, g.schema, 'r', g.role), TABLE_PRIVILEGES[g.access])
    give(key(admin, g.schema, 'S', g.role), SEQUENCE_PRIVILEGES[g.access])
    if (g.access === 'readwrite') give(key(admin, g.schema, 'f', g.role), ['EXECUTE'])
  }
  const have = new Map<string, Set<string>>()
  for (const entry of observed.defaultAcls) {
    if (!DEFAULT_KEYWORD[entry.objtype]) continue
    for (const a of entry.acl) {
      if (!judged(a.grantee) || a.grantee === entry.role) continue
      const k = key(entry.role, entry.schema, entry.objtype, a.grantee)
      have.set(k, new Set([...(have.get(k) ?? []), a.privilege]))
    }
  }
  const actions: Action[] = []
  for (const k of new Set([...want.keys(), ...have.keys()])) {
    const [owner, schema, objtype, role] = k.split('|')
    const wanted = want.get(k) ?? new Set<string>()
    const held = have.get(k) ?? new Set<string>()
    const missing = [...wanted].filter((p) => !held.has(p))
    const extra = [...held].filter((p) => !wanted.has(p))
    const objects = DEFAULT_KEYWORD[objtype as ObservedDefaultAcl['objtype']]!
    const head = `ALTER DEFAULT PRIVILEGES FOR ROLE ${quoteIdent(owner)} IN SCHEMA ${quoteIdent(schema)}`
    if (missing.length > 0) {
      const list = privilegeList(missing)
      actions.push(
        sqlAction(
          {area: 'grants', database: db.name, description: `default privileges: ${list} on ${objects.toLowerCase()} ${owner} creates in ${schema}, to ${role}`, destructive: false, privilege: 'owner', reason: 'missing', subject: `${schema} defaults`},
          'database',
          [`${head} GRANT ${list} ON ${objects} TO ${grantee(role)}`],
        ),
      )
    }
    if (extra.length > 0) {
      const list = privilegeList(extra)
      actions.push(
        sqlAction(
          {area: 'grants', database: db.name, description: `default privileges: revoke ${list} on ${objects.toLowerCase()} ${owner} creates in ${schema}, from ${role}`, destructive: true, privilege: 'owner', reason: 'extra', subject: `${schema} defaults`},
          'database',
          [`${head} REVOKE ${list} ON ${objects} FROM ${grantee(role)}`],
        ),
      )
    }
  }
  return actions
}
