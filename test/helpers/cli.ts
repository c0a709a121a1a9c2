import {spawn} from 'node:child_process'
import {dirname, join} from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'

import {adminUrl} from './db.js'

export const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'run.js')
const CLI = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'cli.js')).href

export interface CliResult {
  stdout: string
  stderr: string
  exitCode: number | null
  signal: NodeJS.Signals | null
  /** stdout parsed as one JSON document */
  json<T = any>(): T
  /** stdout parsed as JSON lines */
  jsonLines<T = any>(): T[]
}

export interface CliOptions {
  env?: Record<string, string | undefined>
  input?: string
  timeoutMs?: number
  /** do not point the CLI at the test server */
  noAdmin?: boolean
}

const INHERITED_NOISE = /^(PG|SINGULARITY_|DATABASE_URL$|GENESIS_|CENTRALCLOUD_|NEXUS_|SHARED_QUEUE_)/

/**
 * Runs the built CLI (bin/run.js → dist) as a user would, against the test server, with a clean
 * environment: the developer's own PG* and SINGULARITY_* settings never leak into a test.
 */
export async function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const env = cliEnvironment(options)
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {env, stdio: ['pipe', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    // A run that outlives its time fails the test naming the command: never a result to assert on.
    const timeoutMs = options.timeoutMs ?? 60_000
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, timeoutMs)
    child.on('error', reject)
    child.on('close', (exitCode, signal) => {
      clearTimeout(timer)
      if (timedOut) {
        reject(new Error(`timed out after ${timeoutMs / 1000}s waiting for \`singularity ${args.join(' ')}\` to exit (killed); stderr so far:\n${stderr}`))
        return
      }
      resolve(cliResult(stdout, stderr, exitCode, signal))
    })
    child.stdin.end(options.input ?? '')
  })
}

/** The environment a test's CLI run sees: the developer's PG* and SINGULARITY_* settings never leak in. */
export function cliEnvironment(options: Pick<CliOptions, 'env' | 'noAdmin'>): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !INHERITED_NOISE.test(k)) env[k] = v
  env.SINGULARITY_LOCAL_DIR = '/nonexistent/singularity-test-local'
  env.XDG_CONFIG_HOME = '/nonexistent/singularity-test-config'
  if (!options.noAdmin) env.SINGULARITY_ADMIN_URL = adminUrl()
  for (const [k, v] of Object.entries(options.env ?? {})) {
    if (v === undefined) delete env[k]
    else env[k] = v
  }
  return env
}

function cliResult(stdout: string, stderr: string, exitCode: number | null, signal: NodeJS.Signals | null): CliResult {
  return {
    stdout,
    stderr,
    exitCode,
    signal,
    json: () => JSON.parse(stdout),
    jsonLines: () => stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l)),
  }
}

let inProcessQueue: Promise<unknown> = Promise.resolve()

/**
 * The built CLI (dist/cli.js, what bin/run.js runs) called in this process: the same argv parsing,
 * command, stdout, stderr and exit code as runCli, without starting node each time (~0.3 s each). For
 * files that run the CLI many times for what it prints; runs wait for each other (the process's env,
 * stdout and exit code are borrowed for the run). Not for a run that reads stdin, is sent a signal, or
 * stops by process.exit before its end (the command-not-found hook, --watch, a second Ctrl-C): use
 * runCli there. A run still going after timeoutMs fails the test naming the command.
 */
export function runCliInProcess(args: string[], options: CliOptions = {}): Promise<CliResult> {
  if (options.input !== undefined) return Promise.reject(new Error('runCliInProcess has no stdin: use runCli'))
  const run = inProcessQueue.then(() => cliInProcess(args, options))
  inProcessQueue = run.catch(() => {})
  return run
}

async function cliInProcess(args: string[], options: CliOptions): Promise<CliResult> {
  // dist/ is loaded by Node itself, as bin/run.js loads it (vitest.config.ts: server.deps.external)
  const {run} = (await import(CLI)) as {run: (binUrl: string, argv: string[]) => Promise<unknown>}
  const timeoutMs = options.timeoutMs ?? 60_000
  let stdout = ''
  let stderr = ''
  let exitedWith: number | undefined
  const text = (chunk: unknown, encoding?: unknown) => (typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString(typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8'))
  const capture = (append: (s: string) => void) =>
    ((chunk: unknown, encoding?: unknown, callback?: unknown) => {
      append(text(chunk, encoding))
      const done = typeof encoding === 'function' ? encoding : callback
      if (typeof done === 'function') queueMicrotask(() => done())
      return true
    }) as typeof process.stdout.write
  // oclif's flush() leaves a once('drain') listener on stdout when the write did not block: one per
  // run, harmless in a CLI process, a leak (MaxListenersExceededWarning) in a test worker's
  const drainListeners = new Set(process.stdout.listeners('drain'))
  const saved = {env: process.env, exitCode: process.exitCode, stdout: process.stdout.write, stderr: process.stderr.write, exit: process.exit, log: console.log, info: console.info, warn: console.warn, error: console.error}
  process.env = cliEnvironment(options)
  process.exitCode = undefined
  process.stdout.write = capture((s) => (stdout += s))
  process.stderr.write = capture((s) => (stderr += s))
  const line = (append: (s: string) => void) => (...parts: unknown[]) => append(parts.map(String).join(' ') + '\n')
  console.log = console.info = line((s) => (stdout += s))
  console.warn = console.error = line((s) => (stderr += s))
  // oclif's error handler ends with process.exit(code): the first code is the run's
  process.exit = ((code?: number) => {
    exitedWith ??= code ?? 0
  }) as typeof process.exit
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      run(pathToFileURL(BIN).href, args),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs / 1000}s waiting for \`singularity ${args.join(' ')}\` (in process); stderr so far:\n${stderr}`)), timeoutMs)
      }),
    ])
    const exitCode = exitedWith ?? (typeof process.exitCode === 'number' ? process.exitCode : Number(process.exitCode ?? 0))
    return cliResult(stdout, stderr, exitCode, null)
  } finally {
    clearTimeout(timer)
    process.env = saved.env
    process.exitCode = saved.exitCode
    process.stdout.write = saved.stdout
    process.stderr.write = saved.stderr
    process.exit = saved.exit
    Object.assign(console, {log: saved.log, info: saved.info, warn: saved.warn, error: saved.error})
    for (const listener of process.stdout.listeners('drain')) if (!drainListeners.has(listener)) process.stdout.removeListener('drain', listener as (...args: unknown[]) => void)
  }
}
