import {quoteIdent} from '../sql/quote.js'
import type {ServerFacts} from '../provision/server.js'
import {OPTIONAL_EXTENSIONS, type ConcreteDatabase, type QueueEngine} from '../../topology.js'
import {sqlAction, type Action} from './action.js'
import {creatableBy} from './managed.js'
import type {DatabaseObservation} from './observe.js'

/** The extensions a database should have: declared ones, optional ones the server offers, pgmq for the extension engine. */
export function wantedExtensions(db: ConcreteDatabase, facts: Pick<ServerFacts, 'available' | 'superuser' | 'trusted'>, engine: QueueEngine | null): string[] {
  const optional = OPTIONAL_EXTENSIONS.filter((e) => e.databases.includes(db.kind) && creatableBy(facts, e.name)).map((e) => e.name)
  return [...db.spec.extensions, ...optional, ...(engine === 'extension' ? ['pgmq'] : [])]
}

/** Extensions: the wanted ones that are not created yet. Extensions nobody declared are left alone. */
export function diffExtensions(db: ConcreteDatabase, observed: DatabaseObservation, facts: Pick<ServerFacts, 'available' | 'superuser' | 'trusted'>, engine: QueueEngine | null): Action[] {
  return wantedExtensions(db, facts, engine)
    .filter((name) => !observed.extensions.has(name))
    .map((name) =>
      sqlAction(
        {area: 'extensions', database: db.name, description: `create extension ${name} in ${db.name}`, destructive: false, privilege: 'superuser', reason: 'missing', subject: name},
        'database',
        extensionSql(name),
      ),
    )
}

/** CREATE EXTENSION, into the extension's own schema where the topology names one (pg_partman: partman). */
function extensionSql(name: string): string[] {
  const schema = OPTIONAL_EXTENSIONS.find((o) => o.name === name)?.schema
  if (!schema) return [`CREATE EXTENSION IF NOT EXISTS ${quoteIdent(name)}`]
  return [`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`, `CREATE EXTENSION IF NOT EXISTS ${quoteIdent(name)} SCHEMA ${quoteIdent(schema)}`]
}
