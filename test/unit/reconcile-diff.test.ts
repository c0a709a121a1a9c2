import {describe, expect, it} from 'vitest'

import {componentFiles} from '../../src/lib/migrate/files.js'
import type {PlannedCronJob} from '../../src/lib/cron/names.js'
import {plannedCronJobs} from '../../src/lib/cron/names.js'
import type {ServerFacts} from '../../src/lib/provision/server.js'
import {publicAction, type Action} from '../../src/lib/reconcile/action.js'
import {diffCdc} from '../../src/lib/reconcile/cdc.js'
import {diffCron} from '../../src/lib/reconcile/cron.js'
import {diffDatabases} from '../../src/lib/reconcile/databases.js'
import {diffExtensions} from '../../src/lib/reconcile/extensions.js'
import {diffGrants} from '../../src/lib/reconcile/grants.js'
import {emptyDatabase, type AclEntry, type DatabaseObservation, type ObservedRelation, type ObservedRole} from '../../src/lib/reconcile/observe.js'
import {diffQueues, queueTable} from '../../src/lib/reconcile/queues.js'
import {diffRoles, verifierMatches} from '../../src/lib/reconcile/roles.js'
import {diffServer} from '../../src/lib/reconcile/server.js'
import {diffSql} from '../../src/lib/reconcile/sql.js'
import {scramVerifier} from '../../src/lib/provision/passwords.js'
import {buildSchedules} from '../../src/schedules.js'
import {estate, queueAccessMatrix, SHARED_QUEUE_QUEUES, type ConcreteDatabase} from '../../src/topology.js'

const P = 'u_'
const E = estate({prefix: P})
const db = (kind: string): ConcreteDatabase => E.databases.find((d) => d.kind === kind)!
const ADMIN = 'postgres'

const facts = (over: Partial<ServerFacts> = {}): ServerFacts => ({
  version: '15.8', versionNum: 150_008, superuser: true, createrole: true, createdb: true, replication: true, trusted: new Set(['pgcrypto']), user: ADMIN, walLevel: 'logical', maxReplicationSlots: 10, preload: ['pg_cron'], cronDatabase: 'postgres',
  available: new Map([['pg_cron', '1.6'], ['pgcrypto', '1.3'], ['pg_prewarm', '1.2']]), outputPluginLibraries: null, maxSlotWalKeepSize: '4GB', ...over,
})
const server = (over: Partial<ServerFacts> = {}) => ({facts: facts(over), roles: [], databases: [], slots: [], cron: null})
const sqlOf = (actions: Action[]) => actions.flatMap((a) => a.sql)
const acl = (...entries: [string, string][]): AclEntry[] => entries.map(([grantee, privilege]) => ({grantee, privilege}))

describe('server settings', () => {
  it('a server as the estate needs it has no action', () => {
    expect(diffServer(server())).toEqual([])
  })

  it('wal_level, preload and a missing package are manual steps naming the fix and the privilege', () => {
    const actions = diffServer(server({walLevel: 'replica', preload: [], available: new Map()}))
    expect(actions.map((a) => [a.privilege, a.step.kind])).toEqual([['superuser', 'manual'], ['provider', 'manual'], ['superuser', 'manual']])
    expect(sqlOf(actions)).toContain("ALTER SYSTEM SET wal_level = 'logical'")
    expect(sqlOf(actions)).toContain("ALTER SYSTEM SET shared_preload_libraries = 'pg_cron'")
  })

  it('a build that restricts output plugins gets wal2json added and a reload (applicable)', () => {
    const [a] = diffServer(server({outputPluginLibraries: ['pgoutput']}))
    expect(a.step).toMatchObject({kind: 'sql', on: 'admin'})
    expect(a.sql).toEqual(["ALTER SYSTEM SET output_plugin_libraries = 'pgoutput, wal2json'", 'SELECT pg_reload_conf()'])
  })
})

