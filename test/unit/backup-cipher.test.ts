import {randomBytes} from 'node:crypto'
import {Readable} from 'node:stream'
import {describe, expect, it} from 'vitest'

import {CHUNK_SIZE, decryptStream, encryptStream, keyIdOf} from '../../src/lib/backup/cipher.js'

const key = randomBytes(32)
const keyId = 'ab'.repeat(16)

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of stream) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

const encrypt = (plain: Buffer) => collect(Readable.from([plain]).pipe(encryptStream(key, keyId)))
const decrypt = (sealed: Buffer, k = key) => collect(Readable.from([sealed]).pipe(decryptStream(() => k)))

describe('chunked AES-256-GCM of backup files', () => {
  it('round-trips empty input, a chunk boundary exactly, and several chunks', async () => {
    for (const size of [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 17]) {
      const plain = randomBytes(size)
      const sealed = await encrypt(plain)
      expect(keyIdOf(sealed)).toBe(keyId)
      expect((await decrypt(sealed)).equals(plain), `size ${size}`).toBe(true)
    }
  })

  it('a flipped byte, a wrong key, a dropped chunk or a truncation is refused', async () => {
    const plain = randomBytes(2 * CHUNK_SIZE + 100)
    const sealed = await encrypt(plain)
    const flipped = Buffer.from(sealed)
    flipped[CHUNK_SIZE + 100] ^= 1
    await expect(decrypt(flipped)).rejects.toThrow(/chunk 1 failed authentication/)
    await expect(decrypt(sealed, randomBytes(32))).rejects.toThrow(/chunk 0 failed authentication/)
    const chunk = 4 + CHUNK_SIZE + 16
    const header = 36
    const dropped = Buffer.concat([sealed.subarray(0, header + chunk), sealed.subarray(header + 2 * chunk)])
    await expect(decrypt(dropped)).rejects.toThrow(/failed authentication/)
    // cut at a chunk boundary: every remaining chunk is genuine, only the final one is missing
    await expect(decrypt(sealed.subarray(0, header + 2 * chunk))).rejects.toThrow(/truncated after chunk 2/)
    await expect(decrypt(sealed.subarray(0, sealed.length - 1))).rejects.toThrow(/truncated/)
    await expect(decrypt(sealed.subarray(0, 10))).rejects.toThrow(/truncated: no complete header/)
  })
})
