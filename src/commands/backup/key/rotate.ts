import {Flags} from '@oclif/core'

import {BaseCommand} from '../../../base-command.js'
import {keyFilePath, rotateKey} from '../../../lib/backup/keys.js'
import {resolveConfig} from '../../../lib/config/resolve.js'

interface RotateResult {
  keyFile: string
  keyId: string
  previous: string | null
  keys: number
}

export default class BackupKeyRotate extends BaseCommand<typeof BackupKeyRotate> {
  static override summary = 'Create a new backup encryption key for new backups; old keys stay so old backups stay readable.'
  static override description = `Adds a new AES-256 key to the key file (mode 0600) and makes it the one new backups use. Keys are named by their id (a fingerprint), never printed. Old keys are kept: backups taken before the rotation still verify and restore. Nothing is re-encrypted.

Exit codes: 0 rotated · 1 the key file cannot be read or written.`

  static override examples = [
    '<%= config.bin %> backup key rotate',
    {description: 'A key file of its own', command: '<%= config.bin %> backup key rotate --key-file /etc/singularity/backup-keys.json'},
  ]

  static override flags = {
    'key-file': Flags.string({description: 'Backup key file; default SINGULARITY_BACKUP_KEY_FILE, else backup-keys.json beside the role passwords file.'}),
    config: Flags.string({description: 'Config file (JSON); default SINGULARITY_CONFIG or ~/.config/singularity/config.json.', helpGroup: 'CONNECTION'}),
  }

  protected async execute(): Promise<RotateResult> {
    const keyFile = keyFilePath(this.flags['key-file'], resolveConfig({config: this.flags.config}).localDir)
    const rotated = rotateKey(keyFile)
    return {keyFile, keyId: rotated.id, previous: rotated.previous, keys: rotated.keys}
  }

  protected override human(r: RotateResult): void {
    this.out(`new backups use key ${r.keyId}${r.previous ? ` (was ${r.previous})` : ''}; ${r.keys} key${r.keys === 1 ? '' : 's'} in ${r.keyFile}, old backups stay readable`)
  }
}