describe('roles', () => {
  const plans = E.roles.map((r) => ({key: r.key, name: r.name, exists: true, passwordSource: 'unchanged' as const}))
  const role = (name: string, over: Partial<ObservedRole> = {}): ObservedRole => ({
    name, login: true, superuser: false, createrole: false, createdb: false, replication: name.endsWith('_cdc'), bypassrls: false, verifier: null, ...over,
  })

  it('existing roles with the right attributes: nothing', () => {
    expect(diffRoles(E, E.roles.map((r) => role(r.name)), plans, {})).toEqual([])
  })

  it('a missing role is created with its password as a verifier, shown as ***; only the CDC role gets REPLICATION', () => {
    const missing = plans.map((p) => ({...p, exists: false, passwordSource: 'generated' as const}))
    const passwords = Object.fromEntries(E.roles.map((r) => [r.name, `secret-${r.key}`]))
    const actions = diffRoles(E, [], missing, passwords)
    expect(actions).toHaveLength(E.roles.length)
    for (const a of actions) {
      expect(a.sql[0]).toContain("PASSWORD '***'")
      expect(JSON.stringify(publicAction(a))).not.toContain('secret-')
      expect(a.step.kind === 'sql' && a.step.statements[0]).toContain('SCRAM-SHA-256$')
    }
    expect(actions.find((a) => a.subject === `${P}centralcloud_cdc`)!.sql[0]).toMatch(/ REPLICATION /)
    expect(actions.find((a) => a.subject === `${P}genesis`)!.sql[0]).toMatch(/ NOREPLICATION /)
  })

  it('a role that became superuser is security drift: altered back, destructive', () => {
    const observed = E.roles.map((r) => role(r.name, r.key === 'genesis' ? {superuser: true, createrole: true} : {}))
    const [a] = diffRoles(E, observed, plans, {})
    expect(a).toMatchObject({reason: 'drifted', destructive: true, differences: ['superuser', 'createrole'], privilege: 'superuser'})
    expect(a.sql[0]).toBe(`ALTER ROLE "${P}genesis" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS`)
  })

  it('a password from the environment is set only when the stored verifier is another password', () => {
    const envPlans = plans.map((p) => (p.key === 'nexus' ? {...p, passwordSource: 'env' as const} : p))
    const same = E.roles.map((r) => role(r.name, r.key === 'nexus' ? {verifier: scramVerifier('pw-nexus')} : {}))
    expect(diffRoles(E, same, envPlans, {[`${P}nexus`]: 'pw-nexus'})).toEqual([])
    const [a] = diffRoles(E, same, envPlans, {[`${P}nexus`]: 'another'})
    expect(a).toMatchObject({reason: 'changed', differences: ['password']})
    expect(a.sql).toEqual([`ALTER ROLE "${P}nexus" PASSWORD '***'`])
    expect(verifierMatches(scramVerifier('x1234'), 'x1234')).toBe(true)
    expect(verifierMatches('md5abc', 'x1234')).toBe(false)
  })
})

describe('databases and CONNECT/TEMP', () => {
  const isolated = (d: ConcreteDatabase) => ({name: d.name, owner: d.owner, acl: acl([d.owner, 'CREATE'], [d.owner, 'TEMPORARY'], [d.owner, 'CONNECT'], ...d.connect.map((r): [string, string] => [r, 'CONNECT']))})

  it('an isolated estate has nothing to do', () => {
    expect(diffDatabases(E, E.databases.map(isolated))).toEqual([])
  })

  it('a missing database is created, PUBLIC revoked and the declared roles granted CONNECT', () => {
    const actions = diffDatabases(E, E.databases.filter((d) => d.kind !== 'shared_queue').map(isolated))
    expect(sqlOf(actions)).toEqual([
      `CREATE DATABASE "${P}shared_queue" OWNER "${P}centralcloud"`,
      `GRANT CONNECT ON DATABASE "${P}shared_queue" TO "${P}singularity", "${P}genesis", "${P}nexus", "${P}centralcloud_analytics"`,
      `REVOKE CONNECT, TEMPORARY ON DATABASE "${P}shared_queue" FROM PUBLIC`,
    ])
  })

  it('GRANT CONNECT TO PUBLIC, or CONNECT for a service role of another database, is a destructive revoke; other roles are not judged', () => {
    const observed = E.databases.map(isolated)
    observed.find((d) => d.name === `${P}genesis`)!.acl.push(...acl(['PUBLIC', 'CONNECT'], [`${P}nexus`, 'CONNECT'], ['monitoring', 'CONNECT']))
    const actions = diffDatabases(E, observed)
    expect(actions.map((a) => [a.reason, a.destructive, a.sql[0]])).toEqual([
      ['extra', true, `REVOKE CONNECT ON DATABASE "${P}genesis" FROM PUBLIC`],
      ['extra', true, `REVOKE CONNECT ON DATABASE "${P}genesis" FROM "${P}nexus"`],
    ])
  })

  it('a database the admin owns (an interrupted create) is given to its owner', () => {
    const observed = E.databases.map(isolated).map((d) => (d.name === `${P}nexus` ? {...d, owner: ADMIN} : d))
    const actions = diffDatabases(E, observed)
    expect(actions[0]).toMatchObject({reason: 'changed', differences: ['owner'], sql: [`ALTER DATABASE "${P}nexus" OWNER TO "${P}nexus"`]})
  })
})

