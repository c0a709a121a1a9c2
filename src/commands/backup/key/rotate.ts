import {Flags} from '@oclif/core'

import {BaseCommand} from '../../../base-command.js'
import {keyFilePath, rotateKey} from '../../../lib/backup/keys.js'
import {readPhysicalSetup} from '../../../lib/backup/physical/layout.js'
import {resolveConfig} from '../../../lib/config/resolve.js'

interface RotateResult {
  keyFile: string
  keyId: string
  previous: string | null
  keys: number
  /** the physical repository of the backup directory, when encrypted: it keeps its key */
  physical: {stanza: string; keyId: string; keyFile: string; rotated: false; note: string} | null
}

export default class BackupKeyRotate extends BaseCommand<typeof BackupKeyRotate> {
  static override summary = 'Create a new backup encryption key for new backups; old keys stay so old backups stay readable.'
  static override description = `Adds a new AES-256 key to the key file (mode 0600) and makes it the one new backups use. Keys are named by their id (a fingerprint), never printed. Old keys are kept: backups taken before the rotation still verify and restore. Nothing is re-encrypted.

Physical backups: pgBackRest cannot change the passphrase of an existing repository, so an encrypted physical repository keeps the key it was set up with (it stays in the key file; physical backups, archiving and restores go on as before). To move physical backups to the new key, set up a new repository in another directory (\`backup setup --physical --dir <new dir>\`), take a full backup there, and delete the old repository once the new one covers the recovery window you need.

Exit codes: 0 rotated · 1 the key file cannot be read or written.`

  static override examples = [
    '<%= config.bin %> backup key rotate',
    {description: 'A key file of its own', command: '<%= config.bin %> backup key rotate --key-file /etc/singularity/backup-keys.json'},
  ]

  static override flags = {
    'key-file': Flags.string({description: 'Backup key file; default SINGULARITY_BACKUP_KEY_FILE, else backup-keys.json beside the role passwords file.'}),
    dir: Flags.string({description: 'Backup directory whose physical repository is reported; default SINGULARITY_BACKUP_DIR, the config file, then next to the local cluster.'}),
    config: Flags.string({description: 'Config file (JSON); default SINGULARITY_CONFIG or ~/.config/singularity/config.json.', helpGroup: 'CONNECTION'}),
  }

  protected async execute(): Promise<RotateResult> {
    const config = resolveConfig({config: this.flags.config})
    const keyFile = keyFilePath(this.flags['key-file'], config.localDir)
    const rotated = rotateKey(keyFile)
    const setup = readPhysicalSetup(this.flags.dir ?? config.backupDir)
    const physical = setup?.mode === 'host' && setup.cipher
      ? {
          stanza: setup.stanza,
          keyId: setup.cipher.keyId,
          keyFile: setup.cipher.keyFile,
          rotated: false as const,
          note: `the physical repository of ${setup.stanza} keeps key ${setup.cipher.keyId} (pgBackRest cannot change an existing repository's passphrase); to move it to the new key, set up a new repository with \`singularity backup setup --physical --dir <new dir>\` and take a full backup there`,
        }
      : null
    return {keyFile, keyId: rotated.id, previous: rotated.previous, keys: rotated.keys, physical}
  }

  protected override human(r: RotateResult): void {
    this.out(`new backups use key ${r.keyId}${r.previous ? ` (was ${r.previous})` : ''}; ${r.keys} key${r.keys === 1 ? '' : 's'} in ${r.keyFile}, old backups stay readable`)
    if (r.physical) this.out(r.physical.note)
  }
}
