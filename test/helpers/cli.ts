import {spawn} from 'node:child_process'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {adminUrl} from './db.js'

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'run.js')

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
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !INHERITED_NOISE.test(k)) env[k] = v
  env.SINGULARITY_LOCAL_DIR = '/nonexistent/singularity-test-local'
  env.XDG_CONFIG_HOME = '/nonexistent/singularity-test-config'
  if (!options.noAdmin) env.SINGULARITY_ADMIN_URL = adminUrl()
  for (const [k, v] of Object.entries(options.env ?? {})) {
    if (v === undefined) delete env[k]
    else env[k] = v
  }
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
      resolve({
        stdout,
        stderr,
        exitCode,
        signal,
        json: () => JSON.parse(stdout),
        jsonLines: () => stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l)),
      })
    })
    child.stdin.end(options.input ?? '')
  })
}
