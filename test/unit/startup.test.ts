import {copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {Socket} from 'node:net'
import {createRequire} from 'node:module'
import {tmpdir} from 'node:os'
import {dirname, join, resolve} from 'node:path'
import {TLSSocket} from 'node:tls'
import {fileURLToPath} from 'node:url'

import {Config} from '@oclif/core'
import {normalizeArgv} from '@oclif/core/help'
import {helpAddition, versionAddition} from '@oclif/core/run'
import {describe, expect, it} from 'vitest'

import {commandId, ownCommandRun} from '../../src/cli.js'
import {configFileSchema, instances, namePrefix, port, postgresUrl} from '../../src/lib/config/schema.js'
import * as nodeCrypto from '../../src/lib/startup/pg-crypto.js'
import * as nodeStream from '../../src/lib/startup/pg-stream.js'
import {checkPgReplacement, checkPgReplacements, PG_REPLACEMENTS} from '../../src/lib/startup/replacements.js'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const requireHere = createRequire(import.meta.url)
const pgDir = dirname(requireHere.resolve('pg/package.json'))

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

  it('derives a key once per password, salt and count (a role logs in to many databases), and still right for another salt or count', async () => {
    const salt = Buffer.from('c2FsdHNhbHRzYWx0', 'base64')
    const first = nodeCrypto.deriveKey('reused', salt, 4096)
    expect(nodeCrypto.deriveKey('reused', Buffer.from(salt), 4096)).toBe(first) // the same derivation, even while it runs
    for (const [password, otherSalt, count] of [['reused', Buffer.from('b3RoZXJzYWx0', 'base64'), 4096], ['reused', salt, 8192], ['other', salt, 4096]] as const) {
      const key = await nodeCrypto.deriveKey(password, otherSalt, count)
      expect(hex(key)).toBe(hex(await pgCrypto.deriveKey(password, otherSalt, count)))
      expect(hex(key)).not.toBe(hex(await first))
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

describe("pg's stream.js for Node.js only (start-up: no Cloudflare probe, no undici)", () => {
  // pg's own lib/stream.js, which the bundled CLI replaces with src/lib/startup/pg-stream.ts
  const pgStream = requireHere('pg/lib/stream.js') as typeof nodeStream

  it('exports the same functions as pg/lib/stream.js', () => {
    expect(Object.keys(nodeStream).sort()).toEqual(Object.keys(pgStream).sort())
  })

  it('gives the same kind of socket as pg does on Node.js: a plain net.Socket, unconnected', () => {
    const ours = nodeStream.getStream(false)
    const theirs = pgStream.getStream(false)
    expect(ours.constructor).toBe(Socket)
    expect(theirs.constructor).toBe(ours.constructor)
    expect([ours.connecting, ours.destroyed]).toEqual([theirs.connecting, theirs.destroyed])
    ours.destroy()
    theirs.destroy()
  })

  it('gives the same kind of TLS socket over the socket it is handed, as pg does', () => {
    const sockets = [nodeStream, pgStream].map((m) => {
      const socket = new Socket()
      const tls = m.getSecureStream({socket, servername: 'localhost', rejectUnauthorized: false})
      tls.on('error', () => {})
      return {socket, tls}
    })
    for (const {tls} of sockets) expect(tls).toBeInstanceOf(TLSSocket)
    expect(sockets[0].tls.constructor).toBe(sockets[1].tls.constructor)
    for (const {socket, tls} of sockets) {
      tls.destroy()
      socket.destroy()
    }
  })
})

describe('the build refuses a pg file its replacement was not written for', () => {
  it("today's pg files are the ones the replacements were written for", () => {
    expect(() => checkPgReplacements(pgDir)).not.toThrow()
  })

  it.each(PG_REPLACEMENTS.map((r) => [r.file, r] as const))('an altered copy of pg/%s fails the check, naming the file', (file, replacement) => {
    const copy = mkdtempSync(join(tmpdir(), 'singularity-pg-copy-'))
    try {
      mkdirSync(dirname(join(copy, file)), {recursive: true})
      copyFileSync(join(pgDir, file), join(copy, file))
      expect(() => checkPgReplacement(copy, replacement)).not.toThrow()
      // one changed character: the file pg ships is no longer the one the replacement stands for
      const source = readFileSync(join(copy, file), 'utf8')
      writeFileSync(join(copy, file), source.replace('function', 'function '))
      expect(() => checkPgReplacement(copy, replacement)).toThrow(`pg/${file}`)
      rmSync(join(copy, file))
      expect(() => checkPgReplacement(copy, replacement)).toThrow(`pg/${file} is missing`)
    } finally {
      rmSync(copy, {recursive: true, force: true})
    }
  })

  it('the build runs the check before bundling and fails on it (esbuild.config.mjs)', () => {
    const config = readFileSync(join(root, 'esbuild.config.mjs'), 'utf8')
    const check = config.indexOf('checkPgReplacements(pgDir)')
    expect(check).toBeGreaterThan(-1)
    expect(config.indexOf('process.exit(1)', check)).toBeGreaterThan(check)
    expect(check).toBeLessThan(config.indexOf('await esbuild.build('))
  })
})

describe("the fast path of src/cli.ts agrees with oclif's own resolution, for every command in the manifest", async () => {
  const pjson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
  const manifest = JSON.parse(readFileSync(join(root, 'oclif.manifest.json'), 'utf8')) as {commands: Record<string, {aliases?: string[]; args?: Record<string, unknown>}>}
  // oclif as bin/run.js loads it without the fast path (plugins included), and as the fast path loads it
  const full = await Config.load({root})
  const bare = await Config.load({root, pjson: {...pjson, oclif: {...pjson.oclif, plugins: []}}})

  /** The command oclif would run for argv ("ours:<id>" or "plugin:<id>"), or undefined for help, --version, a topic, an unknown id. */
  function oclifRuns(config: Config, argv: string[]): string | undefined {
    if (versionAddition(argv, config) || helpAddition(argv, config)) return undefined
    const [id] = normalizeArgv(config, [...argv])
    const command = config.findCommand(id)
    if (!command) return undefined
    return `${command.pluginName === pjson.name ? 'ours' : 'plugin'}:${command.id}`
  }

  const names = Object.entries(manifest.commands).flatMap(([id, c]) => [id, ...(c.aliases ?? [])].map((name) => ({id, name, takesArgs: Object.keys(c.args ?? {}).length > 0})))
  const cases: string[][] = [[], ['--version'], ['--help'], ['help'], ['help', 'ping'], ['autocomplete'], ['autocomplete', 'bash'], ['nonexistent'], ['queue', 'nonexistent']]
  for (const {name} of names) {
    const words = name.split(':')
    cases.push(words, [...words, '--json'], [...words, 'some_word'], [...words, 'some_word', '--json'], [...words, '--help'], [...words, 'help'], [...words, '--', '--help'], [...words, '--db=x'])
  }

  it('every command and alias of the manifest is covered', () => {
    expect(names.length).toBeGreaterThanOrEqual(Object.keys(manifest.commands).length)
    expect(names.length).toBeGreaterThan(20)
  })

  it.each(cases.map((argv) => [argv.join(' ') || '(no arguments)', argv] as const))('%s', (_, argv) => {
    const fast = ownCommandRun(root, argv)
    const runs = oclifRuns(full, argv)
    if (fast) {
      // taken only for one of our commands, and the configuration without plugins runs that same one
      expect(runs).toMatch(/^ours:/)
      expect(oclifRuns(bare, argv)).toBe(runs)
      expect(`ours:${commandId(argv, manifest.commands)}`).toBe(runs)
    } else {
      // not taken: oclif runs everything itself, plugins included (always correct, just slower);
      // a plain run of one of our commands must take it, though
      expect(runs === undefined || !argv.includes('--json') || argv.includes('--help') || runs.startsWith('plugin:')).toBe(true)
    }
  })

  it.each(names.map(({id, name}) => [name, id] as const))('`%s --json` takes the fast path and runs %s', (name, id) => {
    const argv = [...name.split(':'), '--json']
    expect(ownCommandRun(root, argv)).toBeDefined()
    expect(oclifRuns(full, argv)).toBe(`ours:${id}`)
  })
})
