/**
 * The estate as data: databases, roles, grants, queues, extensions and their fallbacks, change
 * capture and schedules. `db init` reconciles a server to it; `db status`, `jobs list` and `doctor`
 * diff the server against it. Nothing else in the code repeats these facts.
 */

import {CDC_BRIDGE, type CdcBridgeSpec} from './cdc-bridge.js'

export {CDC_BRIDGE, type CdcBridgeSpec} from './cdc-bridge.js'

export type DatabaseKind = 'singularity' | 'genesis' | 'centralcloud' | 'nexus' | 'shared_queue'
export const DATABASE_KINDS: readonly DatabaseKind[] = ['singularity', 'genesis', 'centralcloud', 'nexus', 'shared_queue']

/**
 * Login roles, one per service, plus CentralCloud's read-only analytics role (seed 003) and
 * CentralCloud's two least-privilege roles into the singularity databases (seed 000): one streams
 * the CDC slot, one consumes the two queues meant for CentralCloud.
 */
export type RoleKey = 'singularity' | 'genesis' | 'centralcloud' | 'nexus' | 'centralcloud_analytics' | 'centralcloud_cdc' | 'centralcloud_consumer'

export interface RoleSpec {
  key: RoleKey
  description: string
  /** REPLICATION attribute (streams a logical slot); every other role has none of the special attributes */
  replication?: boolean
}

export const ROLES: readonly RoleSpec[] = [
  {key: 'singularity', description: 'Singularity instances (Elixir): own database(s); read/write on shared_queue'},
  {key: 'genesis', description: 'Genesis code execution (Elixir): own database; read/write on shared_queue'},
  {key: 'centralcloud', description: 'CentralCloud (Elixir): own database; owns shared_queue; reads its queues only'},
  {key: 'nexus', description: 'Nexus LLM router + HITL (Bun): own database; read/write on shared_queue'},
  {key: 'centralcloud_analytics', description: "CentralCloud's analytics access: reads the archives of shared_queue"},
  {key: 'centralcloud_cdc', description: "CentralCloud's change stream: REPLICATION and CONNECT to the singularity databases for the CDC slot; no table privileges", replication: true},
  {key: 'centralcloud_consumer', description: 'CentralCloud consuming centralcloud-new-patterns and agent-sessions of each singularity database, nothing else there'},
]

export type Access = 'readwrite' | 'read'

/** Privileges a role gets on a schema's tables, sequences and functions. */
export interface SchemaGrant {
  role: RoleKey
  schema: string
  access: Access
}

/**
 * Who may do what with one queue (pgmq.q_<queue> and its archive pgmq.a_<queue>). The pgmq
 * functions are SECURITY INVOKER, so these table grants decide:
 *  - publish: INSERT and SELECT on the queue (send returns the new msg_id: RETURNING needs SELECT),
 *    USAGE on its msg_id sequence;
 *  - consume: SELECT, UPDATE, DELETE on the queue (read, pop, set_vt, delete), INSERT and SELECT on
 *    the archive (archive moves the row and returns its id);
 *  - observe: SELECT on the queue and its archive (read-only: never moves a message);
 *  - archive readers (DatabaseSpec.archiveReaders): SELECT on the archive only.
 * Everything else on a queue is drift: `db plan` shows it as a revoke.
 */
export interface QueueAccess {
  queue: string
  publish: RoleKey[]
  consume: RoleKey[]
  observe: RoleKey[]
  /** where the directions come from */
  source: string
}

export interface CdcSpec {
  /** slot name suffix: the slot is <database name>_<suffix>, unique per server */
  slotSuffix: string
  plugin: 'wal2json'
  tables: string[]
  /** the service that must read the slot (named when the slot is created, idle or lost) */
  consumer: string
}


