import {redact} from './redact.js'

/**
 * Progress on stderr, the one way every command shows it: each step is a line (as in logs and on a
 * pipe); on an interactive terminal only, an ora spinner also shows the step under way once it has
 * lasted over a second. Never a spinner on a pipe, under --json, with NO_COLOR / TERM=dumb /
 * --no-color, or without a TTY: the caller says so through `interactive` (BaseCommand.progress).
 *
 * Why a spinner hung under a pseudo-terminal: ora by default "discards stdin" while spinning, which
 * puts a TTY stdin in raw mode (tcsetattr). A process that is not in the terminal's foreground
 * process group (run by `timeout`, by a wrapper script that starts it in its own group, or with `&`)
 * is stopped by SIGTTOU when it does that: the command froze at its first spinner, and even SIGTERM
 * waited for it. On a pipe stdin is no TTY, so tests never saw it (reproduced in tmux with
 * `timeout 60 singularity …`: stopped, state T). Here stdin is never touched (discardStdin: false),
 * the spinner is always stopped (withProgress stops it in `finally`), and its delayed start is an
 * unref'd timer: nothing of the spinner keeps the process alive or waits on the terminal.
 */
export interface Progress {
  /** a progress line on stderr; on a terminal also the spinner's text from now on */
  line(message: string): void
  /** sets the spinner's text without printing a line (a wait, not a step) */
  waiting(message: string): void
  /** runs fn with the spinner out of the way (a question on the terminal), then spins on */
  aside<T>(fn: () => Promise<T>): Promise<T>
  /** ends the spinner, leaving the terminal as it was (idempotent) */
  stop(): void
}

/** How long a wait lasts before the spinner shows (short waits stay quiet). */
const SHOW_AFTER_MS = 1000

/** Starts progress; `interactive` is whether a spinner may show (see above). */
export async function startProgress(options: {interactive: boolean; text?: string}): Promise<Progress> {
  const write = (message: string) => process.stderr.write(redact(message) + '\n')
  if (!options.interactive) return {line: write, waiting: () => {}, aside: (fn) => fn(), stop: () => {}}

  const {default: ora} = await import('ora')
  const spinner = ora({stream: process.stderr, discardStdin: false, text: redact(options.text ?? '')})
  let stopped = false
  let text = options.text ?? ''
  // Shown only once the wait has lasted a while; unref: a pending spinner never holds the process.
  const timer = setTimeout(() => {
    if (!stopped) spinner.start(redact(text))
  }, SHOW_AFTER_MS)
  timer.unref()
  return {
    line(message) {
      write(message) // ora clears the spinner, the line is written, the spinner is drawn below it
      text = message
      if (spinner.isSpinning) spinner.text = redact(message)
    },
    waiting(message) {
      text = message
      if (spinner.isSpinning) spinner.text = redact(message)
    },
    async aside(fn) {
      const wasSpinning = spinner.isSpinning
      if (wasSpinning) spinner.stop()
      try {
        return await fn()
      } finally {
        if (wasSpinning && !stopped) spinner.start(redact(text))
      }
    },
    stop() {
      if (stopped) return
      stopped = true
      clearTimeout(timer)
      if (spinner.isSpinning) spinner.stop()
    },
  }
}

/** Runs work with progress, and always stops the spinner, also when work fails. */
export async function withProgress<T>(options: {interactive: boolean; text?: string}, work: (progress: Progress) => Promise<T>): Promise<T> {
  const progress = await startProgress(options)
  try {
    return await work(progress)
  } finally {
    progress.stop()
  }
}
