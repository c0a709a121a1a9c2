import {createServer, type Server, type Socket} from 'node:net'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

// in process: the same argv, output and exit codes as a child process, without a node start per run
import {runCliInProcess} from '../helpers/cli.js'

// A server that accepts connections and never answers: a command that got past its flags and
// tried to connect would hang here until runCli times out (and fails naming the command), so exit 2
// proves the blank value was refused before anything connected.
let server: Server
let url: string
const sockets: Socket[] = []
beforeAll(async () => {
  server = createServer((socket) => void sockets.push(socket))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('the silent test server has no TCP port')
  url = `postgres://nobody@127.0.0.1:${address.port}/postgres`
})
afterAll(async () => {
  for (const socket of sockets) socket.destroy()
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

describe('a blank name filter exits 2 before connecting, never read as "no filter"', () => {
  const cases: [string[], string][] = [
    [['cdc', 'tail'], '--table'],
    [['cdc', 'tail'], '--action'],
    [['cdc', 'tail'], '--db'],
    [['cdc', 'tail'], '--slot'],
    [['queue', 'stats'], '--db'],
    [['queue', 'stats'], '--pattern'],
    [['queue', 'peek', 'llm_requests'], '--db'],
    [['queue', 'send', 'llm_requests', '{}'], '--db'],
    [['queue', 'purge', 'llm_requests', '--dry-run'], '--db'],
    [['jobs', 'list'], '--db'],
    [['jobs', 'run', 'learn-patterns'], '--db'],
    [['jobs', 'history', 'learn-patterns'], '--db'],
    [['backup'], '--db'],
    [['backup', 'restore', 'latest'], '--db'],
    [['backup', 'restore', 'latest'], '--as'],
  ]
  for (const [command, flag] of cases) {
    for (const value of ['', ' ', ' , ']) {
      it(`${command.join(' ')} ${flag} ${JSON.stringify(value)}`, async () => {
        const r = await runCliInProcess([...command, flag, value, '--json'], {noAdmin: true, env: {SINGULARITY_ADMIN_URL: url}, timeoutMs: 90_000})
        expect(r.exitCode).toBe(2)
        const error = r.json().error
        expect(error.exitCode).toBe(2)
        expect(error.message).toContain(`a blank value is not a filter: give a name, or leave ${flag} out`)
      })
    }
  }

  it('a real value is accepted and the command goes on to connect (here: to a server that refuses)', async () => {
    const r = await runCliInProcess(['queue', 'stats', '--db', 'shared_queue', '--json'], {noAdmin: true, env: {SINGULARITY_ADMIN_URL: 'postgres://nobody@127.0.0.1:1/postgres'}, timeoutMs: 20_000})
    expect(r.exitCode).toBe(1)
    expect(r.json().error.message).toMatch(/cannot connect/)
  })
})
