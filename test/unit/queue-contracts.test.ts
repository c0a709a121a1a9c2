import {describe, expect, it} from 'vitest'

import {QUEUE_CONTRACTS, formatPath, validateMessage} from '../../src/lib/queue/contracts.js'
import {closestNames, globToRegExp, validateQueueName} from '../../src/lib/queue/catalog.js'
import {SHARED_QUEUE_QUEUES, SINGULARITY_QUEUES} from '../../src/topology.js'

const ts = '2025-10-25T10:00:00Z'

/** One valid message per queue, as the seeds show them. */
const VALID: Record<string, unknown> = {
  llm_requests: {agent_id: 'self-improving-agent', task_type: 'architect', messages: [{role: 'user', content: 'design it'}]},
  approval_requests: {id: 'uuid', file_path: 'lib/module.ex', diff: '...', description: 'Add feature X'},
  question_requests: {id: 'uuid', question: 'Which one?', context: {file: 'a.ex'}},
  job_requests: {id: 'uuid', code: 'def hello, do: :world end', language: 'elixir'},
  llm_results: {request_id: 42, result: '...', model: 'claude-opus'},
  job_results: {request_id: 'uuid', output: '✓ Valid Elixir code', error: null},
  approval_responses: {request_id: 'uuid', approved: true},
  question_responses: {request_id: 'uuid', response: 'the first'},
  pattern_messages: {type: 'pattern_detection', source: 'singularity-1', patterns: [], timestamp: ts, instance_id: 'singularity-1'},
  learned_patterns: {type: 'learned_patterns', source: 'singularity-2', artifacts: [], usage_count: 500, success_rate: 0.95, timestamp: ts},
  template_updates: {type: 'templates_updated', git_url: 'https://github.com/x/templates', updated_files: ['a.json'], timestamp: ts},
  instance_heartbeat: {source: 'singularity-1'},
  'centralcloud-new-patterns': {agent_id: 'agent-123', pattern: {name: 'x'}, confidence: 0.95, learned_at: ts, source: 'singularity-learning'},
  'agent-sessions': {agent_id: 'agent-123', session_id: '01ARZ3NDEKTSV4', session_state: 'c2VjcmV0', confidence: 0.85, synced_at: ts},
  'agent-knowledge-updates': {agents_updated: 5, total_patterns: 127, updated_at: ts},
  // seed 002's change event structure
  'cdc-learned-patterns': {lsn: '0/12345678', kind: 'insert', schema: 'public', table: 'learned_patterns', columns: ['id', 'code_snippet'], values: [123, 'async task'], before_values: null, timestamp: ts},
}

describe('message contracts', () => {
  it('cover every queue of the estate, and accept the seeds\' own examples', () => {
    expect(Object.keys(QUEUE_CONTRACTS).sort()).toEqual([...SHARED_QUEUE_QUEUES, ...SINGULARITY_QUEUES].sort())
    for (const [queue, message] of Object.entries(VALID)) expect(validateMessage(queue, message), queue).toMatchObject({ok: true})
  })

  it('accept every seed 004 message type on its queue, by type', () => {
    expect(validateMessage('pattern_messages', {type: 'aggregated_patterns', patterns: [1], timestamp: '2025-10-25T10:00:00.123456Z', source: 'centralcloud'}).ok).toBe(true)
    expect(validateMessage('template_updates', {type: 'learning_exported', pr_url: 'https://github.com/x/y/pull/1', artifacts_count: 15, timestamp: ts, branch: 'feature/learned-patterns-20251025'}).ok).toBe(true)
    expect(validateMessage('learned_patterns', {type: 'pattern_detection', source: 's', patterns: [], timestamp: ts, instance_id: 'i'})).toMatchObject({ok: false, path: 'type'})
  })

  it('report the first failing field path', () => {
    expect(validateMessage('llm_requests', {agent_id: 'a', task_type: 't', messages: [{role: 'user', content: 'x'}, {content: 'y'}]})).toMatchObject({ok: false, path: 'messages[1].role', message: 'is required'})
    expect(validateMessage('llm_requests', {agent_id: '', task_type: 't', messages: [{role: 'u', content: ''}]})).toMatchObject({ok: false, path: 'agent_id'})
    expect(validateMessage('llm_results', {request_id: 1.5, result: '', model: 'm'})).toMatchObject({ok: false, path: 'request_id', message: 'expected string or int'})
    expect(validateMessage('job_requests', [])).toMatchObject({ok: false, path: '(message)'})
    expect(validateMessage('pattern_messages', {type: 'nope'})).toMatchObject({ok: false, path: 'type', message: "must be one of 'pattern_detection', 'aggregated_patterns'"})
    expect(validateMessage('pattern_messages', {type: 'pattern_detection', source: 's', patterns: [], timestamp: 'yesterday', instance_id: 'i'})).toMatchObject({ok: false, path: 'timestamp'})
    expect(validateMessage('learned_patterns', {...(VALID.learned_patterns as object), success_rate: 2})).toMatchObject({ok: false, path: 'success_rate'})
    expect(validateMessage('LLM_REQUESTS', {})).toMatchObject({ok: false, contract: 'llm_request'})
  })

  it('allow extra fields, and any JSON on a queue without a contract', () => {
    expect(validateMessage('job_requests', {...(VALID.job_requests as object), priority: 3}).ok).toBe(true)
    expect(validateMessage('my_own_queue', 'plain text')).toEqual({ok: true, contract: null})
  })

  it('formatPath', () => {
    expect(formatPath(['a', 0, 'b', 2])).toBe('a[0].b[2]')
    expect(formatPath([])).toBe('(message)')
  })
})

describe('queue names and patterns', () => {
  it('validateQueueName refuses what pgmq refuses, with exit 2', () => {
    for (const bad of ["a'b", 'a;b', 'a--b', 'a$b', 'q'.repeat(48), 'llm_requ\u0435sts', '', 'a b']) {
      expect(() => validateQueueName(bad), bad).toThrow(expect.objectContaining({exitCode: 2}))
    }
    expect(validateQueueName('agent-sessions')).toBe('agent-sessions')
    expect(validateQueueName('q'.repeat(47))).toHaveLength(47)
  })

  it('globs match whole names, case-insensitively; malformed globs exit 2', () => {
    expect(globToRegExp('llm_*').test('llm_results')).toBe(true)
    expect(globToRegExp('llm_*').test('xllm_results')).toBe(false)
    expect(globToRegExp('agent-?essions').test('Agent-Sessions')).toBe(true)
    expect(() => globToRegExp("x';--")).toThrow(expect.objectContaining({exitCode: 2}))
  })

  it('closestNames', () => {
    expect(closestNames('llm_reqests', ['llm_requests', 'llm_results', 'agent-sessions'])[0]).toBe('llm_requests')
    expect(closestNames('zzzzzzzzzzzzzzz', ['llm_requests'])).toEqual([])
  })
})
