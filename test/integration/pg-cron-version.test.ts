import type pg from 'pg'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {CliError, ExitCode} from '../../src/lib/cli/errors.js'
import {installSchedules} from '../../src/lib/cron/install.js'
import {pgCronSupports, readPgCronSettings, validateScheduleFor} from '../../src/lib/cron/pg-cron-version.js'
import type {JobSpec} from '../../src/schedules.js'
import {estate} from '../../src/topology.js'
import {runCli} from '../helpers/cli.js'
import {connect, urlFor} from '../helpers/db.js'

/**
 * pg_cron's version read from the server and held against what that server really accepts
 * (issue 12). Runs against whichever pg_cron the test server has (1.4.2 on the dev machine):
 * every schedule below goes both through validateScheduleFor and through the server's own
 * cron.schedule, inside a transaction that is rolled back. Prefix: t_pgcv_.
 */

const PREFIX = 't_pgcv_'
let cron: pg.Client
let version: string

beforeAll(async () => {
  cron = await connect(urlFor('postgres'))
  await cron.query('CREATE EXTENSION IF NOT EXISTS pg_cron')
  await cron.query("DELETE FROM cron.job WHERE jobname LIKE 'singularity:t\\_pgcv\\_%'")
  version = (await readPgCronSettings(cron)).version!
})

afterAll(async () => {
  if (!cron) return
  await cron.query("DELETE FROM cron.job WHERE jobname LIKE 'singularity:t\\_pgcv\\_%'").catch(() => {})
  await cron.end()
})

/** Whether the server's own cron.schedule takes the schedule (nothing is kept). */
async function serverAccepts(schedule: string): Promise<boolean> {
  await cron.query('BEGIN')
  try {
    await cron.query("SELECT cron.schedule('singularity:t_pgcv_probe', $1, 'SELECT 1')", [schedule])
    return true
  } catch (error) {
    if ((error as {code?: string}).code === undefined) throw error
    return false
  } finally {
    await cron.query('ROLLBACK')
  }
}

function weAccept(schedule: string): boolean {
  try {
    validateScheduleFor(version, schedule)
    return true
  } catch (error) {
    expect((error as CliError).exitCode).toBe(ExitCode.usage)
    return false
  }
}

describe('pg_cron version from the server', () => {
  it('reads extversion and the zone schedules run in', async () => {
    const settings = await readPgCronSettings(cron)
    expect(settings.version).toMatch(/^1\.\d+/)
    // a fresh cluster sets no cron.timezone: GMT either way (1.4 has none, 1.5+ defaults to GMT)
    expect(settings.timezone).toBe('GMT')
  })

  it.each([
    '*/5 * * * *',
    '0 5 1-7 * 0',
    '0 12 * * mon-fri',
    '10-30/10 * * * *',
    '0 0 * * 7',
    '@daily',
    '@reboot',
    '@restart',
    '5/10 * * * *',
    '60 * * * *',
    '0 0 * * 8',
    '* * * *',
    'every minute',
    '@DAILY',
    '30 seconds',
    '1 second',
    '60 seconds',
    '0 12 $ * *',
    '0 12 $ * 1',
  ])('%j: accepted by us exactly when this server accepts it', async (schedule) => {
    expect(weAccept(schedule)).toBe(await serverAccepts(schedule))
  })

  it('installSchedules refuses a schedule the installed version rejects with exit 2 before anything changes; accepts it where the version does', async () => {
    const est = estate({prefix: PREFIX})
    const fast: JobSpec = {name: 'fast', runner: 'pg_cron', schedule: '30 seconds', database: 'cron', command: 'SELECT 1', description: 'test: every 30 seconds', source: 'test'}
    const plain: JobSpec = {...fast, name: 'plain', schedule: '*/5 * * * *'}
    const names = async () => (await cron.query<{jobname: string}>("SELECT jobname FROM cron.job WHERE jobname LIKE 'singularity:t\\_pgcv\\_%' ORDER BY 1")).rows.map((r) => r.jobname)
    if (pgCronSupports(version, 'intervalSchedules')) {
      expect((await installSchedules(cron, est, [plain, fast])).created).toEqual([`singularity:${PREFIX}fast`, `singularity:${PREFIX}plain`])
      return
    }
    await expect(installSchedules(cron, est, [plain, fast])).rejects.toMatchObject({
      exitCode: ExitCode.usage,
      code: 'PG_CRON_TOO_OLD',
      message: expect.stringMatching(/^schedule fast: schedule "30 seconds" uses interval schedules .* needs pg_cron 1\.5\+; this server has pg_cron 1\.4$/),
    })
    expect(await names()).toEqual([])
  })

  it('jobs list shows a job whose schedule it cannot evaluate as it is, with no next run', async () => {
    // what a newer pg_cron (or a hand edit) leaves behind; written straight into cron.job, which
    // pg_cron's own scheduler skips with a log line when it cannot parse it
    await cron.query(
      `INSERT INTO cron.job (schedule, command, nodename, nodeport, database, username, jobname)
       VALUES ('30 seconds', 'SELECT 1', 'localhost', inet_server_port(), current_database(), current_user, $1)`,
      [`singularity:${PREFIX}from-elsewhere`],
    )
    try {
      const r = await runCli(['jobs', 'list', '--prefix', PREFIX, '--runner', 'pg_cron', '--json'])
      expect(r.exitCode).toBe(0)
      const row = r.json().jobs.find((j: {job: string}) => j.job === `singularity:${PREFIX}from-elsewhere`)
      expect(row).toMatchObject({schedule: '30 seconds', nextRun: null, drift: ['unknown']})
      const human = await runCli(['jobs', 'list', '--prefix', PREFIX, '--runner', 'pg_cron'])
      expect(human.exitCode).toBe(0)
      // the job name, its status, then the schedule exactly as pg_cron holds it
      expect(human.stdout).toMatch(/from-elsewhere\s+\S+\s+30 seconds/)
    } finally {
      await cron.query('DELETE FROM cron.job WHERE jobname = $1', [`singularity:${PREFIX}from-elsewhere`])
    }
  })
})
