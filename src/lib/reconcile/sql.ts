import {componentFiles} from '../migrate/files.js'
import {stateOf, type FilePlan} from '../migrate/runner.js'
import {BUNDLED_QUEUE_COMPONENT, type ConcreteDatabase, type QueueEngine} from '../../topology.js'
import type {Action} from './action.js'
import type {DatabaseObservation} from './observe.js'

/** The SQL components of a database in the order they apply (the bundled queue engine first where it runs). */
export function componentsOf(db: ConcreteDatabase, engine: QueueEngine | null): string[] {
  return [...(engine === 'bundled' ? [BUNDLED_QUEUE_COMPONENT] : []), ...db.spec.components]
}

/** Every file's state against the ledger, with the extensions the database will have once the plan is applied. */
export function fileStates(db: ConcreteDatabase, observed: DatabaseObservation, engine: QueueEngine | null, extensions: ReadonlySet<string>): FilePlan[] {
  return componentsOf(db, engine).flatMap((c) => componentFiles(c)).map((f) => stateOf(f, observed.ledger, extensions))
}

/**
 * SQL components: a pending migration or procedure is applied; a procedure whose file changed is
 * re-applied (CREATE OR REPLACE); an applied migration whose file changed is refused: db init
 * stops before changing anything and names the file (applied migrations are never edited).
 */
export function diffSql(db: ConcreteDatabase, observed: DatabaseObservation, engine: QueueEngine | null, extensions: ReadonlySet<string>): Action[] {
  const files = new Map(componentsOf(db, engine).flatMap((c) => componentFiles(c)).map((f) => [f.name, f]))
  const actions: Action[] = []
  for (const state of fileStates(db, observed, engine, extensions)) {
    const file = files.get(state.file)!
    const reference = [`-- the contents of sql/${file.name} (sha256 ${file.sha256.slice(0, 12)}), in one transaction with its ledger row`]
    const base = {area: 'sql' as const, database: db.name, server: null, sql: reference, destructive: false, privilege: 'owner' as const, subject: `sql/${file.name}`}
    if (state.state === 'pending') {
      actions.push({...base, description: `apply ${file.kind} sql/${file.name}`, reason: 'missing', step: {kind: 'sql-file', file}})
    } else if (state.state === 'changed') {
      actions.push({...base, description: `re-apply changed procedure file sql/${file.name}`, reason: 'changed', step: {kind: 'sql-file', file}})
    } else if (state.state === 'drifted') {
      actions.push({
        ...base,
        description: `refused: migration sql/${file.name} changed after it was applied (restore it; put the change in a new numbered migration)`,
        sql: [],
        reason: 'drifted',
        refused: true,
        step: {kind: 'manual', code: 'MIGRATION_DRIFT'},
      })
    }
  }
  return actions
}
