/**
 * wal2json (format-version 2) for `cdc tail`: the plugin options we send, escaping of table names
 * for add-tables, and turning one wal2json JSON object into an output line (JSON or human).
 * Every function here is on the per-change hot path or next to it: no allocations beyond the line.
 */
import {PLAIN, type Paint, type Tone} from '../cli/colour.js'

export type TailAction = 'insert' | 'update' | 'delete' | 'truncate' | 'message'
export const TAIL_ACTIONS: readonly TailAction[] = ['insert', 'update', 'delete', 'truncate', 'message']
/** The actions shown when --action is not given (messages are opt-in). */
export const DEFAULT_ACTIONS: readonly TailAction[] = ['insert', 'update', 'delete', 'truncate']

export type TailFormat = 'human' | 'json' | 'raw'

export interface QualifiedTable {
  schema: string
  table: string
}

/**
 * Escapes one identifier for wal2json's add-tables/filter-tables lists: a backslash before every
 * character its parser treats specially (backslash, comma, period, asterisk, quote, whitespace).
 */
export function escapeWal2jsonIdentifier(name: string): string {
  return name.replace(/[\\,.*'\s]/g, (c) => `\\${c}`)
}

/** "schema.table,schema.table" as wal2json's add-tables wants it. */
export function addTablesOption(tables: QualifiedTable[]): string {
  return tables.map((t) => `${escapeWal2jsonIdentifier(t.schema)}.${escapeWal2jsonIdentifier(t.table)}`).join(',')
}

/** The plugin options for START_REPLICATION, in order. */
export function wal2jsonOptions(options: {format: TailFormat; tables: QualifiedTable[]; actions: readonly TailAction[]}): [string, string][] {
  const out: [string, string][] = [
    ['format-version', '2'],
    ['include-xids', '1'],
    ['include-timestamp', '1'],
  ]
  // Types are wal2json's own business in --raw; the JSON lines and the human view do not print them.
  if (options.format !== 'raw') out.push(['include-types', '0'])
  // The human view shows the key of inserted rows: ask for the primary key's column names.
  if (options.format === 'human') out.push(['include-pk', '1'])
  const rowActions = options.actions.filter((a) => a !== 'message')
  if (rowActions.length < 4) out.push(['actions', rowActions.length > 0 ? rowActions.join(',') : 'insert'])
  if (options.tables.length > 0) out.push(['add-tables', addTablesOption(options.tables)])
  return out
}


// ---------------------------------------------------------------------------------------------
// Per-change formatting.

/** Character codes of wal2json's one-letter actions. */
export const ACTION_CODE = {
  B: 66,
  C: 67,
  D: 68,
  I: 73,
  M: 77,
  T: 84,
  U: 85,
} as const

const ACTION_NAME: Record<number, TailAction> = {
  [ACTION_CODE.I]: 'insert',
  [ACTION_CODE.U]: 'update',
  [ACTION_CODE.D]: 'delete',
  [ACTION_CODE.T]: 'truncate',
  [ACTION_CODE.M]: 'message',
}

/** The action letter of a wal2json v2 object: it always starts with {"action":"X". */
export function actionCode(text: string): number {
  if (text.startsWith('{"action":"')) return text.charCodeAt(11)
  try {
    const parsed = JSON.parse(text) as {action?: string}
    return parsed.action ? parsed.action.charCodeAt(0) : 0
  } catch {
    return 0
  }
}

export function actionName(code: number): TailAction | undefined {
  return ACTION_NAME[code]
}

interface Wal2jsonColumn {
  name: string
  type?: string
  value: unknown
}

export interface Wal2jsonChange {
  action: string
  xid?: number
  timestamp?: string
  schema?: string
  table?: string
  columns?: Wal2jsonColumn[]
  identity?: Wal2jsonColumn[]
  pk?: {name: string}[]
  prefix?: string
  content?: string
  transactional?: boolean
}

/** One JSON line of `cdc tail --json`. */
export interface ChangeLine {
  lsn: string
  xid: number | null
  commitTime: string | null
  action: TailAction
  schema: string | null
  table: string | null
  /** new row: column → value (insert, update) */
  columns: Record<string, unknown> | null
  /** old key (or old row with REPLICA IDENTITY FULL): column → value (update, delete) */
  identity: Record<string, unknown> | null
  /** logical decoding messages only (--action message) */
  prefix?: string
  content?: string
  transactional?: boolean
}

let lastStamp = ''
let lastIso: string | null = null

/**
 * wal2json prints commit times as "2024-05-01 10:00:00.123456+00" (session TimeZone, UTC here):
 * ISO 8601 with the microseconds kept. Cached: a transaction's changes share one timestamp.
 */
export function isoTimestamp(stamp: string | undefined): string | null {
  if (!stamp) return null
  if (stamp === lastStamp) return lastIso
  let iso = stamp.replace(' ', 'T')
  if (iso.endsWith('+00')) iso = `${iso.slice(0, -3)}Z`
  else if (/[+-]\d\d$/.test(iso)) iso = `${iso}:00`
  lastStamp = stamp
  lastIso = iso
  return iso
}

function toMap(columns: Wal2jsonColumn[] | undefined): Record<string, unknown> | null {
  if (!columns) return null
  const out: Record<string, unknown> = {}
  for (let i = 0; i < columns.length; i++) out[columns[i].name] = columns[i].value
  return out
}

/** Transaction context carried from the last BEGIN, for wal2json builds that put xid/time only there. */
export interface TxnContext {
  xid: number | null
  timestamp: string | undefined
}

export function toChangeLine(change: Wal2jsonChange, lsn: string, code: number, txn: TxnContext): ChangeLine {
  const line: ChangeLine = {
    lsn,
    xid: change.xid ?? txn.xid,
    commitTime: isoTimestamp(change.timestamp ?? txn.timestamp),
    action: ACTION_NAME[code],
    schema: change.schema ?? null,
    table: change.table ?? null,
    columns: toMap(change.columns),
    identity: toMap(change.identity),
  }
  if (code === ACTION_CODE.M) {
    line.prefix = change.prefix
    line.content = change.content
    line.transactional = change.transactional
  }
  return line
}

// ---------------------------------------------------------------------------------------------
// The fast path of --json: the same line as JSON.stringify(toChangeLine(JSON.parse(text))), built
// from slices of wal2json's text without materialising objects (about 3x cheaper per change).
// wal2json's shape is fixed; anything unexpected returns undefined and the caller parses instead.

/** Index of the closing quote of the JSON string that opens at `start` (-1 when malformed). */
function stringEnd(text: string, start: number): number {
  let j = start + 1
  for (;;) {
    j = text.indexOf('"', j)
    if (j === -1) return -1
    let backslashes = 0
    for (let k = j - 1; text.charCodeAt(k) === 92; k--) backslashes++
    if ((backslashes & 1) === 0) return j
    j++
  }
}

let scanEnd = 0

/** [{"name":N,"value":V},…] at `start` → '{N:V,…}'; sets scanEnd after the ']'. */
function columnsObject(text: string, start: number): string | undefined {
  let p = start + 1
  if (text.charCodeAt(p) === 93) {
    scanEnd = p + 1
    return '{}'
  }
  let out = '{'
  for (;;) {
    if (!text.startsWith('{"name":"', p)) return undefined
    const nameStart = p + 8
    const nameEnd = stringEnd(text, nameStart)
    if (nameEnd === -1 || !text.startsWith(',"value":', nameEnd + 1)) return undefined
    const valueStart = nameEnd + 10
    const valueEnd = text.charCodeAt(valueStart) === 34 ? stringEnd(text, valueStart) + 1 : text.indexOf('}', valueStart)
    if (valueEnd <= valueStart || text.charCodeAt(valueEnd) !== 125) return undefined
    if (out.length > 1) out += ','
    out += text.slice(nameStart, nameEnd + 1) + ':' + text.slice(valueStart, valueEnd)
    p = valueEnd + 1
    const next = text.charCodeAt(p)
    if (next === 93) {
      scanEnd = p + 1
      return out + '}'
    }
    if (next !== 44) return undefined
    p++
  }
}

const FAST_ACTION: Record<number, string> = {
  [ACTION_CODE.I]: '"insert"',
  [ACTION_CODE.U]: '"update"',
  [ACTION_CODE.D]: '"delete"',
  [ACTION_CODE.T]: '"truncate"',
}

/** One --json line straight from wal2json's text (row changes only); undefined: parse instead. */
export function fastJsonLine(text: string, lsn: string, code: number): string | undefined {
  const action = FAST_ACTION[code]
  if (action === undefined || !text.startsWith(',"xid":', 13)) return undefined
  const xidEnd = text.indexOf(',', 20)
  if (xidEnd === -1) return undefined
  const xid = text.slice(20, xidEnd)
  let p = xidEnd
  let commitTime = 'null'
  if (text.startsWith(',"timestamp":"', p)) {
    const end = text.indexOf('"', p + 14)
    if (end === -1) return undefined
    commitTime = '"' + isoTimestamp(text.slice(p + 14, end)) + '"'
    p = end + 1
  }
  if (!text.startsWith(',"schema":"', p)) return undefined
  const schemaEnd = stringEnd(text, p + 10)
  if (schemaEnd === -1 || !text.startsWith(',"table":"', schemaEnd + 1)) return undefined
  const tableEnd = stringEnd(text, schemaEnd + 10)
  if (tableEnd === -1) return undefined
  const schemaAndTable = text.slice(p, tableEnd + 1)
  p = tableEnd + 1
  let columns = 'null'
  let identity = 'null'
  if (text.startsWith(',"columns":[', p)) {
    const value = columnsObject(text, p + 11)
    if (value === undefined) return undefined
    columns = value
    p = scanEnd
  }
  if (text.startsWith(',"identity":[', p)) {
    const value = columnsObject(text, p + 12)
    if (value === undefined) return undefined
    identity = value
    p = scanEnd
  }
  if (p !== text.length - 1 || text.charCodeAt(p) !== 125) return undefined
  return '{"lsn":"' + lsn + '","xid":' + xid + ',"commitTime":' + commitTime + ',"action":' + action + schemaAndTable + ',"columns":' + columns + ',"identity":' + identity + '}'
}

// ---------------------------------------------------------------------------------------------
// The human view: time, action, table, key, changed columns.

/** The colour meaning of each change: new rows ok, changed rows warn, removed rows fail. */
const ACTION_TONES: Record<TailAction, Tone> = {insert: 'ok', update: 'warn', delete: 'fail', truncate: 'fail', message: 'accent'}

const MAX_VALUE = 60

/** A value for people: NULL, numbers as they are, text quoted and shortened. */
export function humanValue(value: unknown): string {
  if (value === null || value === undefined) return 'NULL'
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  const text = typeof value === 'string' ? value : JSON.stringify(value)
  const short = text.length > MAX_VALUE ? `${text.slice(0, MAX_VALUE - 1)}…` : text
  return `'${short.replaceAll('\n', '\\n')}'`
}

function pairs(columns: Wal2jsonColumn[]): string {
  return columns.map((c) => `${c.name}=${humanValue(c.value)}`).join(' ')
}

/** One readable line: "10:00:00.123Z  UPDATE    public.learned_patterns  id=7  | confidence=0.9". */
export function toHumanLine(change: Wal2jsonChange, code: number, txn: TxnContext, paint: Paint = PLAIN): string {
  const iso = isoTimestamp(change.timestamp ?? txn.timestamp)
  const time = iso ? iso.slice(11, 23) + (iso.endsWith('Z') ? 'Z' : '') : '-'
  const action = ACTION_NAME[code] ?? 'change'
  const label = action.toUpperCase().padEnd(8)
  const shownLabel = paint.tone(ACTION_TONES[action], label)
  const shownTime = paint.dim(time)
  if (code === ACTION_CODE.M) {
    return `${shownTime}  ${shownLabel}  ${change.prefix ?? ''}: ${humanValue(change.content)}`
  }
  const table = change.schema ? `${change.schema}.${change.table}` : (change.table ?? '?')
  const pkNames = new Set((change.pk ?? []).map((p) => p.name))
  const columns = change.columns ?? []
  const identity = change.identity ?? []
  let key: Wal2jsonColumn[] = []
  let rest: Wal2jsonColumn[] = []
  if (code === ACTION_CODE.I) {
    key = columns.filter((c) => pkNames.has(c.name))
    // a new row: its NULL columns say nothing
    rest = columns.filter((c) => !pkNames.has(c.name) && c.value !== null)
  } else if (code === ACTION_CODE.U) {
    const fullOld = identity.length > 0 && identity.length >= columns.length && columns.length > 0
    if (fullOld) {
      // REPLICA IDENTITY FULL: the old row is known, show only what changed.
      const old = new Map(identity.map((c) => [c.name, JSON.stringify(c.value)]))
      key = pkNames.size > 0 ? columns.filter((c) => pkNames.has(c.name)) : []
      rest = columns.filter((c) => !pkNames.has(c.name) && old.get(c.name) !== JSON.stringify(c.value))
    } else {
      key = identity.length > 0 ? identity : columns.filter((c) => pkNames.has(c.name))
      const keyNames = new Set(key.map((c) => c.name))
      rest = columns.filter((c) => !keyNames.has(c.name))
    }
  } else if (code === ACTION_CODE.D) {
    key = identity.length > 0 && pkNames.size > 0 ? identity.filter((c) => pkNames.has(c.name) || identity.length <= pkNames.size) : identity
    if (key.length === 0) key = identity
  }
  let line = `${shownTime}  ${shownLabel}  ${table}`
  if (key.length > 0) line += `  ${pairs(key)}`
  if (rest.length > 0) line += `  ${paint.dim('|')} ${pairs(rest)}`
  return line
}
