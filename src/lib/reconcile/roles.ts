import {quoteIdent, quoteLiteral} from '../sql/quote.js'
import {scramVerifier} from '../provision/passwords.js'
import type {RolePlan} from '../provision/roles.js'
import type {Estate} from '../../topology.js'
import {sqlAction, type Action} from './action.js'
import type {ObservedRole} from './observe.js'

/** The attributes every estate role has: a login and none of the special powers, REPLICATION only where declared. */
export function roleAttributes(replication: boolean): string {
  return `LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE ${replication ? 'REPLICATION' : 'NOREPLICATION'} NOBYPASSRLS`
}

/** Whether a SCRAM verifier is the one of this password (same salt and iterations). */
export function verifierMatches(verifier: string | null, password: string): boolean {
  const match = verifier ? /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(verifier) : null
  if (!match) return false
  return scramVerifier(password, Buffer.from(match[2], 'base64'), Number(match[1])) === verifier
}

/**
 * Roles: missing ones are created (password from env, the passwords file, or generated); a role
 * whose attributes differ is altered back (a service role that became SUPERUSER or CREATEROLE is
 * security drift); a password given in SINGULARITY_PASSWORD_<ROLE> that differs from the stored
 * one is set. Passwords travel as SCRAM verifiers and are shown as ***.
 */
export function diffRoles(
  estate: Estate,
  observed: ObservedRole[],
  plans: RolePlan[],
  passwords: Record<string, string>,
  copied: Record<string, {verifier: string; from: string}> = {},
): Action[] {
  const actions: Action[] = []
  for (const role of estate.roles) {
    const plan = plans.find((p) => p.name === role.name)!
    const current = observed.find((r) => r.name === role.name)
    const attributes = roleAttributes(role.replication)
    const privilege = role.replication ? 'superuser' : 'createrole'
    const password = passwords[role.name]
    // several servers: a role that exists on another server keeps its password here too, copied as
    // that server's SCRAM verifier (the same password) when no password is given
    const copy = password ? undefined : copied[role.name]
    const verifier = password ? scramVerifier(password) : copy?.verifier
    if (!current && !verifier && plan.exists) {
      actions.push({
        area: 'roles', database: null, server: null, description: `create role ${role.name}: it exists on another server of the estate, but its password is not known here`,
        sql: [], destructive: false, privilege, reason: 'missing', subject: role.name,
        step: {kind: 'manual', code: 'PASSWORD_UNKNOWN'},
      })
      continue
    }
    if (!current) {
      const source = copy ? `the same as on server ${copy.from}` : plan.passwordSource
      actions.push(
        sqlAction(
          {area: 'roles', database: null, description: `create role ${role.name} (password: ${source})`, destructive: false, privilege, reason: 'missing', subject: role.name},
          'admin',
          [`CREATE ROLE ${quoteIdent(role.name)} ${attributes}${verifier ? ` PASSWORD ${quoteLiteral(verifier)}` : ''}`],
          [`CREATE ROLE ${quoteIdent(role.name)} ${attributes}${verifier ? " PASSWORD '***'" : ''}`],
        ),
      )
      continue
    }
    const differences: string[] = []
    if (!current.login) differences.push('login')
    if (current.superuser) differences.push('superuser')
    if (current.createrole) differences.push('createrole')
    if (current.createdb) differences.push('createdb')
    if (current.bypassrls) differences.push('bypassrls')
    if (current.replication !== role.replication) differences.push('replication')
    if (differences.length > 0) {
      const widened = differences.some((d) => d !== 'login' && !(d === 'replication' && role.replication))
      actions.push(
        sqlAction(
          {
            area: 'roles', database: null, description: `reset the attributes of role ${role.name} (${differences.join(', ')} differ)`, destructive: widened,
            privilege: 'superuser', reason: 'drifted', subject: role.name, differences,
          },
          'admin',
          [`ALTER ROLE ${quoteIdent(role.name)} ${attributes}`],
        ),
      )
    }
    if (password && plan.passwordSource === 'env' && !verifierMatches(current.verifier, password)) {
      actions.push(
        sqlAction(
          {area: 'roles', database: null, description: `set the password of role ${role.name} from SINGULARITY_PASSWORD_${role.key.toUpperCase()}`, destructive: false, privilege, reason: 'changed', subject: role.name, differences: ['password']},
          'admin',
          [`ALTER ROLE ${quoteIdent(role.name)} PASSWORD ${quoteLiteral(verifier!)}`],
          [`ALTER ROLE ${quoteIdent(role.name)} PASSWORD '***'`],
        ),
      )
    }
  }
  return actions
}
