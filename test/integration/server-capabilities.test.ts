import {describe, expect, it} from 'vitest'

import {adminUrl, connect, createTestDatabase, withClient} from '../helpers/db.js'
import {waitFor} from '../helpers/wait.js'

/** The test server is what the product needs: a real pg_cron that fires and real wal2json slots. */
describe('the test server', () => {
  it('pg_cron runs a job scheduled into another database', async () => {
    const db = await createTestDatabase('cron_probe')
    await withClient(db.url, (c) => c.query('CREATE TABLE ticks (at timestamptz DEFAULT now())'))
    const admin = await connect(adminUrl())
    try {
      await admin.query('CREATE EXTENSION IF NOT EXISTS pg_cron')
      const {rows} = await admin.query<{jobid: string}>("SELECT cron.schedule_in_database($1, '* * * * *', 'INSERT INTO ticks DEFAULT VALUES', $2) AS jobid", [`probe_${db.name}`, db.name])
      const jobid = rows[0].jobid
      // pg_cron fires at the top of each minute: wait for a succeeded run, at most ~75 s.
      await waitFor(
        `a succeeded run of pg_cron job ${jobid} in ${db.name}`,
        async () => (await admin.query<{status: string}>('SELECT status FROM cron.job_run_details WHERE jobid = $1 ORDER BY runid DESC LIMIT 1', [jobid])).rows[0]?.status === 'succeeded',
        {timeoutMs: 75_000, intervalMs: 500},
      ).finally(() => admin.query('SELECT cron.unschedule($1::bigint)', [jobid]))
      const ticks = await withClient(db.url, (c) => c.query('SELECT count(*)::int AS n FROM ticks'))
      expect(ticks.rows[0].n).toBeGreaterThanOrEqual(1)
    } finally {
      await admin.end()
    }
  }, 120_000)

  it('wal2json creates a logical slot and decodes an insert (format 2)', async () => {
    const db = await createTestDatabase('wal2json_probe')
    await withClient(db.url, async (c) => {
      await c.query('CREATE TABLE t (id int PRIMARY KEY, v text)')
      await c.query("SELECT pg_create_logical_replication_slot('probe', 'wal2json', true)")
      await c.query("INSERT INTO t VALUES (1, 'one')")
      const {rows} = await c.query<{data: string}>("SELECT data FROM pg_logical_slot_peek_changes('probe', NULL, NULL, 'format-version', '2')")
      const changes = rows.map((r) => JSON.parse(r.data))
      expect(changes.find((ch) => ch.action === 'I')).toMatchObject({action: 'I', table: 't', columns: [{name: 'id', value: 1}, {name: 'v', value: 'one'}]})
    })
  })
})
