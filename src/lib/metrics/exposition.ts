/**
 * The Prometheus text exposition format (version 0.0.4, what node_exporter's textfile collector
 * and a /metrics scrape read): # HELP and # TYPE once per family, then one line per sample.
 */

export type MetricType = 'gauge' | 'counter'

export interface Sample {
  labels: Record<string, string>
  value: number
}

export interface MetricFamily {
  /** snake_case, with its unit as suffix (_seconds, _bytes) and _total for counters */
  name: string
  help: string
  type: MetricType
  samples: Sample[]
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/

/** A label value escaped as the format wants: backslash, double quote and newline. */
export function escapeLabelValue(value: string): string {
  return value.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n')
}

function escapeHelp(text: string): string {
  return text.replaceAll('\\', '\\\\').replaceAll('\n', '\\n')
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN'
  if (value === Infinity) return '+Inf'
  if (value === -Infinity) return '-Inf'
  return String(value)
}

/** The families as exposition text; families without samples are left out. */
export function renderExposition(families: MetricFamily[]): string {
  const lines: string[] = []
  for (const family of families) {
    if (family.samples.length === 0) continue
    if (!NAME.test(family.name)) throw new Error(`bad metric name ${family.name}`)
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`, `# TYPE ${family.name} ${family.type}`)
    for (const sample of family.samples) {
      const labels = Object.entries(sample.labels)
        .map(([k, v]) => {
          if (!LABEL.test(k)) throw new Error(`bad label name ${k}`)
          return `${k}="${escapeLabelValue(v)}"`
        })
        .join(',')
      lines.push(`${family.name}${labels ? `{${labels}}` : ''} ${formatValue(sample.value)}`)
    }
  }
  return lines.length > 0 ? `${lines.join('\n')}\n` : ''
}
