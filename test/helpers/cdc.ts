import type pg from 'pg'

/**
 * How many `cdc tail`s on `database` are streaming: their temporary slot's walsender has passed
 * START_REPLICATION, so every commit from now on reaches them. A slot that merely exists is not
 * enough: while it is being created it waits for the transactions running then, and what commits
 * meanwhile lies before its start and is never streamed.
 */
export async function streamingTails(client: Pick<pg.Client, 'query'>, database: string): Promise<number> {
  const {rows} = await client.query(
    `SELECT count(*)::int AS n
       FROM pg_replication_slots s JOIN pg_stat_replication r ON r.pid = s.active_pid
      WHERE s.database = $1 AND s.temporary AND r.state IN ('catchup', 'streaming')`,
    [database],
  )
  return rows[0].n
}
