import {describe, expect, it} from 'vitest'

import {redact, redactValue, registerSecret} from '../../src/lib/cli/redact.js'

describe('redact', () => {
  it('hides the password of a connection URL and keeps user, host and database', () => {
    expect(redact('connect to postgres://alice:s3cr%40t@db.internal:5432/singularity failed')).toBe(
      'connect to postgres://alice:***@db.internal:5432/singularity failed',
    )
    expect(redact('postgresql://bob:pw@h/db')).toBe('postgresql://bob:***@h/db')
  })

  it('leaves URLs without a password as they are', () => {
    expect(redact('postgres://alice@db/x and postgres://db/y')).toBe('postgres://alice@db/x and postgres://db/y')
  })

  it('hides key=value and query-string passwords', () => {
    expect(redact("host=db password=hunter22 user=x")).toBe('host=db password=*** user=x')
    expect(redact("password='a b c' dbname=x")).toBe('password=*** dbname=x')
    expect(redact('postgres://h/db?sslmode=require&password=abc')).toBe('postgres://h/db?sslmode=require&password=***')
  })

  it('hides registered literal secrets wherever they appear, also deep in JSON values', () => {
    registerSecret('correct-horse-battery')
    expect(redact('the key is correct-horse-battery.')).toBe('the key is ***.')
    expect(redactValue({a: ['x correct-horse-battery'], b: {c: 'postgres://u:p@h/d'}, n: 3})).toEqual({
      a: ['x ***'],
      b: {c: 'postgres://u:***@h/d'},
      n: 3,
    })
  })
})
