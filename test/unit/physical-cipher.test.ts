import {mkdtempSync, readFileSync, rmSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import {currentKey, rotateKey} from '../../src/lib/backup/keys.js'
import {cipherEnv, cipherIncludeDir, repoCipherPass, repoKeyFile, writeCipherConf, type RepoCipher} from '../../src/lib/backup/physical/cipher.js'
import {DEFAULT_PHYSICAL_RETENTION} from '../../src/lib/backup/physical/setup.js'
import {renderConfig} from '../../src/lib/backup/physical/pgbackrest.js'

const root = mkdtempSync(join(tmpdir(), 'singularity-physical-cipher-'))
afterAll(() => rmSync(root, {recursive: true, force: true}))

describe('physical repository cipher', () => {
  const base = {stanza: 'singularity-local', dataDir: '/d', port: 5432, socketDir: null, dbUser: 'postgres', retention: DEFAULT_PHYSICAL_RETENTION}
  const keyFile = join(root, 'keys', 'backup-keys.json')
  const {id, key} = currentKey(keyFile)
  const cipher: RepoCipher = {type: 'aes-256-cbc', keyId: id, keyFile, includeDir: cipherIncludeDir(keyFile, join(root, 'backups', 'physical', 'repo'), 'singularity-local')}

  it('derives one passphrase per key and stanza, never the key itself', () => {
    const pass = repoCipherPass(key, 'singularity-local')
    expect(pass).toBe(repoCipherPass(key, 'singularity-local'))
    expect(pass).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(pass).not.toBe(repoCipherPass(key, 'other'))
    expect(pass).not.toContain(key.toString('base64url'))
  })

  it('pgbackrest.conf names the cipher but never holds the passphrase; unencrypted has no cipher line', () => {
    const conf = renderConfig(join(root, 'backups'), {...base, cipher})
    expect(conf).toContain('repo1-cipher-type=aes-256-cbc')
    expect(conf).not.toContain('cipher-pass')
    expect(renderConfig(join(root, 'backups'), {...base, cipher: null})).not.toContain('repo1-cipher')
  })

  it('the include directory sits beside the key file, one per repository', () => {
    expect(cipher.includeDir.startsWith(join(root, 'keys', 'pgbackrest-cipher', 'singularity-local-'))).toBe(true)
    expect(cipherIncludeDir(keyFile, '/elsewhere/repo', 'singularity-local')).not.toBe(cipher.includeDir)
  })

  it('cipher.conf is 0600 in a 0700 directory and holds the passphrase for the stanza only', () => {
    const file = writeCipherConf(cipher.includeDir, 'singularity-local', 'p4ss', undefined)
    expect(statSync(file).mode & 0o777).toBe(0o600)
    expect(statSync(cipher.includeDir).mode & 0o777).toBe(0o700)
    expect(readFileSync(file, 'utf8')).toContain('[singularity-local]\nrepo1-cipher-pass=p4ss\n')
  })

  it('the environment comes from the key store; a rotation keeps the repository key; a key file without it exits 1 naming the id', () => {
    expect(cipherEnv('singularity-local', cipher)).toEqual({PGBACKREST_REPO1_CIPHER_TYPE: 'aes-256-cbc', PGBACKREST_REPO1_CIPHER_PASS: repoCipherPass(key, 'singularity-local')})
    rotateKey(keyFile)
    expect(cipherEnv('singularity-local', cipher).PGBACKREST_REPO1_CIPHER_PASS).toBe(repoCipherPass(key, 'singularity-local'))
    expect(cipherEnv('singularity-local', null)).toEqual({})
    const other = join(root, 'other', 'backup-keys.json')
    currentKey(other)
    for (const file of [other, join(root, 'missing', 'backup-keys.json')]) {
      let error: (Error & {code?: string; exitCode?: number}) | undefined
      try {
        cipherEnv('singularity-local', cipher, file)
      } catch (e) {
        error = e as Error
      }
      expect(error).toMatchObject({code: 'BACKUP_KEY_MISSING', exitCode: 1})
      expect(error!.message).toContain(`encrypted with backup key ${id}, which is not in ${file}`)
    }
  })

  it('the key file: the flag, then SINGULARITY_BACKUP_KEY_FILE, then the one recorded at set-up', () => {
    expect(repoKeyFile(cipher, '/flag', {SINGULARITY_BACKUP_KEY_FILE: '/env'})).toBe('/flag')
    expect(repoKeyFile(cipher, undefined, {SINGULARITY_BACKUP_KEY_FILE: '/env'})).toBe('/env')
    expect(repoKeyFile(cipher, undefined, {})).toBe(keyFile)
  })
})
