import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../../base-command.js'
import {connectionFlags, nonBlank} from '../../../flags.js'
import {confirmDestructive} from '../../../lib/cli/confirm.js'
import {resolveConfig} from '../../../lib/config/resolve.js'
import {withClient} from '../../../lib/db/connect.js'
import {discoverEstate, serverTarget, severalServers} from '../../../lib/estate/targets.js'
import {validateName} from '../../../lib/names.js'
import {dropSlot, slotToDrop, type DropResult} from '../../../lib/cdc/slots.js'
import {slotServer} from '../../../lib/cdc/slot-server.js'

export default class CdcSlotsDrop extends BaseCommand<typeof CdcSlotsDrop> {
  static override summary = 'Drop a replication slot that is not in use, releasing the WAL it retains.'
  static override description = `Its consumer loses its position: changes not yet read are gone for it. Needs --confirm <name> (or the name typed on a terminal); --dry-run shows what would happen. A slot in use is refused: stop its consumer first. An unknown slot exits 4. Several servers: the slot is looked for on every server (--server says which when the name is on more than one).`

  static override examples = [
    {description: 'See what would be dropped', command: '<%= config.bin %> cdc slots drop old_export --dry-run'},
    {description: 'Drop it', command: '<%= config.bin %> cdc slots drop old_export --confirm old_export'},
  ]

  static override args = {
    name: Args.string({description: 'slot name', required: true}),
  }

  static override flags = {
    ...connectionFlags,
    confirm: Flags.string({description: 'The slot name again, to confirm.'}),
    'dry-run': Flags.boolean({description: 'Show what would be dropped; change nothing.'}),
    server: Flags.string({parse: nonBlank, description: 'Several servers: the server that holds the slot (default: the one server where it is found).'}),
  }

  protected async execute(): Promise<DropResult & {server: string}> {
    const name = validateName('slot', this.args.name)
    const config = resolveConfig(this.flags)
    this.several = severalServers(config)
    const server = await slotServer(config, name, this.flags.server)
    return withClient(
      serverTarget(config, server),
      async (client) => {
        const estate = await discoverEstate(config, client)
        const estateSlots = estate.databases.flatMap((d) => [d.cdcSlot, d.cdcBridgeSlot].filter((s): s is string => s !== undefined))
        const slot = await slotToDrop(client, name, estateSlots)
        const result: DropResult & {server: string} = {
          slot: name,
          server,
          dropped: false,
          dryRun: Boolean(this.flags['dry-run']),
          retained: slot.retained,
          retainedBytes: slot.retainedBytes,
          plugin: slot.plugin,
          database: slot.database,
          estate: slot.estate,
        }
        if (this.flags['dry-run']) return result
        const consumer = slot.estate ? 'CentralCloud loses its change-capture position' : 'its consumer loses its position'
        await confirmDestructive({
          action: `drop replication slot ${name} (${slot.plugin ?? slot.slotType}, database ${slot.database ?? '-'}${this.several ? ` on server ${server}` : ''}, retains ${slot.retained} of WAL); ${consumer}`,
          name,
          confirmFlag: this.flags.confirm,
          command: `singularity cdc slots drop ${name}`,
        })
        await dropSlot(client, name)
        return {...result, dropped: true}
      },
      {applicationName: 'singularity cdc slots drop', statementTimeoutMs: 30_000},
    )
  }

  /** the config names several servers: the lines say which server held the slot */
  private several = false

  protected override human(r: DropResult & {server: string}): void {
    const on = this.several ? ` on server ${r.server}` : ''
    if (r.dryRun) {
      this.out(`would drop slot ${r.slot}${on} (${r.plugin ?? '-'}, database ${r.database ?? '-'}), releasing ${r.retained} of WAL${r.estate ? '; it is an estate slot: CentralCloud would lose its position' : ''}`)
      this.out(`run: singularity cdc slots drop ${r.slot} --confirm ${r.slot}`)
    } else {
      this.out(`dropped slot ${r.slot}${on}; ${r.retained} of WAL is released at the next checkpoint${r.estate ? ' (`singularity db init` recreates the estate slot)' : ''}`)
    }
  }
}
