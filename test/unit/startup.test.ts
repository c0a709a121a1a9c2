import {createRequire} from 'node:module'
import {describe, expect, it} from 'vitest'

import {commandId} from '../../src/cli.js'
import {configFileSchema, instances, namePrefix, port, postgresUrl} from '../../src/lib/config/schema.js'
import * as nodeCrypto from '../../src/lib/startup/pg-crypto.js'

// pg's own lib/crypto/utils.js (WebCrypto), which the bundled CLI replaces with src/lib/startup/pg-crypto.ts
const pgCrypto = createRequire(import.meta.url)('pg/lib/crypto/utils.js') as typeof nodeCrypto
const hex = (value: ArrayBuffer | Buffer) => (Buffer.isBuffer(value) ? value : Buffer.from(new Uint8Array(value))).toString('hex')

describe("pg's crypto on node:crypto (start-up: no WebCrypto)", () => {
  it('exports the same functions as pg/lib/crypto/utils.js', () => {
    expect(Object.keys(nodeCrypto).sort()).toEqual(Object.keys(pgCrypto).sort())
  })

  it('derives the same SCRAM keys, HMACs and digests', async () => {
    const salt = Buffer.from('c2FsdHNhbHRzYWx0', 'base64')
    for (const password of ['secret', 'pässwörd ✓', '']) {
      const ours = await nodeCrypto.deriveKey(password, salt, 4096)
      expect(hex(ours)).toBe(hex(await pgCrypto.deriveKey(password, salt, 4096)))
      const clientKey = await nodeCrypto.hmacSha256(ours, 'Client Key')
      expect(hex(clientKey)).toBe(hex(await pgCrypto.hmacSha256(await pgCrypto.deriveKey(password, salt, 4096), 'Client Key')))
      expect(hex(await nodeCrypto.sha256(clientKey))).toBe(hex(await pgCrypto.sha256(clientKey)))
    }
    const data = Buffer.from('certificate bytes')
    for (const name of ['SHA-1', 'SHA-256', 'SHA-384', 'SHA-512']) {
      expect(hex(await nodeCrypto.hashByName(name, data))).toBe(hex(await pgCrypto.hashByName(name, data)))
    }
  })

  it('computes the same md5 password message, and random bytes of the asked length', async () => {
    const salt = Buffer.from([1, 2, 3, 4])
    expect(await nodeCrypto.postgresMd5PasswordHash('alice', 'secret', salt)).toBe(await pgCrypto.postgresMd5PasswordHash('alice', 'secret', salt))
    expect(await nodeCrypto.md5('text')).toBe(await pgCrypto.md5('text'))
    expect(nodeCrypto.randomBytes(18)).toHaveLength(18)
  })
})

describe('config values accepted without loading zod are exactly those zod accepts', () => {
  const cases: [string, {safeParse(v: unknown): {success: boolean; data?: unknown}}, unknown[]][] = [
    ['postgresUrl', postgresUrl, ['postgres://u:p@h:5432/db', 'postgresql://h/db', 'mysql://h/db', 'not a url', '', 5432, undefined]],
    ['port', port, ['5432', '1', '65535', '0', '65536', '54.3', ' 5432 ', '', 'abc', 5432, '1e3', '0x10', null]],
    ['instances', instances, ['1', '64', '65', '0', '3.0', '-1', 2]],
    ['namePrefix', namePrefix, ['', 't_', 'abc_123', 'A', '1a', 'a-b', 'a'.repeat(20), 'a'.repeat(21), 3]],
  ]
  const zod = createRequire(import.meta.url)('zod') as typeof import('zod')
  const reference: Record<string, {safeParse(v: unknown): {success: boolean; data?: unknown}}> = {
    postgresUrl: zod.z.string().refine((v) => {
      try {
        return ['postgres:', 'postgresql:'].includes(new URL(v).protocol)
      } catch {
        return false
      }
    }),
    port: zod.z.coerce.number().int().min(1).max(65_535),
    instances: zod.z.coerce.number().int().min(1).max(64),
    namePrefix: zod.z.string().regex(/^([a-z][a-z0-9_]{0,19})?$/),
  }
  for (const [name, schema, values] of cases) {
    it(name, () => {
      for (const value of values) {
        const expected = reference[name].safeParse(value)
        const actual = schema.safeParse(value)
        expect({value, success: actual.success}).toEqual({value, success: expected.success})
        if (expected.success) expect(actual.data).toEqual(expected.data)
      }
    })
  }

  it('the config file is still checked by zod: unknown keys refused, messages from zod', () => {
    expect(configFileSchema.safeParse({adminUrl: 'postgres://h/db', local: {port: 5432}}).success).toBe(true)
    const bad = configFileSchema.safeParse({adminUrl: 'http://h', extra: 1})
    expect(bad.success).toBe(false)
  })
})

describe('the command id read from argv, as oclif reads it (fast path without plugins)', () => {
  const commands = {
    ping: {},
    queue: {args: {name: {}}},
    'queue:peek': {args: {queue: {}}},
    'cdc:slots': {},
    'cdc:slots:drop': {args: {slot: {}}},
    'local:status': {},
  }
  it.each([
    [['ping', '--json'], 'ping'],
    [['ping'], 'ping'],
    [['local', 'status', '--json'], 'local:status'],
    [['queue', 'peek', 'jobs', '--limit', '5'], 'queue:peek'],
    [['queue', 'jobs'], 'queue'],
    [['cdc', 'slots', 'drop', 'my_slot'], 'cdc:slots:drop'],
    [['cdc', 'slots', '--json'], 'cdc:slots'],
    [['ping', 'help'], 'ping:help'],
    [['help', 'ping'], 'help:ping'],
    [['--version'], '--version'],
  ])('%j → %s', (argv, id) => {
    expect(commandId(argv, commands)).toBe(id)
  })
})
