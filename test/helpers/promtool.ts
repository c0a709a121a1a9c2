import {spawnSync} from 'node:child_process'

/** promtool's verdict on an exposition (Debian's prometheus package): its exit code and what it said. */
export function promtool(text: string): {status: number | null; output: string} {
  const result = spawnSync('promtool', ['check', 'metrics'], {input: text, encoding: 'utf8'})
  if (result.error) throw new Error(`promtool could not run (Debian package prometheus, .ci/install-deps.sh): ${result.error.message}`)
  return {status: result.status, output: `${result.stdout}${result.stderr}`}
}
