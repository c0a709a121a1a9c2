import {Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {connectionFlags, nonBlank, readFlags} from '../../flags.js'
import {ExitCode} from '../../lib/cli/errors.js'
import {resolveConfig} from '../../lib/config/resolve.js'
import {defaultPasswordsFile} from '../../lib/provision/passwords.js'
import {planDocument, planEstate} from '../../lib/reconcile/plan.js'
import {renderPlan, renderProviderSteps} from '../../lib/reconcile/render.js'
import {schedulesFor} from '../../schedules.js'

type PlanDocument = ReturnType<typeof planDocument>

export default class DbPlan extends BaseCommand<typeof DbPlan> {
  static override summary = 'What db init would change: the difference between the server and the estate, as actions.'
  static override description = `Observes the server (roles, databases and their CONNECT/TEMP, extensions, SQL files, queues, grants and default privileges, the CDC slot and replica identity, pg_cron jobs), diffs it against the estate and prints the actions grouped by database: what each does, the exact SQL (secrets shown as ***), whether it is destructive, the privilege it needs and why (missing, changed, extra, drifted). Extra privileges of PUBLIC or an estate role on our objects are security drift: shown as destructive revokes. Objects that are not ours are never looked at.

Changes nothing and takes no lock. Exit 0 when there is nothing to do, 3 when there is (db init applies it; a refused action, such as an applied migration whose file changed, makes db init exit 1), or when a database could not be read.

The databases are read at once, at most --concurrency at a time (default 8, never more than a quarter of the server's free connections), each within --db-timeout (default 10s): one that refuses or does not answer in time is named ("unreadable" under --json) and its part of the plan is unknown; the others are planned. Several servers (the config's servers and placement): every server is observed at once, each action carries its server; a server that does not answer is reported (its databases unreadable) and the exit is 3.`
  static override examples = [
    '<%= config.bin %> db plan',
    {description: 'One database', command: '<%= config.bin %> db plan --db genesis'},
    {description: 'Gate a deploy: exit 3 when the server drifted', command: '<%= config.bin %> db plan --json | jq \'.actions[] | select(.destructive)\''},
  ]

  static override flags = {
    ...connectionFlags,
    ...readFlags,
    db: Flags.string({parse: nonBlank, description: 'Only this database (name or kind); repeatable. Server-wide actions are then left out.', multiple: true}),
    instances: Flags.integer({description: 'Number of singularity instances (default: as found on the server).', min: 1, max: 64}),
    'queue-engine': Flags.string({description: 'Queue engine db init would choose for a new queue database.', options: ['auto', 'extension', 'bundled'], default: 'auto'}),
    'passwords-file': Flags.string({description: 'The passwords file db init uses (a role password given there or in SINGULARITY_PASSWORD_<ROLE> is compared with the server).'}),
    sql: Flags.boolean({description: 'Print the SQL of each action under it (--no-sql: one line per action).', allowNo: true, default: true}),
  }

  protected async execute(): Promise<PlanDocument> {
    const config = resolveConfig(this.flags)
    const plan = await planEstate({
      config,
      instances: this.flags.instances ?? config.instances,
      queueEngine: this.flags['queue-engine'] as 'auto' | 'extension' | 'bundled',
      passwordsFile: this.flags['passwords-file'] ?? process.env.SINGULARITY_PASSWORDS_FILE ?? defaultPasswordsFile(config),
      schedules: schedulesFor(process.env),
      databases: this.flags.db,
      // one database that cannot be read (or not in time) is named; the plan of the others still stands;
      // several servers: one that does not answer is reported (exit 3), the others are planned
      tolerateUnreachable: true,
      tolerateDownServers: true,
    })
    const document = planDocument(plan)
    if (document.actions.length > 0 || document.lacking.length > 0 || document.unreadable.length > 0 || document.servers.some((s) => !s.reachable)) this.exitAfterOutput(ExitCode.unhealthy)
    return document
  }

  protected override human(plan: PlanDocument): void {
    if (plan.servers.length > 1 || plan.servers.some((s) => s.name !== 'main')) {
      for (const s of plan.servers) this.out(s.reachable ? `server ${s.name}: PostgreSQL ${s.version} as ${s.user}; ${s.databases.join(', ')}` : `server ${s.name}: UNREACHABLE (${s.error}); ${s.databases.join(', ')} not planned`)
    }
    if (plan.actions.length === 0) {
      this.out(plan.unreadable.length > 0 ? `db plan: nothing to do in the databases read; ${plan.unreadable.length} could not be read` : 'db plan: up to date, nothing to do')
    } else {
      const s = plan.summary
      this.out(`db plan: ${s.actions} action(s)${s.destructive > 0 ? `, ${s.destructive} destructive` : ''}${s.refused > 0 ? `, ${s.refused} REFUSED` : ''} (nothing was changed)`)
      for (const line of renderPlan(plan.actions, {sql: this.flags.sql})) this.out(line)
      this.out(s.refused > 0 ? 'next: restore the refused files (applied migrations are never edited), then `singularity db init`' : 'next: `singularity db init` applies it')
    }
    for (const u of plan.unreadable) this.out(`${u.timed_out ? 'timed out' : 'unreadable'}: ${u.database}: ${u.reason} (its part of the plan is unknown)`)
    for (const warning of plan.warnings.filter((w) => !plan.unreadable.some((u) => w.startsWith(`${u.database} could not be read`)))) this.out(`warning: ${warning}`)
    for (const a of plan.lacking) this.out(`cannot: ${a.description} (needs ${a.privilege}, which '${plan.server.user}' lacks)`)
    for (const line of renderProviderSteps(plan.providerSteps, plan.server.user)) this.out(line)
  }
}