describe('extensions, SQL files and queues', () => {
  const observed = (over: Partial<DatabaseObservation>): DatabaseObservation => ({...emptyDatabase('x'), exists: true, ...over})

  it('declared and available optional extensions are created; pgmq only for the extension engine', () => {
    const sq = diffExtensions(db('singularity'), observed({extensions: new Map([['pgcrypto', '1.3']])}), facts(), 'bundled')
    expect(sqlOf(sq)).toEqual(['CREATE EXTENSION IF NOT EXISTS "pg_prewarm"'])
    expect(sqlOf(diffExtensions(db('shared_queue'), observed({}), facts(), 'extension'))).toEqual(['CREATE EXTENSION IF NOT EXISTS "pgmq"'])
  })

  it('pending files are applied, a changed procedure re-applied, a changed migration refused naming the file', () => {
    const files = componentFiles('genesis')
    const migration = files.find((f) => f.kind === 'migration')!
    expect(diffSql(db('genesis'), observed({}), null, new Set()).map((a) => [a.reason, a.subject])).toEqual(files.map((f) => ['missing', `sql/${f.name}`]))
    const applied = new Map(files.map((f) => [f.name, f.sha256]))
    expect(diffSql(db('genesis'), observed({ledger: applied}), null, new Set())).toEqual([])
    const [refused] = diffSql(db('genesis'), observed({ledger: new Map([...applied, [migration.name, 'edited']])}), null, new Set())
    expect(refused).toMatchObject({reason: 'drifted', refused: true, subject: `sql/${migration.name}`})
    const procedure = componentFiles('singularity').find((f) => f.kind === 'procedure')!
    const all = new Map(componentFiles('singularity').map((f) => [f.name, f.sha256]))
    const [reapply] = diffSql(db('singularity'), observed({ledger: new Map([...all, [procedure.name, 'edited']])}), null, new Set(['pgcrypto']))
      .filter((a) => a.subject === `sql/${procedure.name}`)
    expect(reapply).toMatchObject({reason: 'changed'})
    expect(reapply.refused).toBeFalsy()
    expect(reapply.step.kind).toBe('sql-file')
  })

  it('a dropped queue is created again; undeclared queues are never dropped', () => {
    const queues = SHARED_QUEUE_QUEUES.filter((q) => q !== 'job_results')
    expect(sqlOf(diffQueues(db('shared_queue'), observed({queues: [...queues, 'someone_elses']})))).toEqual(["SELECT pgmq.create('job_results')"])
  })
})

