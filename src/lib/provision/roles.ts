import {generatePassword, passwordEnvName, type PasswordSource} from './passwords.js'

export interface RolePlan {
  key: string
  name: string
  exists: boolean
  /** where the password that will be set comes from; 'unchanged' for existing roles without a given one */
  passwordSource: PasswordSource
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
