/**
 * Parts of the estate switched off by configuration (SHARED_QUEUE_ENABLED=false), remembered when
 * an estate is expanded so that the base command can say so once, whatever the command: a note on
 * stderr, and a "disabled" field in --json output.
 */
export interface DisabledPart {
  database: string
  kind: string
  reason: string
}

const parts: DisabledPart[] = []

export function noteDisabled(list: readonly DisabledPart[]): void {
  for (const part of list) if (!parts.some((p) => p.database === part.database)) parts.push(part)
}

export function disabledParts(): readonly DisabledPart[] {
  return parts
}
