import {readFileSync, writeFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {dirname, join} from 'node:path'
import vm from 'node:vm'

import {packageRoot} from '../paths.js'

/**
 * @oclif/core for the bundled CLI (esbuild.config.mjs): one CommonJS file, dist/vendor/oclif.cjs,
 * compiled with the V8 code cache that `npm run build` records next to it (oclif.cjs.cache), so
 * that most of oclif's ~550 kB is neither parsed nor compiled again on each run (~25 ms). A cache
 * from another Node version is rejected by V8 and the file is simply compiled, as without it.
 * Our modules import oclif's entry points (`@oclif/core`, `@oclif/core/flags`, …) through small
 * modules the bundler generates, which call vendorModule().
 */

let modules: Record<string, unknown> | undefined

/** One of @oclif/core's entry points ('@oclif/core', '@oclif/core/flags', …), loaded on first use. */
export function vendorModule(specifier: string): unknown {
  modules ??= load()
  return modules[specifier]
}

/** Set by the build to record the code cache after a run. */
export const WRITE_CACHE_ENV = 'SINGULARITY_BUILD_CODE_CACHE'

function load(): Record<string, unknown> {
  const file = join(packageRoot(), 'dist', 'vendor', 'oclif.cjs')
  const cacheFile = `${file}.cache`
  let cachedData: Buffer | undefined
  try {
    cachedData = readFileSync(cacheFile)
  } catch {
    // no cache: compiled as usual
  }
  // A CommonJS module's wrapper, plus __import: the build turned oclif's import() (of our commands
  // and hooks) into calls of it, as a script compiled by vm cannot import.
  const source = `(function (exports, require, module, __filename, __dirname, __import) {${readFileSync(file, 'utf8')}\n})`
  const script = new vm.Script(source, {filename: file, cachedData})
  const module = {exports: {} as Record<string, unknown>}
  const wrapper = script.runInThisContext() as (...args: unknown[]) => void
  const dynamicImport = (specifier: string) => import(specifier)
  wrapper.call(module.exports, module.exports, createRequire(file), module, file, dirname(file), dynamicImport)
  if (process.env[WRITE_CACHE_ENV] === cacheFile) {
    process.once('exit', () => writeFileSync(cacheFile, script.createCachedData()))
  }
  return module.exports
}
