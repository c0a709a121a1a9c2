import type pg from 'pg'

import {listCopies, type CopyInfo} from '../backup/copies.js'
import {REPLICA_IDENTITY_COLUMNS} from '../cdc/ensure.js'
import {readCronJobs, type InstalledCronJob} from '../cron/install.js'
import {isEstateJob} from '../cron/names.js'
import {serverFacts, type ServerFacts} from '../provision/server.js'
import {CRON_IN_OTHER_DATABASES_SQL} from './managed.js'
import {JOB_PREFIX, MANAGED_SCHEMAS, type ConcreteDatabase, type Estate, type QueueEngine} from '../../topology.js'

/**
 * Observation: the catalogs read into plain data, nothing decided. Every diff reads only this, so
 * `db plan`, `db status`, `jobs list` and `doctor` see the same facts and cannot disagree.
 */

/** One privilege of an ACL; grantee 'PUBLIC' for the pseudo-role. */
export interface AclEntry {
  grantee: string
  privilege: string
}

export interface ObservedRole {
  name: string
  login: boolean
  superuser: boolean
  createrole: boolean
  createdb: boolean
  replication: boolean
  bypassrls: boolean
  /** the stored SCRAM verifier; null when unreadable (not a superuser) or none */
  verifier: string | null
}

export interface ObservedDatabase {
  name: string
  owner: string
  /** the effective ACL (PostgreSQL's default when none was set: PUBLIC has CONNECT and TEMPORARY) */
  acl: AclEntry[]
}

export interface ObservedSlot {
  name: string
  plugin: string | null
  database: string | null
}

export interface CronObservation {
  /** the cron database (cron.database_name) */
  database: string
  /** pg_cron created there */
  installed: boolean
  /** its version (extversion, e.g. '1.4-1'): from 1.5 on, jobs may run every few seconds */
  version: string | null
  /** the estate's jobs (our prefix, our databases), any user */
  jobs: InstalledCronJob[]
  /** the admin may call cron.schedule_in_database and cron.alter_job (pg_cron keeps them for superusers unless granted) */
  scheduleInOtherDatabases: boolean
}

export interface ServerObservation {
  facts: ServerFacts
  roles: ObservedRole[]
  databases: ObservedDatabase[]
  slots: ObservedSlot[]
  /** null when pg_cron is not loaded or its database does not exist */
  cron: CronObservation | null
  /** databases the tool restored from backups of the estate's databases (backup restore --as, restore tests) */
  copies?: CopyInfo[]
}

export interface ObservedRelation {
  schema: string
  name: string
  kind: 'table' | 'sequence'
  owner: string
  acl: AclEntry[]
  /** for a sequence owned by a column (identity, serial): the table */
  ownedBy: string | null
}

export interface ObservedRoutine {
  schema: string
  name: string
  /** identity arguments, e.g. "queue_name text, msg jsonb" */
  args: string
  owner: string
  acl: AclEntry[]
}

export interface ObservedSchema {
  name: string
  owner: string
  acl: AclEntry[]
}

/** pg_default_acl: privileges objects created later by `role` in `schema` get. */
export interface ObservedDefaultAcl {
  role: string
  schema: string
  /** r tables, S sequences, f functions */
  objtype: 'r' | 'S' | 'f' | 'T' | 'n'
  acl: AclEntry[]
}

export interface ObservedIdentity {
  schema: string
  table: string
  relreplident: string
  hasPk: boolean
  identityIndex: string | null
  candidateIndex: string | null
}

export interface DatabaseObservation {
  name: string
  /** false: the database does not exist (everything in it is still to be done) */
  exists: boolean
  /** it exists but could not be read (connection refused, …): nothing in it is diffed */
  unreachable?: string
  /** it was unreachable because it did not answer within the reading command's deadline */
  timedOut?: boolean
  extensions: Map<string, string>
  /** applied SQL files: ledger key → sha256 */
  ledger: Map<string, string>
  queueEngine: QueueEngine | null
  queues: string[]
  schemas: ObservedSchema[]
  relations: ObservedRelation[]
  routines: ObservedRoutine[]
  defaultAcls: ObservedDefaultAcl[]
  /** the captured tables of the CDC spec (singularity databases) */
  identities: ObservedIdentity[]
  /** what public.singularity_feature_implementations() says (where it exists): which implementation each optional feature runs on */
  features: {feature: string; implementation: string}[]
}

export function emptyDatabase(name: string): DatabaseObservation {
  return {
    name, exists: false, extensions: new Map(), ledger: new Map(), queueEngine: null, queues: [], schemas: [], relations: [], routines: [], defaultAcls: [], identities: [], features: [],
  }
}

