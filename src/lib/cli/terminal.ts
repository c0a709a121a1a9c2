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

/**
 * The width tables must fit: the terminal's (stdout.columns), then COLUMNS, else none at all when
 * stdout is not a terminal (a pipe or a file gets every column, nothing cut). A terminal that does
 * not report its size gets 80.
 */
export function terminalWidth(stream: NodeJS.WriteStream = process.stdout, env: NodeJS.ProcessEnv = process.env): number | undefined {
  if (stream.isTTY && Number.isInteger(stream.columns) && stream.columns > 0) return stream.columns
  const fromEnv = Number(env.COLUMNS)
  if (env.COLUMNS && Number.isInteger(fromEnv) && fromEnv > 0) return fromEnv
  return stream.isTTY ? 80 : undefined
}
