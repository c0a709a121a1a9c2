/** "Did you mean …": the names closest to what a user typed. */

/** Levenshtein distance. */
export function editDistance(a: string, b: string): number {
  const prev = Array.from({length: b.length + 1}, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let diagonal = prev[0]
    prev[0] = i
    for (let j = 1; j <= b.length; j++) {
      const saved = prev[j]
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1))
      diagonal = saved
    }
  }
  return prev[b.length]
}

/** How far a typo may be from the name meant: half its length, at least 3 edits. */
export function typoLimit(typed: string): number {
  return Math.max(3, Math.floor(typed.length / 2))
}

export interface ClosestOptions {
  count?: number
  /** drop candidates further than this (default: no limit) */
  maxDistance?: number
}

/**
 * The candidates closest to what was typed: substring matches first, then by edit distance (also
 * against the last segment of dotted or colon-separated names: module names, prefixed job names).
 */
export function closestNames(typed: string, candidates: string[], options: ClosestOptions = {}): string[] {
  const t = typed.toLowerCase()
  const scored = [...new Set(candidates)].map((c) => {
    const l = c.toLowerCase()
    const contains = l.includes(t) || t.includes(l)
    const tail = l.split(/[.:]/).pop() ?? l
    return {c, contains, d: contains ? 1 : Math.min(editDistance(t, l), editDistance(t, tail))}
  })
  return scored
    .filter((s) => options.maxDistance === undefined || s.d <= options.maxDistance)
    .sort((x, y) => Number(y.contains) - Number(x.contains) || x.d - y.d || x.c.localeCompare(y.c))
    .slice(0, options.count ?? 3)
    .map((s) => s.c)
}
