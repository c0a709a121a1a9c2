import {z} from 'zod'

/**
 * Message contracts of the estate's queues, as zod schemas.
 *
 * Sources: seed 003's queue table (the eight request/response queues of shared_queue), seed 004's
 * message types (pattern_detection, aggregated_patterns, learned_patterns, learning_exported,
 * templates_updated) and seed 000's three queues of each singularity database.
 *
 * Rules applied to every contract:
 * - every field the seed names is required, except where the seed shows it absent or nil
 *   (job_results.error is nullable, approval_responses.reason is optional);
 * - extra fields are allowed (producers may add fields without breaking consumers);
 * - ids are non-empty strings (the seeds use UUIDs); a `request_id` answering an LLM request is the
 *   request's pgmq msg_id (seed 003, Nexus: `request_id: msg_id`), so request ids are a non-empty
 *   string or a non-negative integer;
 * - timestamps are ISO 8601 date-times with a zone (`DateTime.utc_now()` as JSON);
 * - rates and confidences are numbers in [0, 1]; counts are non-negative integers.
 *
 * Queue → contract (which shapes a queue accepts):
 * - pattern_messages: pattern_detection (Singularity → CentralCloud) or aggregated_patterns
 *   (CentralCloud → Singularity, PatternSyncWorker "writes: pattern_messages queue"), by `type`;
 * - learned_patterns: learned_patterns (Singularity → CentralCloud);
 * - template_updates: templates_updated or learning_exported (both CentralCloud → all instances:
 *   the broadcast queue; seed 004 names no queue for learning_exported), by `type`;
 * - instance_heartbeat: seed 004 gives no shape: any JSON object.
 */

const nonEmpty = z.string().min(1)
const id = nonEmpty
const requestId = z.union([nonEmpty, z.number().int().nonnegative()])
const timestamp = z.iso.datetime({offset: true})
const ratio = z.number().min(0).max(1)
const count = z.number().int().nonnegative()

/** One chat message of an LLM request: a role and its content (text or provider content parts). */
const chatMessage = z.looseObject({
  role: nonEmpty,
  content: z.union([z.string(), z.array(z.unknown())]),
})

// seed 003: the queue table of shared_queue.
export const llmRequest = z.looseObject({
  agent_id: nonEmpty,
  task_type: nonEmpty,
  messages: z.array(chatMessage).min(1),
})
export const approvalRequest = z.looseObject({id, file_path: nonEmpty, diff: z.string(), description: z.string()})
export const questionRequest = z.looseObject({id, question: nonEmpty, context: z.unknown()})
export const jobRequest = z.looseObject({id, code: z.string(), language: nonEmpty})
export const llmResult = z.looseObject({request_id: requestId, result: z.string(), model: nonEmpty})
export const jobResult = z.looseObject({request_id: requestId, output: z.string().nullable(), error: z.string().nullable()})
export const approvalResponse = z.looseObject({request_id: requestId, approved: z.boolean(), reason: z.string().nullish()})
export const questionResponse = z.looseObject({request_id: requestId, response: z.string()})

// seed 004: the message types of the pattern-learning queues.
export const patternDetection = z.looseObject({
  type: z.literal('pattern_detection'),
  source: nonEmpty,
  patterns: z.array(z.unknown()),
  timestamp,
  instance_id: nonEmpty,
})
export const aggregatedPatterns = z.looseObject({
  type: z.literal('aggregated_patterns'),
  patterns: z.array(z.unknown()),
  timestamp,
  source: nonEmpty,
})
export const learnedPatterns = z.looseObject({
  type: z.literal('learned_patterns'),
  source: nonEmpty,
  artifacts: z.array(z.unknown()),
  usage_count: count,
  success_rate: ratio,
  timestamp,
})
export const learningExported = z.looseObject({
  type: z.literal('learning_exported'),
  pr_url: z.url(),
  artifacts_count: count,
  timestamp,
  branch: nonEmpty,
})
export const templatesUpdated = z.looseObject({
  type: z.literal('templates_updated'),
  git_url: nonEmpty,
  updated_files: z.array(z.string()),
  timestamp,
})
export const anyObject = z.record(z.string(), z.unknown())

// seed 000: the queues of each singularity database.
// The producer is learn_patterns_from_analysis(): an analysis result may name no agent (none
// attributed, or the agent was deleted: ON DELETE SET NULL) and may be unscored, and such a
// pattern is still worth CentralCloud's knowing. So agent_id and confidence are present but may be
// null; inventing an agent or a score in the producer would put false facts into the learning.
export const newPattern = z.looseObject({
  agent_id: nonEmpty.nullable(),
  pattern: z.record(z.string(), z.unknown()),
  confidence: ratio.nullable(),
  learned_at: timestamp,
  source: nonEmpty,
})
export const agentSession = z.looseObject({
  agent_id: nonEmpty,
  session_id: nonEmpty,
  // encrypted by persist_agent_session(): an object, or ciphertext as a string
  session_state: z.unknown().refine((v) => v !== undefined, 'Required'),
  confidence: ratio.nullish(),
  synced_at: timestamp,
})
// seed 002: a change of the CDC bridge (cdc_bridge_run), seed 002's "Change Event Structure".
export const cdcChange = z.looseObject({
  lsn: z.string().regex(/^[0-9A-F]+\/[0-9A-F]+$/, 'a PostgreSQL LSN'),
  kind: z.enum(['insert', 'update', 'delete']),
  schema: nonEmpty,
  table: nonEmpty,
  columns: z.array(nonEmpty),
  values: z.array(z.unknown()),
  before_values: z.record(z.string(), z.unknown()).nullable(),
  timestamp: timestamp.nullable(),
})
export const agentKnowledgeUpdate = z.looseObject({agents_updated: count, total_patterns: count, updated_at: timestamp})

