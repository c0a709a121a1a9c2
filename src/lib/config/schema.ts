import {z} from 'zod'

/** A postgres:// or postgresql:// URL; the value itself is never echoed in errors. */
export const postgresUrl = z.string().refine((value) => {
  try {
    const url = new URL(value)
    return url.protocol === 'postgres:' || url.protocol === 'postgresql:'
  } catch {
    return false
  }
}, 'must be a postgres:// or postgresql:// URL')

export const port = z.coerce.number().int().min(1).max(65_535)
export const instances = z.coerce.number().int().min(1).max(64)
/** Estate name prefix: lower-case letters, digits, underscores; empty for production names. */
export const namePrefix = z.string().regex(/^([a-z][a-z0-9_]{0,19})?$/, 'must be lower-case letters, digits or _ (at most 20), starting with a letter')

/** The optional config file (JSON): every key optional, unknown keys refused. */
export const configFileSchema = z
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
  })
  .strict()

export type ConfigFile = z.infer<typeof configFileSchema>