export interface DatabaseSpec {
  kind: DatabaseKind
  owner: RoleKey
  /** roles besides the owner that may connect; CONNECT is revoked from PUBLIC everywhere */
  connect: RoleKey[]
  /** SQL components applied in order from sql/<component>/ (the queue engine comes first where queues exist) */
  components: string[]
  /** extensions the database needs (created by db init) */
  extensions: string[]
  /** pgmq queues db init creates */
  queues: string[]
  /** schema-wide grants (tables, sequences, functions, default privileges) */
  grants: SchemaGrant[]
  /** per-queue access (the queues' tables in schema pgmq); queues not listed get none */
  queueAccess: QueueAccess[]
  /** roles that read every archive of this database (SELECT on pgmq.a_*) */
  archiveReaders: RoleKey[]
  cdc?: CdcSpec
  cdcBridge?: CdcBridgeSpec
}

/** seed 003/004: the queues of shared_queue. */
export const SHARED_QUEUE_QUEUES = [
  'llm_requests', 'llm_results', 'approval_requests', 'approval_responses',
  'question_requests', 'question_responses', 'job_requests', 'job_results',
  'pattern_messages', 'learned_patterns', 'template_updates', 'instance_heartbeat',
] as const

/** seed 000: the queues of each singularity database, and seed 002's CDC bridge queues. */
export const SINGULARITY_QUEUES = ['centralcloud-new-patterns', 'agent-sessions', 'agent-knowledge-updates', ...Object.values(CDC_BRIDGE.queues)] as const

/**
 * shared_queue's directions. Seed 003's table: Singularity publishes the requests and consumes the
 * results and responses; Genesis consumes job_requests and publishes job_results; Nexus consumes the
 * LLM/approval/question requests and publishes their results and responses (the browser answers go
 * through Nexus's HITL bridge); CentralCloud only observes those eight. Seed 004: CentralCloud
 * publishes pattern_messages, template_updates and learned_patterns and consumes pattern_messages
 * and instance_heartbeat; the singularity instances publish pattern_messages (detected patterns),
 * learned_patterns and instance_heartbeat (their health checks), and consume template_updates.
 */
export const SHARED_QUEUE_ACCESS: readonly QueueAccess[] = [
  {queue: 'llm_requests', publish: ['singularity'], consume: ['nexus'], observe: ['centralcloud'], source: 'seed 003'},
  {queue: 'llm_results', publish: ['nexus'], consume: ['singularity'], observe: ['centralcloud'], source: 'seed 003'},
  {queue: 'approval_requests', publish: ['singularity'], consume: ['nexus'], observe: ['centralcloud'], source: 'seed 003'},
  {queue: 'approval_responses', publish: ['nexus'], consume: ['singularity'], observe: ['centralcloud'], source: 'seed 003'},
  {queue: 'question_requests', publish: ['singularity'], consume: ['nexus'], observe: ['centralcloud'], source: 'seed 003'},
  {queue: 'question_responses', publish: ['nexus'], consume: ['singularity'], observe: ['centralcloud'], source: 'seed 003'},
  {queue: 'job_requests', publish: ['singularity'], consume: ['genesis'], observe: ['centralcloud'], source: 'seed 003'},
  {queue: 'job_results', publish: ['genesis'], consume: ['singularity'], observe: ['centralcloud'], source: 'seed 003'},
  {queue: 'pattern_messages', publish: ['singularity', 'centralcloud'], consume: ['centralcloud'], observe: [], source: 'seed 004'},
  {queue: 'learned_patterns', publish: ['singularity', 'centralcloud'], consume: ['centralcloud'], observe: [], source: 'seed 004 (KnowledgeExportWorker reads it)'},
  {queue: 'template_updates', publish: ['centralcloud'], consume: ['singularity'], observe: [], source: 'seed 004'},
  {queue: 'instance_heartbeat', publish: ['singularity'], consume: ['centralcloud'], observe: [], source: 'seed 004'},
]

/**
 * The queues of a singularity database: its own service does everything with them; CentralCloud's
 * consumer role consumes the two meant for CentralCloud (seed 000), and nothing else there.
 */
