/**
 * Staggered schedules: each singularity instance's copy of a periodic pg_cron job runs at its own
 * deterministic offset inside the job's period, so that a hundred instances do not all start in
 * the same minute (pg_cron runs at most cron.max_running_jobs at once; the rest start late).
 *
 * The rule (README, "Staggered schedules"), for instance n (offset index k = n - 1):
 * - every n minutes (`*∕n`): minute k mod n of each period (`*∕2` alternates, `*∕5` spreads over five);
 * - on the hour, hourly or every h hours (`0 * …`, `0 *∕h …`): minute k mod 60, and for an h-hourly
 *   job hour (k div 60) mod h of its period: the hour's first minutes, one instance each;
 * - a pinned time (a minute other than 0, or a fixed hour: `0 2 * * *`, `17 * * * *`): the pinned
 *   minute plus k mod 10 (never past the hour's minute 59): pinned, spread over up to ten minutes;
 * - anything else (every minute, @reboot, seconds, lists, ranges) runs as declared.
 * The offset depends only on the instance number, so adding instances never moves existing ones,
 * and instance 1 (or a single-instance estate) runs exactly the seed's schedule.
 */

/** A pinned time spreads over at most this many minutes, starting at the pinned minute. */
export const PINNED_SPREAD_MINUTES = 10

export interface Staggered {
  /** the expression pg_cron runs */
  schedule: string
  /** minutes after the declared time (0: as declared) */
  offsetMinutes: number
}

const NUMBER = /^\d+$/
const STEP = /^\*\/(\d+)$/

/** The staggered form of a declared schedule for the copy with offset index `index` (instance - 1). */
export function staggerSchedule(declared: string, index: number): Staggered {
  const asDeclared = {schedule: declared, offsetMinutes: 0}
  const fields = declared.trim().split(/\s+/)
  if (index <= 0 || fields.length !== 5) return asDeclared
  const [minute, hour, ...days] = fields
  const step = STEP.exec(minute)
  if (step) {
    const every = Number(step[1])
    if (every < 2 || every > 59) return asDeclared
    const offset = index % every
    return offset === 0 ? asDeclared : {schedule: [`${offset}-59/${every}`, hour, ...days].join(' '), offsetMinutes: offset}
  }
  if (!NUMBER.test(minute)) return asDeclared
  const pinnedMinute = Number(minute)
  if (pinnedMinute > 59) return asDeclared
  const hourStep = hour === '*' ? 1 : Number(STEP.exec(hour)?.[1] ?? NaN)
  if (pinnedMinute === 0 && Number.isInteger(hourStep) && hourStep >= 1 && hourStep <= 23) {
    // on the hour: the minute is not pinned, only the period is
    const minuteOffset = index % 60
    const hourOffset = Math.floor(index / 60) % hourStep
    const hourField = hourOffset === 0 ? hour : `${hourOffset}-23/${hourStep}`
    return {schedule: [String(minuteOffset), hourField, ...days].join(' '), offsetMinutes: hourOffset * 60 + minuteOffset}
  }
  if (hour !== '*' && !NUMBER.test(hour) && !(pinnedMinute !== 0 && STEP.test(hour))) return asDeclared
  // a pinned time: a few minutes after it
  const offset = index % Math.min(PINNED_SPREAD_MINUTES, 60 - pinnedMinute)
  return offset === 0 ? asDeclared : {schedule: [String(pinnedMinute + offset), hour, ...days].join(' '), offsetMinutes: offset}
}

/** The offset index of a copy: instance n has n - 1; a database of a kind without instances has 0. */
export function staggerIndex(instance: number | undefined): number {
  return instance === undefined ? 0 : Math.max(0, instance - 1)
}
