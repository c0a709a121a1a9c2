/**
 * The one table renderer for people (and --csv/--tsv for scripts). Pure: the width, the colour
 * painter and the user's table options come in; lines come out.
 *
 * Rules: the table fits the width it is given (the terminal's; none for a pipe). Columns have a
 * priority: the least important are dropped first; long cells are cut with "…", never wrapped;
 * key columns (priority 0, the names) are never dropped and never cut below a readable minimum.
 * A column marked `below` is not lost when it does not fit: its full values are printed under the
 * table as `key: value` lines, folded at word boundaries.
 */
import {UsageError} from './errors.js'
import {PLAIN, type Paint, type Tone} from './colour.js'

export type Cell = string | number | boolean | null | undefined

export interface Column<R> {
  /** the name --columns and --sort take, and the --csv/--tsv header: lowercase, e.g. "next-run" */
  key: string
  /** the title shown (rendered upper-case, bold on a colour terminal: one header style) */
  header: string
  /** the text shown; null, undefined and '' show as a dim '-' */
  text: (row: R) => Cell
  /** the value sorted on and written by --csv/--tsv (default: the text) */
  raw?: (row: R) => Cell
  /** the colour meaning of the cell (ok / warn / fail / dim) */
  tone?: (row: R) => Tone | undefined
  /** 0: a key column (never dropped); 1 the most important of the rest; higher numbers drop first */
  priority: number
  /** the narrowest it may be cut to. Key columns default to whole values; others to their header's width */
  min?: number
  align?: 'left' | 'right'
  /** where this column is dropped or a value cut, the full value goes under the table as `key: value` */
  below?: boolean | ((row: R) => boolean)
}

export interface TableOptions {
  /** the width to fit; undefined: no limit (a pipe: nothing is cut) */
  width?: number
  paint?: Paint
  /** every column, nothing cut, whatever the width */
  wide?: boolean
  /** only these columns (keys), in this order */
  columns?: string[]
  /** a column key to sort on; "-key" for descending */
  sort?: string
  /** false: no header line (--no-header) */
  header?: boolean
  format?: 'table' | 'csv' | 'tsv'
}

export interface RenderedTable {
  /** the table, then the hidden-columns note and the `key: value` lines, ready to print */
  lines: string[]
  /** keys of the columns left out to fit the width */
  hidden: string[]
}

const GAP = 2
/** a key column cut because even it alone is wider than the terminal keeps at least this much */
const READABLE_KEY_WIDTH = 16
const NONE = '-'

// ---------------------------------------------------------------------------------------------
// Widths of text as a terminal shows it.

// Made on first use: creating it initialises ICU (tens of ms), which plain ASCII text never needs, and
// every command loads this module at start-up (bench/startup.sh).
let segmenter: Intl.Segmenter | undefined
const graphemes = (text: string) => (segmenter ??= new Intl.Segmenter(undefined, {granularity: 'grapheme'})).segment(text)
const WIDE = /[\u1100-\u115F\u2E80-\uA4CF\uAC00-\uD7A3\uF900-\uFAFF\uFE30-\uFE4F\uFF00-\uFF60\uFFE0-\uFFE6]|\p{Extended_Pictographic}/u
const ZERO_WIDTH = /^\p{Mark}+$|^[\u200B-\u200F\uFEFF]$/u
const isAscii = (text: string) => /^[\u0020-\u007E]*$/.test(text)

/** Columns a terminal uses for the text: wide East Asian characters and emoji count two. */
export function displayWidth(text: string): number {
  if (isAscii(text)) return text.length
  let width = 0
  for (const {segment} of graphemes(text)) width += ZERO_WIDTH.test(segment) ? 0 : WIDE.test(segment) ? 2 : 1
  return width
}

/** The text cut to at most `width` columns, ending with "…" when something was cut. */
export function cut(text: string, width: number): string {
  if (displayWidth(text) <= width) return text
  if (width <= 0) return ''
  if (width === 1) return '…'
  if (isAscii(text)) return text.slice(0, width - 1) + '…'
  let out = ''
  let used = 0
  for (const {segment} of graphemes(text)) {
    const w = displayWidth(segment)
    if (used + w > width - 1) break
    out += segment
    used += w
  }
  return out + '…'
}

