/** Whether colour and spinners may be used on a stream: a TTY, no NO_COLOR, no TERM=dumb, no --no-color. */
export function isInteractive(stream: NodeJS.WriteStream, colorFlag = true): boolean {
  if (!colorFlag) return false
  if (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '') return false
  if (process.env.TERM === 'dumb') return false
  return Boolean(stream.isTTY)
}

/** Whether a human can answer a question (stdin and stderr are terminals, not CI). */
export function canPrompt(): boolean {
  return Boolean(process.stdin.isTTY && process.stderr.isTTY) && !process.env.CI
}