describe('grants (per queue, schema-wide, default privileges)', () => {
  const rel = (schema: string, name: string, kind: 'table' | 'sequence', entries: AclEntry[] = [], ownedBy: string | null = null): ObservedRelation => ({schema, name, kind, owner: ADMIN, acl: entries, ownedBy})

  /** shared_queue exactly as db init leaves it: computed by applying the diff's grants to bare tables. */
  function provisionedSharedQueue(): DatabaseObservation {
    const bare: DatabaseObservation = {
      ...emptyDatabase(`${P}shared_queue`),
      exists: true,
      queues: [...SHARED_QUEUE_QUEUES],
      schemas: [{name: 'public', owner: 'pg_database_owner', acl: acl(['PUBLIC', 'USAGE'])}, {name: 'pgmq', owner: ADMIN, acl: []}],
      relations: [
        rel('pgmq', 'meta', 'table'),
        ...SHARED_QUEUE_QUEUES.flatMap((q) => [
          rel('pgmq', queueTable(q, 'q'), 'table'),
          rel('pgmq', queueTable(q, 'a'), 'table'),
          rel('pgmq', `${queueTable(q, 'q')}_msg_id_seq`, 'sequence', [], queueTable(q, 'q')),
        ]),
      ],
    }
    const granted = structuredClone(bare)
    for (const a of diffGrants(E, db('shared_queue'), bare, ADMIN)) {
      const m = /^GRANT (.+) ON (TABLE|SEQUENCE|SCHEMA) (.+) TO (.+)$/.exec(a.sql[0])!
      const role = JSON.parse(m[4])
      const names = m[3].split(', ').map((n) => n.split('.').map((p) => JSON.parse(p)).pop())
      for (const privilege of m[1].split(', ')) {
        for (const name of names) {
          const target = m[2] === 'SCHEMA' ? granted.schemas.find((s) => s.name === name)! : granted.relations.find((r) => r.name === name)!
          target.acl.push({grantee: role, privilege})
        }
      }
    }
    return granted
  }

  it("shared_queue: each direction of seed 003/004 becomes its table privileges, and applying them leaves nothing to do", () => {
    const observed = provisionedSharedQueue()
    expect(diffGrants(E, db('shared_queue'), observed, ADMIN)).toEqual([])
    const privileges = (table: string, role: string) =>
      observed.relations.find((r) => r.name === table)!.acl.filter((a) => a.grantee === `${P}${role}`).map((a) => a.privilege).sort()
    expect(privileges('q_llm_requests', 'singularity')).toEqual(['INSERT', 'SELECT'])
    expect(privileges('q_llm_requests', 'nexus')).toEqual(['DELETE', 'SELECT', 'UPDATE'])
    expect(privileges('a_llm_requests', 'nexus')).toEqual(['INSERT', 'SELECT'])
    expect(privileges('q_job_requests', 'genesis')).toEqual(['DELETE', 'SELECT', 'UPDATE'])
    expect(privileges('q_job_requests', 'nexus')).toEqual([])
    expect(privileges('q_llm_requests', 'centralcloud')).toEqual(['SELECT'])
    expect(privileges('q_template_updates', 'centralcloud')).toEqual(['INSERT', 'SELECT'])
    expect(privileges('q_llm_requests', 'centralcloud_analytics')).toEqual([])
    expect(privileges('a_llm_requests', 'centralcloud_analytics')).toEqual(['SELECT'])
    expect(privileges('q_llm_requests_msg_id_seq', 'singularity')).toEqual(['USAGE'])
  })

  it('a revoked queue grant is granted back; a write grant to centralcloud and extra privileges are destructive revokes', () => {
    const observed = provisionedSharedQueue()
    const q = (name: string) => observed.relations.find((r) => r.name === name)!
    q('q_llm_requests').acl = q('q_llm_requests').acl.filter((a) => !(a.grantee === `${P}nexus` && a.privilege === 'UPDATE'))
    q('q_llm_requests').acl.push({grantee: `${P}centralcloud`, privilege: 'INSERT'}, {grantee: 'PUBLIC', privilege: 'SELECT'}, {grantee: 'reporting', privilege: 'SELECT'})
    const actions = diffGrants(E, db('shared_queue'), observed, ADMIN)
    expect(actions.map((a) => [a.reason, a.destructive, a.sql[0]])).toEqual([
      ['missing', false, `GRANT UPDATE ON TABLE "pgmq"."q_llm_requests" TO "${P}nexus"`],
      ['extra', true, `REVOKE INSERT ON TABLE "pgmq"."q_llm_requests" FROM "${P}centralcloud"`],
      ['extra', true, 'REVOKE SELECT ON TABLE "pgmq"."q_llm_requests" FROM PUBLIC'],
    ])
  })

  it('a database not created yet: the plan shows its schema, queue and default-privilege grants', () => {
    const actions = diffGrants(E, db('singularity'), emptyDatabase(`${P}singularity`), ADMIN)
    const statements = sqlOf(actions)
    expect(statements).toContain(`GRANT USAGE ON SCHEMA "public" TO "${P}singularity"`)
    expect(statements).toContain(`ALTER DEFAULT PRIVILEGES FOR ROLE "postgres" IN SCHEMA "public" GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "${P}singularity"`)
    expect(statements.some((s) => s.includes('"pgmq"."q_agent-sessions"') && s.includes(`${P}centralcloud_consumer`))).toBe(true)
    expect(statements.some((s) => s.includes('"pgmq"."q_agent-knowledge-updates"') && s.includes(`${P}centralcloud_consumer`))).toBe(false)
  })

  it('singularity tables: the owner service gets read/write; the genesis role on them is a revoke; tables the service owns are its own', () => {
    const observed: DatabaseObservation = {
      ...emptyDatabase(`${P}singularity`),
      exists: true,
      schemas: [{name: 'public', owner: 'pg_database_owner', acl: acl(['PUBLIC', 'USAGE'], [`${P}singularity`, 'USAGE'])}],
      relations: [
        rel('public', 'agents', 'table', acl(...['SELECT', 'INSERT', 'UPDATE', 'DELETE'].map((p): [string, string] => [`${P}singularity`, p]), [`${P}genesis`, 'SELECT'])),
        {...rel('public', 'oban_jobs', 'table', acl([`${P}singularity`, 'TRUNCATE'])), owner: `${P}singularity`},
      ],
      defaultAcls: [
        {role: ADMIN, schema: 'public', objtype: 'r', acl: acl(...['SELECT', 'INSERT', 'UPDATE', 'DELETE'].map((p): [string, string] => [`${P}singularity`, p]))},
        {role: ADMIN, schema: 'public', objtype: 'S', acl: acl(...['USAGE', 'SELECT', 'UPDATE'].map((p): [string, string] => [`${P}singularity`, p]))},
        {role: ADMIN, schema: 'public', objtype: 'f', acl: acl([`${P}singularity`, 'EXECUTE'], [`${P}nexus`, 'EXECUTE'])},
      ],
    }
    const actions = diffGrants(E, {...db('singularity'), queueAccess: [], spec: {...db('singularity').spec, queues: []}}, observed, ADMIN)
    expect(actions.map((a) => a.sql[0])).toEqual([
      `REVOKE SELECT ON TABLE "public"."agents" FROM "${P}genesis"`,
      `ALTER DEFAULT PRIVILEGES FOR ROLE "postgres" IN SCHEMA "public" REVOKE EXECUTE ON ROUTINES FROM "${P}nexus"`,
    ])
  })

  it('the access matrix is exported as data: who publishes and consumes each queue', () => {
    const m = queueAccessMatrix()
    const who = (queue: string, direction: string) => m.filter((r) => r.queue === queue && r.direction === direction).map((r) => r.role).sort()
    expect(who('job_requests', 'consume')).toEqual(['genesis'])
    expect(who('llm_results', 'publish')).toEqual(['nexus'])
    expect(who('instance_heartbeat', 'publish')).toEqual(['singularity'])
    expect(who('pattern_messages', 'publish')).toEqual(['centralcloud', 'singularity'])
    expect(who('centralcloud-new-patterns', 'consume')).toEqual(['centralcloud_consumer', 'singularity'])
    expect(m.filter((r) => r.role === 'centralcloud_analytics').every((r) => r.direction === 'archive-read')).toBe(true)
  })
})

