import type pg from 'pg'

/**
 * singularity_meta.bootstrap_steps (sql/singularity/010_templates.sql): which bootstrap steps are
 * done in a singularity database, and with which inputs. A step's work and its ledger row are
 * written in one transaction, so a run killed mid-step leaves neither and the next run redoes it.
 */

export interface StepRecord {
  step: string
  inputHash: string
  completedAt: Date
  runs: number
  detail: unknown
}

/** The recorded step, read inside the caller's transaction (after its lock). */
export async function readStep(client: pg.Client, step: string): Promise<StepRecord | null> {
  const {rows} = await client.query<{step: string; input_hash: string; completed_at: Date; runs: number; detail: unknown}>(
    'SELECT step, input_hash, completed_at, runs, detail FROM singularity_meta.bootstrap_steps WHERE step = $1',
    [step],
  )
  if (rows.length === 0) return null
  const r = rows[0]
  return {step: r.step, inputHash: r.input_hash, completedAt: r.completed_at, runs: r.runs, detail: r.detail}
}

/** Records (or re-records) a step as done with these inputs. */
export async function recordStep(client: pg.Client, step: string, inputHash: string, detail: unknown): Promise<Date> {
  const {rows} = await client.query<{completed_at: Date}>(
    `INSERT INTO singularity_meta.bootstrap_steps (step, input_hash, detail) VALUES ($1, $2, $3::jsonb)
     ON CONFLICT (step) DO UPDATE SET input_hash = EXCLUDED.input_hash, detail = EXCLUDED.detail,
            completed_at = now(), runs = singularity_meta.bootstrap_steps.runs + 1
     RETURNING completed_at`,
    [step, inputHash, JSON.stringify(detail ?? {})],
  )
  return rows[0].completed_at
}

/** Whether the ledger exists here (db init applied 010_templates.sql). */
export async function hasLedger(client: pg.Client): Promise<boolean> {
  const {rows} = await client.query<{ok: boolean}>(
    "SELECT to_regclass('singularity_meta.bootstrap_steps') IS NOT NULL AND to_regclass('public.knowledge_artifacts') IS NOT NULL AS ok",
  )
  return rows[0].ok
}

/**
 * Runs one step in a transaction: skipped when the ledger holds it with the same inputs; otherwise
 * `work` runs and the step is recorded before COMMIT. Returns what happened.
 */
export async function inStepTransaction<T>(
  client: pg.Client,
  step: string,
  inputHash: string,
  work: () => Promise<{detail: T; changed: boolean}>,
): Promise<{skipped: true; record: StepRecord} | {skipped: false; detail: T; changed: boolean; completedAt: Date; rerun: boolean}> {
  await client.query('BEGIN')
  try {
    const previous = await readStep(client, step)
    if (previous && previous.inputHash === inputHash) {
      await client.query('ROLLBACK')
      return {skipped: true, record: previous}
    }
    const {detail, changed} = await work()
    const completedAt = await recordStep(client, step, inputHash, detail)
    await client.query('COMMIT')
    return {skipped: false, detail, changed, completedAt, rerun: previous !== null}
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {})
    throw error
  }
}
