import {createRequire} from 'node:module'

/**
 * node-postgres' lib/crypto/utils.js on node:crypto, for the bundled CLI (esbuild.config.mjs puts it
 * in place of pg's file). pg's own version does SCRAM through WebCrypto, whose first use loads Node's
 * whole WebCrypto layer and derives the key asynchronously through it: ~25-50 ms of start-up for every
 * command that connects. Same seven functions, same results, on OpenSSL's digests (Buffers where pg
 * returned ArrayBuffers; pg wraps every result in Buffer.from or passes it back in here).
 */

// Through require, when first needed: an ES import of node:crypto evaluates all its lazy getters,
// WebCrypto included.
let cryptoModule: typeof import('node:crypto') | undefined
const crypto = () => (cryptoModule ??= createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto'))

type BinaryLike = string | ArrayBuffer | ArrayBufferView

function bytes(data: BinaryLike): Buffer | string {
  if (typeof data === 'string' || Buffer.isBuffer(data)) return data
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  return Buffer.from(data)
}

function md5Hex(data: string | Buffer): string {
  return crypto().createHash('md5').update(data).digest('hex')
}

/** md5 of a string or bytes, hex (pg: md5). */
export async function md5(data: string | Buffer): Promise<string> {
  return md5Hex(data)
}

/** The md5 password message of AuthenticationMD5Password. */
export async function postgresMd5PasswordHash(user: string, password: string, salt: Buffer): Promise<string> {
  return 'md5' + md5Hex(Buffer.concat([Buffer.from(md5Hex(password + user)), salt]))
}

export function randomBytes(length: number): Buffer {
  return crypto().randomBytes(length)
}

// A role's salt and iteration count are fixed by its stored verifier, so a command that visits 60
// databases as one role would derive the same key 60 times (4096 rounds, ~2.5 ms of CPU each).
const derivedKeys = new Map<string, Promise<Buffer>>()

/** SCRAM's SaltedPassword: PBKDF2-HMAC-SHA-256, 32 bytes; derived once per password, salt and count in a process. */
export function deriveKey(password: string, salt: Buffer, iterations: number): Promise<Buffer> {
  const id = `${iterations}:${salt.toString('base64')}:${password}`
  let key = derivedKeys.get(id)
  if (!key) {
    key = new Promise<Buffer>((resolve, reject) => {
      crypto().pbkdf2(password, salt, iterations, 32, 'sha256', (error, derived) => (error ? reject(error) : resolve(derived)))
    })
    derivedKeys.set(id, key)
    key.catch(() => derivedKeys.delete(id))
  }
  return key
}

export async function sha256(data: BinaryLike): Promise<Buffer> {
  return crypto().createHash('sha256').update(bytes(data)).digest()
}

/** A digest by its WebCrypto name (SHA-1, SHA-256, SHA-384, SHA-512), for channel binding. */
export async function hashByName(hashName: string, data: BinaryLike): Promise<Buffer> {
  return crypto().createHash(hashName.replace('-', '').toLowerCase()).update(bytes(data)).digest()
}

export async function hmacSha256(key: BinaryLike, message: string): Promise<Buffer> {
  return crypto().createHmac('sha256', bytes(key)).update(message, 'utf8').digest()
}
