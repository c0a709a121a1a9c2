/**
 * Seed 002's CDC bridge, as data: each singularity database has a wal2json slot of its own
 * (<database>_<slotSuffix>), which a pg_cron job (cdc-bridge, sql/singularity/procedures/
 * 110_cdc_bridge.sql) reads into one queue per captured table, exactly once, bounded per run.
 * A module of its own so that topology.ts and schedules.ts both read it without a cycle.
 */
export interface CdcBridgeSpec {
  /** slot name suffix: the slot is <database name>_<suffix> */
  slotSuffix: string
  plugin: 'wal2json'
  tables: string[]
  /** the service that must read the slot (named when the slot is created, idle or lost) */
  consumer: string
  /** captured table → the queue its changes go to */
  queues: Record<string, string>
  /** changes sent per run at most */
  maxChangesPerRun: number
}

export const CDC_BRIDGE: CdcBridgeSpec = {
  slotSuffix: 'cdc_bridge',
  plugin: 'wal2json',
  tables: ['learned_patterns', 'agent_sessions', 'metrics_events'],
  consumer: 'the cdc-bridge pg_cron job (cdc_bridge_run)',
  queues: {learned_patterns: 'cdc-learned-patterns', agent_sessions: 'cdc-agent-sessions', metrics_events: 'cdc-metrics-events'},
  maxChangesPerRun: 1000,
}
