import {type Hook, toConfiguredId} from '@oclif/core'

/** Edit distance, for suggesting the closest command names. */
function distance(a: string, b: string): number {
  const row = Array.from({length: b.length + 1}, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1))
      previous = current
    }
  }
  return row[b.length]
}

/**
 * A mistyped command never runs a guess: we name the closest commands and exit 2 (usage).
 */
const hook: Hook<'command_not_found'> = async function (options) {
  const typed = toConfiguredId(options.id, options.config)
  const ids = options.config.commands.filter((c) => !c.hidden).map((c) => c.id)
  const closest = ids
    .map((id) => ({id, d: distance(options.id, id)}))
    .sort((x, y) => x.d - y.d)
    .slice(0, 3)
    .filter((x) => x.d <= Math.max(3, Math.floor(options.id.length / 2)))
    .map((x) => `\`${options.config.bin} ${toConfiguredId(x.id, options.config)}\``)
  const json = (options.argv ?? []).includes('--json')
  const message = `'${typed}' is not a ${options.config.bin} command`
  const hint = closest.length > 0 ? `did you mean ${closest.join(' or ')}? See \`${options.config.bin} --help\`` : `see \`${options.config.bin} --help\``
  if (json) process.stdout.write(JSON.stringify({error: {code: 'UNKNOWN_COMMAND', message, hint, exitCode: 2}}, null, 2) + '\n')
  else process.stderr.write(`error: ${message}\nhint: ${hint}\n`)
  process.exit(2)
}

export default hook