export const SINGULARITY_QUEUE_ACCESS: readonly QueueAccess[] = [
  {queue: 'centralcloud-new-patterns', publish: ['singularity'], consume: ['singularity', 'centralcloud_consumer'], observe: [], source: 'seed 000'},
  {queue: 'agent-sessions', publish: ['singularity'], consume: ['singularity', 'centralcloud_consumer'], observe: [], source: 'seed 000'},
  {queue: 'agent-knowledge-updates', publish: ['singularity'], consume: ['singularity'], observe: [], source: 'seed 000'},
  // seed 002: the CDC bridge (cdc_bridge_run, run by pg_cron as the admin) fills them; the instance forwards them
  ...Object.values(CDC_BRIDGE.queues).map((queue) => ({queue, publish: [] as RoleKey[], consume: ['singularity' as const], observe: [] as RoleKey[], source: 'seed 002 (CDC bridge)'})),
]

/**
 * The schemas of an estate database that are ours: their privileges are reconciled (extra grants
 * to PUBLIC or to an estate role are drift). Other schemas are never looked at.
 */
export const MANAGED_SCHEMAS = ['public', 'pgmq', 'singularity_meta', 'singularity_private'] as const

export const DATABASES: Readonly<Record<DatabaseKind, DatabaseSpec>> = {
  singularity: {
    kind: 'singularity',
    owner: 'singularity',
    connect: ['centralcloud_cdc', 'centralcloud_consumer'],
    components: ['singularity', 'queue_ops'],
    extensions: ['pgcrypto', 'pg_prewarm'],
    queues: [...SINGULARITY_QUEUES],
    grants: [{role: 'singularity', schema: 'public', access: 'readwrite'}],
    queueAccess: [...SINGULARITY_QUEUE_ACCESS],
    archiveReaders: [],
    cdc: {slotSuffix: 'centralcloud_cdc', plugin: 'wal2json', tables: ['learned_patterns', 'agent_sessions'], consumer: 'CentralCloud'},
    cdcBridge: CDC_BRIDGE,
  },
  genesis: {
    kind: 'genesis',
    owner: 'genesis',
    connect: [],
    components: ['genesis'],
    extensions: ['pgcrypto'],
    queues: [],
    grants: [{role: 'genesis', schema: 'public', access: 'readwrite'}],
    queueAccess: [],
    archiveReaders: [],
  },
  centralcloud: {
    kind: 'centralcloud',
    owner: 'centralcloud',
    connect: [],
    components: ['centralcloud'],
    extensions: ['pgcrypto'],
    queues: [],
    grants: [{role: 'centralcloud', schema: 'public', access: 'readwrite'}],
    queueAccess: [],
    archiveReaders: [],
  },
  nexus: {
    kind: 'nexus',
    owner: 'nexus',
    connect: [],
    components: ['nexus'],
    extensions: ['pgcrypto'],
    queues: [],
    grants: [{role: 'nexus', schema: 'public', access: 'readwrite'}],
    queueAccess: [],
    archiveReaders: [],
  },
  shared_queue: {
    kind: 'shared_queue',
    owner: 'centralcloud',
    connect: ['singularity', 'genesis', 'nexus', 'centralcloud_analytics'],
    components: ['shared_queue', 'queue_ops'],
    extensions: [],
    queues: [...SHARED_QUEUE_QUEUES],
    grants: [],
    queueAccess: [...SHARED_QUEUE_ACCESS],
    archiveReaders: ['centralcloud_analytics'],
  },
}

/** The queue engine: the real pgmq extension, or our bundled implementation of its SQL API (sql/pgmq). */
export type QueueEngine = 'extension' | 'bundled'
export const BUNDLED_QUEUE_COMPONENT = 'pgmq'

/** Extensions of seed 002 that Debian 12 lacks; detected, never faked. Each names its fallback. */
export interface OptionalExtension {
  name: string
  feature: string
  fallback: string
  databases: DatabaseKind[]
  /** created into this schema (made when missing) rather than public */
  schema?: string
}

