import {createRequire} from 'node:module'

import type {z as Z} from 'zod'

// zod is loaded on first use only (it costs ~100 ms of start-up): a plainly valid setting is accepted
// by the same rule without it; zod decides every other value (and words the error), and validates the
// config file. Each `fast` rule below accepts exactly what its zod schema accepts, no more.

const PREFIX_RULE = /^([a-z][a-z0-9_]{0,19})?$/
/** A server name of the config file: a short word (it appears in tables and JSON). */
export const SERVER_NAME_RULE = /^[a-z][a-z0-9_-]{0,29}$/

/** Reading commands never visit more databases at once than this, whatever is configured. */
export const MAX_CONCURRENCY = 64
const DB_TIMEOUT_RULE = 'must be a duration between 100ms and 10m, e.g. 10s'
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m)?$/
const UNIT_SECONDS: Record<string, number> = {ms: 0.001, s: 1, m: 60}

/** A per-database timeout (100ms … 10m) in seconds; undefined when not one. */
export function dbTimeoutSeconds(value: unknown): number | undefined {
  const match = typeof value === 'string' ? DURATION.exec(value.trim()) : null
  if (!match) return undefined
  const seconds = Number(match[1]) * UNIT_SECONDS[match[2] ?? 's']
  return seconds >= 0.1 && seconds <= 600 ? seconds : undefined
}

function isPostgresUrl(value: string): boolean {
  try {
    const url = new URL(value)
    return url.protocol === 'postgres:' || url.protocol === 'postgresql:'
  } catch {
    return false
  }
}

function build() {
  const {z} = createRequire(import.meta.url)('zod') as {z: typeof Z}
  /** A postgres:// or postgresql:// URL; the value itself is never echoed in errors. */
  const postgresUrl = z.string().refine(isPostgresUrl, 'must be a postgres:// or postgresql:// URL')
  const port = z.coerce.number().int().min(1).max(65_535)
  const instances = z.coerce.number().int().min(1).max(64)
  const concurrency = z.coerce.number().int().min(1).max(MAX_CONCURRENCY)
  /** Estate name prefix: lower-case letters, digits, underscores; empty for production names. */
  const namePrefix = z.string().regex(PREFIX_RULE, 'must be lower-case letters, digits or _ (at most 20), starting with a letter')
  /** The optional config file (JSON): every key optional, unknown keys refused. */
  const configFileSchema = z
    .object({
      adminUrl: postgresUrl.optional(),
      databases: z
        .object({
          singularity: postgresUrl.optional(),
          genesis: postgresUrl.optional(),
          centralcloud: postgresUrl.optional(),
          nexus: postgresUrl.optional(),
          shared_queue: postgresUrl.optional(),
        })
        .strict()
        .optional(),
      local: z.object({dataDir: z.string().min(1).optional(), port: port.optional()}).strict().optional(),
      instances: instances.optional(),
      prefix: namePrefix.optional(),
      backupDir: z.string().min(1).optional(),
      /** reading commands: databases visited at once (capped by the server's free connections) */
      concurrency: concurrency.optional(),
      /** reading commands: how long one database may take, a duration such as 10s */
      dbTimeout: z.string().refine((v) => dbTimeoutSeconds(v) !== undefined, DB_TIMEOUT_RULE).optional(),
      /** several servers: name → admin URL ("main" is where unplaced databases go) */
      servers: z.record(z.string(), postgresUrl).optional(),
      /** database name or kind → server name */
      placement: z.record(z.string().min(1), z.string().min(1)).optional(),
    })
    .strict()
  return {postgresUrl, port, instances, concurrency, namePrefix, configFileSchema}
}

type Schemas = ReturnType<typeof build>
let schemas: Schemas | undefined

/** A zod schema built on first use; `fast` may accept a value without loading zod. */
function lazy<K extends keyof Schemas>(key: K, fast?: (value: unknown) => {data: Z.output<Schemas[K]>} | undefined) {
  return {
    safeParse(value: unknown): Z.ZodSafeParseResult<Z.output<Schemas[K]>> {
      const quick = fast?.(value)
      if (quick) return {success: true, data: quick.data}
      schemas ??= build()
      return schemas[key].safeParse(value) as Z.ZodSafeParseResult<Z.output<Schemas[K]>>
    },
  }
}

/** z.coerce.number().int().min(min).max(max), without zod. */
const integerIn = (min: number, max: number) => (value: unknown) => {
  const n = Number(value)
  return Number.isInteger(n) && n >= min && n <= max ? {data: n} : undefined
}

export const postgresUrl = lazy('postgresUrl', (v) => (typeof v === 'string' && isPostgresUrl(v) ? {data: v} : undefined))
export const port = lazy('port', integerIn(1, 65_535))
export const instances = lazy('instances', integerIn(1, 64))
export const concurrency = lazy('concurrency', integerIn(1, MAX_CONCURRENCY))
export const namePrefix = lazy('namePrefix', (v) => (typeof v === 'string' && PREFIX_RULE.test(v) ? {data: v} : undefined))
export const configFileSchema = lazy('configFileSchema')

export type ConfigFile = Z.infer<Schemas['configFileSchema']>
