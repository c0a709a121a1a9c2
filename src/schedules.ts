/**
 * Every scheduled job of the estate, as data (seeds 000, 001, 003, 004): pg_cron jobs installed by
 * `db init` into the database they act on, Oban workers of the Elixir applications (shown and
 * enqueued by `jobs`), and system-cron entries for filesystem work (backups) that cannot run
 * inside PostgreSQL. Cron expressions are UTC: pg_cron 1.4 schedules in GMT.
 *
 * Day-of-month and day-of-week are OR-ed by cron, so "first Sunday of the month" is scheduled
 * every Sunday and the command itself checks the date (maxDayOfMonth says so for `jobs list`).
 */
import {UsageError} from './lib/cli/errors.js'
import {CDC_BRIDGE} from './cdc-bridge.js'
import {QUEUE_POLICIES} from './queue-policies.js'
import {type ScheduleSpec} from './topology.js'

export {JOB_PREFIX, type ScheduleSpec} from './topology.js'

/** A schedule with what `jobs list` needs to know about a date check inside its command. */
export type JobSpec = ScheduleSpec & {
  /** the command acts only on days 1..N of the month (e.g. 7 = first week: first Sunday) */
  maxDayOfMonth?: number
  /** where pg_cron schedules in seconds (1.5+), run every this many seconds instead of `schedule` */
  everySeconds?: number
}

/** seed 003/004: archive retention of shared_queue, SHARED_QUEUE_RETENTION_DAYS (default 90). */
export const DEFAULT_SHARED_QUEUE_RETENTION_DAYS = 90

/** Archive retention of each singularity database's own queues, SINGULARITY_QUEUE_RETENTION_DAYS (default 90, as shared_queue's). */
export const DEFAULT_SINGULARITY_QUEUE_RETENTION_DAYS = 90

/** Seed 002: raw metrics_events are kept 30 days (then dropped once rolled up); the rollups are kept. */
export const METRICS_RAW_RETENTION_DAYS = 30

/** Days kept in cron.job_run_details by the daily cleanup (enough for failure streaks and history). */
export const CRON_HISTORY_RETENTION_DAYS = 14

const S000 = 'seed 000'
const S001 = 'seed 001'

function pgCron(name: string, schedule: string, command: string, description: string, source: string, database: JobSpec['database'] = 'singularity'): JobSpec {
  return {name, runner: 'pg_cron', schedule, database, command, description, source}
}

function oban(name: string, schedule: string, worker: string, description: string, source: string, database: JobSpec['database'] = 'singularity'): JobSpec {
  return {name, runner: 'oban', schedule, database, command: worker, description, source}
}

