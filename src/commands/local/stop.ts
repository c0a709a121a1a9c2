import {BaseCommand} from '../../base-command.js'
import {localFlags} from '../../flags.js'
import {resolveConfig} from '../../lib/config/resolve.js'
import {stopCluster} from '../../lib/local-cluster/cluster.js'

export default class LocalStop extends BaseCommand<typeof LocalStop> {
  static override summary = 'Stop the embedded PostgreSQL cluster cleanly.'
  static override description = 'Fast shutdown: open sessions are ended, committed data is kept. Stopping a stopped cluster is not an error.'
  static override examples = ['<%= config.bin %> local stop', '<%= config.bin %> local stop --json']
  static override flags = {...localFlags}

  protected async execute(): Promise<{action: string; dir: string}> {
    const dir = resolveConfig({'data-dir': this.flags['data-dir']}).localDir
    return {...(await stopCluster(dir)), dir}
  }

  protected override human(result: {action: string; dir: string}): void {
    const text = {stopped: 'local cluster stopped', 'not-running': 'local cluster was not running', 'not-created': `no local cluster in ${result.dir}`}
    this.out(text[result.action as keyof typeof text] ?? result.action)
  }
}
