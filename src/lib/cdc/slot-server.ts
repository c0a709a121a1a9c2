import {NotFoundError, UsageError} from '../cli/errors.js'
import {MAIN_SERVER, type ResolvedConfig} from '../config/resolve.js'
import {knownServer, serverNames} from '../estate/targets.js'
import {visitServers} from '../estate/visit.js'

/**
 * The server that holds replication slot `name`: `chosen` (--server) when given; with one server,
 * `main`; with several, the one whose pg_replication_slots has it. A name found on several servers
 * must be chosen; one found nowhere names the servers that could not be asked.
 */
export async function slotServer(config: ResolvedConfig, name: string, chosen?: string): Promise<string> {
  if (chosen !== undefined) return knownServer(config, chosen)
  const servers = serverNames(config)
  if (servers.length === 1) return MAIN_SERVER
  const visits = await visitServers(
    config,
    servers,
    async (client) => (await client.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [name])).rowCount! > 0,
    {timeoutMs: 10_000, connect: {applicationName: 'singularity cdc slots drop'}},
  )
  const holding = servers.filter((_, i) => {
    const visit = visits[i]
    return visit.ok && visit.value
  })
  if (holding.length === 1) return holding[0]
  if (holding.length > 1) {
    throw new UsageError(`replication slot ${name} exists on servers ${holding.join(' and ')}`, {hint: `say which with --server (${holding.join(' or ')})`})
  }
  const unasked = servers.filter((_, i) => !visits[i].ok)
  throw new NotFoundError(`replication slot not found: ${name}${unasked.length > 0 ? ` (server ${unasked.join(', ')} could not be asked)` : ''}`, {
    hint: unasked.length > 0 ? `check that server, or pass --server; list the slots with \`singularity cdc slots\`` : 'list the slots with `singularity cdc slots`',
    code: 'SLOT_NOT_FOUND',
  })
}
