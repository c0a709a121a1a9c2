import {BaseCommand} from '../../base-command.js'
import {connectionFlags} from '../../flags.js'
import {ExitCode} from '../../lib/cli/errors.js'
import {renderTable} from '../../lib/cli/table.js'
import {resolveConfig} from '../../lib/config/resolve.js'
import {estateStatus, type EstateStatus} from '../../lib/provision/status.js'

export default class DbStatus extends BaseCommand<typeof DbStatus> {
  static override summary = 'How the server stands against the estate: per database reachability, owner, extensions, migrations, queue engine, drift.'
  static override description = 'Read from the same plan as `db plan`: a database with actions to do is pending, one with extra privileges, a changed job or a changed migration is drifted. Exit 0 when there is nothing to do; 3 when something is missing, pending or drifted (scripts can gate on it); 1 when the server cannot be reached.'
  static override examples = [
    '<%= config.bin %> db status',
    {description: 'Gate a deploy on it', command: '<%= config.bin %> db status --json | jq -e \'.verdict == "ok"\''},
  ]

  static override flags = {...connectionFlags}

  protected async execute(): Promise<EstateStatus> {
    const status = await estateStatus(resolveConfig(this.flags))
    if (status.verdict !== 'ok') this.exitAfterOutput(ExitCode.unhealthy)
    return status
  }

  protected override async human(s: EstateStatus): Promise<void> {
    this.out(`server: PostgreSQL ${s.server.version}, wal_level=${s.server.walLevel}, pg_cron ${s.server.cronPreloaded ? 'preloaded' : 'NOT preloaded'} (cron database ${s.server.cronDatabase})`)
    const rows = s.databases.map((d) => [
      d.name,
      d.verdict,
      d.owner ?? '-',
      d.queueEngine ?? '-',
      d.reachable ? `${d.migrations.applied} applied${d.migrations.pending ? `, ${d.migrations.pending} pending` : ''}${d.migrations.changed ? `, ${d.migrations.changed} changed` : ''}${d.migrations.drifted ? `, ${d.migrations.drifted} DRIFTED` : ''}` : '-',
      d.extensions.map((e) => `${e.name} ${e.version}`).join(', ') || '-',
    ])
    this.out(await renderTable(['database', 'verdict', 'owner', 'queues', 'sql files', 'extensions'], rows, {colour: this.colorful}))
    const missingRoles = s.roles.filter((r) => !r.exists)
    if (missingRoles.length > 0) this.out(`missing roles: ${missingRoles.map((r) => r.name).join(', ')}`)
    for (const d of s.databases) {
      for (const f of d.migrations.files.filter((x) => x.state === 'drifted')) this.out(`drift: sql/${f.file} in ${d.name} changed after it was applied`)
      if (d.queuesMissing.length > 0) this.out(`${d.name}: missing queues ${d.queuesMissing.join(', ')}`)
      if (d.error) this.out(`${d.name}: ${d.error}`)
    }
    if (s.plan.summary.actions > 0) {
      const byArea = Object.entries(s.plan.summary.byArea).map(([area, n]) => `${area} ${n}`).join(', ')
      this.out(`plan: ${s.plan.summary.actions} action(s) (${byArea})${s.plan.summary.destructive > 0 ? `, ${s.plan.summary.destructive} destructive (security drift: extra privileges, foreign-looking jobs of ours)` : ''}; \`singularity db plan\` lists them`)
    }
    const fallbacks = s.databases.find((d) => d.fallbacks.length > 0)?.fallbacks ?? []
    if (fallbacks.length > 0) this.out(`features: ${fallbacks.map((f) => `${f.feature} → ${f.implementation}`).join('; ')}`)
    const refused = s.plan.summary.refused > 0
    const next = refused ? 'restore the drifted file (applied migrations are never edited), then `singularity db init`' : '`singularity db plan` to see it, `singularity db init` to apply it'
    this.out(s.verdict === 'ok' ? 'verdict: ok' : `verdict: ${s.verdict} — next: ${next}`)
  }
}
