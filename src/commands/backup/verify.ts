import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import type {Verification} from '../../lib/backup/manifest.js'
import {keyFilePath} from '../../lib/backup/keys.js'
import {verifyBackup} from '../../lib/backup/verify.js'
import {formatBytes} from '../../lib/cli/format.js'
import {resolveConfig} from '../../lib/config/resolve.js'
import {connect} from '../../lib/db/connect.js'
import {adminTarget} from '../../lib/estate/targets.js'
import {connectionFlags} from '../../flags.js'
import {PHYSICAL_LABEL} from '../../lib/backup/physical/layout.js'
import {verifyPhysical, type PhysicalVerifyResult} from '../../lib/backup/physical/verify.js'
import {UsageError} from '../../lib/cli/errors.js'
import {onInterrupt} from '../../lib/cli/interrupt.js'

type VerifyResult = Verification & {path: string}

export default class BackupVerify extends BaseCommand<typeof BackupVerify> {
  static override summary = 'Verify a backup: sha256 of every file against the manifest, pg_restore --list reads every archive; --restore-test restores each one.'
  static override description = `The result is stored with the backup (verify.json) and shown by \`backup list\`; \`backup prune\` never deletes the newest verified backup. Without --restore-test it needs no database connection.

--restore-test restores each archive into a scratch database on the server (singularity_rt_<time>_<random>, CONNECT revoked from PUBLIC, always dropped; one left by a killed run is dropped by the next restore test) and compares it with what the manifest recorded in the dump's own snapshot: rows per table, queues, their lengths and archive sizes. A mismatch fails verification, naming the database and table. \`backup --verify\` runs it for daily and monthly backups.

Exit codes: 0 verified · 1 a file is missing, changed or unreadable, a restore test failed (or the backup is incomplete) · 4 no such backup · 130 interrupted.`

  static override examples = [
    '<%= config.bin %> backup verify 20261123T201500Z-hourly',
    {description: 'The newest complete backup', command: '<%= config.bin %> backup verify latest'},
    '<%= config.bin %> backup verify 20261123T010000Z-daily --json',
    {description: 'Prove it restores: each archive into a scratch database, compared with the manifest', command: '<%= config.bin %> backup verify latest --restore-test'},
    {description: 'Physical: pgBackRest verify of the whole repository (WAL and every backup)', command: '<%= config.bin %> backup verify --physical'},
    {description: 'Physical: one backup set', command: '<%= config.bin %> backup verify 20261125-163835F'},
  ]

  static override args = {
    id: Args.string({description: 'Backup id (see `backup list`), or "latest"; a physical label (e.g. 20261125-163835F) verifies that physical backup.'}),
  }

  static override flags = {
    ...connectionFlags,
    dir: Flags.string({description: 'Backup directory; default SINGULARITY_BACKUP_DIR, the config file, then next to the local cluster.'}),
    'key-file': Flags.string({description: 'Backup key file for encrypted backups; default SINGULARITY_BACKUP_KEY_FILE, else backup-keys.json beside the role passwords file.'}),
    'restore-test': Flags.boolean({description: 'Also restore each archive into a scratch database and compare rows per table and queues with the manifest.'}),
    jobs: Flags.integer({description: 'Parallel pg_restore jobs for --restore-test.', default: 2, min: 1, max: 16}),
    physical: Flags.boolean({description: 'Verify physical backups with pgBackRest verify (a physical label such as 20261125-163835F implies it).'}),
  }

  protected async execute(): Promise<VerifyResult | PhysicalVerifyResult> {
    const config = resolveConfig(this.flags)
    const dir = this.flags.dir ?? config.backupDir
    if (this.flags.physical || PHYSICAL_LABEL.test(this.args.id ?? '')) {
      const physical = await verifyPhysical({backupDir: dir, label: this.args.id, keyFile: this.flags['key-file'], progress: (m) => this.note(m)})
      if (!physical.ok) this.exitAfterOutput(1)
      return physical
    }
    if (!this.args.id) throw new UsageError('missing backup id', {hint: 'singularity backup verify <id|latest>, or --physical (see `backup list`)'})
    const id = this.args.id
    const keyFile = keyFilePath(this.flags['key-file'], config.localDir)
    if (!this.flags['restore-test']) {
      const result = await verifyBackup({dir, id, keyFile, progress: (m) => this.note(m)})
      if (!result.ok) this.exitAfterOutput(1)
      return result
    }
    const target = adminTarget(config)
    const admin = await connect(target, {applicationName: 'singularity-backup', statementTimeoutMs: 0, lockTimeoutMs: 30_000})
    const interrupt = onInterrupt()
    try {
      const result = await verifyBackup({dir, id, keyFile, restoreTest: {admin, adminTarget: target, jobs: this.flags.jobs, signal: interrupt.signal}, progress: (m) => this.note(m)})
      if (!result.ok) this.exitAfterOutput(1)
      return result
    } finally {
      interrupt.release()
      await admin.end().catch(() => {})
    }
  }

  protected override human(r: VerifyResult | PhysicalVerifyResult): void {
    if ('report' in r) {
      for (const line of r.report) this.out(`  ${line}`)
      this.out(r.ok ? `physical ${r.label ?? 'repository'} of ${r.stanza} verified` : `physical ${r.label ?? 'repository'} of ${r.stanza} FAILED verification: ${r.problem}`)
      return
    }
    for (const f of r.files) {
      const detail = f.ok ? `${formatBytes(f.size)}${f.entries === null ? '' : `, ${f.entries} archive entries`}` : f.problem
      this.out(`${f.ok ? 'ok    ' : 'FAILED'}  ${f.file}  ${detail}`)
      if (f.restore?.ok) this.out(`        restored into a scratch database: ${f.restore.tables} tables and ${f.restore.queues} queues match the manifest (${(f.restore.durationMs / 1000).toFixed(1)}s)`)
    }
    this.out(r.ok ? `backup ${r.id} verified` : `backup ${r.id} FAILED verification: do not restore from it`)
  }
}