/**
 * Folds text at word boundaries to lines of at most `width` columns; continuation lines start with
 * `indent`. A word longer than a line is split. No limit (undefined) keeps the text on one line.
 */
export function fold(text: string, width: number | undefined, indent = ''): string[] {
  if (width === undefined || displayWidth(text) <= width) return [text]
  const lines: string[] = []
  let line = ''
  const room = () => width - (lines.length === 0 ? 0 : displayWidth(indent))
  for (const word of text.split(/ +/)) {
    let rest = word
    if (line !== '' && displayWidth(line) + 1 + displayWidth(rest) <= room()) {
      line += ' ' + rest
      continue
    }
    if (line !== '') lines.push(line)
    line = ''
    while (displayWidth(rest) > room()) {
      const size = Math.max(1, room())
      const head = cut(rest, size + 1).replace(/…$/, '')
      lines.push(head)
      rest = rest.slice(head.length)
    }
    line = rest
  }
  if (line !== '') lines.push(line)
  return lines.map((l, i) => (i === 0 ? l : indent + l))
}

// ---------------------------------------------------------------------------------------------

interface Prepared<R> {
  column: Column<R>
  texts: string[]
  natural: number
  key: boolean
}

const textOf = (value: Cell): string => (value === null || value === undefined || value === '' ? NONE : String(value))

/** Resolves --columns names (keys, or header titles written lower-case with dashes) to columns. */
function selectColumns<R>(columns: Column<R>[], wanted: string[] | undefined): Column<R>[] {
  if (!wanted || wanted.length === 0) return columns
  const byName = new Map<string, Column<R>>()
  for (const c of columns) {
    byName.set(c.key.toLowerCase(), c)
    byName.set(slug(c.header), c)
  }
  const chosen: Column<R>[] = []
  for (const name of wanted) {
    const column = byName.get(name.trim().toLowerCase())
    if (!column) throw unknownColumn('--columns', name, columns)
    if (!chosen.includes(column)) chosen.push(column)
  }
  return chosen
}

function slug(header: string): string {
  return header.toLowerCase().replace(/\(.*?\)/g, '').trim().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '')
}

function unknownColumn<R>(flag: string, name: string, columns: Column<R>[]): UsageError {
  return new UsageError(`unknown column '${name}' for ${flag}`, {hint: `columns here: ${columns.map((c) => c.key).join(', ')}`, code: 'UNKNOWN_COLUMN'})
}

function compareCells(a: Cell, b: Cell): number {
  const emptyA = a === null || a === undefined || a === ''
  const emptyB = b === null || b === undefined || b === ''
  if (emptyA || emptyB) return emptyA === emptyB ? 0 : emptyA ? 1 : -1
  if (typeof a === 'number' && typeof b === 'number') return a - b
  return String(a).localeCompare(String(b), 'en', {numeric: true})
}

/** Rows ordered by --sort ("col" ascending, "-col" descending; empty values last either way). Stable. */
export function sortRows<R>(columns: Column<R>[], rows: R[], sort: string | undefined): R[] {
  if (!sort) return rows
  const descending = sort.startsWith('-')
  const name = (descending ? sort.slice(1) : sort).trim().toLowerCase()
  const column = columns.find((c) => c.key.toLowerCase() === name) ?? columns.find((c) => slug(c.header) === name)
  if (!column) throw unknownColumn('--sort', sort, columns)
  const value = column.raw ?? column.text
  return rows
    .map((row, index) => ({row, index, v: value(row)}))
    .sort((x, y) => {
      const emptyX = x.v === null || x.v === undefined || x.v === ''
      const emptyY = y.v === null || y.v === undefined || y.v === ''
      if (emptyX || emptyY) return emptyX === emptyY ? x.index - y.index : emptyX ? 1 : -1
      return (descending ? -compareCells(x.v, y.v) : compareCells(x.v, y.v)) || x.index - y.index
    })
    .map((x) => x.row)
}

