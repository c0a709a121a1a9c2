/** Small formatting helpers shared by the jobs features (list, history). */

export const iso = (d: Date | null | undefined): string | null => (d ? d.toISOString() : null)
export const seconds = (start: Date | null, end: Date | null): number | null =>
  start && end ? Math.round((end.getTime() - start.getTime()) / 10) / 100 : null
export const oneLine = (text: string | null): string | null => (text === null ? null : text.replace(/\s+/g, ' ').trim())
