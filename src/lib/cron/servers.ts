/**
 * `jobs list` over an estate spread on several servers: each server's pg_cron lists the jobs it
 * runs into the databases placed there (its own cron-database jobs too); the Oban rows come from
 * each database on its server; the host's system-cron rows once. Servers are read at once (bounded,
 * a deadline each); one that does not answer is reported, the others are still listed.
 */
import {MAIN_SERVER, type ResolvedConfig} from '../config/resolve.js'
import {discoverEstateUnlessDown, selectDatabases, serverNames} from '../estate/targets.js'
import {visitEach, type Visit, type VisitOptions} from '../estate/visit.js'
import type {JobSpec} from '../../schedules.js'
import type {Estate, Runner} from '../../topology.js'
import {openJobsContext, type JobsContext} from './context.js'
import {jobCounts, listJobs, type JobRow, type JobsListResult, type ListOptions} from './list.js'

export interface ServerJobs {
  name: string
  reachable: boolean
  error?: string
  cronDatabase: string | null
  pgCron: {version: string | null; problem: string | null}
}

export type JobsAcrossServers = JobsListResult & {jobs: (JobRow & {server: string})[]; servers: ServerJobs[]}

/** Runs `use` with a jobs context on each server at once (bounded, a deadline each), closing each context after. */
export function visitJobsContexts<T>(
  config: ResolvedConfig,
  schedules: JobSpec[],
  estate: Estate,
  servers: string[],
  use: (ctx: JobsContext, server: string) => Promise<T>,
  options?: VisitOptions,
): Promise<Visit<T>[]> {
  return visitEach(
    servers,
    (name) => `server ${name}`,
    async (server) => {
      const ctx = await openJobsContext(config, schedules, {statementTimeoutMs: 15_000, server, estate})
      try {
        return await use(ctx, server)
      } finally {
        await ctx.close()
      }
    },
    options,
  )
}

/** Every server's jobs, each row naming its server; `databases` (names or kinds) narrows as --db does. */
export async function listJobsAcrossServers(
  config: ResolvedConfig,
  schedules: JobSpec[],
  options: Omit<ListOptions, 'databases'> & {databases?: string[]} = {},
): Promise<JobsAcrossServers> {
  const estate = await discoverEstateUnlessDown(config, 'singularity jobs')
  const wanted = options.databases && options.databases.length > 0 ? selectDatabases(estate.databases, options.databases).map((d) => d.name) : undefined
  const servers = serverNames(config)
  const visits = await visitJobsContexts(config, schedules, estate, servers, async (ctx, server) => {
    // the host's crontab belongs to the admin server's view only
    const runners = (options.runners && options.runners.length > 0 ? options.runners : (['pg_cron', 'oban', 'system-cron'] as Runner[])).filter((r) => r !== 'system-cron' || server === MAIN_SERVER)
    const here = wanted?.filter((n) => ctx.estate.databases.some((d) => d.name === n) || n === ctx.cronInfo?.database)
    const info = {cronDatabase: ctx.cronInfo?.database ?? null, pgCron: {version: ctx.cron ? ctx.cronInfo?.version ?? null : null, problem: ctx.cronProblem ?? null}}
    // --db names nothing placed here: the server is still reported, with no rows
    const result = runners.length > 0 && !(wanted && here!.length === 0) ? await listJobs(ctx, {...options, runners, databases: here}) : null
    return {server, result, ctx: info}
  })
  const jobs: (JobRow & {server: string})[] = []
  const unreadable: JobsListResult['unreadable'] = []
  const serverInfo: ServerJobs[] = visits.map((v, i) => {
    if (!v.ok) {
      // a server that does not answer: its databases could not be read
      const error = v.error.message.split('\n')[0]
      for (const db of estate.databases.filter((d) => (d.server ?? MAIN_SERVER) === servers[i])) unreadable.push({database: db.name, reason: `server ${servers[i]} unreachable: ${error}`, timed_out: v.timedOut})
      return {name: servers[i], reachable: false, error, cronDatabase: null, pgCron: {version: null, problem: null}}
    }
    for (const row of v.value.result?.jobs ?? []) jobs.push({...row, server: servers[i]})
    unreadable.push(...(v.value.result?.unreadable ?? []))
    return {name: servers[i], reachable: true, ...v.value.ctx}
  })
  const main = serverInfo.find((s) => s.name === MAIN_SERVER && s.reachable) ?? serverInfo.find((s) => s.reachable)
  return {
    prefix: estate.prefix,
    cronDatabase: main?.cronDatabase ?? null,
    pgCron: main?.pgCron ?? {version: null, problem: null},
    jobs,
    counts: jobCounts(jobs),
    servers: serverInfo,
    unreadable,
  }
}
