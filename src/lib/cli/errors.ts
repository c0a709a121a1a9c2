/** One exit-code map for every command (design.md). Kept under --json by the base command. */
export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  unhealthy: 3,
  notFound: 4,
  interrupted: 130,
} as const

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode]

export interface CliErrorOptions {
  exitCode?: ExitCodeValue
  hint?: string
  /** stable machine-readable code for scripts, e.g. QUEUE_NOT_FOUND */
  code?: string
  cause?: unknown
}

/** An error the user can act on: one line of message, an optional hint, and an exit code. */
export class CliError extends Error {
  readonly exitCode: ExitCodeValue
  readonly hint?: string
  readonly code: string

  constructor(message: string, options: CliErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : {cause: options.cause})
    this.name = 'CliError'
    this.exitCode = options.exitCode ?? ExitCode.failure
    this.hint = options.hint
    this.code = options.code ?? 'FAILURE'
  }
}

/** Bad input or usage, caught before anything changes (exit 2). */
export class UsageError extends CliError {
  constructor(message: string, options: Omit<CliErrorOptions, 'exitCode'> = {}) {
    super(message, {code: 'USAGE', ...options, exitCode: ExitCode.usage})
    this.name = 'UsageError'
  }
}

/** A named thing (queue, job, backup, slot) does not exist (exit 4). */
export class NotFoundError extends CliError {
  constructor(message: string, options: Omit<CliErrorOptions, 'exitCode'> = {}) {
    super(message, {code: 'NOT_FOUND', ...options, exitCode: ExitCode.notFound})
    this.name = 'NotFoundError'
  }
}
