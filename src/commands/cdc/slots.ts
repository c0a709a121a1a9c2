import {Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {connectionFlags} from '../../flags.js'
import {UsageError} from '../../lib/cli/errors.js'
import {formatBytes, formatDuration, parseSize} from '../../lib/cli/format.js'
import {renderTable} from '../../lib/cli/table.js'
import {resolveConfig} from '../../lib/config/resolve.js'
import {withClient} from '../../lib/db/connect.js'
import {adminTarget, discoverEstate} from '../../lib/estate/targets.js'
import {listSlots, slotsOverRetention, type SlotsReport} from '../../lib/cdc/slots.js'

export interface SlotsResult extends SlotsReport {
  /** the estate's persistent slots that do not exist on the server */
  missing: string[]
  threshold: {bytes: number; human: string; exceeded: string[]} | null
}

export default class CdcSlots extends BaseCommand<typeof CdcSlots> {
  static override summary = 'Every replication slot on the server: plugin, database, active, retained WAL, wal_status, safe_wal_size, inactive since.'
  static override description = `A slot nobody reads keeps WAL until the disk is full. Retained WAL is the current WAL position minus the slot's restart_lsn. "inactive since" comes from pg_replication_slots.inactive_since (PostgreSQL 17+); older servers do not record it and show "-" (null under --json). With --fail-if-retained-gt the command exits 3 when any slot retains more, for alerting.`

  static override examples = [
    {description: 'All slots', command: '<%= config.bin %> cdc slots'},
    {description: 'Alert when a slot holds more than 1 GB of WAL (exit 3)', command: '<%= config.bin %> cdc slots --fail-if-retained-gt 1GB'},
    {description: 'For scripts', command: '<%= config.bin %> cdc slots --json'},
  ]

  static override flags = {
    ...connectionFlags,
    'fail-if-retained-gt': Flags.string({description: 'Exit 3 when a slot retains more WAL than this, e.g. 1GB, 512MB.'}),
  }

  protected async execute(): Promise<SlotsResult> {
    const limitText = this.flags['fail-if-retained-gt']
    const limit = limitText === undefined ? undefined : parseSize(limitText)
    if (limitText !== undefined && limit === undefined) {
      throw new UsageError(`invalid size for --fail-if-retained-gt: ${JSON.stringify(limitText)}`, {hint: 'a size such as 1GB, 512MB or a number of bytes'})
    }
    const config = resolveConfig(this.flags)
    return withClient(
      adminTarget(config),
      async (client) => {
        const estate = await discoverEstate(config, client)
        const estateSlots = estate.databases.flatMap((d) => [d.cdcSlot, d.cdcBridgeSlot].filter((s): s is string => s !== undefined))
        const report = await listSlots(client, estateSlots)
        const missing = estateSlots.filter((name) => !report.slots.some((s) => s.name === name))
        let threshold: SlotsResult['threshold'] = null
        if (limit !== undefined) {
          const exceeded = slotsOverRetention(report, limit).map((s) => s.name)
          threshold = {bytes: limit, human: formatBytes(limit), exceeded}
          if (exceeded.length > 0) this.exitAfterOutput(3)
        }
        const result = {...report, missing, threshold}
        if (!this.jsonMode) this.table = await slotsTable(result, this.colorful)
        return result
      },
      {applicationName: 'singularity cdc slots', statementTimeoutMs: 30_000},
    )
  }

  private table = ''

  protected override human(result: SlotsResult): void {
    if (result.slots.length === 0) this.out('no replication slots on this server')
    else this.out(this.table)
    if (!result.inactiveSinceAvailable && result.slots.some((s) => !s.active)) {
      this.out('(this server does not record when a slot went inactive; PostgreSQL 17+ does)')
    }
    for (const name of result.missing) this.out(`missing: estate slot ${name} does not exist; \`singularity db init\` creates it`)
    if (result.threshold) {
      if (result.threshold.exceeded.length > 0) {
        this.out(`UNHEALTHY: retained WAL above ${result.threshold.human}: ${result.threshold.exceeded.join(', ')} — read or drop them (\`singularity cdc slots drop <name>\`)`)
      } else {
        this.out(`ok: no slot retains more than ${result.threshold.human}`)
      }
    }
  }
}

async function slotsTable(result: SlotsResult, colour: boolean): Promise<string> {
  const rows = result.slots.map((s) => [
    s.name + (s.temporary ? ' (temp)' : ''),
    s.plugin ?? s.slotType,
    s.database,
    s.active ? `yes (pid ${s.activePid}${s.activeApplication ? `, ${s.activeApplication}` : ''})` : 'no',
    s.retained,
    s.walStatus,
    s.safeWalSize ?? 'unlimited',
    s.active ? '-' : s.inactiveSeconds !== null ? `${formatDuration(s.inactiveSeconds)} ago` : result.inactiveSinceAvailable ? '-' : 'unknown',
    s.confirmedFlushLsn,
  ])
  return renderTable(['slot', 'plugin', 'database', 'active', 'retained WAL', 'wal_status', 'safe_wal_size', 'inactive since', 'confirmed LSN'], rows, {colour})
}