/** The schedules, with the shared_queue archive retention given in days. */
export function buildSchedules(
  sharedQueueRetentionDays = DEFAULT_SHARED_QUEUE_RETENTION_DAYS,
  singularityQueueRetentionDays = DEFAULT_SINGULARITY_QUEUE_RETENTION_DAYS,
): JobSpec[] {
  return [
    // ── pg_cron in each singularity database: seed 000's table and seed 001's pg_cron list ──
    pgCron('assign-tasks', '*/2 * * * *', 'SELECT * FROM public.assign_pending_tasks()', 'Task assignment: agents with capacity get pending tasks (at most 10 each)', `${S000}, ${S001}`),
    pgCron('learn-patterns', '*/5 * * * *', 'SELECT * FROM public.learn_patterns_from_analysis()', 'Pattern learning: up to 100 unlearned analysis results → learned patterns, queued to centralcloud-new-patterns', `${S000}, ${S001}`),
    pgCron('sync-learning', '*/10 * * * *', 'SELECT * FROM public.sync_learning_to_centralcloud()', 'CentralCloud sync: logs a ULID batch of the patterns waiting in the queue', `${S000}, ${S001}`),
    pgCron('cache-cleanup', '*/15 * * * *', 'SELECT public.cleanup_expired_cache()', 'Cache cleanup: deletes expired cache entries (moved from Oban)', S001),
    pgCron('refresh-metrics', '*/30 * * * *', 'SELECT * FROM public.refresh_metrics()', 'Metrics refresh: REFRESH agent_performance_5min and the 5 min / 1 h / 1 day rollups', `${S000}, ${S001}`),
    pgCron('update-knowledge', '0 * * * *', 'SELECT * FROM public.update_agent_knowledge()', "Knowledge aggregation: each agent's last-24h patterns and confidence, summary to agent-knowledge-updates", `${S000}, ${S001}`),
    pgCron('cache-refresh', '0 * * * *', 'SELECT public.refresh_cache()', 'Cache refresh: extends the hot entries (moved from Oban)', S001),
    pgCron('cleanup-sync-logs', '0 */6 * * *', 'SELECT public.cleanup_sync_log()', 'Cleanup of sync logs older than 30 days', S000),
    pgCron('table-statistics', '0 */6 * * *', 'SELECT public.collect_table_statistics()', 'Table statistics snapshot of the public tables', S001),
    pgCron('cache-prewarm', '0 */6 * * *', 'SELECT * FROM public.prewarm_cache()', 'Cache prewarm: hot tables and indexes into shared buffers (pg_prewarm; moved from Oban)', S001),
    pgCron('archive-tasks', '0 2 * * *', 'SELECT public.archive_completed_tasks()', 'Archive of completed tasks, daily 02:00', S000),
    pgCron('pagerank', '0 3 * * *', 'SELECT * FROM public.compute_pagerank()', 'PageRank recalculation over the dependency graph, daily 03:00', S001),
    pgCron('vacuum-analyze', '0 23 * * *', 'VACUUM (ANALYZE)', 'Vacuum & analyze of the database, daily 23:00', S001),
    pgCron('cleanup-oban-jobs', '0 0 * * 0', 'SELECT public.cleanup_old_oban_jobs()', 'Cleanup of finished Oban jobs older than 7 days, Sundays 00:00', S001),
    pgCron('cleanup-artifacts', '0 1 * * 0', 'SELECT public.cleanup_old_artifacts()', 'Cleanup of old artifacts, Sundays 01:00', S001),
    pgCron('cleanup-code-chunks', '0 2 * * 0', 'SELECT public.cleanup_old_code_chunks()', 'Cleanup of stale code chunks, Sundays 02:00', S001),
    pgCron('reindex-indexes', '0 3 * * 0', 'SELECT * FROM public.reindex_bloated_indexes()', 'Reindex of bloated indexes, Sundays 03:00', S001),
    pgCron('vector-stats', '0 4 * * 0', 'SELECT * FROM public.refresh_vector_stats()', 'Vector statistics refresh, Sundays 04:00', S001),
    pgCron('graph-populate', '0 7 * * 0', 'CALL public.populate_graph_dependencies()', 'Graph populate from the code chunks’ dependencies, Sundays 07:00', S001),
    pgCron('graph-populate-startup', '@reboot', 'CALL public.populate_graph_dependencies()', 'Graph populate at startup (pg_cron runs @reboot jobs when PostgreSQL starts)', S001),
    pgCron('planning-seed', '@reboot', 'SELECT public.seed_work_plan()', 'Planning seed: inserts the missing roadmap items (idempotent) when PostgreSQL starts', S001),

    // ── retention in each singularity database (issue 18) ──
    pgCron(
      'prune-instance-queue-archives',
      '40 4 * * *',
      `SELECT public.singularity_prune_queue_archives(${singularityQueueRetentionDays})`,
      `Archive retention of this instance's queues: deletes archived messages older than ${singularityQueueRetentionDays} days (SINGULARITY_QUEUE_RETENTION_DAYS)`,
      'seed 000, seed 003',
    ),
    pgCron(
      'prune-metrics-events',
      '17 * * * *',
      `SELECT * FROM public.prune_metrics_events(${METRICS_RAW_RETENTION_DAYS})`,
      `Metrics retention: raw metrics_events older than ${METRICS_RAW_RETENTION_DAYS} days dropped once rolled up (pg_partman day partitions, else bounded batched deletes); rollups kept`,
      'seed 002',
    ),

    // ── seed 002's CDC bridge: every minute on pg_cron 1.4, every 5 seconds where pg_cron has seconds ──
    {
      ...pgCron(
        'cdc-bridge',
        '* * * * *',
        `SELECT * FROM public.cdc_bridge_run('${CDC_BRIDGE.slotSuffix}', '${JSON.stringify(CDC_BRIDGE.queues)}'::jsonb, ${CDC_BRIDGE.maxChangesPerRun})`,
        `CDC bridge: up to ${CDC_BRIDGE.maxChangesPerRun} changes of ${CDC_BRIDGE.tables.join(', ')} from the slot <database>_${CDC_BRIDGE.slotSuffix} into ${Object.values(CDC_BRIDGE.queues).join(', ')}, exactly once`,
        'seed 002',
      ),
      everySeconds: 5,
    },

    // ── pg_cron in shared_queue and in the cron database ──
    pgCron(
      'prune-queue-archives',
      '30 4 * * *',
      `SELECT public.singularity_prune_queue_archives(${sharedQueueRetentionDays})`,
      `Archive retention: deletes archived messages older than ${sharedQueueRetentionDays} days from every queue (SHARED_QUEUE_RETENTION_DAYS)`,
      'seed 003, seed 004',
      'shared_queue',
    ),
    pgCron(
      'cron-history-cleanup',
      '45 0 * * *',
      `DELETE FROM cron.job_run_details WHERE end_time < now() - interval '${CRON_HISTORY_RETENTION_DAYS} days'`,
      `Cleanup of pg_cron's run history older than ${CRON_HISTORY_RETENTION_DAYS} days (cron.job_run_details grows without bound otherwise)`,
      'issue 6',
      'cron',
    ),

    // ── dead letters: the queue policies of topology.ts (poison messages moved to <queue>_dlq) ──
    ...QUEUE_POLICIES.filter((p) => p.deadLetterEvery).map((p) =>
      pgCron(
        `dead-letter-${p.queue.toLowerCase().replaceAll('_', '-')}`,
        p.deadLetterEvery!,
        `SELECT * FROM public.singularity_dead_letter('${p.queue}', ${p.maxReads})`,
        `Dead letters: messages of ${p.queue} read ${p.maxReads} times or more move to ${p.queue}_dlq (queue policy)`,
        'issue 13',
        p.database,
      ),
    ),

    // ── system cron on the host: filesystem work (backups), installed by `singularity backup
    // schedule --install` into /etc/cron.d/singularity-backup (flock, --verify, then prune) ──
    {name: 'backup-hourly', runner: 'system-cron', schedule: '0 * * * *', database: 'singularity', command: 'singularity backup --kind hourly --verify && singularity backup prune --confirm prune', description: 'Database backup, hourly (keeps 6)', source: S001},
    {name: 'backup-daily', runner: 'system-cron', schedule: '0 1 * * *', database: 'singularity', command: 'singularity backup --kind daily --verify && singularity backup prune --confirm prune', description: 'Database backup, daily 01:00 (keeps 7)', source: S001},
    {
      name: 'backup-monthly',
      runner: 'system-cron',
      schedule: '0 5 * * 0',
      database: 'singularity',
      // the first Sunday: the crontab line fires on days 1-7 and checks for Sunday (cron ORs the two day fields)
      command: 'singularity backup --kind monthly --verify && singularity backup prune --confirm prune',
      description: 'Backup archival, monthly on the first Sunday 05:00 (keeps 12)',
      source: S001,
      maxDayOfMonth: 7,
    },

    // ── Oban in Singularity (seed 001); module names as seed 001 gives them ──
    oban('knowledge-migration', '@reboot', 'Singularity.Jobs.KnowledgeMigrateWorker', 'Startup: knowledge migration, load and validate JSON templates (priority 100)', S001),
    oban('templates-data-load', '@reboot', 'Singularity.Jobs.TemplatesDataLoadWorker', 'Startup: templates data load, sync templates_data/ (priority 95)', S001),
    oban('code-ingest-startup', '@reboot', 'Singularity.Jobs.CodeIngestWorker', 'Startup: code ingest, parse code + embeddings (priority 85)', S001),
    oban('rag-setup', '@reboot', 'Singularity.Jobs.RagSetupWorker', 'Startup: RAG system initialization (priority 70)', S001),
    oban('template-sync', '0 2 * * *', 'Singularity.Jobs.TemplateSyncWorker', 'Template sync Git → DB, daily 02:00', S001),
    oban('code-analysis-cache-clear', '0 3 * * *', 'Singularity.Jobs.CacheClearWorker', 'CodeAnalysis cache clear, daily 03:00', S001),
    oban('registry-sync', '0 4 * * *', 'Singularity.Jobs.RegistrySyncWorker', 'Registry snapshot sync, daily 04:00', S001),
    oban('template-embed', '0 5 * * 0', 'Singularity.Jobs.TemplateEmbedWorker', 'Template embedding regeneration (ML), Sundays 05:00', S001),
    oban('code-ingest-weekly', '0 6 * * 0', 'Singularity.Jobs.CodeIngestWorker', 'Code ingest re-parse, Sundays 06:00', S001),
    // seed 001 names these tasks but not their modules; the module names follow its convention
    oban('metrics-aggregation', '*/5 * * * *', 'Singularity.Jobs.MetricsAggregationWorker', 'Metrics aggregation, every 5 min (module name assumed)', S001),
    oban('feedback-analysis', '*/30 * * * *', 'Singularity.Jobs.FeedbackAnalysisWorker', 'Feedback analysis, every 30 min (module name assumed)', S001),
    oban('agent-evolution', '0 * * * *', 'Singularity.Jobs.AgentEvolutionWorker', 'Agent evolution, hourly (module name assumed)', S001),

    // ── Oban in CentralCloud (seed 004; pattern sync and knowledge export move here from Singularity) ──
    oban('pattern-aggregation', '0 * * * *', 'CentralCloud.Jobs.PatternAggregationJob', 'Pattern aggregation, also from pgmq pattern_messages, hourly', 'seed 004', 'centralcloud'),
    oban('statistics', '0 * * * *', 'CentralCloud.Jobs.StatisticsJob', 'Statistics, hourly', 'seed 004', 'centralcloud'),
    oban('package-sync', '0 2 * * *', 'CentralCloud.Jobs.PackageSyncJob', 'Package sync, daily 02:00', 'seed 004', 'centralcloud'),
    oban('pattern-sync', '0 * * * *', 'CentralCloud.Jobs.PatternSyncWorker', 'Pattern sync: aggregated patterns back to the instances, hourly (seed 001 "Pattern Sync" every 5 min moved here)', 'seed 001, seed 004', 'centralcloud'),
    oban('knowledge-export', '0 1 * * *', 'CentralCloud.Jobs.KnowledgeExportWorker', 'Knowledge export to Git, daily 01:00 UTC (seed 001 "Knowledge Export" at midnight moved here)', 'seed 001, seed 004', 'centralcloud'),
    oban('template-distribution', '0 */4 * * *', 'CentralCloud.Jobs.TemplateDistributionWorker', 'Template distribution to the instances, every 4 hours', 'seed 004', 'centralcloud'),
  ]
}

