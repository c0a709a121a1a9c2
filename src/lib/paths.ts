import {existsSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

let root: string | undefined

/** The package root (where package.json and sql/ live), found from this file in src/ or dist/. */
export function packageRoot(): string {
  if (root) return root
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'sql'))) {
    const parent = dirname(dir)
    if (parent === dir) throw new Error('cannot find the singularity package root (package.json + sql/)')
    dir = parent
  }
  root = dir
  return root
}

export const sqlDir = (): string => join(packageRoot(), 'sql')
