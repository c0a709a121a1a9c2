/**
 * `jobs history` and `jobs run` over an estate spread on several servers. Each server's pg_cron
 * runs (and records in its cron.job_run_details) the jobs of the databases placed there, and its
 * own cron-database jobs. History reads every server at once (bounded, a deadline each) and merges
 * the runs newest first, each naming its server; a server that does not answer is reported and the
 * others are still shown. A run goes to the server its database is placed on (placementOf).
 */
import {CliError, NotFoundError, UsageError} from '../cli/errors.js'
import type {ResolvedConfig} from '../config/resolve.js'
import {discoverEstateUnlessDown, selectDatabases, serverNames} from '../estate/targets.js'
import {DEFAULT_DATABASE_TIMEOUT_MS} from '../estate/visit.js'
import type {JobSpec} from '../../schedules.js'
import type {Estate, Runner} from '../../topology.js'
import {openJobsContext, type JobsContext} from './context.js'
import {jobHistory, type HistoryResult, type HistoryRun} from './history.js'
import {cronJobName, plannedCronJobs, resolveJobAlias} from './names.js'
import {resolveJob, type ResolvedJob} from './resolve.js'
import {runResolved, type RunOutcome, type RunTarget} from './run.js'
import type {ObanInsert} from './oban.js'
import {visitJobsContexts} from './servers.js'

/** A server as a command over several servers saw it. */
export interface ServerReach {
  name: string
  reachable: boolean
  /** why it could not be read (unreachable, or pg_cron missing there) */
  error?: string
  timed_out?: boolean
}

/** --db over several servers: the estate's databases named, and the other names (a server's cron database). */
export interface DbSelection {
  databases: string[]
  /** names that are no database of the estate: each must be some server's cron database */
  cronNames: string[]
  /** as typed, for messages */
  typed: string[]
}

/** Splits --db into the estate's databases (by name or kind, exit 2 when unknown) and cron-database names. */
export function selectAcrossServers(estate: Estate, wanted: string[] | undefined): DbSelection | undefined {
  if (!wanted || wanted.length === 0) return undefined
  const cronNames = wanted.filter((w) => !estate.databases.some((d) => d.name === w || d.kind === w))
  const named = wanted.filter((w) => !cronNames.includes(w))
  return {databases: named.length > 0 ? selectDatabases(estate.databases, named).map((d) => d.name) : [], cronNames, typed: wanted}
}

/** The servers a selection needs: the servers of its databases, every server when a cron database is named (or no --db). */
function serversFor(config: ResolvedConfig, estate: Estate, selection: DbSelection | undefined): string[] {
  const all = serverNames(config)
  if (!selection || selection.cronNames.length > 0) return all
  const placed = new Set(estate.databases.filter((d) => selection.databases.includes(d.name)).map((d) => d.server ?? 'main'))
  return all.filter((s) => placed.has(s))
}

/** A cron-database name of --db that no reachable server has: the same exit 2 as an unknown database. */
function checkCronNames(estate: Estate, selection: DbSelection | undefined, cronDatabases: (string | undefined)[]): void {
  for (const name of selection?.cronNames ?? []) if (!cronDatabases.includes(name)) selectDatabases(estate.databases, [name])
}

/** What a name means on one server, narrowed to the selection; notFound when the server has no such job. */
async function resolveHere(ctx: JobsContext, name: string, selection: DbSelection | undefined): Promise<{jobs: ResolvedJob[]; notFound?: NotFoundError}> {
  let resolved: ResolvedJob[]
  try {
    resolved = await resolveJob(ctx, name)
  } catch (error) {
    if (error instanceof NotFoundError) return {jobs: [], notFound: error}
    throw error
  }
  if (!selection) return {jobs: resolved}
  const here = new Set([...selection.databases, ...selection.cronNames.filter((n) => n === ctx.cronInfo?.database)])
  return {jobs: resolved.filter((j) => j.runner === 'system-cron' || here.has(j.runner === 'oban' ? j.database.name : j.database))}
}

/**
 * No server has the job: a bad --db (exit 2) when the name is a job of the estate (declared, or
 * found on a server read), else no such job (exit 4). The estate's planned jobs are known without
 * reading the servers --db left out.
 */
function nothingResolved(name: string, estate: Estate, schedules: JobSpec[], selection: DbSelection | undefined, outcomes: {notFound?: NotFoundError}[]): CliError {
  const declared =
    schedules.some((s) => s.name === name || (s.runner === 'oban' && s.command === name)) ||
    plannedCronJobs(estate, schedules, 'postgres').some((p) => p.jobname === name || cronJobName(estate.prefix, p.spec.name) === name)
  const known = declared || outcomes.some((o) => !o.notFound)
  if (known && selection) return new UsageError(`job ${name} does not run in ${selection.typed.join(', ')}`, {hint: 'drop --db, or see `singularity jobs list` for where it runs'})
  return outcomes.find((o) => o.notFound)?.notFound ?? new NotFoundError(`no job named ${name}`, {hint: 'see `singularity jobs list`', code: 'JOB_NOT_FOUND'})
}

export type HistoryAcrossServers = HistoryResult & {runs: (HistoryRun & {server: string})[]; servers: ServerReach[]; alias?: string; name: string}

/** The newest first, start unknown last, then the higher run id (as one server's query orders them). */
function newestFirst(a: HistoryRun, b: HistoryRun): number {
  return (b.start ?? '').localeCompare(a.start ?? '') || b.runid - a.runid
}