export interface EstateObservation {
  server: ServerObservation
  databases: Map<string, DatabaseObservation>
}

const ACL = (column: string, kind: string, owner: string) =>
  `(SELECT coalesce(json_agg(json_build_object('grantee', CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END, 'privilege', a.privilege_type)), '[]')
      FROM aclexplode(coalesce(${column}, acldefault(${kind}, ${owner}))) a)`

/** A subquery's rows as one JSON array (several catalog reads in one statement). */
const rows = (sql: string) => `(SELECT coalesce(json_agg(x), '[]') FROM (${sql}) x)`

/** Server-wide facts: settings, the estate's roles, databases and slots, and the estate's pg_cron jobs. */
export async function observeServer(admin: pg.Client, estate: Estate, openCron: (database: string) => Promise<pg.Client | null>): Promise<ServerObservation> {
  const facts = await serverFacts(admin)
  const roleNames = estate.roles.map((r) => r.name)
  const passwordColumn = facts.superuser ? '(SELECT rolpassword FROM pg_authid a WHERE a.oid = r.oid)' : 'NULL::text'
  const {rows: [r]} = await admin.query<{
    roles: {rolname: string; rolcanlogin: boolean; rolsuper: boolean; rolcreaterole: boolean; rolcreatedb: boolean; rolreplication: boolean; rolbypassrls: boolean; verifier: string | null}[]
    databases: {datname: string; owner: string; acl: AclEntry[]}[]
    slots: {slot_name: string; plugin: string | null; database: string | null}[]
  }>(
    `SELECT ${rows(`SELECT rolname, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, ${passwordColumn} AS verifier
                      FROM pg_roles r WHERE rolname = ANY($1)`)} AS roles,
            ${rows(`SELECT datname, pg_get_userbyid(datdba) AS owner, ${ACL('datacl', `'d'`, 'datdba')} AS acl FROM pg_database WHERE datname = ANY($2)`)} AS databases,
            ${rows('SELECT slot_name, plugin, database FROM pg_replication_slots WHERE slot_name = ANY($3)')} AS slots`,
    [roleNames, estate.databases.map((d) => d.name), estate.databases.flatMap((d) => [d.cdcSlot, d.cdcBridgeSlot].filter((s): s is string => s !== undefined))],
  )
  const roles = {rows: r.roles}
  const databases = {rows: r.databases}
  const slots = {rows: r.slots}
  let cron: CronObservation | null = null
  if (facts.preload.includes('pg_cron')) {
    const client = await openCron(facts.cronDatabase)
    if (client) {
      const {rows} = await client.query<{version: string | null; other: boolean}>(
        `SELECT (SELECT extversion FROM pg_extension WHERE extname = 'pg_cron') AS version, ${CRON_IN_OTHER_DATABASES_SQL} AS other`,
      )
      const installed = rows[0].version !== null
      const jobs = installed ? (await readCronJobs(client, `${JOB_PREFIX}${estate.prefix}`)).filter((j) => isEstateJob(j, estate, facts.cronDatabase)) : []
      cron = {database: facts.cronDatabase, installed, version: rows[0].version, jobs, scheduleInOtherDatabases: rows[0].other}
    }
  }
  const estateNames = new Set(estate.databases.map((d) => d.name))
  const copies = (await listCopies(admin)).filter((c) => estateNames.has(c.source))
  return {
    facts,
    copies,
    roles: roles.rows.map((r) => ({
      name: r.rolname, login: r.rolcanlogin, superuser: r.rolsuper, createrole: r.rolcreaterole, createdb: r.rolcreatedb, replication: r.rolreplication, bypassrls: r.rolbypassrls, verifier: r.verifier,
    })),
    databases: databases.rows.map((d) => ({name: d.datname, owner: d.owner, acl: d.acl})),
    slots: slots.rows.map((s) => ({name: s.slot_name, plugin: s.plugin, database: s.database})),
    cron,
  }
}

/**
 * Everything the in-database areas need, read on an admin connection to the database in two round
 * trips (catalogs, then the ledger, queues and features where they exist): a fresh backend is slow
 * on its first statements, so fewer statements make `db plan` fast.
 */
