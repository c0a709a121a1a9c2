import {createHash} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'

/**
 * The files of pg that the bundled CLI replaces (esbuild.config.mjs), each with the sha256 of pg's
 * file that the replacement was written for. The build refuses (fails, naming the file) when pg's
 * file is not that one any more: a replacement is reviewed against pg's new file, never shipped
 * silently in place of code it no longer matches. To accept a new pg: compare pg's file with the
 * replacement (and test/unit/startup.test.ts), adapt the replacement, then update the sha256 here.
 */
export interface PgReplacement {
  /** path inside the pg package */
  file: string
  /** our module, relative to dist/ (compiled from src/) */
  by: string
  /** sha256 (hex) of pg's file the replacement was written for (pg 8.23.1) */
  sha256: string
}

export const PG_REPLACEMENTS: readonly PgReplacement[] = [
  {file: 'lib/crypto/utils.js', by: 'lib/startup/pg-crypto.js', sha256: 'a849cfe22d7590d79ddee76c8d7a058e2b67360a0d76683275d34133e5637117'},
  {file: 'lib/stream.js', by: 'lib/startup/pg-stream.js', sha256: '0bd4001775301604ddf7c94152e05f6f30a9354876717bdae2ab636d00eb12ba'},
]

/** Throws, naming the file, unless pg's file (under the pg package directory pgDir) is the one the replacement was written for. */
export function checkPgReplacement(pgDir: string, replacement: PgReplacement): void {
  const path = join(pgDir, replacement.file)
  let source: Buffer
  try {
    source = readFileSync(path)
  } catch {
    throw new Error(`pg/${replacement.file} is missing (${path}): src/lib/startup/${replacement.by.split('/').pop()!.replace(/\.js$/, '.ts')} replaces it; remove the replacement or adapt it to pg's new layout`)
  }
  const found = createHash('sha256').update(source).digest('hex')
  if (found !== replacement.sha256) {
    throw new Error(
      `pg/${replacement.file} (${path}) is not the file src/lib/startup/${replacement.by.split('/').pop()!.replace(/\.js$/, '.ts')} was written for ` +
        `(sha256 ${found.slice(0, 12)}…, expected ${replacement.sha256.slice(0, 12)}…): compare the two, adapt the replacement, then update its sha256 in src/lib/startup/replacements.ts`,
    )
  }
}

/** Checks every replacement; the first mismatch throws. */
export function checkPgReplacements(pgDir: string): void {
  for (const replacement of PG_REPLACEMENTS) checkPgReplacement(pgDir, replacement)
}
