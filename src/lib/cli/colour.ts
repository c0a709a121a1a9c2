/**
 * One colour meaning for every command: ok green, warn yellow, fail red, dim for "none", bold
 * headers. Colour goes through chalk only, and chalk is loaded only when colour will be shown
 * (a pipe, --no-color, NO_COLOR or TERM=dumb never pay for it).
 */

export type Tone = 'ok' | 'warn' | 'fail' | 'dim' | 'head' | 'accent'

export type Paint = Record<Tone, (text: string) => string> & {
  /** false when every function returns its text unchanged */
  readonly enabled: boolean
  /** the text in a tone, or unchanged when tone is undefined */
  tone(tone: Tone | undefined, text: string): string
}

const identity = (text: string) => text

/** No colour: every tone returns its text unchanged. */
export const PLAIN: Paint = {
  enabled: false,
  ok: identity,
  warn: identity,
  fail: identity,
  dim: identity,
  head: identity,
  accent: identity,
  tone: (_tone, text) => text,
}

/** The painter for a stream that may (colour = true) or may not show colour. */
export async function loadPaint(colour: boolean): Promise<Paint> {
  if (!colour) return PLAIN
  const {Chalk, supportsColor} = await import('chalk')
  // The caller decided colour is shown (a TTY, colour allowed): at least the basic 16 colours.
  const chalk = new Chalk({level: supportsColor ? Math.max(supportsColor.level, 1) as 1 | 2 | 3 : 1})
  const tones: Record<Tone, (text: string) => string> = {
    ok: (t) => chalk.green(t),
    warn: (t) => chalk.yellow(t),
    fail: (t) => chalk.red(t),
    dim: (t) => chalk.dim(t),
    head: (t) => chalk.bold(t),
    accent: (t) => chalk.cyan(t),
  }
  return {...tones, enabled: true, tone: (tone, text) => (tone ? tones[tone](text) : text)}
}

/** The tone of a status word: ok / warn / fail (and their synonyms) / none. */
export function statusTone(status: string | null | undefined): Tone | undefined {
  if (status === null || status === undefined || status === '' || status === '-') return 'dim'
  const s = status.toLowerCase()
  if (['ok', 'succeeded', 'success', 'complete', 'completed', 'healthy', 'reserved'].includes(s)) return 'ok'
  if (['warn', 'warning', 'running', 'starting', 'pending', 'retryable', 'extended', 'unreserved', 'drifted', 'missing'].includes(s)) return 'warn'
  if (['fail', 'failed', 'error', 'lost', 'discarded', 'cancelled', 'incomplete', 'unhealthy', 'unreachable'].includes(s)) return 'fail'
  return undefined
}
