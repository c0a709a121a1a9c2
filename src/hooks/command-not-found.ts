import {type Hook, toConfiguredId} from '@oclif/core'

import {closestNames, typoLimit} from '../lib/cli/closest.js'

/**
 * A mistyped command never runs a guess: we name the closest commands and exit 2 (usage).
 */
const hook: Hook<'command_not_found'> = async function (options) {
  const typed = toConfiguredId(options.id, options.config)
  const ids = options.config.commands.filter((c) => !c.hidden).map((c) => c.id)
  const closest = closestNames(options.id, ids, {count: 3, maxDistance: typoLimit(options.id)}).map(
    (id) => `\`${options.config.bin} ${toConfiguredId(id, options.config)}\``,
  )
  const json = (options.argv ?? []).includes('--json')
  const message = `'${typed}' is not a ${options.config.bin} command`
  const hint = closest.length > 0 ? `did you mean ${closest.join(' or ')}? See \`${options.config.bin} --help\`` : `see \`${options.config.bin} --help\``
  if (json) process.stdout.write(JSON.stringify({error: {code: 'UNKNOWN_COMMAND', message, hint, exitCode: 2}}, null, 2) + '\n')
  else process.stderr.write(`error: ${message}\nhint: ${hint}\n`)
  process.exit(2)
}

export default hook
