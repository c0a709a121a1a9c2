/** Identifier quoting for SQL that cannot take parameters (same rule as format('%I')): always quoted. */
export function quoteIdent(name: string): string {
  if (name.includes('\u0000')) throw new Error('identifier contains a NUL byte')
  return `"${name.replaceAll('"', '""')}"`
}

/**
 * Literal quoting for SQL that cannot take parameters (DDL, replication commands): quotes doubled,
 * backslashes literal (standard_conforming_strings, on since PostgreSQL 9.1; the replication
 * grammar has no E'' strings).
 */
export function quoteLiteral(value: string): string {
  if (value.includes('\u0000')) throw new Error('literal contains a NUL byte')
  return `'${value.replaceAll("'", "''")}'`
}
