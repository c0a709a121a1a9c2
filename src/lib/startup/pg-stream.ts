import {createRequire} from 'node:module'
import type {Socket} from 'node:net'
import type {ConnectionOptions, TLSSocket} from 'node:tls'

/**
 * node-postgres' lib/stream.js for Node.js only, for the bundled CLI (esbuild.config.mjs puts it in
 * place of pg's file). pg's own version first probes for Cloudflare Workers: on Node 20 (no
 * `navigator`) the probe builds a fetch Response, which loads undici, ~40 ms of start-up for every
 * command that connects. These are pg's Node.js functions, unchanged.
 */

const require = createRequire(import.meta.url)

export function getStream(_ssl?: unknown): Socket {
  const net = require('node:net') as typeof import('node:net')
  return new net.Socket()
}

export function getSecureStream(options: ConnectionOptions): TLSSocket {
  const tls = require('node:tls') as typeof import('node:tls')
  return tls.connect(options)
}