/** A retention setting in days from the environment; exit 2 when it is not a positive integer. */
function retentionDays(env: NodeJS.ProcessEnv, variable: string, fallback: number): number {
  const raw = env[variable]
  if (raw === undefined || raw === '') return fallback
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < 1 || Number(raw) > 36_500) {
    throw new UsageError(`invalid ${variable}: must be a whole number of days between 1 and 36500`, {code: 'BAD_CONFIG'})
  }
  return Number(raw)
}

/** SHARED_QUEUE_RETENTION_DAYS from the environment (default 90); exit 2 when it is not a positive integer. */
export function sharedQueueRetentionDays(env: NodeJS.ProcessEnv = process.env): number {
  return retentionDays(env, 'SHARED_QUEUE_RETENTION_DAYS', DEFAULT_SHARED_QUEUE_RETENTION_DAYS)
}

/** SINGULARITY_QUEUE_RETENTION_DAYS from the environment (default 90); exit 2 when it is not a positive integer. */
export function singularityQueueRetentionDays(env: NodeJS.ProcessEnv = process.env): number {
  return retentionDays(env, 'SINGULARITY_QUEUE_RETENTION_DAYS', DEFAULT_SINGULARITY_QUEUE_RETENTION_DAYS)
}

/** The schedules for this environment (SHARED_QUEUE_RETENTION_DAYS and SINGULARITY_QUEUE_RETENTION_DAYS applied). */
export function schedulesFor(env: NodeJS.ProcessEnv = process.env): JobSpec[] {
  return buildSchedules(sharedQueueRetentionDays(env), singularityQueueRetentionDays(env))
}

