import {createServer, type Server} from 'node:http'

import {UsageError} from '../cli/errors.js'

export interface ListenAddress {
  host: string
  port: number
}

/** "[host:]port" of --listen; the host defaults to 127.0.0.1 (never every interface unless told). */
export function parseListen(text: string): ListenAddress {
  const match = /^(?:(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):)?(\d{1,5})$/.exec(text.trim())
  const port = match ? Number(match[2]) : NaN
  if (!match || port > 65_535) {
    throw new UsageError(`invalid --listen ${JSON.stringify(text)}`, {hint: 'a port (9187), or host:port (0.0.0.0:9187, [::1]:9187); the host defaults to 127.0.0.1', code: 'BAD_LISTEN'})
  }
  return {host: match[1] ? match[1].replace(/^\[|\]$/g, '') : '127.0.0.1', port}
}

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

/**
 * Serves GET /metrics with the text `scrape` produces. Scrapes arriving while one runs share it
 * (one set of queries however many scrapers). Returns the listening server.
 */
export async function serveMetrics(address: ListenAddress, scrape: () => Promise<string>): Promise<Server> {
  let running: Promise<string> | null = null
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, {allow: 'GET, HEAD'}).end()
      return
    }
    if (path !== '/metrics') {
      res.writeHead(path === '/' ? 200 : 404, {'content-type': 'text/plain; charset=utf-8'}).end(path === '/' ? 'singularity metrics: see /metrics\n' : 'not found: see /metrics\n')
      return
    }
    running ??= scrape().finally(() => {
      running = null
    })
    running.then(
      (body) => res.writeHead(200, {'content-type': CONTENT_TYPE}).end(req.method === 'HEAD' ? undefined : body),
      (error: unknown) => res.writeHead(500, {'content-type': 'text/plain; charset=utf-8'}).end(`scrape failed: ${String((error as Error)?.message ?? error).split('\n')[0]}\n`),
    )
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(address.port, address.host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  return server
}
