import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {beforeAll, describe, expect, it, inject} from 'vitest'

import {estate} from '../../src/topology.js'
import {runCli} from '../helpers/cli.js'
import {provisionedEstate, urlFor, withClient} from '../helpers/db.js'

// The helper every file uses instead of its own full `db init`: its copy must be an estate in its own
// right, with the prefix's roles and none of the template's.
const P = 't_tplchk_'
const own = estate({prefix: P})
const template = estate({prefix: inject('estateTemplate')})

describe('an estate copied from the template (test/helpers/estate-template.ts)', () => {
  beforeAll(async () => {
    await provisionedEstate(P, join(mkdtempSync(join(tmpdir(), 'sing-tplchk-')), 'pw.json'))
  })

  it('is up to date and healthy by db status (migrations ledger, queues, grants, slot)', async () => {
    const status = await runCli(['db', 'status', '--prefix', P, '--json'], {timeoutMs: 120_000})
    expect(status.exitCode, status.stdout + status.stderr).toBe(0)
  })

  it('nothing in it belongs to, or is granted to, a template role; its own roles own and use it', async () => {
    const templateRoles = template.roles.map((r) => r.name)
    for (const db of own.databases) {
      await withClient(urlFor(db.name), async (c) => {
        const owned = await c.query(
          `SELECT count(*)::int AS n FROM pg_shdepend d JOIN pg_roles r ON r.oid = d.refobjid
            WHERE d.dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND r.rolname = ANY($1)`,
          [templateRoles],
        )
        expect({db: db.name, n: owned.rows[0].n}).toEqual({db: db.name, n: 0})
        const owner = await c.query('SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = current_database()')
        expect(owner.rows[0].owner).toBe(db.owner)
      })
    }
    await withClient(urlFor('postgres'), async (c) => {
      for (const db of own.databases) {
        for (const role of own.roles) {
          const {rows} = await c.query('SELECT has_database_privilege($1, $2, $3) AS ok', [role.name, db.name, 'CONNECT'])
          expect({role: role.name, db: db.name, ok: rows[0].ok}).toEqual({role: role.name, db: db.name, ok: db.connect.includes(role.name) || db.owner === role.name})
        }
      }
    })
  })
})
