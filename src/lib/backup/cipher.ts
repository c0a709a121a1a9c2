/**
 * Encryption of backup files while they stream: AES-256-GCM in chunks (node:crypto), so no
 * plaintext is ever written and a reader checks each chunk before using it.
 *
 * File layout: header = "SGYENC1\n" (8 bytes) + key id (16 bytes) + base nonce (12 bytes); then
 * chunks of [u32 BE plaintext length][ciphertext][16-byte GCM tag]. Chunk i uses the base nonce
 * with its last 8 bytes XORed with i; its additional data is the header, i and a final flag, so
 * chunks cannot be reordered, dropped or moved between files, and the last chunk (flagged final,
 * possibly empty) tells a complete file from a truncated one.
 */
import {createCipheriv, createDecipheriv, randomBytes} from 'node:crypto'
import {Transform, type TransformCallback} from 'node:stream'

export const CIPHER = 'aes-256-gcm-chunked-v1'
export const CHUNK_SIZE = 1024 * 1024
const MAGIC = Buffer.from('SGYENC1\n')
const HEADER_SIZE = MAGIC.length + 16 + 12
const TAG_SIZE = 16

export class DecryptError extends Error {}

function nonceFor(base: Buffer, index: number): Buffer {
  const nonce = Buffer.from(base)
  const counter = Buffer.alloc(8)
  counter.writeBigUInt64BE(BigInt(index))
  for (let i = 0; i < 8; i++) nonce[4 + i] ^= counter[i]
  return nonce
}

function aad(header: Buffer, index: number, final: boolean): Buffer {
  const extra = Buffer.alloc(9)
  extra.writeBigUInt64BE(BigInt(index))
  extra[8] = final ? 1 : 0
  return Buffer.concat([header, extra])
}

/** The raw 16-byte key id from its hex form. */
const idBytes = (keyId: string) => Buffer.from(keyId, 'hex')

/**
 * A stream that encrypts what is written to it for `key` (32 bytes) under `keyId` (32 hex chars).
 * The plaintext is never copied into a chunk buffer: each piece that arrives goes through the
 * cipher as it is (GCM is a stream mode), and a chunk is sealed once more data shows it is not the
 * last one (its final flag is in its additional data, so it must be known before encrypting).
 */
export function encryptStream(key: Buffer, keyId: string): Transform {
  const header = Buffer.concat([MAGIC, idBytes(keyId), randomBytes(12)])
  const base = header.subarray(MAGIC.length + 16)
  let index = 0
  const pending: Buffer[] = []
  let pendingLength = 0
  let started = false
  /** Encrypts `parts` (together one chunk's plaintext) as chunk `index`, pushing length, ciphertext and tag. */
  const seal = (stream: Transform, parts: Buffer[], length: number, final: boolean): void => {
    const cipher = createCipheriv('aes-256-gcm', key, nonceFor(base, index))
    cipher.setAAD(aad(header, index, final))
    const prefix = Buffer.alloc(4)
    prefix.writeUInt32BE(length)
    stream.push(prefix)
    for (const part of parts) {
      const out = cipher.update(part)
      if (out.length > 0) stream.push(out)
    }
    const rest = cipher.final()
    if (rest.length > 0) stream.push(rest)
    stream.push(cipher.getAuthTag())
    index++
  }
  /** Takes exactly CHUNK_SIZE bytes off the front of `pending` (views, no copies). */
  const takeChunk = (): Buffer[] => {
    const parts: Buffer[] = []
    let need = CHUNK_SIZE
    while (need > 0) {
      const head = pending[0]
      if (head.length <= need) {
        parts.push(head)
        pending.shift()
        need -= head.length
      } else {
        parts.push(head.subarray(0, need))
        pending[0] = head.subarray(need)
        need = 0
      }
    }
    pendingLength -= CHUNK_SIZE
    return parts
  }
  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      if (!started) {
        this.push(header)
        started = true
      }
      if (chunk.length > 0) {
        pending.push(chunk)
        pendingLength += chunk.length
      }
      // more than a chunk waiting: the first CHUNK_SIZE bytes are not the last, seal them
      while (pendingLength > CHUNK_SIZE) seal(this, takeChunk(), CHUNK_SIZE, false)
      callback()
    },
    flush(callback: TransformCallback) {
      if (!started) this.push(header)
      seal(this, pending.splice(0), pendingLength, true)
      pendingLength = 0
      callback()
    },
  })
}

/** The key id a file was encrypted with, from its header; undefined when it is not ours. */
export function keyIdOf(head: Buffer): string | undefined {
  if (head.length < HEADER_SIZE || !head.subarray(0, MAGIC.length).equals(MAGIC)) return undefined
  return head.subarray(MAGIC.length, MAGIC.length + 16).toString('hex')
}

/**
 * A stream that decrypts a file written by encryptStream; `keyFor(id)` returns the key or throws.
 * Emits an error (DecryptError) on a changed chunk, a wrong key or a truncated file.
 */
export function decryptStream(keyFor: (keyId: string) => Buffer): Transform {
  let buffer: Buffer = Buffer.alloc(0)
  let header: Buffer | undefined
  let key: Buffer | undefined
  let index = 0
  let finished = false
  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk])
      try {
        if (!header) {
          if (buffer.length < HEADER_SIZE) return callback()
          header = Buffer.from(buffer.subarray(0, HEADER_SIZE))
          const id = keyIdOf(header)
          if (!id) throw new DecryptError('not an encrypted backup file (bad header)')
          key = keyFor(id)
          buffer = buffer.subarray(HEADER_SIZE)
        }
        while (buffer.length >= 4) {
          if (finished) throw new DecryptError('data after the final chunk')
          const length = buffer.readUInt32BE(0)
          if (length > CHUNK_SIZE) throw new DecryptError(`chunk ${index} has an impossible length (the file was changed)`)
          const total = 4 + length + TAG_SIZE
          if (buffer.length < total) break
          // the final chunk is the one the stream ends with: try it as non-final first
          const body = buffer.subarray(4, 4 + length)
          const tag = buffer.subarray(4 + length, total)
          const rest = buffer.subarray(total)
          const open = (final: boolean) => {
            const decipher = createDecipheriv('aes-256-gcm', key!, nonceFor(header!.subarray(MAGIC.length + 16), index))
            decipher.setAAD(aad(header!, index, final))
            decipher.setAuthTag(tag)
            return Buffer.concat([decipher.update(body), decipher.final()])
          }
          let plain: Buffer
          try {
            plain = open(false)
          } catch {
            try {
              plain = open(true)
              finished = true
            } catch {
              throw new DecryptError(`chunk ${index} failed authentication (the file was changed, or the key is wrong)`)
            }
          }
          this.push(plain)
          index++
          buffer = rest
        }
        callback()
      } catch (error) {
        callback(error as Error)
      }
    },
    flush(callback: TransformCallback) {
      if (!header) return callback(new DecryptError('truncated: no complete header'))
      if (!finished || buffer.length > 0) return callback(new DecryptError(`truncated after chunk ${index}: the final chunk is missing`))
      callback()
    },
  })
}