function delimited<R>(columns: Column<R>[], rows: R[], format: 'csv' | 'tsv', header: boolean): string[] {
  const escape =
    format === 'csv'
      ? (v: string) => (/[",\r\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v)
      : (v: string) => v.replaceAll('\\', '\\\\').replaceAll('\t', '\\t').replaceAll('\n', '\\n').replaceAll('\r', '\\r')
  const sep = format === 'csv' ? ',' : '\t'
  const lines = header ? [columns.map((c) => escape(c.key)).join(sep)] : []
  for (const row of rows) {
    lines.push(
      columns
        .map((c) => {
          const v = (c.raw ?? c.text)(row)
          return escape(v === null || v === undefined ? '' : String(v))
        })
        .join(sep),
    )
  }
  return lines
}

/** Which columns fit, and how wide each one is. */
function layout<R>(prepared: Prepared<R>[], width: number | undefined, wide: boolean): {visible: Prepared<R>[]; widths: number[]} {
  if (wide || width === undefined) return {visible: prepared, widths: prepared.map((p) => p.natural)}
  const minOf = (p: Prepared<R>) => (p.key ? p.natural : Math.min(p.natural, p.column.min ?? displayWidth(p.column.header)))
  const total = (ws: number[]) => ws.reduce((a, b) => a + b, 0) + GAP * Math.max(0, ws.length - 1)
  let visible = [...prepared]
  while (total(visible.map(minOf)) > width) {
    const droppable = visible.filter((p) => !p.key)
    if (droppable.length === 0) break
    // the least important (highest number); among equals, the rightmost
    const drop = droppable.reduce((a, b) => (b.column.priority >= a.column.priority ? b : a))
    visible = visible.filter((p) => p !== drop)
  }
  const distribute = (shown: Prepared<R>[]): number[] => {
    let widths = shown.map(minOf)
    if (total(widths) > width) {
      // Only key columns are left and even they do not fit: cut them, never below a readable minimum.
      const share = Math.floor((width - GAP * (shown.length - 1)) / shown.length)
      widths = shown.map((p) => Math.min(p.natural, Math.max(p.column.min ?? READABLE_KEY_WIDTH, share)))
    }
    // The room left goes to the most important columns first, up to their natural width.
    let spare = width - total(widths)
    const order = shown.map((p, i) => ({p, i})).sort((a, b) => a.p.column.priority - b.p.column.priority || a.i - b.i)
    for (const {p, i} of order) {
      if (spare <= 0) break
      const grow = Math.min(spare, p.natural - widths[i])
      if (grow > 0) {
        widths[i] += grow
        spare -= grow
      }
    }
    return widths
  }
  let widths = distribute(visible)
  // No column is shown at the price of cutting a more important one.
  for (;;) {
    const cutPriorities = visible.filter((p, i) => widths[i] < p.natural).map((p) => p.column.priority)
    const droppable = visible.filter((p) => !p.key)
    if (cutPriorities.length === 0 || droppable.length === 0) break
    const least = droppable.reduce((a, b) => (b.column.priority >= a.column.priority ? b : a))
    if (least.column.priority <= Math.min(...cutPriorities)) break
    visible = visible.filter((p) => p !== least)
    widths = distribute(visible)
  }
  return {visible, widths}
}

/** Renders rows as a table that fits `options.width`, or as CSV/TSV. */
export function formatTable<R>(allColumns: Column<R>[], unsortedRows: R[], options: TableOptions = {}): RenderedTable {
  const paint = options.paint ?? PLAIN
  const header = options.header !== false
  const columns = selectColumns(allColumns, options.columns)
  const rows = sortRows(allColumns, unsortedRows, options.sort)
  if (options.format === 'csv' || options.format === 'tsv') return {lines: delimited(columns, rows, options.format, header), hidden: []}

  const prepared: Prepared<R>[] = columns.map((column) => {
    const texts = rows.map((row) => textOf(column.text(row)))
    const natural = Math.max(header ? displayWidth(column.header) : 1, ...texts.map(displayWidth))
    return {column, texts, natural, key: column.priority === 0}
  })
  const {visible, widths} = layout(prepared, options.width, Boolean(options.wide))
  // in the order they were dropped: the least important first
  const hidden = prepared.filter((p) => !visible.includes(p)).sort((a, b) => b.column.priority - a.column.priority)
  const cutCells = new Set<string>()

  const line = (cells: string[], tones: (Tone | undefined)[]) =>
    cells
      .map((text, i) => {
        const width = widths[i]
        const pad = ' '.repeat(Math.max(0, width - displayWidth(text)))
        const last = i === cells.length - 1
        const painted = paint.tone(tones[i], text)
        return visible[i].column.align === 'right' ? pad + painted : last ? painted : painted + pad
      })
      .join(' '.repeat(GAP))
      .trimEnd()

  const lines: string[] = []
  if (header) {
    const titles = visible.map((p, i) => cut(p.column.header.toUpperCase(), widths[i]))
    lines.push(line(titles, titles.map(() => 'head')))
  }
  rows.forEach((row, r) => {
    const cells = visible.map((p, i) => {
      const text = p.texts[r]
      const shown = cut(text, widths[i])
      if (shown !== text) cutCells.add(`${r}:${p.column.key}`)
      return shown
    })
    const tones = visible.map((p): Tone | undefined => (p.texts[r] === NONE ? 'dim' : p.column.tone?.(row)))
    lines.push(line(cells, tones))
  })

  if (hidden.length > 0 && options.width !== undefined) {
    const note = `(${hidden.length} column${hidden.length === 1 ? '' : 's'} hidden to fit ${options.width} columns: ${hidden.map((p) => p.column.key).join(', ')}; --wide or --columns shows them)`
    lines.push(...fold(note, options.width, ' ').map((l) => paint.dim(l)))
  }
  lines.push(...belowLines(prepared, visible, rows, cutCells, options.width))
  return {lines, hidden: hidden.map((p) => p.column.key)}
}

/** The full values of `below` columns that were dropped or cut, as `key: value` lines under the table. */
function belowLines<R>(prepared: Prepared<R>[], visible: Prepared<R>[], rows: R[], cutCells: Set<string>, width: number | undefined): string[] {
  const keyColumn = prepared.find((p) => p.key) ?? prepared[0]
  const candidates = prepared.filter((p) => p.column.below)
  if (!keyColumn || candidates.length === 0) return []
  const entries: {keys: string[]; items: {header: string; text: string}[]}[] = []
  rows.forEach((row, r) => {
    const items = candidates
      .filter((p) => (!visible.includes(p) || cutCells.has(`${r}:${p.column.key}`)) && p.texts[r] !== NONE)
      .filter((p) => (typeof p.column.below === 'function' ? p.column.below(row) : true))
      .map((p) => ({header: p.column.header.toLowerCase(), text: p.texts[r]}))
    if (items.length === 0) return
    const same = items.length === 1 ? entries.find((e) => e.items.length === 1 && e.items[0].header === items[0].header && e.items[0].text === items[0].text) : undefined
    if (same) same.keys.push(keyColumn.texts[r])
    else entries.push({keys: [keyColumn.texts[r]], items})
  })
  if (entries.length === 0) return []
  // The last `below` column is the free text (a message, a detail): its values need no label.
  const freeText = candidates[candidates.length - 1].column.header.toLowerCase()
  const label = (item: {header: string; text: string}) => (item.header === freeText ? item.text : `${item.header}: ${item.text}`)
  const lines = ['']
  for (const entry of entries) {
    // Many rows with the same text: the first two keys and a count, not a paragraph of names.
    const keys = entry.keys.length > 3 ? `${entry.keys.slice(0, 2).join(', ')} and ${entry.keys.length - 2} more` : entry.keys.join(', ')
    const [first, ...rest] = entry.items
    lines.push(...fold(`${keys}: ${label(first)}`, width, '    '))
    for (const item of rest) lines.push(...fold(`  ${label(item)}`, width, '    '))
  }
  return lines
}

/**
 * A table from a header and rows of cells, for the simpler tables (bootstrap steps, query results):
 * the first column is the key, the others matter less from left to right.
 */
export function simpleColumns(head: string[]): Column<Cell[]>[] {
  return head.map((header, i) => ({key: slug(header) || `c${i + 1}`, header, text: (row) => row[i], priority: i === 0 ? 0 : i}))
}

/** A simple table rendered to fit `options.width` (see simpleColumns). */
export function renderTable(head: string[], rows: Cell[][], options: TableOptions = {}): string {
  return formatTable(simpleColumns(head), rows, options).lines.join('\n')
}
