/** Identifier quoting for DDL that cannot take parameters (same rule as format('%I')): always quoted. */
export function quoteIdent(name: string): string {
  if (name.includes('\u0000')) throw new Error('identifier contains a NUL byte')
  return `"${name.replaceAll('"', '""')}"`
}

/** Literal quoting for DDL that cannot take parameters (same rule as format('%L')). */
export function quoteLiteral(value: string): string {
  if (value.includes('\u0000')) throw new Error('literal contains a NUL byte')
  const escaped = value.replaceAll("'", "''")
  return value.includes('\\') ? ` E'${escaped.replaceAll('\\', '\\\\')}'` : `'${escaped}'`
}
