import {describe, expect, it} from 'vitest'

import {parseWatchInterval, perSecond, withWatchDefault} from '../../src/lib/cli/watch.js'
import {escapeLabelValue, renderExposition} from '../../src/lib/metrics/exposition.js'
import {parseListen} from '../../src/lib/metrics/serve.js'

describe('exposition text', () => {
  it('escapes label values and writes HELP/TYPE once per family, leaving out empty families', () => {
    expect(escapeLabelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd')
    const text = renderExposition([
      {name: 'x_total', type: 'counter', help: 'Things.\nMore.', samples: [{labels: {queue: 'agent-sessions'}, value: 3}, {labels: {queue: 'q"1'}, value: 0}]},
      {name: 'y_seconds', type: 'gauge', help: 'Empty.', samples: []},
      {name: 'z', type: 'gauge', help: 'No labels.', samples: [{labels: {}, value: NaN}]},
    ])
    expect(text).toBe(
      '# HELP x_total Things.\\nMore.\n# TYPE x_total counter\nx_total{queue="agent-sessions"} 3\nx_total{queue="q\\"1"} 0\n# HELP z No labels.\n# TYPE z gauge\nz NaN\n',
    )
  })

  it('refuses names Prometheus would refuse', () => {
    expect(() => renderExposition([{name: 'bad-name', type: 'gauge', help: '', samples: [{labels: {}, value: 1}]}])).toThrow(/bad metric name/)
    expect(() => renderExposition([{name: 'ok', type: 'gauge', help: '', samples: [{labels: {'bad-label': 'x'}, value: 1}]}])).toThrow(/bad label name/)
  })
})

describe('--listen', () => {
  it('binds 127.0.0.1 unless a host is given', () => {
    expect(parseListen('9187')).toEqual({host: '127.0.0.1', port: 9187})
    expect(parseListen('0.0.0.0:9187')).toEqual({host: '0.0.0.0', port: 9187})
    expect(parseListen('[::1]:9187')).toEqual({host: '::1', port: 9187})
    expect(parseListen('localhost:0')).toEqual({host: 'localhost', port: 0})
    for (const bad of ['', 'x', ':9187', '70000', 'host:port', '1.2.3.4:']) expect(() => parseListen(bad), bad).toThrow(/invalid --listen/)
  })
})

describe('--watch', () => {
  it('gets the default interval when none follows it', () => {
    expect(withWatchDefault(['--watch'])).toEqual(['--watch', '2s'])
    expect(withWatchDefault(['--watch', '--json'])).toEqual(['--watch', '2s', '--json'])
    expect(withWatchDefault(['--watch', '5s', '--json'])).toEqual(['--watch', '5s', '--json'])
    expect(withWatchDefault(['--json', '--', '--watch'])).toEqual(['--json', '--', '--watch'])
  })

  it('takes an interval between 1s and 1h', () => {
    expect(parseWatchInterval('5s')).toBe(5)
    expect(parseWatchInterval('1m')).toBe(60)
    for (const bad of ['0s', 'often', '2h']) expect(() => parseWatchInterval(bad), bad).toThrow(/invalid --watch interval/)
  })

  it('computes rates only with a previous reading', () => {
    expect(perSecond(30, 0, 2)).toBe(15)
    expect(perSecond(30, null, 2)).toBeNull()
    expect(perSecond(30, 10, 0)).toBeNull()
  })
})
