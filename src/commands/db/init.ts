import {Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {connectionFlags} from '../../flags.js'
import {resolveConfig} from '../../lib/config/resolve.js'
import {revealSecret} from '../../lib/cli/redact.js'
import {defaultPasswordsFile, readPasswordFile} from '../../lib/provision/passwords.js'
import {initEstate, type InitResult} from '../../lib/provision/init.js'
import {renderPlan, renderProviderSteps} from '../../lib/reconcile/render.js'
import {schedulesFor} from '../../schedules.js'

export default class DbInit extends BaseCommand<typeof DbInit> {
  static override summary = 'Provision the five databases, roles, isolation, extensions, queues, SQL and schedules.'
  static override description = `Brings the server (the local cluster by default, or the admin URL) to the estate: login roles singularity, genesis, centralcloud, nexus, centralcloud_analytics, centralcloud_cdc and centralcloud_consumer; databases singularity (or singularity_1..N), genesis, centralcloud, nexus and shared_queue with CONNECT revoked from PUBLIC; pgcrypto, pg_cron, pgmq (or the bundled engine); the numbered SQL migrations and procedures; the queues; grants per queue; the CDC slot; the pg_cron jobs.

It observes the server, computes the same plan as \`db plan\` and applies it in dependency order, printing what it applied. Extra privileges on our objects are revoked (security drift). Idempotent: a second run changes nothing and says "up to date". Concurrent runs wait for each other. An interrupted run is finished by the next one. An applied migration whose file changed is refused (exit 1, naming the file) before anything changes. Role passwords come from SINGULARITY_PASSWORD_<ROLE> or the passwords file; new roles get generated ones, saved to that file with mode 0600 and never printed unless --show-passwords.`
  static override examples = [
    {description: 'Provision the embedded local cluster', command: '<%= config.bin %> db init'},
    {description: 'See what would change, change nothing (the same as db plan)', command: '<%= config.bin %> db init --dry-run'},
    {description: 'Three singularity instances on a managed server', command: '<%= config.bin %> db init --instances 3 --admin-url postgres://admin@db.internal/postgres'},
    {description: 'For scripts', command: '<%= config.bin %> db init --json | jq .status'},
  ]

  static override flags = {
    ...connectionFlags,
    instances: Flags.integer({description: 'Number of singularity instances (singularity_1..N when more than one).', min: 1, max: 64}),
    'queue-engine': Flags.string({description: 'pgmq extension, our bundled engine, or auto (the extension where the server has it).', options: ['auto', 'extension', 'bundled'], default: 'auto'}),
    'dry-run': Flags.boolean({description: 'Print the plan (as `db plan` does) and change nothing.'}),
    'passwords-file': Flags.string({description: 'JSON file {role: password} read for role passwords; generated ones are added to it (mode 0600).'}),
    'show-passwords': Flags.boolean({description: 'Also print the role passwords (they are otherwise never printed).'}),
  }

  protected async execute(): Promise<InitResult & {passwords?: Record<string, string>}> {
    const config = resolveConfig({...this.flags, instances: this.flags.instances})
    const passwordsFile = this.flags['passwords-file'] ?? process.env.SINGULARITY_PASSWORDS_FILE ?? defaultPasswordsFile(config)
    const result = await this.withProgress('db init', (progress) => initEstate({
      config,
      instances: this.flags.instances ?? config.instances ?? 1,
      queueEngine: this.flags['queue-engine'] as 'auto' | 'extension' | 'bundled',
      dryRun: this.flags['dry-run'],
      passwordsFile,
      schedules: schedulesFor(process.env),
      progress: (message) => progress.line(message),
    }))
    if (this.flags['show-passwords'] && !result.dryRun) {
      const all = readPasswordFile(passwordsFile)
      for (const value of Object.values(all)) revealSecret(value)
      return {...result, passwords: Object.fromEntries(result.roles.map((r) => [r.name, all[r.name] ?? '(unknown: set before, not by this tool)']))}
    }
    return result
  }

  protected override human(result: InitResult & {passwords?: Record<string, string>}): void {
    if (result.dryRun) {
      if (result.status === 'up-to-date') {
        this.out('db init --dry-run: up to date, nothing would change')
      } else {
        this.out(`db init --dry-run: ${result.actions.length} action(s), the plan (nothing was changed)`)
        for (const line of renderPlan(result.actions)) this.out(line)
      }
    } else if (result.status === 'up-to-date') {
      this.out(`db init: up to date (${result.databases.length} databases, nothing changed)`)
    } else {
      this.out(`db init: ${result.changes.length} change(s)`)
      for (const line of renderPlan(result.actions, {sql: false})) this.out(line)
    }
    const fallbacks = result.optionalExtensions.filter((e) => !e.available)
    if (fallbacks.length > 0) this.out(`fallbacks: no ${fallbacks.map((e) => e.name).join(', ')} on this server; \`singularity db status\` says which implementation each feature uses`)
    const engines = [...new Set(result.databases.filter((d) => d.queueEngine).map((d) => d.queueEngine))]
    if (engines.length > 0) this.out(`queue engine: ${engines.join(', ')}`)
    for (const warning of result.warnings) this.out(`warning: ${warning}`)
    for (const line of renderProviderSteps(result.providerSteps, result.server.user)) this.out(line)
    const generated = result.roles.filter((r) => r.passwordSource === 'generated')
    if (generated.length > 0 && !result.dryRun) this.out(`generated passwords for ${generated.map((r) => r.name).join(', ')} are in ${result.passwordsFile} (mode 0600)`)
    if (result.passwords) for (const [role, pw] of Object.entries(result.passwords)) this.out(`password ${role}: ${pw}`)
    if (!result.dryRun) this.out('next: `singularity db status`')
  }
}
