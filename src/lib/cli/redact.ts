/**
 * Redaction of secrets in anything we print: passwords inside connection URLs, key=value
 * conninfo strings, and any literal secret registered at run time (role passwords, keys).
 */
const registeredSecrets = new Set<string>()
const revealedSecrets = new Set<string>()

/** A secret the user explicitly asked to see (e.g. --show-passwords): printed as it is from now on. */
export function revealSecret(secret: string): void {
  revealedSecrets.add(secret)
}

/** Remember a literal secret so that every later redact() hides it. Short values are ignored. */
export function registerSecret(secret: string | undefined): void {
  if (secret && secret.length >= 4) registeredSecrets.add(secret)
}

const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*):([^@/\s]*)@/gi
const CONNINFO_PASSWORD = /\b(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s'"]+)/gi
const QUERY_PASSWORD = /([?&]password=)[^&\s]*/gi

/** Returns the text with every password replaced by ***. */
export function redact(text: string): string {
  let out = text
    .replace(URL_PASSWORD, '$1:***@')
    .replace(CONNINFO_PASSWORD, '$1***')
    .replace(QUERY_PASSWORD, '$1***')
  for (const secret of registeredSecrets) {
    if (!revealedSecrets.has(secret) && out.includes(secret)) out = out.split(secret).join('***')
  }
  return out
}

/** Deep-redacts every string inside a JSON-able value. */
export function redactValue<T>(value: T): T {
  if (typeof value === 'string') return redact(value) as T
  if (Array.isArray(value)) return value.map((v) => redactValue(v)) as T
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = redactValue(v)
    return out as T
  }
  return value
}
