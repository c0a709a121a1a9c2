import {Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {connectionFlags, nonBlank} from '../../flags.js'
import {BACKUP_KINDS, type BackupKind} from '../../lib/backup/manifest.js'
import {currentKey, keyFilePath} from '../../lib/backup/keys.js'
import {takeBackup, type OtherServer} from '../../lib/backup/take.js'
import {verifyBackup} from '../../lib/backup/verify.js'
import {formatBytes, formatDuration} from '../../lib/cli/format.js'
import {resolveConfig} from '../../lib/config/resolve.js'
import {connect} from '../../lib/db/connect.js'
import {adminTarget, databaseTarget, discoverEstate, selectDatabases, serverNames, serverTarget, severalServers} from '../../lib/estate/targets.js'
import {physicalBackupLines} from '../../lib/backup/physical/render.js'
import {PHYSICAL_TYPES, takePhysicalBackup, type PhysicalBackupResult, type PhysicalType} from '../../lib/backup/physical/take.js'
import {onInterrupt} from '../../lib/cli/interrupt.js'

export interface BackupTakeResult {
  id: string
  kind: BackupKind
  status: 'complete'
  path: string
  startedAt: string
  endedAt: string
  durationMs: number
  size: number
  server: {version: string; versionNum: number}
  pgDump: string
  databases: {name: string; kind: string; file: string; size: number; sha256: string; durationMs: number}[]
  globals: {file: string; size: number; rolePasswords: boolean} | null
  verified: 'yes' | 'failed' | 'no'
  verification?: {ok: boolean; restoreTested: boolean; problems: string[]}
}

export default class Backup extends BaseCommand<typeof Backup> {
  static override summary = 'Take a backup: pg_dump -Fc of each database of the estate, plus roles (pg_dumpall --globals-only).'
  static override description = `Writes <dir>/<id>/ with one <db>.dump per database, globals.sql (roles, with their password hashes: mode 0600, never printed) and manifest.json (sizes, sha256, server and pg_dump versions, start/end). The backup is written into <dir>/.<id>.partial/ and renamed only when complete, so a backup that fails or is killed is never listed as complete (\`backup prune\` removes such leftovers). Databases are dumped in parallel (--jobs at a time); each dump is consistent on its own. pg_dump must be at least as new as the server: otherwise exit 1 with the fix, before anything is written.

The directory is --dir, else SINGULARITY_BACKUP_DIR, else the config file's backupDir, else a "backups" directory next to the local cluster. Passwords reach pg_dump through its environment only.

Exit codes: 0 done · 1 a dump failed (nothing kept) or --verify failed · 2 bad flags · 130 interrupted (nothing kept).`

  static override examples = [
    {description: 'A manual backup of the whole estate', command: '<%= config.bin %> backup'},
    {description: 'What the hourly system-cron line runs (seed 001: hourly, keep 6)', command: '<%= config.bin %> backup --kind hourly --verify'},
    {description: 'Daily: verified and restore-tested into a scratch database', command: '<%= config.bin %> backup --kind daily --verify'},
    {description: 'Only two databases, into a chosen directory', command: '<%= config.bin %> backup --db genesis --db nexus --dir /srv/backups'},
    {description: 'For scripts', command: '<%= config.bin %> backup --kind daily --json'},
    {description: 'Physical (pgBackRest, after `backup setup --physical`): weekly full, daily diff, hourly incr', command: '<%= config.bin %> backup --physical --type full'},
  ]

  static override flags = {
    ...connectionFlags,
    kind: Flags.string({
      description: 'Backup kind, used by `backup prune` retention (hourly keep 6, daily keep 7, monthly keep 12; manual backups are kept).',
      options: [...BACKUP_KINDS],
      default: 'manual',
    }),
    db: Flags.string({parse: nonBlank, description: 'Only this database (name or kind: singularity, genesis, centralcloud, nexus, shared_queue); repeatable.', multiple: true}),
    dir: Flags.string({description: 'Backup directory; default SINGULARITY_BACKUP_DIR, the config file, then next to the local cluster.'}),
    jobs: Flags.integer({description: 'pg_dump processes at a time.', default: 2, min: 1, max: 16}),
    verify: Flags.boolean({description: 'Verify the backup right after taking it (checksums + pg_restore --list; for daily and monthly backups also a restore test); exit 1 when it fails.'}),
    encrypt: Flags.boolean({description: 'Encrypt every file while it streams (AES-256-GCM in chunks); --no-encrypt for storage that encrypts itself (the manifest then says encrypted: false). Physical backups are encrypted as their repository was set up (`backup setup --physical [--no-encrypt]`).', default: true, allowNo: true}),
    'key-file': Flags.string({description: 'Backup key file (created 0600 on first use); default SINGULARITY_BACKUP_KEY_FILE, else backup-keys.json beside the role passwords file. Keep it outside the backup directory.'}),
    'restore-test': Flags.boolean({description: 'With --verify: restore each archive into a scratch database and compare it with the manifest (default: on for daily and monthly backups).', allowNo: true}),
    physical: Flags.boolean({description: 'A physical backup of the whole cluster through pgBackRest (set up first with `backup setup --physical`).'}),
    type: Flags.string({description: 'Physical backup type (with --physical; default incr); a diff or incr with nothing to build on becomes a full.', options: [...PHYSICAL_TYPES], dependsOn: ['physical']}),
  }

  protected async execute(): Promise<BackupTakeResult | PhysicalBackupResult> {
    if (this.flags.physical) return this.physical()
    const config = resolveConfig(this.flags)
    const dir = this.flags.dir ?? config.backupDir
    const target = adminTarget(config)
    const admin = await connect(target, {applicationName: 'singularity-backup', statementTimeoutMs: 60_000, lockTimeoutMs: 10_000})
    const others: OtherServer[] = []
    const interrupt = onInterrupt()
    try {
      const estate = await discoverEstate(config, admin)
      const databases = selectDatabases(estate.databases, this.flags.db).map((db) => ({name: db.name, kind: db.kind, target: databaseTarget(config, db), server: db.server}))
      // several servers: each database is dumped from its server, and each server's roles are saved
      for (const name of severalServers(config) ? serverNames(config).filter((n) => n !== 'main') : []) {
        const serverAdmin = await connect(serverTarget(config, name), {applicationName: 'singularity-backup', statementTimeoutMs: 60_000, lockTimeoutMs: 10_000})
        others.push({name, admin: serverAdmin, target: serverTarget(config, name)})
      }
      let encryption: {key: Buffer; keyId: string} | null = null
      if (this.flags.encrypt) {
        const path = keyFilePath(this.flags['key-file'], config.localDir)
        const current = currentKey(path)
        if (current.created) this.note(`created backup key ${current.id} in ${path} (mode 0600): keep a copy of it away from the backups`)
        encryption = {key: current.key, keyId: current.id}
      }
      const taken = await this.withProgress('backup', (progress) => takeBackup({
        encryption,
        admin,
        adminTarget: target,
        servers: others,
        databases,
        dir,
        kind: this.flags.kind as BackupKind,
        prefix: config.prefix,
        jobs: this.flags.jobs,
        signal: interrupt.signal,
        progress: (m) => progress.line(m),
      }))
      const m = taken.manifest
      const result: BackupTakeResult = {
        id: taken.id,
        kind: m.kind,
        status: 'complete',
        path: taken.path,
        startedAt: m.startedAt,
        endedAt: m.endedAt!,
        durationMs: taken.durationMs,
        size: taken.size,
        server: m.server,
        pgDump: m.tools.pgDump,
        databases: m.databases.map((d) => ({name: d.name, kind: d.kind, file: d.file, size: d.size, sha256: d.sha256, durationMs: d.durationMs})),
        globals: m.globals ? {file: m.globals.file, size: m.globals.size, rolePasswords: m.globals.rolePasswords} : null,
        verified: 'no',
      }
      if (this.flags.verify) {
        const kind = this.flags.kind as BackupKind
        const restoreTest = this.flags['restore-test'] ?? (kind === 'daily' || kind === 'monthly')
        const v = await this.withProgress('verify', (progress) =>
          verifyBackup({
            dir,
            id: taken.id,
            keyFile: keyFilePath(this.flags['key-file'], config.localDir),
            restoreTest: restoreTest ? {admin, adminTarget: target, jobs: this.flags.jobs, signal: interrupt.signal} : undefined,
            progress: (msg) => progress.line(`verify ${msg}`),
          }),
        )
        result.verified = v.ok ? 'yes' : 'failed'
        result.verification = {ok: v.ok, restoreTested: restoreTest, problems: v.files.filter((f) => !f.ok).map((f) => `${f.file}: ${f.problem}`)}
        if (!v.ok) this.exitAfterOutput(1)
      }
      return result
    } finally {
      interrupt.release()
      await admin.end().catch(() => {})
      await Promise.all(others.map((o) => o.admin.end().catch(() => {})))
    }
  }

  /** `backup --physical`: its own module; Ctrl-C stops pgBackRest cleanly (exit 130, nothing listed as complete). */
  private async physical(): Promise<PhysicalBackupResult> {
    const config = resolveConfig(this.flags)
    const interrupt = onInterrupt()
    try {
      return await takePhysicalBackup({backupDir: this.flags.dir ?? config.backupDir, target: adminTarget(config), type: (this.flags.type ?? 'incr') as PhysicalType, keyFile: this.flags['key-file'], signal: interrupt.signal, progress: (m) => this.note(m)})
    } finally {
      interrupt.release()
    }
  }

  protected override human(r: BackupTakeResult | PhysicalBackupResult): void {
    if (r.kind === 'physical') {
      for (const line of physicalBackupLines(r)) this.out(line)
      return
    }
    this.out(`backup ${r.id} complete: ${r.databases.length} database${r.databases.length === 1 ? '' : 's'} + globals, ${formatBytes(r.size)} in ${r.durationMs < 10_000 ? `${(r.durationMs / 1000).toFixed(1)}s` : formatDuration(r.durationMs / 1000)}`)
    const width = Math.max(...r.databases.map((d) => d.name.length))
    for (const d of r.databases) this.out(`  ${d.name.padEnd(width)}  ${formatBytes(d.size).padStart(8)}  ${(d.durationMs / 1000).toFixed(1)}s`)
    this.out(`path:     ${r.path}`)
    if (r.verification) {
      this.out(`verified: ${r.verified}${r.verification.restoreTested ? ' (restore-tested)' : ''}`)
      for (const p of r.verification.problems) this.out(`  ${p}`)
    } else {
      this.out(`verify:   singularity backup verify ${r.id}`)
    }
  }
}
