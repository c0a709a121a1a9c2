import type pg from 'pg'

import {CliError, UsageError} from '../cli/errors.js'
import type {Runner} from '../../topology.js'
import type {JobsContext} from './context.js'
import {checkObanInsert, findObanTable, insertObanJob, type ObanInsert, type ObanJobRow} from './oban.js'
import type {ResolvedJob} from './resolve.js'

/** `jobs run`: a pg_cron job's command now, in its database as its user; an Oban job enqueued as Oban.insert would. */

export interface RunOutcome {
  runner: Runner
  job: string
  database: string | null
  username?: string
  command: string
  dryRun: boolean
  ok: boolean
  durationMs: number | null
  /** what the command returned: the last statement's tag, row count and (first 50) rows */
  output?: {commandTag: string | null; rowCount: number | null; columns: string[]; rows: Record<string, unknown>[]; notices: string[]}
  /** Oban: the inserted job */
  obanJob?: ObanJobRow
  error?: {message: string; code: string | null}
  note?: string
  /** several servers: the server it ran on (the one its database is placed on) */
  server?: string
}

/** One resolved job and the context (server) it runs in. */
export interface RunTarget {
  ctx: JobsContext
  job: ResolvedJob
  /** several servers: the server of ctx */
  server?: string
}

/**
 * `jobs run` once the name is resolved: refuses what cannot run here (a host crontab entry, --args
 * for pg_cron, an Oban worker of several databases without --db), then runs each pg_cron copy in
 * its database, or enqueues the one Oban job. Outcomes in the order given, naming their server.
 */
export async function runResolved(
  name: string,
  targets: RunTarget[],
  options: {argsGiven: boolean; insert: Omit<ObanInsert, 'worker'>; dryRun?: boolean},
): Promise<RunOutcome[]> {
  const first = targets[0].job
  if (first.runner === 'system-cron') {
    throw new UsageError(`${first.spec.name} runs from the host's crontab, not in PostgreSQL`, {hint: `run it directly: ${first.spec.command}`})
  }
  if (first.runner === 'pg_cron' && options.argsGiven) {
    throw new UsageError('--args is for Oban workers; a pg_cron job runs its own command', {hint: `see \`singularity jobs list\` for ${name}'s command`})
  }
  const on = (t: RunTarget, outcome: RunOutcome): RunOutcome => (t.server === undefined ? outcome : {...outcome, server: t.server})
  if (first.runner === 'oban') {
    const obans = targets.filter((t): t is RunTarget & {job: Extract<ResolvedJob, {runner: 'oban'}>} => t.job.runner === 'oban')
    if (obans.length > 1) {
      throw new UsageError(`${name} runs in ${obans.length} databases; choose one`, {hint: `add --db ${obans.map((t) => t.job.database.name).join(' or --db ')}`})
    }
    return [on(obans[0], await runObanJob(obans[0].ctx, obans[0].job, options.insert, {dryRun: options.dryRun}))]
  }
  const runs: RunOutcome[] = []
  for (const t of targets) {
    if (t.job.runner !== 'pg_cron') continue
    runs.push(on(t, await runCronJob(t.ctx, t.job, {dryRun: options.dryRun})))
  }
  return runs
}

/** Runs a pg_cron job's command now, in its database, as its user (SET ROLE when not the admin). */
export async function runCronJob(ctx: JobsContext, job: Extract<ResolvedJob, {runner: 'pg_cron'}>, options: {dryRun?: boolean} = {}): Promise<RunOutcome> {
  const outcome: RunOutcome = {
    runner: 'pg_cron',
    job: job.jobname,
    database: job.database,
    username: job.username,
    command: job.command,
    dryRun: Boolean(options.dryRun),
    ok: true,
    durationMs: null,
    note: job.installed ? undefined : 'not installed in pg_cron: ran the declared command as the admin',
  }
  const client = await ctx.open(job.database)
  if (!client) {
    throw new CliError(`database ${job.database} does not exist`, {hint: 'run `singularity db init`', code: 'DATABASE_MISSING'})
  }
  if (options.dryRun) return outcome
  const notices: string[] = []
  const onNotice = (n: {message?: string}) => {
    if (n.message) notices.push(n.message)
  }
  client.on('notice', onNotice)
  const role = job.username !== ctx.adminUser
  try {
    await client.query('SET statement_timeout = 0')
    if (role) {
      const {rows} = await client.query<{sql: string}>('SELECT format($$SET ROLE %I$$, $1::text) AS sql', [job.username])
      await client.query(rows[0].sql)
    }
    const started = performance.now()
    try {
      const raw = (await client.query(job.command)) as unknown as pg.QueryResult | pg.QueryResult[]
      outcome.durationMs = Math.round((performance.now() - started) * 10) / 10
      const results = Array.isArray(raw) ? raw : [raw]
      const last = [...results].reverse().find((r) => r.fields && r.fields.length > 0) ?? results[results.length - 1]
      outcome.output = {
        commandTag: last?.command ? `${last.command}${last.rowCount === null || last.rowCount === undefined ? '' : ` ${last.rowCount}`}` : null,
        rowCount: last?.rowCount ?? null,
        columns: last?.fields?.map((f) => f.name) ?? [],
        rows: (last?.rows ?? []).slice(0, 50),
        notices,
      }
    } catch (error) {
      outcome.durationMs = Math.round((performance.now() - started) * 10) / 10
      const e = error as Error & {code?: string}
      outcome.ok = false
      outcome.error = {message: e.message.split('\n')[0], code: e.code ?? null}
      outcome.output = {commandTag: null, rowCount: null, columns: [], rows: [], notices}
    }
  } finally {
    client.off('notice', onNotice)
    if (role) await client.query('RESET ROLE').catch(() => {})
  }
  return outcome
}

/** Inserts an available Oban job for a worker, as Oban.insert would. */
export async function runObanJob(
  ctx: JobsContext,
  job: Extract<ResolvedJob, {runner: 'oban'}>,
  insert: Omit<ObanInsert, 'worker'>,
  options: {dryRun?: boolean} = {},
): Promise<RunOutcome> {
  checkObanInsert({...insert, worker: job.worker})
  const outcome: RunOutcome = {
    runner: 'oban',
    job: job.worker,
    database: job.database.name,
    command: `INSERT INTO oban_jobs (state, queue, worker, args, priority, max_attempts) VALUES ('available', ${JSON.stringify(insert.queue)}, ${JSON.stringify(job.worker)}, ${JSON.stringify(insert.args)}, ${insert.priority}, ${insert.maxAttempts})`,
    dryRun: Boolean(options.dryRun),
    ok: true,
    durationMs: null,
  }
  const client = await ctx.open(job.database.name)
  if (!client) throw new CliError(`database ${job.database.name} does not exist`, {hint: 'run `singularity db init`', code: 'DATABASE_MISSING'})
  const table = await findObanTable(client)
  if (!table) {
    throw new CliError(`no oban_jobs table in ${job.database.name}: Oban is not installed there`, {
      hint: "the Elixir application's migrations create oban_jobs; start it once, then retry",
      code: 'OBAN_ABSENT',
    })
  }
  if (options.dryRun) return outcome
  const started = performance.now()
  outcome.obanJob = await insertObanJob(client, table, {...insert, worker: job.worker})
  outcome.durationMs = Math.round((performance.now() - started) * 10) / 10
  return outcome
}
