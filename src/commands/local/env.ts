import {CliError} from '../../lib/cli/errors.js'
import {BaseCommand} from '../../base-command.js'
import {localFlags} from '../../flags.js'
import {resolveConfig} from '../../lib/config/resolve.js'
import {layout, localUrl, readLocalState} from '../../lib/local-cluster/paths.js'

interface LocalEnvVars {
  SINGULARITY_ADMIN_URL: string
  PGHOST: string
  PGPORT: string
  PGUSER: string
  PGPASSFILE: string
}

export default class LocalEnv extends BaseCommand<typeof LocalEnv> {
  static override summary = 'Print the shell exports that point psql and this tool at the embedded cluster.'
  static override description = 'The password is never printed: it is in a 0600 .pgpass file that PGPASSFILE names.'
  static override examples = ['eval "$(<%= config.bin %> local env)"', '<%= config.bin %> local env --json']
  static override flags = {...localFlags}

  protected async execute(): Promise<LocalEnvVars> {
    const dir = resolveConfig({'data-dir': this.flags['data-dir']}).localDir
    const state = readLocalState(dir)
    if (!state) throw new CliError(`no local cluster in ${dir}`, {exitCode: 4, code: 'NOT_FOUND', hint: 'create it with `singularity local start`'})
    return {
      SINGULARITY_ADMIN_URL: localUrl(state, 'postgres'),
      PGHOST: '127.0.0.1',
      PGPORT: String(state.port),
      PGUSER: state.superuser,
      PGPASSFILE: layout(dir).pgpass,
    }
  }

  protected override human(env: LocalEnvVars): void {
    for (const [key, value] of Object.entries(env)) this.out(`export ${key}='${value}'`)
  }
}
