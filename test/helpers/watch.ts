import {spawn} from 'node:child_process'

import {BIN, cliEnvironment, type CliOptions} from './cli.js'

/** A running `--watch` command (stdout a pipe, so NDJSON ticks), in the same clean environment as runCli. */
export interface Watched {
  /** every tick so far, parsed */
  docs(): any[]
  readonly stderr: string
  /** waits (up to 90 s, generous for a loaded machine) for a tick from index `after` on that satisfies pred; its index is `_index` */
  waitFor(what: string, pred: (doc: any) => boolean, after?: number): Promise<any>
  /** Ctrl-C, then how it exited */
  interrupt(): Promise<{code: number | null; signal: NodeJS.Signals | null}>
  kill(): void
}

export function watchCli(args: string[], options: Pick<CliOptions, 'env' | 'noAdmin'> = {}): Watched {
  const child = spawn(process.execPath, [BIN, ...args], {env: cliEnvironment(options), stdio: ['ignore', 'pipe', 'pipe']})
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  const exited = new Promise<{code: number | null; signal: NodeJS.Signals | null}>((resolve) => child.on('exit', (code, signal) => resolve({code, signal})))
  const docs = () => stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line))
  return {
    docs,
    get stderr() {
      return stderr
    },
    async waitFor(what, pred, after = 0) {
      for (let i = 0; i < 900; i++) {
        const all = docs()
        const index = all.findIndex((d, k) => k >= after && pred(d))
        if (index !== -1) return {...all[index], _index: index}
        await new Promise((r) => setTimeout(r, 100))
      }
      throw new Error(`timed out waiting for a tick with ${what}; stderr: ${stderr}`)
    },
    async interrupt() {
      child.kill('SIGINT')
      return exited
    },
    kill: () => child.kill('SIGKILL'),
  }
}
