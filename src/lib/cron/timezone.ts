/**
 * Wall-clock time in an IANA time zone, for next runs under pg_cron's cron.timezone (1.5+).
 * A "wall" Date holds the local date and time in its UTC fields (a naive local time), so the
 * calendar arithmetic of expression.ts works on it unchanged. Built on Intl (no dependency).
 */

const formatters = new Map<string, Intl.DateTimeFormat>()

/** UTC and its aliases: offsets never change, so wall time is the instant itself. */
export function isUtcZone(timeZone: string | undefined | null): boolean {
  if (!timeZone) return true
  return /^(?:etc\/)?(?:utc|gmt|uct|zulu|universal|greenwich)(?:[+-]?0)?$|^z$/i.test(timeZone.trim())
}

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone)
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    })
    formatters.set(timeZone, f)
  }
  return f
}

/** Whether this runtime knows the zone (PostgreSQL may know names Intl does not, e.g. POSIX rules). */
export function isKnownTimeZone(timeZone: string): boolean {
  if (isUtcZone(timeZone)) return true
  try {
    formatter(timeZone)
    return true
  } catch {
    return false
  }
}

/** The wall-clock time (as a naive Date) of an instant in a zone. */
export function wallTime(instantMs: number, timeZone: string): Date {
  if (isUtcZone(timeZone)) return new Date(instantMs)
  const parts: Record<string, number> = {}
  for (const p of formatter(timeZone).formatToParts(new Date(instantMs))) {
    if (p.type !== 'literal') parts[p.type] = Number(p.value)
  }
  return new Date(Date.UTC(parts.year, parts.month - 1, parts.day, parts.hour, parts.minute, parts.second))
}

/** The zone's offset from UTC at an instant, in ms (Berlin in summer: +7_200_000). */
export function zoneOffsetMs(instantMs: number, timeZone: string): number {
  const whole = Math.floor(instantMs / 1000) * 1000
  return wallTime(whole, timeZone).getTime() - whole
}

const TWO_DAYS = 2 * 86_400_000

/**
 * The instants whose wall-clock time in the zone is `wall`, earliest first: none in a
 * spring-forward gap, two in a fall-back overlap, one otherwise.
 */
export function instantsAt(wall: Date, timeZone: string): number[] {
  const w = wall.getTime()
  if (isUtcZone(timeZone)) return [w]
  // a transition near w has one offset before and one after it; real zones never have two within 4 days
  const offsets = new Set([zoneOffsetMs(w - TWO_DAYS, timeZone), zoneOffsetMs(w, timeZone), zoneOffsetMs(w + TWO_DAYS, timeZone)])
  const out: number[] = []
  for (const offset of offsets) {
    const t = w - offset
    if (zoneOffsetMs(t, timeZone) === offset && !out.includes(t)) out.push(t)
  }
  return out.sort((a, b) => a - b)
}
