import {ensureLedger, applySqlFile} from '../migrate/runner.js'
import type {Estate} from '../../topology.js'
import {isApplicable, type Action} from './action.js'
import type {Connections} from './plan.js'

/** What applying actions left behind: the ones that ran, and warnings (a slot that could not be created yet, a manual step). */
export interface ApplyOutcome {
  applied: Action[]
  warnings: string[]
}

/**
 * Runs actions in the order given, each as its step says: plain SQL on the admin, database or cron
 * connection; an SQL file through the migration runner (one transaction with its ledger row); the
 * CDC slot through ensureCdcSlot (which waits for running transactions and reports environment
 * problems as warnings). Manual steps are not run: they come back as warnings.
 */
export async function applyActions(
  conns: Connections,
  estate: Estate,
  cronDatabase: string,
  actions: Action[],
  options: {progress?: (message: string) => void; batch?: number} = {},
): Promise<ApplyOutcome> {
  const outcome: ApplyOutcome = {applied: [], warnings: []}
  const ledgers = new Set<string>()
  if (options.batch && options.batch > 1) return applySqlBatched(conns, cronDatabase, actions, options.batch, options.progress)
  for (const action of actions) {
    if (!isApplicable(action)) {
      outcome.warnings.push(`not applied (${action.step.kind === 'manual' ? 'a manual step' : 'refused'}): ${action.description}`)
      continue
    }
    options.progress?.(action.database ? `${action.database}: ${action.description}` : action.description)
    const step = action.step
    if (step.kind === 'sql') {
      const client = step.on === 'admin' ? conns.admin : await conns.database(step.on === 'cron' ? cronDatabase : action.database!)
      for (const statement of step.statements) await client.query(statement)
    } else if (step.kind === 'sql-file') {
      const client = await conns.database(action.database!)
      if (!ledgers.has(action.database!)) {
        await ensureLedger(client)
        ledgers.add(action.database!)
      }
      if ((await applySqlFile(client, step.file)) === 'unchanged') continue
    } else if (step.kind === 'cdc-slot') {
      const db = estate.databases.find((d) => d.name === action.database)!
      const {ensureCdcSlot} = await import('../cdc/ensure.js')
      // the slot of the step: CentralCloud's, or seed 002's CDC bridge slot with its own tables
      const target = step.slot === db.cdcBridgeSlot && db.spec.cdcBridge ? {...db, cdcSlot: db.cdcBridgeSlot, spec: {...db.spec, cdc: db.spec.cdcBridge}} : db
      const result = await ensureCdcSlot(await conns.database(db.name), target)
      outcome.warnings.push(...result.warnings)
      if (!result.created) continue
      // one line for the operator: who must read the new slot, and what happens if nobody does
      if (result.consumerNote) {
        outcome.applied.push({...action, description: `${action.description}: ${result.consumerNote}`})
        continue
      }
    }
    outcome.applied.push(action)
  }
  return outcome
}

/**
 * Plain SQL actions sent several statements per round trip (one simple query each batch), for
 * long lists of small statements such as an estate's pg_cron jobs. Run inside a transaction by
 * the caller: a failing batch fails the whole list, as one statement at a time would.
 */
async function applySqlBatched(conns: Connections, cronDatabase: string, actions: Action[], batch: number, progress?: (message: string) => void): Promise<ApplyOutcome> {
  const outcome: ApplyOutcome = {applied: [], warnings: []}
  let pending: {client: Awaited<ReturnType<Connections['database']>>; statements: string[]; actions: Action[]} | null = null
  const flush = async () => {
    if (!pending || pending.statements.length === 0) return
    await pending.client.query(pending.statements.map((s) => s.replace(/;\s*$/, '')).join(';\n'))
    outcome.applied.push(...pending.actions)
    pending = null
  }
  for (const action of actions) {
    if (!isApplicable(action)) {
      outcome.warnings.push(`not applied (${action.step.kind === 'manual' ? 'a manual step' : 'refused'}): ${action.description}`)
      continue
    }
    if (action.step.kind !== 'sql') throw new Error(`batched apply takes plain SQL steps only, not ${action.step.kind} (${action.description})`)
    progress?.(action.database ? `${action.database}: ${action.description}` : action.description)
    const client = action.step.on === 'admin' ? conns.admin : await conns.database(action.step.on === 'cron' ? cronDatabase : action.database!)
    if (pending && (pending.client !== client || pending.statements.length >= batch)) await flush()
    pending ??= {client, statements: [], actions: []}
    pending.statements.push(...action.step.statements)
    pending.actions.push(action)
  }
  await flush()
  return outcome
}
