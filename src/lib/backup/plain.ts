/**
 * Reading a backup file as plaintext: straight from disk, or decrypted while it streams (each
 * chunk's tag checked before its bytes are used). Tools read it on their stdin.
 */
import {createReadStream} from 'node:fs'
import {pipeline, type Readable} from 'node:stream'

import {decryptStream} from './cipher.js'

export type KeyLookup = (keyId: string) => Buffer

/** The plaintext of a backup file; `keys` given: the file is encrypted. Errors surface on the stream. */
export function openPlain(path: string, keys: KeyLookup | undefined): Readable {
  const file = createReadStream(path, {highWaterMark: 1024 * 1024})
  if (!keys) return file
  return pipeline(file, decryptStream(keys), () => {})
}

/**
 * Runs a child process fed `input` on stdin; when the input fails (a changed chunk, a missing key),
 * the child is killed and that error is thrown instead of the child's.
 */
export async function runFed<T extends {kill: () => boolean; stdin: NodeJS.WritableStream | null}>(child: T & PromiseLike<unknown>, input: Readable | undefined): Promise<Awaited<T>> {
  let inputError: Error | undefined
  if (input) {
    input.on('error', (error) => {
      inputError ??= error
      child.kill()
    })
    child.stdin?.on('error', () => {})
    input.pipe(child.stdin!)
  }
  const result = (await child) as Awaited<T>
  if (inputError) throw inputError
  return result
}
