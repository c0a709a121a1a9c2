import {describe, expect, it} from 'vitest'

import {crontabLine} from '../../src/lib/backup/schedule.js'
import {ExitCode, UsageError} from '../../src/lib/cli/errors.js'
import {cronError, matches, nextEffectiveRun, nextRun, parseCron, previousRun, runsBetween} from '../../src/lib/cron/expression.js'
import {closestNames, cronJobName, parseCronJobName} from '../../src/lib/cron/names.js'
import {buildSchedules, SCHEDULES, sharedQueueRetentionDays} from '../../src/schedules.js'

const at = (iso: string) => new Date(iso)
const next = (expr: string, from: string) => nextRun(expr, at(from))?.toISOString() ?? null

describe('cron expressions: next run in UTC (hand-checked against a calendar)', () => {
  it.each([
    // expression, from, expected next run
    ['*/5 * * * *', '2025-01-01T00:00:00Z', '2025-01-01T00:05:00.000Z'],
    ['*/5 * * * *', '2025-01-01T00:03:30Z', '2025-01-01T00:05:00.000Z'],
    ['0 * * * *', '2025-01-01T10:00:00Z', '2025-01-01T11:00:00.000Z'], // strictly after
    ['0 2 * * *', '2025-01-01T03:00:00Z', '2025-01-02T02:00:00.000Z'],
    ['0 23 * * *', '2025-12-31T23:00:00Z', '2026-01-01T23:00:00.000Z'], // over the year end
    ['0 0 * * 0', '2025-01-01T00:00:00Z', '2025-01-05T00:00:00.000Z'], // Wed 1 Jan 2025 -> Sun 5 Jan
    ['0 0 * * 7', '2025-01-01T00:00:00Z', '2025-01-05T00:00:00.000Z'], // 7 is Sunday too
    ['0 0 * * sun', '2025-01-01T00:00:00Z', '2025-01-05T00:00:00.000Z'],
    ['0 12 * * 1-5', '2025-01-03T13:00:00Z', '2025-01-06T12:00:00.000Z'], // Fri after noon -> Mon
    ['0 12 * * mon-fri', '2025-01-03T13:00:00Z', '2025-01-06T12:00:00.000Z'],
    ['10-30/10 * * * *', '2025-01-01T00:25:00Z', '2025-01-01T00:30:00.000Z'],
    ['0 */6 * * *', '2025-01-01T06:00:00Z', '2025-01-01T12:00:00.000Z'],
    ['0 0 29 2 *', '2025-01-01T00:00:00Z', '2028-02-29T00:00:00.000Z'], // next leap day
    ['0 0 1 jan *', '2025-06-01T00:00:00Z', '2026-01-01T00:00:00.000Z'],
    ['@hourly', '2025-01-01T10:30:00Z', '2025-01-01T11:00:00.000Z'],
    ['@weekly', '2025-01-01T00:00:00Z', '2025-01-05T00:00:00.000Z'],
    ['@monthly', '2025-01-15T00:00:00Z', '2025-02-01T00:00:00.000Z'],
  ])('%s after %s is %s', (expr, from, expected) => {
    expect(next(expr, from)).toBe(expected)
  })

  it('ORs day-of-month and day-of-week when both are restricted: "0 5 1-7 * 0" is not the first Sunday', () => {
    // Wed 8 Jan 2025: the next match is Sunday 12 Jan (a Sunday outside 1-7) ...
    expect(next('0 5 1-7 * 0', '2025-01-08T00:00:00Z')).toBe('2025-01-12T05:00:00.000Z')
    // ... and Saturday 1 Feb 2025 fires too (a day in 1-7 that is no Sunday)
    expect(next('0 5 1-7 * 0', '2025-01-31T00:00:00Z')).toBe('2025-02-01T05:00:00.000Z')
    expect(matches('0 5 1-7 * 0', at('2025-01-02T05:00:00Z'))).toBe(true) // a Thursday
  })

  it('ANDs them when either field starts with * (also */2), as Vixie cron and pg_cron do', () => {
    // odd days that are Mondays: Mondays of Jan 2025 are 6, 13, 20, 27
    expect(next('0 0 */2 * 1', '2025-01-01T00:00:00Z')).toBe('2025-01-13T00:00:00.000Z')
    expect(next('0 0 1 * *', '2025-01-01T00:00:00Z')).toBe('2025-02-01T00:00:00.000Z')
  })

  it('the first-Sunday job (backup-monthly): every Sunday 05:00, acting on days 1-7 only', () => {
    const spec = SCHEDULES.find((s) => s.name === 'backup-monthly')!
    expect(spec.schedule).toBe('0 5 * * 0')
    expect(spec.maxDayOfMonth).toBe(7)
    // the crontab line fires on days 1-7 and checks for Sunday; its '%' is escaped (crontab turns % into a newline)
    expect(crontabLine(spec)).toMatch(/^0 5 1-7 \* \* root \[ "\$\(date \+\\%u\)" = 7 \] && flock /)
    expect(crontabLine(spec).replaceAll('\\%', '')).not.toContain('%')
    const eff = (from: string) => nextEffectiveRun(spec.schedule, at(from), spec.maxDayOfMonth)?.toISOString()
    expect(eff('2025-01-06T00:00:00Z')).toBe('2025-02-02T05:00:00.000Z') // Sun 2 Feb 2025
    expect(eff('2025-02-02T05:00:00Z')).toBe('2025-03-02T05:00:00.000Z') // strictly after
    expect(eff('2025-05-05T00:00:00Z')).toBe('2025-06-01T05:00:00.000Z') // 1 June 2025 is a Sunday
    expect(eff('2025-08-04T00:00:00Z')).toBe('2025-09-07T05:00:00.000Z') // 1 Sep 2025 is a Monday: first Sunday is the 7th
    // the cron itself fires on the next Sunday whatever the day of month
    expect(next(spec.schedule, '2025-01-06T00:00:00Z')).toBe('2025-01-12T05:00:00.000Z')
  })

  it('no next run for @reboot and for dates that never come', () => {
    expect(nextRun('@reboot', at('2025-01-01T00:00:00Z'))).toBeNull()
    expect(parseCron('@reboot').reboot).toBe(true)
    expect(nextRun('0 0 30 2 *', at('2025-01-01T00:00:00Z'))).toBeNull()
  })

  it('previous runs and runs in an interval', () => {
    expect(previousRun('0 2 * * *', at('2025-01-02T01:59:00Z'))?.toISOString()).toBe('2025-01-01T02:00:00.000Z')
    expect(previousRun('*/10 * * * *', at('2025-01-01T00:35:00Z'))?.toISOString()).toBe('2025-01-01T00:30:00.000Z')
    expect(runsBetween('*/10 * * * *', at('2025-01-01T00:00:00Z'), at('2025-01-01T01:00:00Z'))).toBe(6)
    expect(runsBetween('0 3 * * *', at('2025-01-01T03:05:00Z'), at('2025-01-04T03:04:00Z'))).toBe(3) // 2, 3 and 4 Jan at 03:00
  })

  it.each([
    ['60 * * * *', 'out of range'],
    ['* * * *', '4 fields'],
    ['* * * * * *', 'no seconds'],
    ['5/10 * * * *', 'step needs'],
    ['*/0 * * * *', 'positive'],
    ['0 0 0 * *', 'out of range'],
    ['0 0 * * 8', 'out of range'],
    ['0 0 * 13 *', 'out of range'],
    ['a b c d e', 'not a number'],
    ['0 0 * * 1#1', 'not a number'],
    ['5-1 * * * *', 'backwards'],
    ['1,,2 * * * *', 'empty list item'],
    ['@every', 'unknown macro'],
    ['', 'empty'],
    ["'; DROP TABLE x; --", 'not a number'],
  ])('rejects %j (exit 2, one line)', (expr, reason) => {
    let error: unknown
    try {
      parseCron(expr)
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(UsageError)
    expect((error as UsageError).exitCode).toBe(ExitCode.usage)
    expect((error as Error).message).toContain(reason)
    expect((error as Error).message).not.toContain('\n')
    expect(cronError(expr)).toBeDefined()
  })
})

describe('the declared schedules', () => {
  it('every schedule parses, names are unique kebab-case, pg_cron jobs name their database', () => {
    const names = new Set<string>()
    for (const s of SCHEDULES) {
      expect(cronError(s.schedule), s.name).toBeUndefined()
      expect(s.name).toMatch(/^[a-z0-9]+(-[a-z0-9]+)*$/)
      expect(names.has(s.name), s.name).toBe(false)
      names.add(s.name)
      expect(s.description.length).toBeGreaterThan(5)
      expect(s.source).toMatch(/seed|issue/)
    }
  })

  it("covers every row of seed 000's pg_cron table with its schedule", () => {
    const table: [string, string][] = [
      ['*/5 * * * *', 'learn_patterns_from_analysis()'],
      ['*/10 * * * *', 'sync_learning_to_centralcloud()'],
      ['0 * * * *', 'update_agent_knowledge()'],
      ['*/2 * * * *', 'assign_pending_tasks()'],
      ['*/30 * * * *', 'refresh_metrics()'], // REFRESH agent_performance_5min (+ rollups)
      ['0 */6 * * *', 'cleanup_sync_log()'],
      ['0 2 * * *', 'archive_completed_tasks()'],
    ]
    for (const [schedule, fn] of table) {
      const spec = SCHEDULES.find((s) => s.runner === 'pg_cron' && s.command.includes(fn))
      expect(spec, fn).toBeDefined()
      expect(spec!.schedule, fn).toBe(schedule)
      expect(spec!.database).toBe('singularity')
    }
  })

  it("covers seed 001's pg_cron list, Oban workers and backups", () => {
    const pg = (fn: string) => SCHEDULES.find((s) => s.runner === 'pg_cron' && s.command.includes(fn))?.schedule
    expect(pg('cleanup_expired_cache()')).toBe('*/15 * * * *')
    expect(pg('refresh_cache()')).toBe('0 * * * *')
    expect(pg('collect_table_statistics()')).toBe('0 */6 * * *')
    expect(pg('prewarm_cache()')).toBe('0 */6 * * *')
    expect(pg('compute_pagerank()')).toBe('0 3 * * *')
    expect(pg('VACUUM')).toBe('0 23 * * *')
    expect(pg('cleanup_old_oban_jobs()')).toBe('0 0 * * 0')
    expect(pg('cleanup_old_artifacts()')).toBe('0 1 * * 0')
    expect(pg('cleanup_old_code_chunks()')).toBe('0 2 * * 0')
    expect(pg('reindex_bloated_indexes()')).toBe('0 3 * * 0')
    expect(pg('refresh_vector_stats()')).toBe('0 4 * * 0')
    expect(pg('seed_work_plan()')).toBe('@reboot')
    const graph = SCHEDULES.filter((s) => s.command.includes('populate_graph_dependencies()')).map((s) => s.schedule).sort()
    expect(graph).toEqual(['0 7 * * 0', '@reboot'])
    const oban = (worker: string) => SCHEDULES.filter((s) => s.runner === 'oban' && s.command === worker).map((s) => s.schedule)
    expect(oban('Singularity.Jobs.TemplateSyncWorker')).toEqual(['0 2 * * *'])
    expect(oban('Singularity.Jobs.CacheClearWorker')).toEqual(['0 3 * * *'])
    expect(oban('Singularity.Jobs.RegistrySyncWorker')).toEqual(['0 4 * * *'])
    expect(oban('Singularity.Jobs.TemplateEmbedWorker')).toEqual(['0 5 * * 0'])
    expect(oban('Singularity.Jobs.CodeIngestWorker').sort()).toEqual(['0 6 * * 0', '@reboot'])
    for (const w of ['KnowledgeMigrateWorker', 'TemplatesDataLoadWorker', 'RagSetupWorker']) expect(oban(`Singularity.Jobs.${w}`)).toEqual(['@reboot'])
    expect(oban('CentralCloud.Jobs.PatternAggregationJob')).toEqual(['0 * * * *'])
    const backups = SCHEDULES.filter((s) => s.runner === 'system-cron')
    expect(backups.map((b) => [b.name, b.schedule])).toEqual([
      ['backup-hourly', '0 * * * *'],
      ['backup-daily', '0 1 * * *'],
      ['backup-monthly', '0 5 * * 0'],
    ])
    expect(backups.every((b) => /singularity backup --kind (hourly|daily|monthly)/.test(b.command))).toBe(true)
  })

  it('shared_queue archive retention follows SHARED_QUEUE_RETENTION_DAYS (default 90)', () => {
    const prune = (days?: number) => buildSchedules(days).find((s) => s.name === 'prune-queue-archives')!
    expect(prune().command).toBe('SELECT public.singularity_prune_queue_archives(90)')
    expect(prune().database).toBe('shared_queue')
    expect(prune(30).command).toBe('SELECT public.singularity_prune_queue_archives(30)')
    expect(sharedQueueRetentionDays({})).toBe(90)
    expect(sharedQueueRetentionDays({SHARED_QUEUE_RETENTION_DAYS: '7'})).toBe(7)
    expect(() => sharedQueueRetentionDays({SHARED_QUEUE_RETENTION_DAYS: '7; DROP'})).toThrow(UsageError)
    expect(() => sharedQueueRetentionDays({SHARED_QUEUE_RETENTION_DAYS: '0'})).toThrow(UsageError)
  })

  it('cleans cron.job_run_details daily in the cron database', () => {
    const spec = SCHEDULES.find((s) => s.database === 'cron')!
    expect(spec.runner).toBe('pg_cron')
    expect(spec.command).toMatch(/^DELETE FROM cron\.job_run_details WHERE end_time < now\(\) - interval '\d+ days'$/)
    expect(nextRun(spec.schedule, at('2025-01-01T00:00:00Z'))!.getTime() - at('2025-01-01T00:00:00Z').getTime()).toBeLessThanOrEqual(24 * 3600_000)
  })
})

describe('pg_cron job names', () => {
  it('carry the job prefix, the estate prefix and the instance', () => {
    expect(cronJobName('', 'learn-patterns')).toBe('singularity:learn-patterns')
    expect(cronJobName('t_jobs_', 'learn-patterns', 2)).toBe('singularity:t_jobs_learn-patterns:2')
    expect(parseCronJobName('singularity:t_jobs_learn-patterns:2', 't_jobs_')).toEqual({name: 'learn-patterns', instance: 2})
    // another estate's jobs are not ours, nor are foreign ones
    expect(parseCronJobName('singularity:t_jobs_learn-patterns', '')).toBeUndefined()
    expect(parseCronJobName('nightly-vacuum', '')).toBeUndefined()
    expect(parseCronJobName('singularity:learn-patterns', 't_jobs_')).toBeUndefined()
  })

  it('suggests the closest names', () => {
    const known = SCHEDULES.map((s) => s.name)
    expect(closestNames('learn-pattern', known)[0]).toBe('learn-patterns')
    expect(closestNames('asign-tasks', known)[0]).toBe('assign-tasks')
    expect(closestNames('TemplateSync', ['Singularity.Jobs.TemplateSyncWorker', 'x'])[0]).toBe('Singularity.Jobs.TemplateSyncWorker')
  })
})
