// Bundles the compiled CLI in place, for start-up speed (bench/startup.sh: `ping` <= 3x psql).
// `npm run build` runs it after tsc; without esbuild installed it leaves tsc's output alone (the same
// CLI, slower to start). The tricks, why each exists, and what it saved when it was measured:
// - every command file, hook and dist/cli.js becomes an entry importing a few shared chunks
//   (dist/chunks/: our modules, pg and zod) instead of hundreds of files resolved and compiled one by
//   one; modules listed in COMMON must exist (the build fails naming a missing one);
// - @oclif/core goes to one CommonJS file, dist/vendor/oclif.cjs, which src/lib/startup/vendor.ts
//   compiles with the V8 code cache recorded here from one run (~25 ms); oclif's import() calls are
//   rewritten to __import() (a vm script cannot import), and the build fails if none is found;
// - in pg, lib/crypto/utils.js (WebCrypto, ~25-50 ms per connecting command) and lib/stream.js (a
//   Cloudflare probe that loads undici, ~40 ms on Node 20) are replaced by src/lib/startup/pg-*.ts.
//   src/lib/startup/replacements.ts holds the sha256 of the pg file each was written for: when pg's
//   file differs, the build FAILS naming it (test/unit/startup.test.ts alters a copy to show it);
// - src/cli.ts skips loading the help/autocomplete plugins for our own commands (~7 ms);
// - other packages (execa, cli-table3, chalk, ora…) stay external and load where they are used.
import {spawnSync} from 'node:child_process'
import {existsSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {dirname, join, resolve, sep} from 'node:path'

const dist = 'dist'
const MARK = '/* singularity: bundled by esbuild.config.mjs */'
const BUNDLED = /^(pg|zod)(\/|$)/
// TypeScript loaders oclif looks for in development, and pg's optional native and Cloudflare drivers.
const NEVER = /^(typescript|ts-node|tsx|pnpapi|pg-native|pg-cloudflare)(\/|$)/

let esbuild
try {
  esbuild = await import('esbuild')
} catch {
  console.warn('esbuild.config.mjs: esbuild is not installed; dist/ stays unbundled (slower start-up).')
  process.exit(0)
}
if (!existsSync(join(dist, 'cli.js'))) throw new Error('esbuild.config.mjs: dist/cli.js is missing: run tsc first')
if (readFileSync(join(dist, 'cli.js'), 'utf8').startsWith(MARK)) {
  console.warn('esbuild.config.mjs: dist/ is already bundled; run tsc first to bundle again.')
  process.exit(0)
}

// pg's files replaced by ours: refused (the build fails, naming the file) unless pg's file is the one
// the replacement was written for.
const {PG_REPLACEMENTS, checkPgReplacements} = await import(resolve(dist, 'lib/startup/replacements.js'))
const require = createRequire(import.meta.url)
const pgDir = dirname(require.resolve('pg/package.json'))
try {
  checkPgReplacements(pgDir)
} catch (error) {
  console.error(`esbuild.config.mjs: ${error.message}`)
  process.exit(1)
}

const files = (dir) =>
  existsSync(dir) ? readdirSync(dir, {recursive: true}).map(String).filter((f) => f.endsWith('.js')).map((f) => join(dir, f)) : []
const entries = [join(dist, 'cli.js'), ...files(join(dist, 'commands')), ...files(join(dist, 'hooks'))]
// Modules most commands use. Every entry imports them all first, so esbuild puts them (and the oclif
// code they use) in one shared chunk, instead of one chunk per distinct set of commands using them.
const COMMON = [
  'base-command.js', 'flags.js', 'topology.js', 'lib/names.js',
  'lib/cli/errors.js', 'lib/cli/redact.js', 'lib/cli/terminal.js', 'lib/cli/format.js', 'lib/cli/table.js', 'lib/cli/confirm.js',
  'lib/config/resolve.js', 'lib/estate/targets.js', 'lib/db/connect.js',
].map((f) => resolve(dist, f))
for (const f of COMMON) if (!existsSync(f)) throw new Error(`esbuild.config.mjs: ${f} (listed in COMMON) does not exist: update the list`)
// Each entry is a wrapper: import the common modules, then re-export the compiled file it replaces.
const entryPoints = entries.map((file) => ({in: `entry:${resolve(file)}`, out: file.slice(dist.length + 1).replace(/\.js$/, '')}))

const replaced = []
rmSync(join(dist, 'chunks'), {recursive: true, force: true})
rmSync(join(dist, 'vendor'), {recursive: true, force: true})

// @oclif/core as one CommonJS file that src/lib/startup/vendor.ts compiles with a V8 code cache.
// Each entry point is a getter: only the ones used are evaluated (`@oclif/core` itself is not, for most).
const oclifEntries = Object.keys(require('@oclif/core/package.json').exports)
  .filter((p) => !p.endsWith('.json'))
  .map((p) => `@oclif/core${p.slice(1)}`)
await esbuild.build({
  stdin: {
    contents: `module.exports = {\n${oclifEntries.map((e) => `  get ${JSON.stringify(e)}() { return require(${JSON.stringify(e)}) },`).join('\n')}\n}\n`,
    resolveDir: '.',
    sourcefile: 'oclif-vendor.cjs',
    loader: 'js',
  },
  outfile: join(dist, 'vendor', 'oclif.cjs'),
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  logLevel: 'warning',
  external: ['typescript', 'ts-node', 'tsx', 'pnpapi'],
})
// A script compiled with vm has no import(): oclif's dynamic imports (of our commands and hooks) call
// __import, which src/lib/startup/vendor.ts passes in, instead.
{
  const file = join(dist, 'vendor', 'oclif.cjs')
  const source = readFileSync(file, 'utf8')
  const dynamicImport = /(?<![\w$.'"`])import\(/g
  if (!dynamicImport.test(source)) throw new Error('esbuild.config.mjs: no import() found in the vendored @oclif/core')
  writeFileSync(file, source.replaceAll(dynamicImport, '__import('))
}
/** A module standing for one oclif entry point in our bundle: the vendored module's exports. */
function oclifShim(specifier) {
  const names = Object.keys(require(specifier)).filter((n) => n !== 'default' && /^[A-Za-z_$][\w$]*$/.test(n))
  return [
    `import {vendorModule} from ${JSON.stringify(resolve(dist, 'lib/startup/vendor.js'))}`,
    `const m = vendorModule(${JSON.stringify(specifier)})`,
    `export const {${names.join(', ')}} = m`,
    'export default m',
  ].join('\n')
}
await esbuild.build({
  entryPoints,
  outdir: dist,
  outbase: dist,
  allowOverwrite: true,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  chunkNames: 'chunks/[name]-[hash]',
  logLevel: 'warning',
  // CommonJS code inside the bundle needs require, __filename and __dirname in an ES module.
  banner: {
    js: `${MARK}
import {createRequire as __bundleRequire} from 'node:module'; import {fileURLToPath as __bundlePath} from 'node:url'; import {dirname as __bundleDir} from 'node:path';
const require = __bundleRequire(import.meta.url); const __filename = __bundlePath(import.meta.url); const __dirname = __bundleDir(__filename);`,
  },
  plugins: [
    {
      name: 'singularity',
      setup(build) {
        build.onResolve({filter: /^(entry:|common$)/}, (args) => ({path: args.path.replace(/^entry:/, ''), namespace: args.path.startsWith('entry:') ? 'entry' : 'common'}))
        // Our own dynamic imports are entries too: wrap them the same way, so they share that chunk.
        build.onResolve({filter: /^\./}, (args) => {
          if (args.kind !== 'dynamic-import' || args.importer.includes(`${sep}node_modules${sep}`)) return undefined
          return {path: resolve(args.resolveDir, args.path), namespace: 'entry'}
        })
        build.onLoad({filter: /.*/, namespace: 'common'}, () => ({contents: COMMON.map((f) => `import ${JSON.stringify(f)}`).join('\n'), loader: 'js', resolveDir: resolve(dist)}))
        build.onLoad({filter: /.*/, namespace: 'entry'}, (args) => {
          const source = readFileSync(args.path, 'utf8')
          const file = JSON.stringify(args.path)
          const hasDefault = /^export default |^export \{[^}]*\bdefault\b/m.test(source)
          return {contents: `import 'common'\nexport * from ${file}\n${hasDefault ? `export {default} from ${file}\n` : ''}`, loader: 'js', resolveDir: dirname(args.path)}
        })
        // Our imports of @oclif/core go to the vendored copy (one copy of oclif for the whole CLI).
        build.onResolve({filter: /^@oclif\/core(\/|$)/}, (args) => {
          if (args.importer.includes(`${sep}node_modules${sep}`)) return undefined
          if (!oclifEntries.includes(args.path)) throw new Error(`esbuild.config.mjs: ${args.path} is not an entry point of @oclif/core`)
          return {path: args.path, namespace: 'oclif'}
        })
        build.onLoad({filter: /.*/, namespace: 'oclif'}, (args) => ({contents: oclifShim(args.path), loader: 'js', resolveDir: resolve(dist)}))
        // Bare specifiers: bundled when imported by a bundled package or named in BUNDLED, else external.
        build.onResolve({filter: /^[^./]/}, (args) => {
          if (args.path.startsWith('node:') || NEVER.test(args.path)) return {external: true}
          if (args.importer.includes(`${sep}node_modules${sep}`) || BUNDLED.test(args.path)) return undefined
          return {external: true}
        })
        for (const {file, by} of PG_REPLACEMENTS) {
          const path = join(pgDir, file)
          build.onLoad({filter: new RegExp(`${file.split('/').at(-1).replace('.', '\\.')}$`)}, (args) => {
            if (args.path !== path) return undefined
            replaced.push(`pg/${file}`)
            return {contents: `export * from ${JSON.stringify(resolve(dist, by))}`, loader: 'js', resolveDir: dirname(args.path)}
          })
        }
      },
    },
  ],
})
// A replacement whose file pg no longer loads would be dead code: fail rather than ship it unnoticed.
for (const {file} of PG_REPLACEMENTS) {
  if (!replaced.includes(`pg/${file}`)) throw new Error(`esbuild.config.mjs: pg/${file} was never loaded by the bundle: its replacement is obsolete`)
}
// Record oclif's code cache from one real run of a command that needs no server (see vendor.ts).
const cacheFile = resolve(dist, 'vendor', 'oclif.cjs.cache')
const training = spawnSync(process.execPath, ['bin/run.js', 'local', 'env', '--json'], {
  env: {...process.env, SINGULARITY_BUILD_CODE_CACHE: cacheFile},
  stdio: 'ignore',
  timeout: 60_000,
})
if (!existsSync(cacheFile)) console.warn(`esbuild.config.mjs: no code cache recorded (exit ${training.status}); the CLI starts slower`)
console.log(`esbuild.config.mjs: bundled ${entryPoints.length} entries into ${dist}/${replaced.length > 0 ? `; replaced ${replaced.join(', ')}` : ''}`)
