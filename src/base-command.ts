import {Command, Flags, Interfaces} from '@oclif/core'

import {CliError, ExitCode, type ExitCodeValue, UsageError} from './lib/cli/errors.js'
import {withProgress, type Progress} from './lib/cli/progress.js'
import {redact, redactValue} from './lib/cli/redact.js'
import {loadPaint, type Paint} from './lib/cli/colour.js'
import {fold, type RenderedTable, type TableOptions} from './lib/cli/table.js'
import {isInteractive, terminalWidth} from './lib/cli/terminal.js'
import {disabledParts} from './lib/estate/disabled.js'
import {toCliError} from './lib/db/pg-errors.js'

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>
export type BaseArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>

/**
 * Every command extends this. It owns --json (one JSON document on stdout, errors included),
 * the exit-code map, one-line errors with a hint, colour/TTY decisions and redaction.
 * Subclasses implement execute() returning plain data, and human() to render it for people.
 */
export abstract class BaseCommand<T extends typeof Command = typeof Command> extends Command {
  static override baseFlags = {
    json: Flags.boolean({description: 'Print one JSON document on stdout (errors too).', helpGroup: 'GLOBAL'}),
    color: Flags.boolean({
      allowNo: true,
      default: true,
      description: 'Colour and spinners on a terminal (--no-color, NO_COLOR or TERM=dumb turn them off).',
      helpGroup: 'GLOBAL',
    }),
  }

  protected flags!: BaseFlags<T>
  protected args!: BaseArgs<T>
  private exitCodeAfterOutput: ExitCodeValue = ExitCode.ok

  /** Does the command's work and returns plain data (printed as JSON with --json). */
  protected abstract execute(): Promise<unknown>

  /** Renders the result for a person. Default: a JSON dump. */
  protected human(result: unknown): void | Promise<void> {
    if (result !== undefined) this.out(JSON.stringify(result, null, 2))
  }

  protected get jsonMode(): boolean {
    const passThrough = this.argv.indexOf('--')
    const json = this.argv.indexOf('--json')
    return json !== -1 && (passThrough === -1 || json < passThrough)
  }

  /** Colour and spinners allowed on stdout? */
  protected get colorful(): boolean {
    return !this.jsonMode && isInteractive(process.stdout, !this.argv.includes('--no-color'))
  }

  /** Colour and spinners allowed on stderr (progress)? */
  protected get colorfulErr(): boolean {
    return isInteractive(process.stderr, !this.argv.includes('--no-color'))
  }

  /**
   * Runs work with progress on stderr (src/lib/cli/progress.ts): lines always; a spinner only on an
   * interactive terminal (TTY, colour allowed) and never under --json.
   */
  protected withProgress<R>(text: string, work: (progress: Progress) => Promise<R>): Promise<R> {
    return withProgress({interactive: this.colorfulErr && !this.jsonMode, text}, work)
  }

  /** Sets the exit code used once output is printed (e.g. 3 for unhealthy). */
  protected exitAfterOutput(code: ExitCodeValue): void {
    if (code > this.exitCodeAfterOutput) this.exitCodeAfterOutput = code
  }

  /** A line on stdout, redacted. With --csv/--tsv stdout carries only the table: other lines go to stderr. */
  protected out(line = ''): void {
    ;(this.delimitedTable ? process.stderr : process.stdout).write(redact(line) + '\n')
  }

  /** A line of free text for people, folded at word boundaries to the terminal's width (never cut). */
  protected outFolded(text: string, indent = '  '): void {
    for (const line of fold(text, this.jsonMode ? undefined : terminalWidth(), indent)) this.out(line)
  }

  /** The lines of a rendered table on stdout, redacted. */
  protected outTable(table: RenderedTable | string[]): void {
    for (const line of Array.isArray(table) ? table : table.lines) process.stdout.write(redact(line) + '\n')
  }

  /** --csv or --tsv was given (commands with the table flags). */
  protected get delimitedTable(): boolean {
    const f = (this.flags ?? {}) as Record<string, unknown>
    return Boolean(f.csv || f.tsv)
  }

  /** The colour painter for stdout (identity when colour is off). */
  protected async paint(): Promise<Paint> {
    return loadPaint(this.colorful && !this.delimitedTable)
  }

