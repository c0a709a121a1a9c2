import {createHash} from 'node:crypto'
import {existsSync, readdirSync, readFileSync, statSync} from 'node:fs'
import {join, relative, sep} from 'node:path'

import type pg from 'pg'
import {z} from 'zod'

import {packageRoot} from '../paths.js'

/**
 * Knowledge artifacts / templates (seed 001 "Knowledge Migration: validate + transform JSON" and
 * "Templates Data Load"): a directory of JSON files, each one artifact or an array of artifacts.
 * Every file is validated before anything is written; problems are reported by path and field.
 */

/** The example directory shipped with the package (data the estate is seeded with). */
export function defaultTemplatesDir(): string {
  return join(packageRoot(), 'sql', 'seed', 'templates')
}

const MAX_FILE_BYTES = 10 * 1024 * 1024
const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/
const SLUG = /^[a-z0-9][a-z0-9._-]*$/
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/

const text = z.string().trim().min(1, 'must not be empty')
const strings = z.array(text)

export const ARTIFACT_TYPES = ['code_template', 'framework', 'prompt', 'pattern', 'quality_rule'] as const
export type ArtifactType = (typeof ARTIFACT_TYPES)[number]

/** Fields every artifact has. Unknown top-level fields are refused (they are usually typos). */
export const artifactBase = z.strictObject({
  $schema: z.string().optional(),
  artifact_type: z.enum(ARTIFACT_TYPES, {error: `expected one of ${ARTIFACT_TYPES.join(', ')}`}),
  artifact_id: z
    .string({error: 'expected a string'})
    .max(128, 'at most 128 characters')
    .regex(SLUG, 'expected a lower-case slug: a-z, 0-9, ".", "_", "-", starting with a letter or digit'),
  version: z.string({error: 'expected a string'}).regex(SEMVER, 'expected a semantic version like 1.0.0'),
  title: text.max(200, 'at most 200 characters'),
  description: z.string().optional(),
  language: text.max(64).optional(),
  tags: z.array(text.max(64)).max(64).optional(),
  content: z.unknown(),
})

const variable = z.strictObject({
  name: z.string().regex(IDENT, 'expected an identifier (letters, digits, _)'),
  description: z.string().optional(),
  default: z.string().optional(),
  required: z.boolean().optional(),
})

/** The payload of each artifact type; extra fields are kept (producers may add them). */
export const contentSchemas: Record<ArtifactType, z.ZodType> = {
  code_template: z.looseObject({
    template: text,
    variables: z.array(variable).optional(),
  }),
  framework: z.looseObject({
    detect: z
      .looseObject({files: strings.optional(), dependencies: strings.optional()})
      .refine((d) => (d.files?.length ?? 0) + (d.dependencies?.length ?? 0) > 0, 'needs at least one of files, dependencies'),
    commands: z.record(z.string(), text).optional(),
  }),
  prompt: z.looseObject({
    template: text,
    inputs: z.array(z.string().regex(IDENT, 'expected an identifier (letters, digits, _)')).optional(),
  }),
  pattern: z.looseObject({
    problem: text,
    solution: text,
    examples: strings.optional(),
  }),
  quality_rule: z.looseObject({
    severity: z.enum(['info', 'warning', 'error'], {error: 'expected one of info, warning, error'}),
    check: text,
    message: z.string().optional(),
  }),
}

export interface Artifact {
  artifact_type: ArtifactType
  artifact_id: string
  version: string
  title: string
  description: string | null
  language: string | null
  tags: string[]
  content: unknown
  /** file it came from, relative to the templates directory */
  source_path: string
  /** sha256 of the canonical JSON of the whole validated document */
  content_hash: string
}

export interface TemplateProblem {
  /** the file as given (directory joined with its relative path) */
  path: string
  /** the field, e.g. "version", "content.detect", "[2].artifact_id"; "(file)" for the file itself */
  field: string
  message: string
}

export interface TemplatesScan {
  dir: string
  files: string[]
  artifacts: Artifact[]
  problems: TemplateProblem[]
  /** sha256 over the files' relative paths and bytes: the step's input */
  inputHash: string
}

