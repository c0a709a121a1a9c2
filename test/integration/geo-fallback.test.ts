import type pg from 'pg'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {connect, createTestDatabase, installComponents} from '../helpers/db.js'

/**
 * Issue 18 / seed 002: without h3, agents_near(lat, lon, km), set_agent_location() and
 * cluster_agents_by_region() on contrib's cube + earthdistance, with a GiST index, named in the
 * features db status reports.
 */

let c: pg.Client

beforeAll(async () => {
  const db = await createTestDatabase('geo_fallback')
  c = await connect(db.url)
  // as db init does from the topology (OPTIONAL_EXTENSIONS): the geo files require earthdistance
  for (const extension of ['pgcrypto', 'cube', 'earthdistance']) await c.query(`CREATE EXTENSION IF NOT EXISTS ${extension}`)
  await installComponents(db.url, ['pgmq', 'singularity'])
  await c.query(`INSERT INTO agents (id, name) VALUES ('sf', 'San Francisco'), ('oak', 'Oakland'), ('sj', 'San Jose'), ('la', 'Los Angeles'), ('nowhere', 'no location')`)
  for (const [id, lat, lon] of [['sf', 37.7749, -122.4194], ['oak', 37.8044, -122.2712], ['sj', 37.3382, -121.8863], ['la', 34.0522, -118.2437]] as const) {
    expect((await c.query('SELECT set_agent_location($1, $2, $3) AS ok', [id, lat, lon])).rows[0].ok).toBe(true)
  }
})

afterAll(async () => {
  await c?.end()
})

describe('geo fallback without h3 (cube + earthdistance)', () => {
  it('agents_near: within the radius, nearest first, distances in km', async () => {
    const {rows} = await c.query<{agent_id: string; distance_km: number}>('SELECT agent_id, distance_km FROM agents_near(37.7749, -122.4194, 20)')
    expect(rows.map((r) => r.agent_id)).toEqual(['sf', 'oak'])
    expect(rows[0].distance_km).toBeCloseTo(0, 3)
    // San Francisco to Oakland is about 13.4 km
    expect(rows[1].distance_km).toBeGreaterThan(12.5)
    expect(rows[1].distance_km).toBeLessThan(14.5)
    const wide = await c.query<{agent_id: string}>('SELECT agent_id FROM agents_near(37.7749, -122.4194, 100)')
    expect(wide.rows.map((r) => r.agent_id)).toEqual(['sf', 'oak', 'sj'])
    const all = await c.query<{agent_id: string}>('SELECT agent_id FROM agents_near(37.7749, -122.4194, 1000)')
    expect(all.rows.map((r) => r.agent_id)).toEqual(['sf', 'oak', 'sj', 'la'])
  })

  it('set_agent_location: false for an unknown agent; the range checks hold', async () => {
    expect((await c.query(`SELECT set_agent_location('ghost', 1, 1) AS ok`)).rows[0].ok).toBe(false)
    await expect(c.query(`SELECT set_agent_location('sf', 91, 0)`)).rejects.toMatchObject({code: '23514'})
  })

  it('cluster_agents_by_region: agents per grid cell with centre and members', async () => {
    const {rows} = await c.query<{region: string; agent_count: number; agent_ids: string[]; center_latitude: number}>('SELECT * FROM cluster_agents_by_region(1.0)')
    expect(rows.map((r) => [r.agent_count, r.agent_ids])).toEqual([
      [2, ['oak', 'sf']],
      [1, ['la']],
      [1, ['sj']],
    ])
    expect(rows[0].region).toBe('grid:1:37:-123')
    expect(rows[0].center_latitude).toBeCloseTo((37.7749 + 37.8044) / 2, 6)
  })

  it('the GiST index answers the radius search', async () => {
    await c.query('SET enable_seqscan = off')
    try {
      const {rows} = await c.query<{'QUERY PLAN': string}>(
        `EXPLAIN SELECT id FROM agents WHERE latitude IS NOT NULL AND geo_point(latitude, longitude) <@ earth_box(geo_point(37.7749, -122.4194), 20000)`,
      )
      expect(rows.map((r) => r['QUERY PLAN']).join('\n')).toContain('agents_location_earth_idx')
    } finally {
      await c.query('RESET enable_seqscan')
    }
  })

  it('the index expression works under an empty search_path (as pg_restore and autovacuum run it)', async () => {
    await c.query(`SET search_path = ''`)
    try {
      await c.query(`INSERT INTO public.agents (id, latitude, longitude) VALUES ('restored', 10, 10)`)
      await c.query('REINDEX INDEX public.agents_location_earth_idx')
    } finally {
      await c.query('RESET search_path')
    }
  })

  it('db status names the implementation in its features', async () => {
    const {rows} = await c.query<{feature: string; implementation: string}>(`SELECT * FROM singularity_feature_implementations() WHERE feature IN ('geo_clustering', 'metrics_retention', 'cdc_bridge')`)
    const byFeature = Object.fromEntries(rows.map((r) => [r.feature, r.implementation]))
    expect(byFeature.geo_clustering).toMatch(/^cube \+ earthdistance: agents_near\(\), set_agent_location\(\), cluster_agents_by_region\(\), GiST index agents_location_earth_idx \(h3 not installed\)$/)
    expect(byFeature.metrics_retention).toMatch(/bounded batches .* \(pg_partman not installed\)$/)
    expect(byFeature.cdc_bridge).toMatch(/^wal2json slot/)
  })
})
