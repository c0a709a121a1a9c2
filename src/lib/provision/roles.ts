import type pg from 'pg'

import {quoteIdent, quoteLiteral} from '../sql/quote.js'
import {generatePassword, passwordEnvName, scramVerifier, type PasswordSource} from './passwords.js'

export interface RolePlan {
  key: string
  name: string
  exists: boolean
  /** where the password that will be set comes from; 'unchanged' for existing roles without a given one */
  passwordSource: PasswordSource
}

export async function existingRoles(client: pg.Client, names: string[]): Promise<Set<string>> {
  const {rows} = await client.query<{rolname: string}>('SELECT rolname FROM pg_roles WHERE rolname = ANY($1)', [names])
  return new Set(rows.map((r) => r.rolname))
}

/**
 * Decides each role's password: env SINGULARITY_PASSWORD_<KEY> or the password file when given;
 * generated for a new role; an existing role keeps its password unless one is given.
 */
export function planPasswords(
  roles: {key: string; name: string}[],
  exists: Set<string>,
  fromFile: Record<string, string>,
  env: NodeJS.ProcessEnv,
): {plans: RolePlan[]; passwords: Record<string, string>} {
  const passwords: Record<string, string> = {}
  const plans = roles.map((role) => {
    const given = env[passwordEnvName(role.key)]
    let source: PasswordSource
    if (given) {
      passwords[role.name] = given
      source = 'env'
    } else if (fromFile[role.name]) {
      passwords[role.name] = fromFile[role.name]
      source = exists.has(role.name) ? 'unchanged' : 'file'
    } else if (exists.has(role.name)) {
      source = 'unchanged'
    } else {
      passwords[role.name] = generatePassword()
      source = 'generated'
    }
    return {key: role.key, name: role.name, exists: exists.has(role.name), passwordSource: source}
  })
  return {plans, passwords}
}

/** Creates a missing login role (or sets a given password); passwords travel as SCRAM verifiers only. */
export async function ensureRole(client: pg.Client, plan: RolePlan, password: string | undefined): Promise<boolean> {
  const attributes = 'LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION'
  const pw = password ? ` PASSWORD ${quoteLiteral(scramVerifier(password))}` : ''
  if (!plan.exists) {
    try {
      await client.query(`CREATE ROLE ${quoteIdent(plan.name)} ${attributes}${pw}`)
      return true
    } catch (error) {
      // created meanwhile by a concurrent installer outside our lock: fall through to ALTER
      if ((error as {code?: string}).code !== '42710') throw error
    }
  }
  if (password && plan.passwordSource === 'env') {
    await client.query(`ALTER ROLE ${quoteIdent(plan.name)} ${attributes}${pw}`)
    return true
  }
  return false
}
