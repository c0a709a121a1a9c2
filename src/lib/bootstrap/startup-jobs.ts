import {createHash} from 'node:crypto'

import type pg from 'pg'

import type {ObanTable} from '../cron/oban.js'
import type {JobSpec} from '../../schedules.js'

/**
 * Seed 001 "Startup Flow": SetupBootstrap schedules four Oban jobs, priorities 100..70 (higher
 * first): knowledge migration, templates data load, code ingest, RAG setup. Oban's own priority
 * runs 0 (highest) .. 9, so the order becomes priorities 0..3; the seed's number is kept in meta.
 */
export const STARTUP_JOBS: readonly {name: string; seedPriority: number; worker: string}[] = [
  {name: 'knowledge-migration', seedPriority: 100, worker: 'Singularity.Jobs.KnowledgeMigrateWorker'},
  {name: 'templates-data-load', seedPriority: 95, worker: 'Singularity.Jobs.TemplatesDataLoadWorker'},
  {name: 'code-ingest-startup', seedPriority: 85, worker: 'Singularity.Jobs.CodeIngestWorker'},
  {name: 'rag-setup', seedPriority: 70, worker: 'Singularity.Jobs.RagSetupWorker'},
]

export const ENQUEUED_BY = 'singularity bootstrap'

export interface StartupJob {
  order: number
  name: string
  worker: string
  queue: string
  /** Oban priority, 0 = first */
  priority: number
  seedPriority: number
}

/** The startup jobs in order, worker names as the declared schedules give them (seed 001's otherwise). */
export function startupJobs(schedules: JobSpec[]): StartupJob[] {
  return [...STARTUP_JOBS]
    .sort((a, b) => b.seedPriority - a.seedPriority)
    .map((job, i) => {
      const declared = schedules.find((s) => s.name === job.name && s.runner === 'oban')
      return {order: i + 1, name: job.name, worker: declared?.command ?? job.worker, queue: 'default', priority: Math.min(i, 9), seedPriority: job.seedPriority}
    })
}

export function startupJobsHash(jobs: StartupJob[], table: ObanTable): string {
  return createHash('sha256').update(JSON.stringify({table: table.qualified, jobs})).digest('hex')
}

export interface EnqueueOutcome {
  order: number
  name: string
  worker: string
  priority: number
  state: 'enqueued' | 'already-enqueued' | 'pending'
  jobId?: number
  /** for already-enqueued: the existing job and who enqueued it */
  existing?: {id: number; state: string; enqueuedBy: string | null}
}

/**
 * Inserts the startup jobs that are not there yet, in order, as Oban.insert would (state
 * available, UTC timestamps). A worker counts as enqueued when oban_jobs holds a job of it that
 * this command enqueued (any state), or one still waiting to run (enqueued by the application).
 * Runs inside the caller's transaction, after an exclusive lock on the step.
 */
export async function enqueueStartupJobs(client: pg.Client, table: ObanTable, jobs: StartupJob[]): Promise<EnqueueOutcome[]> {
  const has = (c: string) => table.columns.has(c)
  const outcomes: EnqueueOutcome[] = []
  for (const job of jobs) {
    const metaFilter = has('meta') ? `(meta ->> 'enqueued_by' = $2) OR ` : ''
    const metaCol = has('meta') ? `meta ->> 'enqueued_by'` : 'NULL::text'
    const existing = await client.query<{id: string; state: string; enqueued_by: string | null}>(
      `SELECT id, state::text AS state, ${metaCol} AS enqueued_by FROM ${table.qualified}
        WHERE worker = $1 AND (${metaFilter}state::text IN ('available', 'scheduled', 'executing', 'retryable'))
        ORDER BY id LIMIT 1`,
      has('meta') ? [job.worker, ENQUEUED_BY] : [job.worker],
    )
    if (existing.rows.length > 0) {
      const e = existing.rows[0]
      outcomes.push({order: job.order, name: job.name, worker: job.worker, priority: job.priority, state: 'already-enqueued', existing: {id: Number(e.id), state: e.state, enqueuedBy: e.enqueued_by}})
      continue
    }
    const now = table.naiveTimestamps ? "timezone('UTC', now())" : 'now()'
    const columns = ['state', 'queue', 'worker', 'args', 'attempt', 'max_attempts', 'inserted_at', 'scheduled_at']
    const values = ["'available'", '$1', '$2', "'{}'::jsonb", '0', '20', now, now]
    const params: unknown[] = [job.queue, job.worker]
    if (has('priority')) {
      columns.push('priority')
      params.push(job.priority)
      values.push(`$${params.length}`)
    }
    if (has('errors')) {
      columns.push('errors')
      values.push('ARRAY[]::jsonb[]')
    }
    if (has('tags')) {
      columns.push('tags')
      values.push("ARRAY['startup']::text[]")
    }
    if (has('meta')) {
      columns.push('meta')
      params.push(JSON.stringify({enqueued_by: ENQUEUED_BY, startup_job: job.name, startup_order: job.order, seed_priority: job.seedPriority}))
      values.push(`$${params.length}::jsonb`)
    }
    const {rows} = await client.query<{id: string}>(`INSERT INTO ${table.qualified} (${columns.join(', ')}) VALUES (${values.join(', ')}) RETURNING id`, params)
    outcomes.push({order: job.order, name: job.name, worker: job.worker, priority: job.priority, state: 'enqueued', jobId: Number(rows[0].id)})
  }
  return outcomes
}
