import {execFileSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {adminUrl, provisionedEstate, urlFor, withClient} from '../helpers/db.js'
import {waitFor} from '../helpers/wait.js'

// The CLI in a real terminal: tmux gives it a pseudo-terminal (stderr is a TTY, as for a person).
// pipe-pane records every byte written to the pane; capture-pane shows what the screen holds.
const P = 't_tty_'
const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'run.js')
const SOCKET = `singularity-test-${process.pid}`
const scratch = mkdtempSync(join(tmpdir(), 'sing-tty-'))
const tmux = (...args: string[]) => execFileSync('tmux', ['-L', SOCKET, ...args], {encoding: 'utf8'})
let sessions = 0

/** Runs a shell command line in a new tmux window of 120x30; returns its name, recording file and the screen reader. */
function inTerminal(commandLine: string, env: Record<string, string> = {}) {
  const name = `w${++sessions}`
  const record = join(scratch, `${name}.bytes`)
  const script = join(scratch, `${name}.sh`)
  const exports = Object.entries({SINGULARITY_ADMIN_URL: adminUrl(), SINGULARITY_LOCAL_DIR: '/nonexistent/singularity-test-local', XDG_CONFIG_HOME: '/nonexistent/singularity-test-config', TERM: 'xterm-256color', ...env})
    .map(([k, v]) => `export ${k}='${v}'`)
    .join('\n')
  // unset: nothing of the developer's shell reaches the CLI; the exit code is printed for the test
  writeFileSync(script, `unset NO_COLOR CI PGHOST PGPORT PGUSER PGDATABASE PGPASSWORD\n${exports}\n${commandLine}\necho "EXIT=$?"\nsleep 600\n`)
  writeFileSync(record, '')
  tmux('new-session', '-d', '-s', name, '-x', '120', '-y', '30', `bash ${script}`)
  tmux('pipe-pane', '-t', name, '-o', `cat >> ${record}`)
  return {
    name,
    screen: () => tmux('capture-pane', '-p', '-t', name),
    bytes: () => readFileSync(record, 'utf8'),
  }
}

const SPINNER_FRAMES = /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/

beforeAll(async () => {
  execFileSync('tmux', ['-V']) // tmux is installed by .ci/install-deps.sh; its absence fails here, by name
  await provisionedEstate(P, join(scratch, 'pw.json'))
}, 240_000)

afterAll(() => {
  try {
    tmux('kill-server')
  } catch {
    // no session left
  }
  rmSync(scratch, {recursive: true, force: true})
})

// Every cdc tail here follows learned_patterns only: the CDC bridge's pg_cron job writes its cursor row
// every minute, which an unfiltered tail would rightly show as a change.
describe('progress in a real terminal (tmux)', () => {
  it('cdc tail shows a spinner while waiting for its first change; it ends cleanly and the command exits', async () => {
    const t = inTerminal(`node ${BIN} cdc tail --prefix ${P} --table learned_patterns --timeout 8s`)
    await waitFor('the spinner "waiting for the first change…" on the screen', () => /waiting for the first change/.test(t.screen()) && SPINNER_FRAMES.test(t.screen()), {timeoutMs: 60_000})
    const screen = await waitFor('cdc tail to exit after its --timeout', () => (/EXIT=\d+/.test(t.screen()) ? t.screen() : undefined), {timeoutMs: 60_000})
    expect(screen).toMatch(/EXIT=0/)
    expect(screen).toMatch(/cdc tail: 0 changes \(timeout\)/)
    // ended cleanly: the spinner's line is gone from the screen, and the cursor shown again
    expect(screen).not.toMatch(/waiting for the first change/)
    expect(screen).not.toMatch(SPINNER_FRAMES)
    expect(t.bytes()).toContain('\u001B[?25h')
  }, 200_000)

  it('run outside the foreground process group (under `timeout`), the spinner neither stops nor freezes the command', async () => {
    // ora's default (stdin in raw mode) froze here: SIGTTOU stops a background group touching the terminal
    const t = inTerminal(`timeout 60 node ${BIN} cdc tail --prefix ${P} --table learned_patterns --timeout 6s`)
    await waitFor('the spinner on the screen', () => /waiting for the first change/.test(t.screen()), {timeoutMs: 60_000})
    const screen = await waitFor('cdc tail to exit after its --timeout', () => (/EXIT=\d+/.test(t.screen()) ? t.screen() : undefined), {timeoutMs: 60_000})
    expect(screen).toMatch(/EXIT=0/)
    expect(screen).toMatch(/cdc tail: 0 changes \(timeout\)/)
    expect(screen).not.toMatch(SPINNER_FRAMES)
  }, 200_000)

  it('the first change ends the spinner before the line is printed', async () => {
    const t = inTerminal(`node ${BIN} cdc tail --prefix ${P} --limit 1 --table learned_patterns`)
    await waitFor('the spinner on the screen', () => /waiting for the first change/.test(t.screen()), {timeoutMs: 60_000})
    await withClient(urlFor(`${P}singularity`), (c) => c.query(`INSERT INTO learned_patterns (pattern, confidence) VALUES ('{"kind":"tty"}', 0.5)`))
    const screen = await waitFor('cdc tail to print the change and exit', () => (/EXIT=\d+/.test(t.screen()) ? t.screen() : undefined), {timeoutMs: 60_000})
    expect(screen).toMatch(/EXIT=0/)
    expect(screen).toMatch(/learned_patterns/)
    expect(screen).not.toMatch(/waiting for the first change/)
    expect(screen).not.toMatch(SPINNER_FRAMES)
  }, 200_000)

  it('when the stream fails while the spinner spins, it stops and the command exits 1 (no hang)', async () => {
    const t = inTerminal(`node ${BIN} cdc tail --prefix ${P} --table learned_patterns`)
    await waitFor('the spinner on the screen', () => /waiting for the first change/.test(t.screen()), {timeoutMs: 60_000})
    await withClient(adminUrl(), (c) => c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'singularity cdc tail' AND backend_type = 'walsender'"))
    const screen = await waitFor('cdc tail to exit after its connection was ended', () => (/EXIT=\d+/.test(t.screen()) ? t.screen() : undefined), {timeoutMs: 60_000})
    expect(screen).toMatch(/EXIT=1/)
    expect(screen).toMatch(/error:/)
    expect(screen).not.toMatch(/waiting for the first change/)
    expect(screen).not.toMatch(SPINNER_FRAMES)
  }, 200_000)

  it('no spinner with NO_COLOR, with --json, or with TERM=dumb: not one frame is ever written', async () => {
    const runs = [
      inTerminal(`node ${BIN} cdc tail --prefix ${P} --table learned_patterns --timeout 3s`, {NO_COLOR: '1'}),
      inTerminal(`node ${BIN} cdc tail --prefix ${P} --table learned_patterns --timeout 3s --json`),
      inTerminal(`node ${BIN} cdc tail --prefix ${P} --table learned_patterns --timeout 3s`, {TERM: 'dumb'}),
    ]
    for (const t of runs) {
      const screen = await waitFor(`cdc tail to exit (${t.name})`, () => (/EXIT=\d+/.test(t.screen()) ? t.screen() : undefined), {timeoutMs: 60_000})
      expect(screen).toMatch(/EXIT=0/)
      expect(t.bytes()).not.toMatch(SPINNER_FRAMES)
      expect(t.bytes()).not.toMatch(/waiting for the first change/)
    }
  }, 200_000)
})