/** JSON with object keys sorted, so equal documents hash equally. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
  }
  return JSON.stringify(value)
}

/** "content.variables[0].name" from a zod path. */
export function fieldPath(path: readonly PropertyKey[], prefix = ''): string {
  let out = prefix
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`
    else out += out ? `.${String(key)}` : String(key)
  }
  return out || '(root)'
}

function issuesOf(error: z.ZodError, prefix: string, base: readonly PropertyKey[] = []): {field: string; message: string}[] {
  return error.issues.map((issue) => {
    const path = [...base, ...issue.path]
    // an unknown key is reported at the key itself, not at the object holding it
    if (issue.code === 'unrecognized_keys') {
      return {field: fieldPath([...path, issue.keys[0]], prefix), message: `unknown field${issue.keys.length > 1 ? `s ${issue.keys.join(', ')}` : ''} (not part of an artifact)`}
    }
    if (issue.code === 'invalid_type' && issue.message.includes('received undefined')) {
      return {field: fieldPath(path, prefix), message: 'required'}
    }
    return {field: fieldPath(path, prefix), message: issue.message}
  })
}

/** Validates one artifact document; returns it normalised, or its problems (field + message). */
export function validateArtifact(doc: unknown, fieldPrefix = ''): {artifact?: Omit<Artifact, 'source_path'>; problems: {field: string; message: string}[]} {
  const base = artifactBase.safeParse(doc)
  const problems: {field: string; message: string}[] = base.success ? [] : issuesOf(base.error, fieldPrefix)
  const type = (doc as {artifact_type?: unknown} | null)?.artifact_type
  const contentSchema = typeof type === 'string' && (ARTIFACT_TYPES as readonly string[]).includes(type) ? contentSchemas[type as ArtifactType] : undefined
  let content: unknown
  if (contentSchema && doc !== null && typeof doc === 'object' && 'content' in doc) {
    const parsed = contentSchema.safeParse((doc as {content: unknown}).content)
    if (parsed.success) content = parsed.data
    else problems.push(...issuesOf(parsed.error, fieldPrefix, ['content']))
  } else if (contentSchema && doc !== null && typeof doc === 'object' && !problems.some((p) => p.field === fieldPath(['content'], fieldPrefix))) {
    problems.push({field: fieldPath(['content'], fieldPrefix), message: 'required'})
  }
  if (problems.length > 0 || !base.success) return {problems}
  const d = base.data
  const normalised = {
    artifact_type: d.artifact_type,
    artifact_id: d.artifact_id,
    version: d.version,
    title: d.title,
    description: d.description ?? null,
    language: d.language ?? null,
    tags: d.tags ?? [],
    content,
  }
  return {artifact: {...normalised, content_hash: createHash('sha256').update(canonicalJson(normalised)).digest('hex')}, problems: []}
}

function listJsonFiles(dir: string): string[] {
  const out: string[] = []
  const walk = (current: string) => {
    for (const entry of readdirSync(current, {withFileTypes: true}).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (entry.name.startsWith('.')) continue
      const full = join(current, entry.name)
      if (entry.isDirectory()) walk(full)
      else if (entry.name.endsWith('.json') && (entry.isFile() || statSync(full).isFile())) out.push(full)
    }
  }
  walk(dir)
  return out
}

/** The line and column of a JSON.parse position, for people. */
function where(textContent: string, message: string): string {
  const match = /position (\d+)/.exec(message)
  if (!match) return ''
  const before = textContent.slice(0, Number(match[1]))
  const line = before.split('\n').length
  return ` (line ${line}, column ${before.length - before.lastIndexOf('\n')})`
}

/**
 * Reads and validates every *.json file under dir (recursively, dot-files skipped, in name order).
 * Never throws for bad content: problems are returned so that all of them can be reported.
 */
export function scanTemplates(dir: string): TemplatesScan {
  const files = listJsonFiles(dir)
  const hash = createHash('sha256')
  const artifacts: Artifact[] = []
  const problems: TemplateProblem[] = []
  const seen = new Map<string, string>()
  for (const file of files) {
    const rel = relative(dir, file).split(sep).join('/')
    const bytes = readFileSync(file)
    hash.update(`${rel}\0${bytes.length}\0`).update(bytes)
    if (bytes.length > MAX_FILE_BYTES) {
      problems.push({path: file, field: '(file)', message: `larger than ${MAX_FILE_BYTES / 1024 / 1024} MB`})
      continue
    }
    const content = bytes.toString('utf8')
    let doc: unknown
    try {
      doc = JSON.parse(content)
    } catch (error) {
      const message = (error as Error).message.split('\n')[0]
      problems.push({path: file, field: '(file)', message: `not valid JSON: ${message}${where(content, message)}`})
      continue
    }
    const docs = Array.isArray(doc) ? doc.map((d, i) => ({d, prefix: `[${i}]`})) : [{d: doc, prefix: ''}]
    if (Array.isArray(doc) && doc.length === 0) problems.push({path: file, field: '(root)', message: 'an empty array: no artifact in this file'})
    for (const {d, prefix} of docs) {
      if (d === null || typeof d !== 'object' || Array.isArray(d)) {
        problems.push({path: file, field: prefix || '(root)', message: 'expected an artifact object'})
        continue
      }
      const result = validateArtifact(d, prefix)
      for (const p of result.problems) problems.push({path: file, ...p})
      if (!result.artifact) continue
      const key = `${result.artifact.artifact_type}/${result.artifact.artifact_id}`
      const first = seen.get(key)
      if (first) {
        problems.push({path: file, field: fieldPath(['artifact_id'], prefix), message: `duplicate ${key}: also defined in ${first}`})
        continue
      }
      seen.set(key, file)
      artifacts.push({...result.artifact, source_path: rel})
    }
  }
  return {dir, files, artifacts, problems, inputHash: hash.digest('hex')}
}

/** Checks the directory exists and is one; the message for exit 2 otherwise. */
export function templatesDirProblem(dir: string): string | undefined {
  if (!existsSync(dir)) return `templates directory ${dir} does not exist`
  if (!statSync(dir).isDirectory()) return `${dir} is not a directory`
  return undefined
}

export interface UpsertResult {
  total: number
  inserted: number
  updated: number
  unchanged: number
  /** rows in the table that no file in the directory defines (left in place) */
  notInDirectory: number
}

/** Upserts the artifacts into public.knowledge_artifacts: rows are rewritten only when their hash changed. */
export async function upsertArtifacts(client: pg.Client, artifacts: Artifact[]): Promise<UpsertResult> {
  const {rows} = await client.query<{inserted: boolean}>(
    `INSERT INTO public.knowledge_artifacts AS k
       (artifact_type, artifact_id, version, title, description, language, tags, content, content_hash, source_path)
     SELECT r.artifact_type, r.artifact_id, r.version, r.title, r.description, r.language,
            coalesce(r.tags, '{}'), r.content, r.content_hash, r.source_path
       FROM jsonb_to_recordset($1::jsonb) AS r(
         artifact_type text, artifact_id text, version text, title text, description text, language text,
         tags text[], content jsonb, content_hash text, source_path text)
     ON CONFLICT (artifact_type, artifact_id) DO UPDATE
        SET version = EXCLUDED.version, title = EXCLUDED.title, description = EXCLUDED.description,
            language = EXCLUDED.language, tags = EXCLUDED.tags, content = EXCLUDED.content,
            content_hash = EXCLUDED.content_hash, source_path = EXCLUDED.source_path, updated_at = now()
      WHERE k.content_hash IS DISTINCT FROM EXCLUDED.content_hash OR k.source_path IS DISTINCT FROM EXCLUDED.source_path
     RETURNING (xmax = 0) AS inserted`,
    [JSON.stringify(artifacts)],
  )
  const inserted = rows.filter((r) => r.inserted).length
  const updated = rows.length - inserted
  const stale = await client.query<{n: number}>(
    `SELECT count(*)::int AS n FROM public.knowledge_artifacts k
      WHERE NOT EXISTS (SELECT 1 FROM jsonb_to_recordset($1::jsonb) AS r(artifact_type text, artifact_id text)
                         WHERE r.artifact_type = k.artifact_type AND r.artifact_id = k.artifact_id)`,
    [JSON.stringify(artifacts.map((a) => ({artifact_type: a.artifact_type, artifact_id: a.artifact_id})))],
  )
  return {total: artifacts.length, inserted, updated, unchanged: artifacts.length - rows.length, notInDirectory: stale.rows[0].n}
}
