import {describe, expect, it} from 'vitest'

import type {InstalledCronJob} from '../../src/lib/cron/install.js'
import {plannedCronJobs} from '../../src/lib/cron/names.js'
import {preflightProblems, type ServerFacts} from '../../src/lib/provision/server.js'
import {diffCron} from '../../src/lib/reconcile/cron.js'
import {diffDatabases} from '../../src/lib/reconcile/databases.js'
import {diffExtensions} from '../../src/lib/reconcile/extensions.js'
import {adaptToAdmin, creatableBy, manageableBy} from '../../src/lib/reconcile/managed.js'
import {emptyDatabase} from '../../src/lib/reconcile/observe.js'
import {diffRoles} from '../../src/lib/reconcile/roles.js'
import {diffServer} from '../../src/lib/reconcile/server.js'
import {buildSchedules} from '../../src/schedules.js'
import {estate} from '../../src/topology.js'

const P = 'u_'
const E = estate({prefix: P})
const MGR = 'mgr'

/** The admin a managed service hands out: CREATEROLE, CREATEDB, REPLICATION, no superuser. */
const managed = (over: Partial<ServerFacts> = {}): ServerFacts => ({
  version: '15.8', versionNum: 150_008, superuser: false, createrole: true, createdb: true, replication: true, user: MGR, walLevel: 'logical', maxReplicationSlots: 10,
  preload: ['pg_cron'], cronDatabase: 'postgres', available: new Map([['pg_cron', '1.4'], ['pgcrypto', '1.3'], ['pg_prewarm', '1.2'], ['pgmq', '1.5.0']]),
  trusted: new Set(['pgcrypto']), outputPluginLibraries: null, maxSlotWalKeepSize: '4GB', ...over,
})
const server = (facts: ServerFacts) => ({facts, roles: [], databases: [], slots: [], cron: null})
const plans = E.roles.map((r) => ({key: r.key, name: r.name, exists: false, passwordSource: 'generated' as const}))
const passwords = Object.fromEntries(E.roles.map((r) => [r.name, 'pw']))

