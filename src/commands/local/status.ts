import {BaseCommand} from '../../base-command.js'
import {localFlags} from '../../flags.js'
import {resolveConfig} from '../../lib/config/resolve.js'
import {clusterStatus, type ClusterStatus} from '../../lib/local-cluster/cluster.js'

export default class LocalStatus extends BaseCommand<typeof LocalStatus> {
  static override summary = 'Show whether the embedded cluster runs: pid, port, data dir, version, extension packages.'
  static override description = 'Exit 0 when running, 3 when created but stopped, 4 when it was never created.'
  static override examples = ['<%= config.bin %> local status', '<%= config.bin %> local status --json']
  static override flags = {...localFlags}

  protected async execute(): Promise<ClusterStatus> {
    const status = await clusterStatus(resolveConfig({'data-dir': this.flags['data-dir']}).localDir)
    if (!status.created) this.exitAfterOutput(4)
    else if (!status.running) this.exitAfterOutput(3)
    return status
  }

  protected override human(s: ClusterStatus): void {
    if (!s.created) {
      this.out(`no local cluster in ${s.dir}; create it with \`singularity local start\``)
      return
    }
    this.out(`state:      ${s.running ? 'running' : 'stopped'}`)
    this.out(`pid:        ${s.pid ?? '-'}`)
    this.out(`port:       ${s.port ?? '-'}`)
    this.out(`version:    ${s.version ?? '-'}`)
    this.out(`data dir:   ${s.dataDir}`)
    this.out(`log:        ${s.logFile}`)
    this.out(`extensions: ${s.extensions.map((e) => `${e.extension} ${e.available ? 'yes' : `no (apt-get install ${e.package})`}`).join(', ')}`)
    if (!s.running) this.out('start it with `singularity local start`')
  }
}