/** The declared schedules with the default retention. */
export const SCHEDULES: JobSpec[] = buildSchedules()

/**
 * The seeds' own pg_cron job names (runbooks and monitoring use them), as aliases of ours. Seed 000
 * names learn-patterns-every-5min and sync-learning-every-10min, seed 001 daily-vacuum-analyze; the
 * rest are the names of the migrations those seeds cite (20251025000004_schedule_autonomous_tasks,
 * 20251025000010_add_comprehensive_pgcron_maintenance). `jobs run` and `jobs history` accept them.
 */
export const SEED_JOB_ALIASES: Readonly<Record<string, {name: string; source: string}>> = {
  'learn-patterns-every-5min': {name: 'learn-patterns', source: S000},
  'sync-learning-every-10min': {name: 'sync-learning', source: S000},
  'update-knowledge-hourly': {name: 'update-knowledge', source: `${S000} (its migration)`},
  'assign-tasks-every-2min': {name: 'assign-tasks', source: `${S000} (its migration)`},
  'refresh-metrics-every-30min': {name: 'refresh-metrics', source: `${S000} (its migration)`},
  'cleanup-sync-logs-every-6h': {name: 'cleanup-sync-logs', source: `${S000} (its migration)`},
  'archive-tasks-daily': {name: 'archive-tasks', source: `${S000} (its migration)`},
  'daily-vacuum-analyze': {name: 'vacuum-analyze', source: S001},
  'weekly-cleanup-oban-jobs': {name: 'cleanup-oban-jobs', source: `${S001} (its migration)`},
  'frequent-analyze-stats': {name: 'table-statistics', source: `${S001} (its migration)`},
  'weekly-cleanup-old-artifacts': {name: 'cleanup-artifacts', source: `${S001} (its migration)`},
  'weekly-cleanup-code-chunks': {name: 'cleanup-code-chunks', source: `${S001} (its migration)`},
  'monthly-reindex-bloated': {name: 'reindex-indexes', source: `${S001} (its migration)`},
  'weekly-vector-stats': {name: 'vector-stats', source: `${S001} (its migration)`},
}

/** Whether a pg_cron version (cron.job's extension version, e.g. '1.4-1', '1.6') schedules in seconds: 1.5 and later. */
export function pgCronHasSeconds(version: string | null | undefined): boolean {
  const match = /^(\d+)\.(\d+)/.exec(version ?? '')
  return match !== null && (Number(match[1]) > 1 || (Number(match[1]) === 1 && Number(match[2]) >= 5))
}

/** The schedules as this pg_cron runs them: '<n> seconds' for the jobs that want seconds, where it can. */
export function schedulesForPgCron(schedules: JobSpec[], version: string | null | undefined): JobSpec[] {
  if (!pgCronHasSeconds(version)) return schedules
  return schedules.map((s) => (s.everySeconds ? {...s, schedule: `${s.everySeconds} seconds`} : s))
}