describe('change capture', () => {
  const sing = db('singularity')
  const identity = (relreplident: string, hasPk = true, candidateIndex: string | null = null) => ({schema: 'public', table: 'learned_patterns', relreplident, hasPk, identityIndex: null, candidateIndex})
  const obs = (identities: ReturnType<typeof identity>[]): DatabaseObservation => ({...emptyDatabase(sing.name), exists: true, identities})

  it('a dropped slot is created again; a slot of our name with another plugin is reported, never dropped', () => {
    // CentralCloud's slot and seed 002's CDC bridge slot
    expect(diffCdc(sing, obs([]), []).actions.map((a) => [a.reason, a.privilege, a.step.kind, a.subject])).toEqual([
      ['missing', 'replication', 'cdc-slot', sing.cdcSlot],
      ['missing', 'replication', 'cdc-slot', sing.cdcBridgeSlot],
    ])
    const bridge = {name: sing.cdcBridgeSlot!, plugin: 'wal2json', database: sing.name}
    const other = diffCdc(sing, obs([]), [{name: sing.cdcSlot!, plugin: 'pgoutput', database: sing.name}, bridge])
    expect(other.actions).toEqual([])
    expect(other.warnings[0]).toContain('pgoutput')
  })

  it('replica identity NOTHING on a captured table is set back; FULL is the operator’s choice', () => {
    const slot = [{name: sing.cdcSlot!, plugin: 'wal2json', database: sing.name}, {name: sing.cdcBridgeSlot!, plugin: 'wal2json', database: sing.name}]
    expect(sqlOf(diffCdc(sing, obs([identity('n')]), slot).actions)).toEqual(['ALTER TABLE "public"."learned_patterns" REPLICA IDENTITY DEFAULT'])
    expect(sqlOf(diffCdc(sing, obs([identity('n', false, 'lp_key')]), slot).actions)).toEqual(['ALTER TABLE "public"."learned_patterns" REPLICA IDENTITY USING INDEX "lp_key"'])
    expect(diffCdc(sing, obs([identity('f')]), slot).actions).toEqual([])
    expect(diffCdc(sing, obs([identity('d', false)]), slot).warnings[0]).toContain('no primary key')
  })
})