export const OPTIONAL_EXTENSIONS: readonly OptionalExtension[] = [
  {name: 'pgsodium', feature: 'agent session encryption', fallback: 'pgcrypto (pgp_sym_encrypt with a key in singularity_private)', databases: ['singularity']},
  {name: 'pgx_ulid', feature: 'ULID generation', fallback: 'plpgsql ULIDs (monotonic within a millisecond)', databases: ['singularity']},
  {name: 'pg_net', feature: 'HTTP calls from SQL', fallback: 'none: HTTP stays in the Elixir applications', databases: ['singularity']},
  {name: 'vector', feature: 'pattern similarity search (pgvector)', fallback: 'plain SQL cosine similarity over float8[]', databases: ['singularity']},
  {name: 'lantern', feature: 'pattern similarity index (lantern)', fallback: 'plain SQL cosine similarity over float8[]', databases: ['singularity']},
  {name: 'cube', feature: 'geo fallback without h3 (earthdistance needs it)', fallback: 'none: agents_near() needs cube + earthdistance', databases: ['singularity']},
  {name: 'earthdistance', feature: 'agents near a point without h3 (GiST on cube)', fallback: 'none: agents_near() is not installed', databases: ['singularity']},
  {name: 'h3', feature: 'geo-indexing of agent locations', fallback: 'latitude/longitude columns without an H3 index', databases: ['singularity']},
  {name: 'timescaledb_toolkit', feature: 'metrics percentiles', fallback: 'percentile_cont rollups in plain PostgreSQL', databases: ['singularity']},
  // Debian has it: metrics_events partitioned by day, old days dropped whole (sql/singularity/020_metrics_partitions.sql)
  {name: 'pg_partman', feature: 'metrics_events retention by day partitions', fallback: 'one table, DELETE in bounded batches', databases: ['singularity'], schema: 'partman'},
]

/** The extension pg_cron lives in the server's cron database (cron.database_name). */
export const CRON_EXTENSION = 'pg_cron'

/** Every pg_cron job we install carries this prefix; jobs without it are never touched. */
export const JOB_PREFIX = 'singularity:'

export type Runner = 'pg_cron' | 'oban' | 'system-cron'

/** One scheduled job of the estate. */
export interface ScheduleSpec {
  /** name without the prefix, e.g. "learn-patterns" */
  name: string
  runner: Runner
  /** cron expression (UTC) */
  schedule: string
  /** the database kind it acts on (pg_cron jobs run there); system cron runs on the host */
  database: DatabaseKind | 'cron'
  /** SQL for pg_cron, the worker module for Oban, the shell command for system cron */
  command: string
  description: string
  /** where the job comes from, e.g. "seed 000" */
  source: string
  /** the command acts only on days 1..N of the month (cron cannot say "first Sunday") */
  maxDayOfMonth?: number
}

/** Every schedule of seeds 000/001/003/004 lives in schedules.ts (which reads this file, never the reverse). */

/** The estate's concrete names for a prefix and a number of singularity instances. */
export interface Estate {
  prefix: string
  instances: number
  databases: ConcreteDatabase[]
  /** databases switched off by configuration (SHARED_QUEUE_ENABLED=false): not part of the estate */
  disabled: {kind: DatabaseKind; name: string; reason: string}[]
  roles: {key: RoleKey; name: string; description: string; replication: boolean}[]
}

export interface ConcreteDatabase {
  kind: DatabaseKind
  name: string
  /** 1..N for singularity instances when N > 1 */
  instance?: number
  owner: string
  connect: string[]
  spec: DatabaseSpec
  grants: {role: string; schema: string; access: Access}[]
  /** per-queue access with concrete role names */
  queueAccess: {queue: string; publish: string[]; consume: string[]; observe: string[]; source: string}[]
  archiveReaders: string[]
  cdcSlot?: string
  /** seed 002's bridge slot, <name>_cdc_bridge */
  cdcBridgeSlot?: string
  /** the server it lives on (the config's placement; undefined = the admin server, `main`) */
  server?: string
}

