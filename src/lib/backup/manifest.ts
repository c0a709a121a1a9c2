/**
 * The on-disk shape of a backup: `<dir>/<id>/` holds one `<db>.dump` (pg_dump -Fc) per database,
 * `globals.sql` (pg_dumpall --globals-only, mode 0600: it holds role password hashes) and
 * `manifest.json`; `verify.json` is written next to them by `backup verify`. A database whose queues
 * are members of the pgmq extension also has `<db>.queues` (their rows, see queue-file.ts).
 * A backup is written into `<dir>/.<id>.partial/` and renamed only once complete, so a directory
 * named like an id is complete by construction; partial ones are never listed as complete.
 */
import {z} from 'zod'

import {databaseGrantSchema} from './copies.js'
import {contentsSchema} from './snapshot.js'

export const BACKUP_KINDS = ['hourly', 'daily', 'monthly', 'manual'] as const
export type BackupKind = (typeof BACKUP_KINDS)[number]

export const MANIFEST_FILE = 'manifest.json'
export const VERIFY_FILE = 'verify.json'
export const GLOBALS_FILE = 'globals.sql'
export const MANIFEST_FORMAT = 1

/** 20261123T201500Z-hourly, or 20261123T201500Z-hourly-2 when two start in the same second. */
export const ID_PATTERN = /^(\d{8}T\d{6}Z)-(hourly|daily|monthly|manual)(?:-(\d{1,3}))?$/
const PARTIAL_PATTERN = /^\.(.+)\.partial$/
const DELETING_PATTERN = /^\.(.+)\.deleting$/

const fileEntry = z.object({
  file: z.string().regex(/^[A-Za-z0-9_.-]+$/),
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
})

export const databaseEntrySchema = fileEntry.extend({
  name: z.string(),
  kind: z.string(),
  owner: z.string().nullable(),
  encoding: z.string().nullable(),
  collate: z.string().nullable(),
  ctype: z.string().nullable(),
  databaseSize: z.number().nullable(),
  durationMs: z.number(),
  /** the database's grants (CONNECT/TEMPORARY/CREATE) at dump time: copies restored from it get the same */
  access: z.array(databaseGrantSchema).optional(),
  /** row counts and queues in the dump's snapshot (backups before this field have none) */
  contents: contentsSchema.optional(),
  /** rows of extension-member queues, which pg_dump does not write (null: none to carry) */
  queueFile: fileEntry.nullable().optional(),
})

export const manifestSchema = z.object({
  format: z.literal(MANIFEST_FORMAT),
  id: z.string().regex(ID_PATTERN),
  kind: z.enum(BACKUP_KINDS),
  status: z.enum(['running', 'complete', 'failed']),
  prefix: z.string(),
  startedAt: z.string(),
  endedAt: z.string().nullable(),
  server: z.object({version: z.string(), versionNum: z.number()}),
  tools: z.object({pgDump: z.string(), binDir: z.string()}),
  databases: z.array(databaseEntrySchema),
  globals: fileEntry.extend({rolePasswords: z.boolean()}).nullable(),
  /** several servers: the roles of each other server (globals-<server>.sql); `globals` is the admin server's */
  serverGlobals: z.array(fileEntry.extend({server: z.string(), rolePasswords: z.boolean()})).optional(),
  /** several servers: the server each database was dumped from (absent: the admin server) */
  placement: z.record(z.string(), z.string()).optional(),
  /** false: written with --no-encrypt (older backups: absent, not encrypted) */
  encrypted: z.boolean().optional(),
  /** every file of the backup is encrypted with this cipher and key (checksums are of the encrypted files) */
  encryption: z.object({cipher: z.string(), keyId: z.string().regex(/^[0-9a-f]{32}$/), chunkSize: z.number().int().positive()}).nullable().optional(),
  /** who is writing a partial backup (dropped once complete) */
  writer: z.object({pid: z.number(), host: z.string()}).optional(),
  error: z.string().optional(),
})

export type Manifest = z.infer<typeof manifestSchema>
export type DatabaseEntry = z.infer<typeof databaseEntrySchema>

export const verificationSchema = z.object({
  id: z.string(),
  ok: z.boolean(),
  verifiedAt: z.string(),
  pgRestore: z.string(),
  files: z.array(
    z.object({
      file: z.string(),
      ok: z.boolean(),
      size: z.number().nullable(),
      sha256: z.enum(['ok', 'mismatch', 'missing']),
      archive: z.enum(['ok', 'unreadable', 'n/a']),
      entries: z.number().nullable(),
      problem: z.string().nullable(),
      /** encrypted backups: every chunk's tag checked */
      decrypt: z.enum(['ok', 'failed']).optional(),
      /** `verify --restore-test`: the archive restored into a scratch database and compared with its manifest */
      restore: z
        .object({ok: z.boolean(), database: z.string(), scratch: z.string(), durationMs: z.number(), tables: z.number(), queues: z.number(), problems: z.array(z.string())})
        .optional(),
    }),
  ),
  restoreTested: z.boolean().optional(),
})

export type Verification = z.infer<typeof verificationSchema>

/** The id of a backup started at `at`: UTC, second precision, sortable as text. */
export function backupId(kind: BackupKind, at: Date, sequence = 0): string {
  const stamp = at.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '')
  return sequence > 0 ? `${stamp}-${kind}-${sequence}` : `${stamp}-${kind}`
}

/** Kind and start time read from an id, or undefined when the name is not an id. */
export function parseBackupId(id: string): {kind: BackupKind; startedAt: Date; sequence: number} | undefined {
  const m = ID_PATTERN.exec(id)
  if (!m) return undefined
  const s = m[1]
  const startedAt = new Date(`${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}T${s.slice(9, 11)}:${s.slice(11, 13)}:${s.slice(13, 15)}Z`)
  if (Number.isNaN(startedAt.getTime())) return undefined
  return {kind: m[2] as BackupKind, startedAt, sequence: m[3] ? Number(m[3]) : 0}
}

export const partialDirName = (id: string) => `.${id}.partial`
export const deletingDirName = (id: string) => `.${id}.deleting`

/** What a directory entry of the backup dir is. */
export function classifyEntry(name: string): {type: 'backup' | 'partial' | 'deleting'; id: string} | undefined {
  if (ID_PATTERN.test(name)) return {type: 'backup', id: name}
  const partial = PARTIAL_PATTERN.exec(name)
  if (partial && ID_PATTERN.test(partial[1])) return {type: 'partial', id: partial[1]}
  const deleting = DELETING_PATTERN.exec(name)
  if (deleting && ID_PATTERN.test(deleting[1])) return {type: 'deleting', id: deleting[1]}
  return undefined
}

/** File name of a database's archive inside a backup. */
export const dumpFileName = (database: string) => `${database}.dump`
