import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {beforeAll, describe, expect, it} from 'vitest'

// in process: the same argv, output and exit codes as a child process, without a node start per run
import {runCliInProcess as runCli} from '../helpers/cli.js'
import {adminUrl, provisionedEstate, urlFor, withClient} from '../helpers/db.js'

const P = 't_doc_'
const backups = mkdtempSync(join(tmpdir(), 'sing-doctor-backups-'))
// The slot check is server-wide, and this shared test server also holds the slots of other files'
// estates, whose retained WAL this file does not control: its threshold is lifted here (slot
// thresholds are tested on a cluster of their own, test/integration/slot-safety.test.ts).
const slotThreshold = (extra: string[]) => (extra.includes('--max-slot-retained') ? [] : ['--max-slot-retained', '64GB'])
const doctor = (extra: string[] = []) => runCli(['doctor', '--prefix', P, '--backup-dir', backups, '--json', ...slotThreshold(extra), ...extra], {timeoutMs: 120_000})

type Check = {check: string; status: string; detail: string; next: string}
const statusOf = (checks: Check[], name: string) => checks.find((c) => c.check === name)?.status

describe('doctor', () => {
  beforeAll(async () => {
    await provisionedEstate(P, join(backups, 'pw.json'))
    // Keep the estate's own pg_cron jobs from running during the test: its verdict must depend
    // only on the faults the test injects.
    await withClient(adminUrl(), (c) => c.query("UPDATE cron.job SET active = false WHERE jobname LIKE 'singularity:' || $1 || '%'", [P]))
  })

  it('a healthy estate exits 0; every check is a row with a status and a command to look closer', async () => {
    const result = await doctor()
    expect(result.exitCode, result.stdout).toBe(0)
    const report = result.json()
    expect(report.verdict).not.toBe('fail')
    const names = report.checks.map((c: Check) => c.check)
    expect(names).toEqual(expect.arrayContaining(['databases reachable', 'migrations', 'pg_cron running', 'pg_cron jobs', 'queue backlog', 'replication slots', 'backups', 'encryption key']))
    for (const c of report.checks as Check[]) {
      expect(['ok', 'warn']).toContain(c.status)
      expect(c.next).toMatch(/^singularity /)
    }
    expect(statusOf(report.checks, 'backups')).toBe('warn') // no backups yet is a warning, not a failure
  })

  it('a failing pg_cron job makes it unhealthy (exit 3) and names the job and its history command', async () => {
    await withClient(adminUrl(), async (c) => {
      const {rows} = await c.query<{jobid: string}>("SELECT jobid FROM cron.job WHERE jobname = 'singularity:' || $1 || 'learn-patterns'", [P])
      await c.query(
        `INSERT INTO cron.job_run_details (jobid, runid, job_pid, database, username, command, status, return_message, start_time, end_time)
         VALUES ($1, nextval('cron.runid_seq'), 0, $2, 'postgres', 'SELECT 1/0', 'failed', 'ERROR: division by zero', now() - interval '1 minute', now())`,
        [rows[0].jobid, `${P}singularity`],
      )
    })
    try {
      const result = await doctor()
      expect(result.exitCode).toBe(3)
      const jobs = (result.json().checks as Check[]).find((c) => c.check === 'pg_cron jobs')!
      expect(jobs.status).toBe('fail')
      expect(jobs.detail).toContain('learn-patterns')
      expect(jobs.next).toContain('singularity jobs history')
    } finally {
      await withClient(adminUrl(), (c) => c.query("DELETE FROM cron.job_run_details WHERE database = $1 AND status = 'failed'", [`${P}singularity`]))
    }
  })

  it('a queue backlog over the threshold makes it unhealthy', async () => {
    await withClient(urlFor(`${P}shared_queue`), (c) => c.query("SELECT pgmq.send('llm_requests', jsonb_build_object('agent_id', 'a', 'task_type', 't', 'messages', '[]'::jsonb)) FROM generate_series(1, 6)"))
    try {
      const result = await doctor(['--max-queue-length', '5'])
      expect(result.exitCode).toBe(3)
      const queue = (result.json().checks as Check[]).find((c) => c.check === 'queue backlog')!
      expect(queue.status).toBe('fail')
      expect(queue.detail).toContain('llm_requests')
      expect((await doctor(['--max-queue-length', '100'])).exitCode).toBe(0)
    } finally {
      await withClient(urlFor(`${P}shared_queue`), (c) => c.query("SELECT pgmq.purge_queue('llm_requests')"))
    }
  })

  it('a replication slot retaining more WAL than allowed makes it unhealthy', async () => {
    // WAL written in the database after the slot was made is WAL the slot retains.
    await withClient(urlFor(`${P}singularity`), (c) => c.query("CREATE TABLE doctor_wal AS SELECT repeat('x', 1000) AS x FROM generate_series(1, 2000)"))
    const result = await doctor(['--max-slot-retained', '1kB'])
    expect(result.exitCode).toBe(3)
    const slots = (result.json().checks as Check[]).find((c) => c.check === 'replication slots')!
    expect(slots.status).toBe('fail')
    expect(slots.detail).toContain(`${P}singularity_centralcloud_cdc`)
  })

  it('a stale daily backup makes it unhealthy; a fresh verified one is ok', async () => {
    const taken = await runCli(['backup', '--prefix', P, '--kind', 'daily', '--dir', backups, '--verify', '--json'], {timeoutMs: 120_000})
    expect(taken.exitCode, taken.stdout + taken.stderr).toBe(0)
    const fresh = await doctor()
    expect(statusOf(fresh.json().checks, 'backups')).toBe('ok')
    // Age it: the manifest says when it was taken.
    const {readdirSync, readFileSync, writeFileSync} = await import('node:fs')
    const id = readdirSync(backups).find((n) => n.endsWith('-daily'))!
    const file = join(backups, id, 'manifest.json')
    const manifest = JSON.parse(readFileSync(file, 'utf8'))
    manifest.startedAt = new Date(Date.now() - 3 * 86_400_000).toISOString()
    writeFileSync(file, JSON.stringify(manifest))
    const stale = await doctor()
    expect(stale.exitCode).toBe(3)
    const check = (stale.json().checks as Check[]).find((c) => c.check === 'backups')!
    expect(check.status).toBe('fail')
    expect(check.detail).toContain('daily')
  })

  it('bad thresholds exit 2 before checking anything', async () => {
    expect((await doctor(['--max-oldest', 'soon'])).exitCode).toBe(2)
    expect((await doctor(['--max-slot-retained', 'huge'])).exitCode).toBe(2)
  })
})
