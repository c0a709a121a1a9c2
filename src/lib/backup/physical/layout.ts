/**
 * Where physical backups live: one pgBackRest repository per backup directory, under
 * <backup dir>/physical/, with the set-up recorded in setup.json so that every later command
 * (backup, list, verify, restore, doctor) finds the stanza and its configuration without asking.
 */
import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {z} from 'zod'

import {NotFoundError} from '../../cli/errors.js'
import {repoKeyFile} from './cipher.js'

export const physicalLayout = (backupDir: string) => {
  const root = join(backupDir, 'physical')
  return {
    root,
    config: join(root, 'pgbackrest.conf'),
    /** an empty include directory of our own, so /etc/pgbackrest/conf.d never leaks into our stanza */
    includeDir: join(root, 'conf.d'),
    repo: join(root, 'repo'),
    log: join(root, 'log'),
    lock: join(root, 'lock'),
    setup: join(root, 'setup.json'),
  }
}

export const retentionSchema = z.object({
  /** full backups kept: a count, or days when fullType is 'time' */
  full: z.number().int().min(1),
  fullType: z.enum(['count', 'time']),
  /** differential backups kept (their incrementals go with them) */
  diff: z.number().int().min(1),
  /** WAL for point-in-time recovery is kept back to the oldest of this many newest diff/full backups */
  archiveDiffs: z.number().int().min(1),
})
export type PhysicalRetention = z.infer<typeof retentionSchema>

export const setupSchema = z.object({
  version: z.literal(1),
  stanza: z.string(),
  /** host: this machine runs the server and pgBackRest; remote: instructions were printed only */
  mode: z.enum(['host', 'remote']),
  dataDir: z.string(),
  port: z.number().int(),
  socketDir: z.string().nullable(),
  /** database role pgBackRest connects as (a superuser) */
  dbUser: z.string(),
  /** OS user that owns the data directory: PostgreSQL and pgBackRest run as this user */
  osUser: z.string(),
  /** PostgreSQL server binaries (pg_ctl) of this cluster */
  binDir: z.string(),
  /** the local cluster's directory when the server is `singularity local` */
  localDir: z.string().nullable(),
  archiveTimeoutSeconds: z.number().int(),
  retention: retentionSchema,
  /** pgBackRest's repository cipher; null or absent (set up before encryption): not encrypted */
  cipher: z
    .object({type: z.literal('aes-256-cbc'), keyId: z.string().regex(/^[0-9a-f]{32}$/), keyFile: z.string(), includeDir: z.string()})
    .nullable()
    .optional(),
  setupAt: z.string(),
})
export type PhysicalSetup = z.infer<typeof setupSchema>

/**
 * The recorded set-up of a backup directory, or undefined when physical backups were never set up
 * there. `keyFile` (--key-file) overrides where the repository's key is read from.
 */
export function readPhysicalSetup(backupDir: string, keyFile?: string): PhysicalSetup | undefined {
  const file = physicalLayout(backupDir).setup
  if (!existsSync(file)) return undefined
  const parsed = setupSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')))
  if (!parsed.success) return undefined
  const setup = parsed.data
  if (setup.cipher) setup.cipher = {...setup.cipher, keyFile: repoKeyFile(setup.cipher, keyFile)}
  return setup
}

/** The set-up, or exit 4 naming the command that makes one. */
export function requirePhysicalSetup(backupDir: string, keyFile?: string): PhysicalSetup {
  const setup = readPhysicalSetup(backupDir, keyFile)
  if (!setup || setup.mode !== 'host') {
    throw new NotFoundError(`physical backups are not set up in ${backupDir}`, {
      hint: 'run `singularity backup setup --physical` first (or pass the --dir it was set up with)',
      code: 'PHYSICAL_NOT_SET_UP',
    })
  }
  return setup
}

/** pgBackRest's backup labels: 20261125-163835F, 20261125-163835F_20261125-170000D / …I. */
export const PHYSICAL_LABEL = /^\d{8}-\d{6}F(?:_\d{8}-\d{6}[DI])?$/
