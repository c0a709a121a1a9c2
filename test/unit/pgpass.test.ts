import {chmodSync, mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'

import {pgpassLookup} from '../../src/lib/db/pgpass.js'

function passfile(content: string, mode = 0o600): string {
  const file = join(mkdtempSync(join(tmpdir(), 'pgpass-')), 'pgpass')
  writeFileSync(file, content)
  chmodSync(file, mode)
  return file
}

const target = {host: 'db.internal', port: 5432, database: 'shared_queue', user: 'nexus'}

describe("libpq's password file", () => {
  it('takes the first matching line, with * wildcards', () => {
    const file = passfile('# comment\nother:5432:*:nexus:nope\ndb.internal:5432:*:nexus:first\n*:*:*:*:second\n')
    expect(pgpassLookup(target, {PGPASSFILE: file})).toBe('first')
    expect(pgpassLookup({...target, user: 'genesis'}, {PGPASSFILE: file})).toBe('second')
  })

  it('unescapes \\: and \\\\ and keeps colons inside the password', () => {
    const file = passfile('db.internal:5432:shared_queue:nexus:a\\:b\\\\c:d\n')
    expect(pgpassLookup(target, {PGPASSFILE: file})).toBe('a:b\\c:d')
  })

  it('ignores a file that group or others can read, as libpq does', () => {
    expect(pgpassLookup(target, {PGPASSFILE: passfile('*:*:*:*:secret\n', 0o644)})).toBeUndefined()
  })

  it('returns undefined when nothing matches or there is no file', () => {
    expect(pgpassLookup(target, {PGPASSFILE: passfile('x:1:y:z:w\n')})).toBeUndefined()
    expect(pgpassLookup(target, {PGPASSFILE: '/nonexistent/pgpass'})).toBeUndefined()
  })
})