describe('pg_cron jobs', () => {
  const planned: PlannedCronJob[] = plannedCronJobs(E, buildSchedules(), 'postgres')
  const installedAs = (user: string) =>
    planned.map((p, i) => ({jobid: i + 1, jobname: p.jobname, schedule: p.schedule, command: p.command, database: p.database, username: user, active: true}))

  it('installed as declared: nothing; a paused job is no drift', () => {
    const installed = installedAs(ADMIN)
    installed[0].active = false
    expect(diffCron({database: 'postgres', installed: true}, planned, installed, ADMIN)).toEqual([])
  })

  it("a job's schedule, command, database or user changed is altered in place; one unscheduled is scheduled again", () => {
    const installed = installedAs(ADMIN)
    installed[0] = {...installed[0], schedule: '1 1 * * *'}
    installed[1] = {...installed[1], command: 'SELECT 1', database: 'elsewhere'}
    installed[2] = {...installed[2], username: 'mallory'}
    const dropped = installed.splice(3, 1)[0]
    const actions = diffCron({database: 'postgres', installed: true}, planned, installed, ADMIN)
    expect(actions.map((a) => [a.subject, a.reason, a.differences ?? []])).toEqual([
      [planned[0].jobname, 'drifted', ['schedule']],
      [planned[1].jobname, 'drifted', ['command', 'database']],
      [planned[2].jobname, 'drifted', ['user']],
      [dropped.jobname, 'missing', []],
    ])
    expect(actions[0].sql[0]).toMatch(/^SELECT cron\.alter_job\(1, /)
  })

  it('ours no longer declared is unscheduled (destructive); pg_cron missing is created first', () => {
    const installed = [...installedAs(ADMIN), {jobid: 99, jobname: `singularity:${P}retired-job`, schedule: '* * * * *', command: 'SELECT 1', database: 'postgres', username: ADMIN, active: true}]
    const actions = diffCron({database: 'postgres', installed: false}, planned, installed, ADMIN)
    expect(actions.map((a) => [a.reason, a.destructive, a.sql[0]])).toEqual([
      ['missing', false, 'CREATE EXTENSION IF NOT EXISTS pg_cron'],
      ['extra', true, 'SELECT cron.unschedule(99::bigint)'],
    ])
  })
})
