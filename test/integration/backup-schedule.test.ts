import {mkdtempSync, readFileSync, statSync, writeFileSync, existsSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {describe, expect, it} from 'vitest'

import {runCli} from '../helpers/cli.js'

/**
 * Issue 18: `singularity backup schedule --install` writes the backup crontab exactly as the README
 * shows (flock, --verify, prune), `--remove` deletes it, `jobs list` shows the installed lines and
 * whether they match. Always a temporary file (SINGULARITY_BACKUP_CRON_FILE), never /etc/cron.d.
 */

const dir = mkdtempSync(join(tmpdir(), 'sing-cron-'))
const file = join(dir, 'singularity-backup')
const env = {SINGULARITY_BACKUP_CRON_FILE: file}
const README = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8')
const readmeCrontab = README.split('`/etc/cron.d/singularity-backup`:\n\n```\n')[1].split('```')[0]

const schedule = (args: string[]) => runCli(['backup', 'schedule', ...args], {env})
const backupRows = async () => {
  const list = await runCli(['jobs', 'list', '--runner', 'system-cron', '--json'], {env})
  expect(list.exitCode, list.stderr).toBe(0)
  return list.json().jobs as {name: string; drift: string[]; note: string; crontab: {line: string; installed: boolean; fileInstalled: boolean}}[]
}

describe('backup schedule', () => {
  it('the README shows a crontab with flock, --verify and prune for each kind', () => {
    expect(readmeCrontab.split('\n').filter((l) => /^\d/.test(l))).toHaveLength(3)
    for (const line of readmeCrontab.split('\n').filter((l) => /^\d/.test(l))) {
      expect(line).toMatch(/flock -w 3000 \/run\/lock\/singularity-backup sh -c 'singularity backup --kind (hourly|daily|monthly) --verify && singularity backup prune --confirm prune'/)
    }
  })

  it('before --install: not installed, and jobs list says so', async () => {
    const status = await schedule(['--json'])
    expect(status.exitCode, status.stderr).toBe(0)
    expect(status.json()).toMatchObject({action: 'status', file, status: {installed: false, matches: false}})
    const rows = await backupRows()
    expect(rows.map((r) => r.name)).toEqual(['backup-hourly', 'backup-daily', 'backup-monthly'])
    for (const row of rows) {
      expect(row.crontab).toMatchObject({fileInstalled: false, installed: false})
      expect(row.note).toMatch(/^not installed: `singularity backup schedule --install`/)
      expect(row.drift).toEqual([])
    }
  })

  it('--install writes exactly the README file, mode 0644; a second --install changes nothing', async () => {
    const dry = await schedule(['--install', '--dry-run', '--json'])
    expect(dry.json()).toMatchObject({action: 'install', dryRun: true, changed: true})
    expect(existsSync(file)).toBe(false)

    const first = await schedule(['--install', '--json'])
    expect(first.exitCode, first.stderr).toBe(0)
    expect(first.json()).toMatchObject({action: 'install', changed: true, status: {installed: true, matches: true, unexpected: []}})
    expect(readFileSync(file, 'utf8')).toBe(readmeCrontab)
    expect(statSync(file).mode & 0o777).toBe(0o644)

    const second = await schedule(['--install'])
    expect(second.exitCode).toBe(0)
    expect(second.stdout).toContain('is installed and matches; nothing to do')
  })

  it('jobs list shows the installed lines and that they match', async () => {
    const rows = await backupRows()
    for (const row of rows) {
      expect(row.crontab.installed).toBe(true)
      expect(readmeCrontab).toContain(row.crontab.line)
      expect(row.note).toBe(`installed in ${file}`)
      expect(row.drift).toEqual([])
    }
    const status = await schedule([])
    expect(status.exitCode).toBe(0)
    expect(status.stdout).toContain(`${file}: installed, matches`)
  })

  it('a line changed by hand is drift: status exits 3, jobs list names it', async () => {
    writeFileSync(file, readmeCrontab.replace('--kind daily --verify && ', '--kind daily && '))
    const status = await schedule(['--json'])
    expect(status.exitCode).toBe(3)
    expect(status.json().status).toMatchObject({installed: true, matches: false})
    expect(status.json().status.unexpected).toHaveLength(1)
    const rows = await backupRows()
    expect(rows.find((r) => r.name === 'backup-daily')).toMatchObject({drift: ['crontab differs'], crontab: {installed: false, fileInstalled: true}})
    expect(rows.find((r) => r.name === 'backup-hourly')!.drift).toEqual([])
    const fix = await schedule(['--install', '--json'])
    expect(fix.json()).toMatchObject({changed: true, status: {matches: true}})
  })

  it('--remove needs confirmation, then deletes the file; again is a no-op', async () => {
    const refused = await schedule(['--remove', '--json'])
    expect(refused.exitCode).toBe(2)
    expect(refused.json().error.code).toBe('CONFIRMATION_REQUIRED')
    expect(existsSync(file)).toBe(true)
    const removed = await schedule(['--remove', '--confirm', 'singularity-backup', '--json'])
    expect(removed.exitCode, removed.stderr).toBe(0)
    expect(removed.json()).toMatchObject({action: 'remove', changed: true, status: {installed: false}})
    expect(existsSync(file)).toBe(false)
    const again = await schedule(['--remove', '--confirm', 'singularity-backup'])
    expect(again.exitCode).toBe(0)
    expect(again.stdout).toContain('is not installed; nothing to do')
  })
})