/** The runs of a job on every server its databases are on, merged newest first, each naming its server. */
export async function jobHistoryAcrossServers(
  config: ResolvedConfig,
  schedules: JobSpec[],
  typed: string,
  options: {limit: number; since?: Date; databases?: string[]},
): Promise<HistoryAcrossServers> {
  const estate = await discoverEstateUnlessDown(config, 'singularity jobs')
  const selection = selectAcrossServers(estate, options.databases)
  const servers = serversFor(config, estate, selection)
  const visits = await visitJobsContexts(
    config,
    schedules,
    estate,
    servers,
    async (ctx) => {
      const {name, alias} = resolveJobAlias(typed, ctx.schedules, estate.prefix)
      const cronDatabase = ctx.cronInfo?.database
      // bad input (a host crontab entry) is the command's error; a server's own problem (no pg_cron) is reported with it
      const here = await resolveHere(ctx, name, selection)
      if (here.jobs.length === 0) return {name, alias, cronDatabase, notFound: here.notFound, result: null}
      try {
        return {name, alias, cronDatabase, result: await jobHistory(ctx, here.jobs, {limit: options.limit, since: options.since})}
      } catch (error) {
        if (error instanceof CliError && !(error instanceof UsageError)) return {name, alias, cronDatabase, problem: error.message.split('\n')[0], result: null}
        throw error
      }
    },
    // a server's deadline leaves room for the per-database deadlines inside it (Oban history)
    {concurrency: config.read.concurrency, timeoutMs: 2 * (config.read.timeoutMs ?? DEFAULT_DATABASE_TIMEOUT_MS)},
  )
  // bad input is the same on every server: exit 2 as with one server
  for (const v of visits) if (!v.ok && v.error instanceof UsageError) throw v.error
  const answered = visits.flatMap((v) => (v.ok ? [v.value] : []))
  checkCronNames(estate, selection, answered.map((a) => a.cronDatabase))
  const reach: ServerReach[] = visits.map((v, i) =>
    v.ok
      ? {name: servers[i], reachable: true, ...(v.value.problem ? {error: v.value.problem} : {})}
      : {name: servers[i], reachable: false, error: v.error.message.split('\n')[0], timed_out: v.timedOut},
  )
  const name = answered[0]?.name ?? typed
  const alias = answered.find((a) => a.alias)?.alias
  const results = visits.map((v, i) => ({server: servers[i], result: v.ok ? v.value.result : null})).filter((r): r is {server: string; result: HistoryResult} => r.result !== null)
  if (results.length === 0 && !answered.some((a) => a.problem) && reach.every((s) => s.reachable)) throw nothingResolved(name, estate, schedules, selection, answered)
  const runs = results.flatMap((r) => r.result.runs.map((run) => ({...run, server: r.server}))).sort(newestFirst).slice(0, options.limit)
  const notes = results.filter((r) => r.result.note).map((r) => `server ${r.server}: ${r.result.note}`)
  const runner: Runner = results[0]?.result.runner ?? schedules.find((s) => s.name === name || s.command === name)?.runner ?? 'pg_cron'
  return {
    name,
    ...(alias ? {alias} : {}),
    runner,
    jobs: [...new Set(results.flatMap((r) => r.result.jobs))],
    runs,
    ...(notes.length > 0 ? {note: notes.join('; ')} : {}),
    servers: reach,
  }
}

/**
 * `jobs run` over several servers: the job resolved on each server that has a database it may run
 * in, and run there (the server its database is placed on). A server needed that does not answer
 * stops the command before anything runs (exit 1, naming it).
 */
export async function runJobAcrossServers(
  config: ResolvedConfig,
  schedules: JobSpec[],
  typed: string,
  options: {databases?: string[]; argsGiven: boolean; insert: Omit<ObanInsert, 'worker'>; dryRun?: boolean},
): Promise<{name: string; alias?: string; runs: RunOutcome[]}> {
  const estate = await discoverEstateUnlessDown(config, 'singularity jobs')
  const selection = selectAcrossServers(estate, options.databases)
  const servers = serversFor(config, estate, selection)
  const contexts: {server: string; ctx: JobsContext}[] = []
  try {
    for (const server of servers) {
      try {
        contexts.push({server, ctx: await openJobsContext(config, schedules, {statementTimeoutMs: 0, server, estate})})
      } catch (error) {
        if (error instanceof UsageError) throw error
        const message = error instanceof Error ? error.message.split('\n')[0] : String(error)
        throw new CliError(`server ${server} is unreachable: ${message}`, {
          code: 'SERVER_UNREACHABLE',
          hint: `nothing was run; --db with a database on another server runs the job there (see \`singularity jobs list\` for which server runs what), or retry when ${server} is back`,
        })
      }
    }
    checkCronNames(estate, selection, contexts.map((c) => c.ctx.cronInfo?.database))
    const targets: RunTarget[] = []
    const outcomes: {notFound?: NotFoundError}[] = []
    let resolvedName = typed
    let alias: string | undefined
    for (const {server, ctx} of contexts) {
      const named = resolveJobAlias(typed, ctx.schedules, estate.prefix)
      resolvedName = named.name
      alias ??= named.alias
      const here = await resolveHere(ctx, named.name, selection)
      outcomes.push(here)
      for (const job of here.jobs) targets.push({ctx, job, server})
    }
    if (targets.length === 0) throw nothingResolved(resolvedName, estate, schedules, selection, outcomes)
    // a host crontab entry is the same on every server: once
    const jobs = targets[0].job.runner === 'system-cron' ? targets.slice(0, 1) : targets
    const runs = await runResolved(resolvedName, jobs, {argsGiven: options.argsGiven, insert: options.insert, dryRun: options.dryRun})
    return {name: resolvedName, ...(alias ? {alias} : {}), runs}
  } finally {
    await Promise.all(contexts.map((c) => c.ctx.close()))
  }
}