export async function observeDatabase(client: pg.Client, db: ConcreteDatabase): Promise<DatabaseObservation> {
  const {rows: [m]} = await client.query<{
    extensions: Record<string, string>; ledger: boolean; queue_meta: boolean; features: boolean
    namespaces: ObservedSchema[]; relations: {schema: string; name: string; relkind: string; owner: string; acl: AclEntry[]; owned_by: string | null}[]
    routines: ObservedRoutine[]; defaults: ObservedDefaultAcl[]; identities: ObservedIdentityRow[]
  }>(
    `SELECT (SELECT coalesce(json_object_agg(extname, extversion), '{}') FROM pg_extension) AS extensions,
            to_regclass('singularity_meta.applied_sql') IS NOT NULL AS ledger,
            to_regclass('pgmq.meta') IS NOT NULL AS queue_meta,
            to_regproc('public.singularity_feature_implementations') IS NOT NULL AS features,
            ${rows(`SELECT nspname AS name, pg_get_userbyid(nspowner) AS owner, ${ACL('nspacl', `'n'`, 'nspowner')} AS acl FROM pg_namespace WHERE nspname = ANY($1)`)} AS namespaces,
            ${rows(`SELECT n.nspname AS schema, c.relname AS name, c.relkind, pg_get_userbyid(c.relowner) AS owner,
                    ${ACL('c.relacl', `CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char"`, 'c.relowner')} AS acl,
                    CASE WHEN c.relkind = 'S' THEN (SELECT t.relname FROM pg_depend d JOIN pg_class t ON t.oid = d.refobjid
                                                     WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass
                                                       AND d.deptype IN ('a', 'i') LIMIT 1) END AS owned_by
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')`)} AS relations,
            ${rows(`SELECT n.nspname AS schema, p.proname AS name, pg_get_function_identity_arguments(p.oid) AS args, pg_get_userbyid(p.proowner) AS owner,
                    ${ACL('p.proacl', `'f'`, 'p.proowner')} AS acl
               FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname = ANY($1)`)} AS routines,
            ${rows(`SELECT pg_get_userbyid(d.defaclrole) AS role, n.nspname AS schema, d.defaclobjtype AS objtype,
                    (SELECT coalesce(json_agg(json_build_object('grantee', CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END, 'privilege', a.privilege_type)), '[]')
                       FROM aclexplode(d.defaclacl) a) AS acl
               FROM pg_default_acl d JOIN pg_namespace n ON n.oid = d.defaclnamespace
              WHERE n.nspname = ANY($1)`)} AS defaults,
            ${rows(`SELECT ${REPLICA_IDENTITY_COLUMNS}
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('r', 'p') AND c.relname = ANY ($2) AND n.nspname = 'public'`)} AS identities`,
    // the captured tables of the CentralCloud slot and of seed 002's CDC bridge
    [[...MANAGED_SCHEMAS], [...new Set([...(db.spec.cdc?.tables ?? []), ...(db.spec.cdcBridge?.tables ?? [])])]],
  )
  const extensions = new Map(Object.entries(m.extensions))
  // The tables below may not exist yet: only those that do are read (fixed SQL, chosen here).
  const parts = [
    m.ledger ? `${rows('SELECT file, sha256 FROM singularity_meta.applied_sql')} AS ledger` : `'[]'::json AS ledger`,
    m.queue_meta ? `${rows('SELECT queue_name FROM pgmq.meta ORDER BY queue_name')} AS queues` : `'[]'::json AS queues`,
    m.features ? `${rows('SELECT feature, implementation FROM public.singularity_feature_implementations()')} AS features` : `'[]'::json AS features`,
  ]
  const {rows: [more]} = m.ledger || m.queue_meta || m.features
    ? await client.query<{ledger: {file: string; sha256: string}[]; queues: {queue_name: string}[]; features: {feature: string; implementation: string}[]}>(`SELECT ${parts.join(', ')}`)
    : {rows: [{ledger: [], queues: [], features: []}]}
  return {
    name: db.name,
    exists: true,
    extensions,
    ledger: new Map(more.ledger.map((r) => [r.file, r.sha256])),
    queueEngine: extensions.has('pgmq') ? 'extension' : m.queue_meta ? 'bundled' : null,
    queues: more.queues.map((r) => r.queue_name),
    schemas: m.namespaces,
    relations: m.relations.map((r) => ({schema: r.schema, name: r.name, kind: r.relkind === 'S' ? 'sequence' : 'table', owner: r.owner, acl: r.acl, ownedBy: r.owned_by})),
    routines: m.routines,
    defaultAcls: m.defaults,
    identities: m.identities.map((r) => ({
      schema: r.schema, table: r.table, relreplident: r.relreplident, hasPk: r.has_pk, identityIndex: r.identity_index, candidateIndex: r.candidate_index,
    })),
    features: more.features,
  }
}

interface ObservedIdentityRow {
  schema: string
  table: string
  relreplident: string
  has_pk: boolean
  identity_index: string | null
  candidate_index: string | null
}

