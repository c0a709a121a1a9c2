import {describe, expect, it} from 'vitest'

import {formatLsn, parseLsn} from '../../src/lib/cdc/lsn.js'
import {ACTION_CODE, actionCode, addTablesOption, escapeWal2jsonIdentifier, fastJsonLine, toChangeLine, wal2jsonOptions} from '../../src/lib/cdc/wal2json.js'

describe('LSN text', () => {
  it('parses and prints PostgreSQL LSNs, refuses malformed ones', () => {
    expect(parseLsn('0/16B3748')).toBe(0x16b3748)
    expect(parseLsn('16/B374D848')).toBe(0x16 * 2 ** 32 + 0xb374d848)
    expect(formatLsn(parseLsn('16/B374D848'))).toBe('16/B374D848')
    expect(formatLsn(0)).toBe('0/0')
    for (const bad of ['', '0', '0/', '/1', 'zz/1', '0/123456789', '1/2/3', '0x1/2']) expect(parseLsn(bad)).toBeUndefined()
  })
})

describe('wal2json options', () => {
  it("escapes table names by wal2json's rules: backslash before , . * ' whitespace and backslash", () => {
    expect(escapeWal2jsonIdentifier('learned_patterns')).toBe('learned_patterns')
    expect(escapeWal2jsonIdentifier('Foo bar')).toBe('Foo\\ bar')
    expect(escapeWal2jsonIdentifier("a.b,c*d'e\\f")).toBe("a\\.b\\,c\\*d\\'e\\\\f")
    expect(addTablesOption([{schema: 'public', table: 'learned_patterns'}, {schema: 'my schema', table: 't.1'}])).toBe('public.learned_patterns,my\\ schema.t\\.1')
  })

  it('asks for format 2 with xids and commit times; actions and tables only when filtered', () => {
    expect(wal2jsonOptions({format: 'json', tables: [], actions: ['insert', 'update', 'delete', 'truncate']})).toEqual([
      ['format-version', '2'],
      ['include-xids', '1'],
      ['include-timestamp', '1'],
      ['include-types', '0'],
    ])
    const filtered = new Map(wal2jsonOptions({format: 'raw', tables: [{schema: 'public', table: 't'}], actions: ['delete', 'message']}))
    expect(filtered.get('actions')).toBe('delete')
    expect(filtered.get('add-tables')).toBe('public.t')
    expect(filtered.has('include-types')).toBe(false)
  })
})

describe('--json lines', () => {
  const samples = [
    '{"action":"I","xid":727,"timestamp":"2026-11-23 20:30:13.810066+00","schema":"public","table":"t1","columns":[{"name":"id","value":1},{"name":"name","value":"a \\"quoted\\" },{\\"name\\":"},{"name":"v","value":1.5},{"name":"n","value":null},{"name":"b","value":true}]}',
    '{"action":"U","xid":727,"timestamp":"2026-11-23 20:30:13.810066+00","schema":"public","table":"t1","columns":[{"name":"id","value":1},{"name":"name","value":"x\\\\"}],"identity":[{"name":"id","value":1}]}',
    '{"action":"D","xid":9,"timestamp":"2026-11-23 20:30:13+00","schema":"my \\"schema\\"","table":"weird\\\\name","identity":[{"name":"id","value":2}]}',
    '{"action":"T","xid":728,"timestamp":"2026-11-23 20:30:13.812471+00","schema":"public","table":"t1"}',
    '{"action":"I","xid":1,"timestamp":"2026-11-23 20:30:13.1+00","schema":"public","table":"empty","columns":[]}',
  ]

  it('the fast path prints exactly what parsing and JSON.stringify would', () => {
    for (const text of samples) {
      const code = actionCode(text)
      const slow = JSON.stringify(toChangeLine(JSON.parse(text), '0/1', code, {xid: null, timestamp: undefined}))
      const fast = fastJsonLine(text, '0/1', code)
      expect(fast).toBeDefined()
      expect(JSON.parse(fast!)).toEqual(JSON.parse(slow))
      expect(fast).toBe(slow)
    }
  })

  it('falls back (undefined) on shapes it does not know', () => {
    expect(fastJsonLine('{"action":"I","schema":"public","table":"t","columns":[]}', '0/1', ACTION_CODE.I)).toBeUndefined()
    expect(fastJsonLine('{"action":"I","xid":1,"timestamp":"x","schema":"public","table":"t","columns":[{"name":"a","type":"int","value":1}]}', '0/1', ACTION_CODE.I)).toBeUndefined()
    expect(fastJsonLine('{"action":"M","xid":1,"transactional":true,"prefix":"p","content":"c"}', '0/1', ACTION_CODE.M)).toBeUndefined()
  })

  it('commit times become ISO 8601 UTC with the microseconds kept', () => {
    const line = toChangeLine(JSON.parse(samples[0]), '0/1', ACTION_CODE.I, {xid: null, timestamp: undefined})
    expect(line.commitTime).toBe('2026-11-23T20:30:13.810066Z')
    expect(line.columns).toEqual({id: 1, name: 'a "quoted" },{"name":', v: 1.5, n: null, b: true})
  })
})

describe('errors of logical decoding', () => {
  it('turns "may not be used as an output plugin" into the output_plugin_libraries fix', async () => {
    const {cdcError} = await import('../../src/lib/cdc/errors.js')
    const e = cdcError(Object.assign(new Error('library "wal2json" may not be used as an output plugin'), {code: '42501'}))
    expect(e.code).toBe('PLUGIN_NOT_ALLOWED')
    expect(e.exitCode).toBe(1)
    expect(e.hint).toContain("ALTER SYSTEM SET output_plugin_libraries = 'pgoutput, test_decoding, wal2json'")
    expect(cdcError(Object.assign(new Error('logical decoding requires wal_level >= logical'), {code: '55000'})).code).toBe('WAL_LEVEL')
    expect(cdcError(Object.assign(new Error('replication slot "x" is active for PID 12'), {code: '55006'})).code).toBe('SLOT_IN_USE')
    expect(cdcError(Object.assign(new Error('could not access file "wal2json": No such file or directory'), {code: '58P01'})).code).toBe('PLUGIN_MISSING')
    expect(cdcError(Object.assign(new Error('replication slot "x" does not exist'), {code: '42704'})).exitCode).toBe(4)
  })
})