export interface Contract {
  /** contract name, e.g. "llm_request" or "pattern_detection | aggregated_patterns" */
  name: string
  /** where the shape comes from */
  source: string
  /** the fields, as the seed writes them (for error hints) */
  shape: string
  schema: z.ZodType
}

const byType = <T extends readonly [z.ZodObject, z.ZodObject, ...z.ZodObject[]]>(options: T) => z.discriminatedUnion('type', options)

/** Which queue expects which shape. Keys are queue names as the estate creates them. */
export const QUEUE_CONTRACTS: Readonly<Record<string, Contract>> = {
  llm_requests: {name: 'llm_request', source: 'seed 003', shape: '{agent_id, task_type, messages}', schema: llmRequest},
  approval_requests: {name: 'approval_request', source: 'seed 003', shape: '{id, file_path, diff, description}', schema: approvalRequest},
  question_requests: {name: 'question_request', source: 'seed 003', shape: '{id, question, context}', schema: questionRequest},
  job_requests: {name: 'job_request', source: 'seed 003', shape: '{id, code, language}', schema: jobRequest},
  llm_results: {name: 'llm_result', source: 'seed 003', shape: '{request_id, result, model}', schema: llmResult},
  job_results: {name: 'job_result', source: 'seed 003', shape: '{request_id, output, error}', schema: jobResult},
  approval_responses: {name: 'approval_response', source: 'seed 003', shape: '{request_id, approved, reason?}', schema: approvalResponse},
  question_responses: {name: 'question_response', source: 'seed 003', shape: '{request_id, response}', schema: questionResponse},
  pattern_messages: {
    name: 'pattern_detection | aggregated_patterns',
    source: 'seed 004',
    shape: '{type: "pattern_detection", source, patterns, timestamp, instance_id} or {type: "aggregated_patterns", patterns, timestamp, source}',
    schema: byType([patternDetection, aggregatedPatterns]),
  },
  learned_patterns: {
    name: 'learned_patterns',
    source: 'seed 004',
    shape: '{type: "learned_patterns", source, artifacts, usage_count, success_rate, timestamp}',
    schema: learnedPatterns,
  },
  template_updates: {
    name: 'templates_updated | learning_exported',
    source: 'seed 004',
    shape: '{type: "templates_updated", git_url, updated_files, timestamp} or {type: "learning_exported", pr_url, artifacts_count, timestamp, branch}',
    schema: byType([templatesUpdated, learningExported]),
  },
  instance_heartbeat: {name: 'instance_heartbeat', source: 'seed 004 (no shape given)', shape: 'any JSON object', schema: anyObject},
  'centralcloud-new-patterns': {
    name: 'new_pattern',
    source: 'seed 000',
    shape: '{agent_id (or null), pattern (object), confidence (0..1 or null), learned_at, source}',
    schema: newPattern,
  },
  'agent-sessions': {name: 'agent_session', source: 'seed 000', shape: '{agent_id, session_id, session_state, confidence, synced_at}', schema: agentSession},
  'agent-knowledge-updates': {name: 'agent_knowledge_update', source: 'seed 000', shape: '{agents_updated, total_patterns, updated_at}', schema: agentKnowledgeUpdate},
  ...Object.fromEntries(
    ['cdc-learned-patterns', 'cdc-agent-sessions', 'cdc-metrics-events'].map((queue) => [
      queue,
      {name: 'cdc_change', source: 'seed 002', shape: '{lsn, kind, schema, table, columns, values, before_values, timestamp}', schema: cdcChange},
    ]),
  ),
}

/** The contract of a queue (names compare case-insensitively, like pgmq's tables), if it has one. */
export function contractFor(queue: string): Contract | undefined {
  const key = queue.toLowerCase()
  return Object.hasOwn(QUEUE_CONTRACTS, key) ? QUEUE_CONTRACTS[key] : undefined
}

export type ValidationResult =
  | {ok: true; contract: string | null}
  | {ok: false; contract: string; path: string; message: string; shape: string}

/** "messages[0].role" from zod's path segments; "(message)" for the root. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = ''
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`
    else out += out ? `.${String(segment)}` : String(segment)
  }
  return out || '(message)'
}

/**
 * Checks a message against its queue's contract: ok, or the first failing field path and why.
 * A queue without a contract accepts any JSON value (contract: null).
 */
export function validateMessage(queue: string, value: unknown): ValidationResult {
  const contract = contractFor(queue)
  if (!contract) return {ok: true, contract: null}
  const result = contract.schema.safeParse(value)
  if (result.success) return {ok: true, contract: contract.name}
  const issue = result.error.issues[0]
  return {ok: false, contract: contract.name, path: formatPath(issue.path), message: describe(issue), shape: contract.shape}
}

type Issue = z.core.$ZodIssue

/** One short reason: "is required", "expected string, received number", "expected string or int". */
function describe(issue: Issue): string {
  const message = issue.message.replace(/^Invalid input: /, '')
  if (/received undefined$/.test(message)) return 'is required'
  if (issue.code === 'invalid_union' && 'options' in issue && Array.isArray(issue.options)) {
    return `must be one of ${issue.options.map((o) => `'${String(o)}'`).join(', ')}`
  }
  if (issue.code === 'invalid_union' && issue.errors.length > 0) {
    const branches = issue.errors.map((branch) => branch[0]).filter(Boolean)
    if (branches.some((b) => /received undefined$/.test(b.message))) return 'is required'
    const expected = [...new Set(branches.map((b) => ('expected' in b ? String(b.expected) : b.message.replace(/^Invalid input: /, ''))))]
    return `expected ${expected.join(' or ')}`
  }
  return message
}