export function roleName(key: RoleKey, prefix = ''): string {
  return `${prefix}${key}`
}

/** Database names of the singularity instances: "singularity", or singularity_1..N. */
export function singularityDatabaseNames(instances: number, prefix = ''): string[] {
  if (instances <= 1) return [`${prefix}singularity`]
  return Array.from({length: instances}, (_, i) => `${prefix}singularity_${i + 1}`)
}

/** Expands the topology into the concrete names db init creates. */
export function estate(options: {instances?: number; prefix?: string; disabled?: {kind: DatabaseKind; reason: string}[]} = {}): Estate {
  const prefix = options.prefix ?? ''
  const instances = options.instances ?? 1
  const concrete = (spec: DatabaseSpec, name: string, instance?: number): ConcreteDatabase => ({
    kind: spec.kind,
    name,
    instance,
    owner: roleName(spec.owner, prefix),
    connect: spec.connect.map((r) => roleName(r, prefix)),
    spec,
    grants: spec.grants.map((g) => ({...g, role: roleName(g.role, prefix)})),
    queueAccess: spec.queueAccess.map((q) => ({
      queue: q.queue,
      publish: q.publish.map((r) => roleName(r, prefix)),
      consume: q.consume.map((r) => roleName(r, prefix)),
      observe: q.observe.map((r) => roleName(r, prefix)),
      source: q.source,
    })),
    archiveReaders: spec.archiveReaders.map((r) => roleName(r, prefix)),
    cdcSlot: spec.cdc ? `${name}_${spec.cdc.slotSuffix}` : undefined,
    cdcBridgeSlot: spec.cdcBridge ? `${name}_${spec.cdcBridge.slotSuffix}` : undefined,
  })
  const databases: ConcreteDatabase[] = []
  singularityDatabaseNames(instances, prefix).forEach((name, i) => databases.push(concrete(DATABASES.singularity, name, instances > 1 ? i + 1 : undefined)))
  for (const kind of DATABASE_KINDS.filter((k) => k !== 'singularity')) databases.push(concrete(DATABASES[kind], `${prefix}${kind}`))
  const off = options.disabled ?? []
  const disabled = databases.filter((d) => off.some((o) => o.kind === d.kind)).map((d) => ({kind: d.kind, name: d.name, reason: off.find((o) => o.kind === d.kind)!.reason}))
  return {
    prefix,
    instances,
    databases: databases.filter((d) => !disabled.some((x) => x.name === d.name)),
    disabled,
    roles: ROLES.map((r) => ({key: r.key, name: roleName(r.key, prefix), description: r.description, replication: r.replication ?? false})),
  }
}

export type QueueDirection = 'publish' | 'consume' | 'observe' | 'archive-read'

/**
 * The per-queue access matrix as flat rows (database kind, queue, role key, direction): what each
 * service may do with each queue. Everything not listed is refused (42501). For tests and docs.
 */
export function queueAccessMatrix(): {database: DatabaseKind; queue: string; role: RoleKey; direction: QueueDirection}[] {
  const rows: {database: DatabaseKind; queue: string; role: RoleKey; direction: QueueDirection}[] = []
  for (const kind of DATABASE_KINDS) {
    const spec = DATABASES[kind]
    for (const access of spec.queueAccess) {
      for (const direction of ['publish', 'consume', 'observe'] as const) for (const role of access[direction]) rows.push({database: kind, queue: access.queue, role, direction})
    }
    for (const queue of spec.queues) for (const role of spec.archiveReaders) rows.push({database: kind, queue, role, direction: 'archive-read'})
  }
  return rows
}

/** Poison policies of the queues (dead letters): queue-policies.ts. */
export {DEFAULT_MAX_READS, QUEUE_POLICIES, deadLetterQueueName, maxReadsFor, type QueuePolicy} from './queue-policies.js'
