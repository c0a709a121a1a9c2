import {execFileSync} from 'node:child_process'
import {chmodSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {adminUrl} from './db.js'

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'run.js')
const DONE = '__SINGULARITY_DONE__'

export interface Screen {
  /** the pane's text, wrapped lines joined back (capture-pane -J), trailing blank lines dropped */
  lines: string[]
  exitCode: number
  width: number
}

/**
 * Runs the built CLI in a real pseudo-terminal: a detached tmux session of the given width on a
 * socket of its own, then captures the pane (-J joins lines the terminal wrapped, so a line wider
 * than the pane shows up wider). The session and server are removed afterwards.
 */
export class Terminal {
  private readonly socket = `singularity-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`
  private readonly dir = mkdtempSync(join(tmpdir(), 'singularity-tmux-'))
  private readonly conf = join(this.dir, 'tmux.conf')
  private runs = 0

  constructor(private readonly env: Record<string, string> = {}) {
    // a long output scrolls into the history, which the capture includes
    writeFileSync(this.conf, 'set -g history-limit 20000\nset -g status off\n')
  }

  private tmux(...args: string[]): string {
    return execFileSync('tmux', ['-L', this.socket, '-f', this.conf, ...args], {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']})
  }

  async run(width: number, args: string[], options: {timeoutMs?: number} = {}): Promise<Screen> {
    const session = `s${++this.runs}`
    const script = join(this.dir, `${session}.sh`)
    const env = {
      SINGULARITY_ADMIN_URL: adminUrl(),
      SINGULARITY_LOCAL_DIR: '/nonexistent/singularity-test-local',
      XDG_CONFIG_HOME: '/nonexistent/singularity-test-config',
      TERM: 'xterm-256color',
      ...this.env,
    }
    const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`
    writeFileSync(
      script,
      [
        '#!/bin/sh',
        'unset NO_COLOR CI COLUMNS LINES',
        ...Object.entries(env).map(([k, v]) => `export ${k}=${quote(v)}`),
        `${quote(process.execPath)} ${quote(BIN)} ${args.map(quote).join(' ')}`,
        `echo "${DONE}$?"`,
        'sleep 600',
      ].join('\n') + '\n',
    )
    chmodSync(script, 0o700)
    this.tmux('new-session', '-d', '-s', session, '-x', String(width), '-y', '50', `sh ${script}`)
    const deadline = Date.now() + (options.timeoutMs ?? 90_000)
    let text = ''
    try {
      for (;;) {
        text = this.tmux('capture-pane', '-p', '-J', '-S', '-', '-t', session)
        if (text.includes(DONE)) break
        if (Date.now() > deadline) throw new Error(`timed out waiting for \`singularity ${args.join(' ')}\` to finish in a ${width}-column tmux pane; screen so far:\n${text}`)
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
    } finally {
      this.tmux('kill-session', '-t', session)
    }
    const all = text.split('\n')
    const end = all.findIndex((l) => l.startsWith(DONE))
    const exitCode = Number(all[end].slice(DONE.length))
    const lines = all.slice(0, end)
    while (lines.length > 0 && lines[0].trim() === '') lines.shift()
    return {lines, exitCode, width}
  }

  close(): void {
    try {
      this.tmux('kill-server')
    } catch {
      // no session left: the server is already gone
    }
    rmSync(this.dir, {recursive: true, force: true})
  }
}
