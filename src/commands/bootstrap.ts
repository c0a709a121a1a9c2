import {Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {connectionFlags, localFlags} from '../flags.js'
import {ExitCode} from '../lib/cli/errors.js'
import {renderTable} from '../lib/cli/table.js'
import type {BootstrapResult} from '../lib/bootstrap/run.js'

export default class Bootstrap extends BaseCommand<typeof Bootstrap> {
  static override summary = "Bring a server (or nothing at all) to a working estate: seed 001's startup flow, resumable."
  static override description = `Ordered steps, progress on stderr:
  1. local cluster: started with --local, or when nothing is configured
  2. db init: roles, databases, extensions, queues, SQL, grants, schedules
  3. knowledge / templates: every *.json in --templates validated (zod), then upserted into knowledge_artifacts
  4. planning seed: seed_work_plan()
  5. graph populate: populate_graph_dependencies_report() (the work of CALL populate_graph_dependencies())
  6. startup jobs: knowledge-migration, templates-data-load, code-ingest-startup, rag-setup into oban_jobs in that order (Oban priorities 0..3), once; where oban_jobs does not exist they are reported as pending for the application
  7. status: db status and the jobs

Idempotent and resumable: steps 3-6 record themselves in singularity_meta.bootstrap_steps in the transaction that does their work, and are skipped while their inputs (templates directory content, procedure definitions, code chunks) are unchanged; a second run does nothing new and says so; a run killed mid-way resumes at the step it stopped.

The templates are validated before anything changes: an invalid file is reported by path and field, exit 2. Exit codes: 0 ok; 1 runtime failure; 2 invalid templates or flags; 3 the final db status is not ok.`
  static override examples = [
    {description: 'From nothing: the embedded cluster, the estate, the shipped example templates', command: '<%= config.bin %> bootstrap'},
    {description: 'Your own knowledge / templates directory', command: '<%= config.bin %> bootstrap --templates ./templates_data'},
    {description: 'A managed server, three singularity instances', command: '<%= config.bin %> bootstrap --admin-url postgres://admin@db.internal/postgres --instances 3'},
    {description: 'For scripts: which steps did work, which were skipped', command: "<%= config.bin %> bootstrap --json | jq '{changed, skipped}'"},
  ]

  static override flags = {
    ...connectionFlags,
    ...localFlags,
    templates: Flags.string({description: 'Directory of knowledge / template JSON files (one artifact or an array per file); default: the examples shipped in sql/seed/templates.'}),
    local: Flags.boolean({description: 'Use the embedded local cluster (created and started when needed), even when a server is configured.'}),
    'install-deps': Flags.boolean({description: 'With the local cluster: install missing Debian packages with apt-get (root only).'}),
    instances: Flags.integer({description: 'Number of singularity instances (singularity_1..N when more than one).', min: 1, max: 64}),
    'passwords-file': Flags.string({description: "JSON file {role: password} for the roles' passwords (as db init); generated ones are added to it (mode 0600)."}),
  }

  protected async execute(): Promise<BootstrapResult> {
    const [{runBootstrap}, {defaultTemplatesDir}] = await Promise.all([import('../lib/bootstrap/run.js'), import('../lib/bootstrap/templates.js')])
    const result = await this.withProgress('bootstrap', (progress) => runBootstrap({
      flags: {'admin-url': this.flags['admin-url'], config: this.flags.config, prefix: this.flags.prefix, 'data-dir': this.flags['data-dir']},
      local: this.flags.local,
      installDeps: this.flags['install-deps'],
      templatesDir: this.flags.templates ?? defaultTemplatesDir(),
      instances: this.flags.instances,
      passwordsFile: this.flags['passwords-file'],
      progress: (message) => progress.line(message),
    }))
    if (result.status.db.verdict !== 'ok') this.exitAfterOutput(ExitCode.unhealthy)
    return result
  }

  protected override async human(r: BootstrapResult): Promise<void> {
    const did = r.steps.filter((s) => s.status === 'done' && s.step !== 'status').length
    this.out(
      r.changed
        ? `bootstrap: ${did} step(s) did work${r.skipped.length > 0 ? `, ${r.skipped.length} skipped (done before: ${r.skipped.join(', ')})` : ''}`
        : `bootstrap: nothing new, the estate is bootstrapped${r.skipped.length > 0 ? ` (skipped, done before: ${r.skipped.join(', ')})` : ''}`,
    )
    const rows = r.steps.map((s) => [s.number, s.title + (s.database ? ` (${s.database})` : ''), s.status, s.summary])
    this.out(renderTable(['#', 'step', 'result', 'what'], rows, await this.tableOptions()))

    for (const s of r.startupJobs) {
      this.out(`startup jobs in ${s.database}${s.obanTable ? ` (${s.obanTable})` : ' (no oban_jobs: pending for the application)'}:`)
      this.out(renderTable(['order', 'job', 'worker', 'priority', 'state'], s.jobs.map((j) => [j.order, j.name, j.worker, j.priority, j.state + (j.jobId ? ` #${j.jobId}` : j.existing ? ` #${j.existing.id} (${j.existing.state})` : '')]), await this.tableOptions()))
    }

    this.out(`db status: ${r.status.db.verdict}`)
    this.out(
      renderTable(
        ['database', 'verdict', 'sql files'],
        r.status.db.databases.map((d) => [d.name, d.verdict, `${d.migrations.applied} applied${d.migrations.pending ? `, ${d.migrations.pending} pending` : ''}${d.migrations.drifted ? `, ${d.migrations.drifted} DRIFTED` : ''}`]),
        await this.tableOptions(),
      ),
    )
    const j = r.status.jobs
    if ('error' in j) this.out(`jobs: could not be listed: ${j.error}`)
    else {
      this.out(`jobs: ${j.counts.jobs} declared, ${j.counts.failing} failing, ${j.counts.missing} missing, ${j.counts.drifted} drifted${j.pgCron.problem ? `; pg_cron: ${j.pgCron.problem}` : ''}`)
    }
    this.out('next: `singularity jobs list`, `singularity db status`')
  }
}
