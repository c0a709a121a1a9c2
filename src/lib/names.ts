import {UsageError} from './cli/errors.js'

/**
 * Validation of names users type (queue, table, slot, job, database) before they reach SQL.
 * ASCII only: no quotes, semicolons, comments, whitespace or look-alike unicode.
 */
const PATTERNS = {
  queue: {re: /^(?!.*--)[a-z0-9_][a-z0-9_-]{0,46}$/i, rule: 'letters, digits, _ and - (no --), at most 47 characters'},
  database: {re: /^[a-z_][a-z0-9_]{0,62}$/, rule: 'lower-case letters, digits and _, at most 63 characters'},
  table: {re: /^([a-z_][a-z0-9_$]{0,62}\.)?[a-z_][a-z0-9_$]{0,62}$/i, rule: 'an identifier, optionally schema-qualified (schema.table)'},
  slot: {re: /^[a-z0-9_]{1,63}$/, rule: 'lower-case letters, digits and _, at most 63 characters'},
  job: {re: /^[A-Za-z0-9_.:-]{1,120}$/, rule: 'letters, digits and _ . : -'},
} as const

export type NameKind = keyof typeof PATTERNS

/** Returns the name when valid; exit 2 with one line otherwise. */
export function validateName(kind: NameKind, name: string): string {
  const {re, rule} = PATTERNS[kind]
  if (!name) throw new UsageError(`${kind} name is empty`, {hint: `a ${kind} name is ${rule}`, code: 'BAD_NAME'})
  if (!re.test(name)) {
    const shown = JSON.stringify(name.length > 60 ? `${name.slice(0, 60)}…` : name)
    throw new UsageError(`invalid ${kind} name ${shown}`, {hint: `a ${kind} name is ${rule}`, code: 'BAD_NAME'})
  }
  return name
}