  /** The table renderer's options: the table flags (--wide, --columns, --sort, --no-header, --csv, --tsv), the width and colour. */
  protected async tableOptions(): Promise<TableOptions> {
    const f = (this.flags ?? {}) as Record<string, unknown>
    return {
      width: terminalWidth(),
      paint: await this.paint(),
      wide: Boolean(f.wide),
      columns: typeof f.columns === 'string' ? f.columns.split(',').map((c) => c.trim()).filter(Boolean) : undefined,
      sort: typeof f.sort === 'string' ? f.sort : undefined,
      header: !f['no-header'],
      format: f.csv ? 'csv' : f.tsv ? 'tsv' : 'table',
    }
  }

  /** A progress/notice line on stderr, redacted; silent under --json unless forced. */
  protected note(line: string): void {
    process.stderr.write(redact(line) + '\n')
  }

  override async init(): Promise<void> {
    await super.init()
    if (!this.colorful) {
      process.env.FORCE_COLOR = '0'
    }
    let parsed
    try {
      parsed = await this.parse({
        flags: this.ctor.flags,
        baseFlags: (super.ctor as typeof BaseCommand).baseFlags,
        enableJsonFlag: false,
        args: this.ctor.args,
        strict: this.ctor.strict,
      })
    } catch (error) {
      // The arguments were read; only their values were wrong (keeps oclif from warning).
      this.parsed = true
      throw asUsageError(error, this.id)
    }
    this.flags = parsed.flags as BaseFlags<T>
    this.args = parsed.args as BaseArgs<T>
  }

  async run(): Promise<unknown> {
    let result = await this.execute()
    // parts of the estate switched off by configuration (SHARED_QUEUE_ENABLED=false) are said, not failed
    const disabled = disabledParts()
    if (this.jsonMode) {
      if (disabled.length > 0 && result !== null && typeof result === 'object' && !Array.isArray(result)) {
        result = {...(result as Record<string, unknown>), disabled: disabled.map((d) => ({database: d.database, reason: d.reason}))}
      }
      if (result !== undefined) process.stdout.write(JSON.stringify(redactValue(result), null, 2) + '\n')
    } else {
      await this.human(result)
      for (const d of disabled) this.note(`note: ${d.database} is disabled (${d.reason}): its part of this command was skipped`)
    }
    process.exitCode = this.exitCodeAfterOutput
    return undefined
  }

  override async catch(error: Error & {exitCode?: number}): Promise<void> {
    const cliError = classify(error, this.id)
    if (this.jsonMode) {
      const body = {error: {code: cliError.code, message: cliError.message, hint: cliError.hint ?? null, exitCode: cliError.exitCode}}
      process.stdout.write(JSON.stringify(redactValue(body), null, 2) + '\n')
    } else {
      // chalk only when a terminal will show the colour (it costs start-up time otherwise)
      const chalk = this.colorfulErr ? (await import('chalk')).default : undefined
      const red = (s: string) => chalk?.red(s) ?? s
      const dim = (s: string) => chalk?.dim(s) ?? s
      process.stderr.write(redact(`${red('error:')} ${cliError.message}`) + '\n')
      if (cliError.hint) process.stderr.write(redact(dim(`hint: ${cliError.hint}`)) + '\n')
    }
    if (process.env.DEBUG && error.stack) process.stderr.write(redact(error.stack) + '\n')
    process.exitCode = cliError.exitCode
  }
}

const PARSE_ERROR_NAMES = /Parse|Args|Flags?|Validation|InvalidOption|Constraint/

function asUsageError(error: unknown, id: string | undefined): unknown {
  if (error instanceof CliError) return error
  if (error instanceof Error) {
    // oclif's parse errors span lines ("Parsing --port\n\tExpected an integer…\nSee more help…"): make one.
    const message = error.message
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith('See more help'))
      .join(': ')
      .replace(/:\s*:/g, ':')
    return new UsageError(message, {hint: `see \`singularity ${(id ?? '').replaceAll(':', ' ')} --help\``, cause: error})
  }
  return error
}

function classify(error: unknown, id: string | undefined): CliError {
  if (error instanceof CliError) return error
  const e = error as Error & {parse?: unknown; code?: string; oclif?: {exit?: number}; signal?: string}
  if (e && (e.parse !== undefined || PARSE_ERROR_NAMES.test(e.constructor?.name ?? ''))) {
    return asUsageError(e, id) as CliError
  }
  if (e?.code === 'SIGINT' || e?.signal === 'SIGINT') return new CliError('interrupted', {exitCode: ExitCode.interrupted, code: 'INTERRUPTED'})
  const fromPg = toCliError(error)
  if (fromPg) return fromPg
  const message = (e?.message ?? String(error)).split('\n')[0]
  return new CliError(message, {hint: 'run with DEBUG=1 for the stack trace', code: 'FAILURE'})
}
