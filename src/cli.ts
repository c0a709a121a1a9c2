import {readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import type {Interfaces} from '@oclif/core'
import {execute} from '@oclif/core/execute'

/**
 * What bin/run.js runs: oclif's own `execute`, except that a run of one of our own commands (not
 * help, not --version) loads the configuration without the help and autocomplete plugins, which only
 * add the `help` and `autocomplete` commands (~7 ms). Why each start-up trick exists, and its figure:
 * the comment block at the top of esbuild.config.mjs. test/unit/startup.test.ts checks this fast path
 * against oclif's own resolution for every command id in oclif.manifest.json.
 */
export async function run(binUrl: string, argv: string[] = process.argv.slice(2)): Promise<unknown> {
  const root = dirname(dirname(fileURLToPath(binUrl)))
  const pjson = ownCommandRun(root, argv)
  if (pjson) return execute({args: argv, loadOptions: {root, pjson: {...pjson, oclif: {...pjson.oclif, plugins: []}}}})
  return execute({args: argv, dir: binUrl})
}

interface ManifestCommand {
  args?: Record<string, unknown>
  strict?: boolean
}

/**
 * The package.json when argv runs one of this package's commands (per oclif.manifest.json) without
 * asking for help; otherwise undefined, and oclif handles everything, plugins included.
 */
export function ownCommandRun(root: string, argv: string[]): Interfaces.PJSON | undefined {
  try {
    const pjson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Interfaces.PJSON
    if (argv.length === 0 || pjson.oclif.topicSeparator !== ' ') return undefined
    const helpFlags = new Set(['--help', ...(pjson.oclif.additionalHelpFlags ?? [])])
    for (const arg of argv) {
      if (arg === '--') break
      if (helpFlags.has(arg)) return undefined
    }
    const manifest = JSON.parse(readFileSync(join(root, 'oclif.manifest.json'), 'utf8')) as {commands?: Record<string, ManifestCommand>}
    const commands = manifest.commands ?? {}
    return Object.hasOwn(commands, commandId(argv, commands)) ? pjson : undefined
  } catch {
    return undefined
  }
}

/** The command id oclif reads from space-separated words (its collateSpacedCmdIDFromArgs). */
export function commandId(argv: string[], commands: Record<string, ManifestCommand>): string {
  if (argv.length === 1) return argv[0]
  const usable = new Set(Object.keys(commands).flatMap((id) => id.split(':').map((_, i, parts) => parts.slice(0, i + 1).join(':'))))
  const words: string[] = []
  for (const arg of argv) {
    const current = words.join(':')
    const command = current ? commands[current] : undefined
    const takesArgs = Boolean(command && (command.strict === false || Object.keys(command.args ?? {}).length > 0))
    if (usable.has([...words, arg].join(':'))) words.push(arg)
    else if (arg.includes('=') || arg.startsWith('-') || takesArgs) break
    else words.push(arg)
  }
  return words.join(':') || argv[0]
}