describe('managed servers: the plan adapted to an admin without superuser', () => {
  it("a superuser's plan is unchanged", () => {
    const actions = diffRoles(E, [], plans, passwords)
    expect(adaptToAdmin(actions, managed({superuser: true}), E)).toEqual({actions, provider: [], lacking: []})
  })

  it('server settings are provider steps in provider-neutral words, and never stop the preflight', () => {
    const facts = managed({walLevel: 'replica', preload: []})
    const {actions, provider, lacking} = adaptToAdmin(diffServer(server(facts)), facts, E)
    expect(actions).toEqual([])
    expect(lacking).toEqual([])
    expect(provider.map((p) => [p.privilege, p.description])).toEqual([
      ['provider', 'set the server parameter wal_level = logical (change data capture; applied at the next restart)'],
      ['provider', 'preload pg_cron (shared_preload_libraries) and set cron.database_name = postgres (applied at the next restart)'],
    ])
    expect(preflightProblems(facts)).toEqual([])
    expect(preflightProblems(managed({versionNum: 130_000})).map((p) => p.code)).toEqual(['SERVER_TOO_OLD'])
  })

  it('the CDC role is created without REPLICATION; granting it is a provider step', () => {
    const {actions, provider} = adaptToAdmin(diffRoles(E, [], plans, passwords), managed(), E)
    const cdc = actions.find((a) => a.subject === `${P}centralcloud_cdc`)!
    expect(cdc.privilege).toBe('createrole')
    expect(cdc.sql[0]).toContain('NOREPLICATION')
    expect(actions.every((a) => a.privilege === 'createrole')).toBe(true)
    expect(provider.map((p) => p.sql)).toEqual([[`ALTER ROLE "${P}centralcloud_cdc" REPLICATION`]])
  })

  it('a database is created after the admin joins its owner role (PostgreSQL 15 requires membership)', () => {
    const {actions} = adaptToAdmin(diffDatabases(E, []), managed(), E)
    const create = actions.find((a) => a.description.startsWith(`create database ${P}genesis`))!
    expect(create.privilege).toBe('createdb')
    expect(create.step).toEqual({kind: 'sql', on: 'admin', statements: [`GRANT "${P}genesis" TO "mgr"`, `CREATE DATABASE "${P}genesis" OWNER "${P}genesis"`]})
  })

  it('without CREATEROLE or CREATEDB the steps are lacking (db init refuses), not provider steps', () => {
    const noRole = adaptToAdmin(diffRoles(E, [], plans, passwords), managed({createrole: false}), E)
    expect(noRole.actions).toEqual([])
    expect(new Set(noRole.lacking.map((a) => a.privilege))).toEqual(new Set(['createrole']))
    const noDb = adaptToAdmin(diffDatabases(E, []), managed({createdb: false}), E)
    expect(noDb.lacking.filter((a) => a.description.startsWith('create database')).map((a) => a.privilege)).toEqual(Array(5).fill('createdb'))
  })

  it('a trusted extension is created by the admin; another is "allow the extension", a provider step', () => {
    const db = E.databases.find((d) => d.kind === 'singularity')!
    const facts = managed()
    const {actions, provider} = adaptToAdmin(diffExtensions(db, emptyDatabase(db.name), facts, 'bundled'), facts, E)
    expect(actions.map((a) => [a.subject, a.privilege])).toEqual([['pgcrypto', 'owner']])
    expect(provider.map((p) => p.description)).toEqual([`allow the extension pg_prewarm in database ${P}singularity`])
  })

  it('pgmq counts as creatable only where the admin may create it (else the bundled engine)', () => {
    expect(creatableBy(managed(), 'pgmq')).toBe(false)
    expect(creatableBy(managed({trusted: new Set(['pgmq'])}), 'pgmq')).toBe(true)
    expect(creatableBy(managed({superuser: true}), 'pgmq')).toBe(true)
    expect(creatableBy(managed({superuser: true, available: new Map()}), 'pgmq')).toBe(false)
  })

  it('pg_cron 1.4: the cron database job goes through cron.schedule as the admin; others are provider steps naming the grant', () => {
    const planned = plannedCronJobs(E, buildSchedules(), 'postgres')
    const raw = diffCron({database: 'postgres', installed: false}, planned, [], MGR)
    const {actions, provider} = adaptToAdmin(raw, managed(), E, {database: 'postgres', scheduleInOtherDatabases: false, planned, installed: []})
    expect(actions.map((a) => a.subject)).toEqual([`singularity:${P}cron-history-cleanup`])
    expect(actions[0].sql[0]).toMatch(/^SELECT cron\.schedule\('singularity:u_cron-history-cleanup', '45 0 \* \* \*', /)
    expect(actions[0].description).toContain('run as mgr')
    expect(provider[0].description).toBe('create the extension pg_cron in database postgres (the cron database) and grant USAGE on schema cron to mgr')
    const jobs = provider.slice(1)
    expect(jobs).toHaveLength(planned.length - 1)
    for (const j of jobs) expect(j.description).toMatch(/, run as mgr: grant mgr EXECUTE on cron\.schedule_in_database and cron\.alter_job/)
    // once the provider grants those functions, db init schedules every job itself, as the admin
    const granted = adaptToAdmin(raw, managed(), E, {database: 'postgres', scheduleInOtherDatabases: true, planned, installed: []})
    expect(granted.actions.filter((a) => a.sql[0].includes('schedule_in_database'))).toHaveLength(planned.length)
  })

  it("a drifted job of the admin's is scheduled again (cron.alter_job is for superusers); unschedule is the owner's", () => {
    const planned = plannedCronJobs(E, buildSchedules(), 'postgres')
    const job = planned.find((p) => p.database === 'postgres')!
    const installed: InstalledCronJob[] = [{jobid: 7, jobname: job.jobname, schedule: '1 1 * * *', command: job.command, database: 'postgres', username: MGR, active: true} as InstalledCronJob]
    const raw = diffCron({database: 'postgres', installed: true}, [job], installed, MGR)
    const {actions} = adaptToAdmin(raw, managed(), E, {database: 'postgres', scheduleInOtherDatabases: false, planned: [job], installed})
    expect(actions[0].sql[0]).toBe('SELECT cron.unschedule(7::bigint)')
    expect(actions[0].sql[1]).toMatch(/^SELECT cron\.schedule\(/)
  })

  it("objects of the bootstrap superuser (a trusted extension's functions) are left out of the grants diff", () => {
    const observed = {relations: [{owner: 'postgres'}, {owner: MGR}], routines: [{owner: 'postgres'}, {owner: `${P}singularity`}]}
    expect(manageableBy(observed, managed(), E)).toEqual({relations: [{owner: MGR}], routines: [{owner: `${P}singularity`}]})
    expect(manageableBy(observed, managed({superuser: true}), E)).toBe(observed)
  })
})
