import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import type {TestProject} from 'vitest/node'

import {destroyCluster, startCluster} from '../src/lib/local-cluster/cluster.js'
import {readLocalState} from '../src/lib/local-cluster/paths.js'
import {dockerAnswers, startContainer} from './helpers/container.js'
import {createEstateTemplate, dropEstateTemplate} from './helpers/estate-template.js'

declare module 'vitest' {
  export interface ProvidedContext {
    adminUrl: string
    serverKind: 'external' | 'container' | 'local'
    /** prefix of the estate made once by `db init`, which files copy (test/helpers/estate-template.ts) */
    estateTemplate: string
  }
}

/**
 * One PostgreSQL for the whole run, in this order: SINGULARITY_TEST_DATABASE_URL; testcontainers
 * when a Docker engine answers; else a throwaway cluster made by the same code as `local start`,
 * removed afterwards, also when tests fail or the run is interrupted. Then the estate template, made
 * once by `db init` (a failure there fails the run, naming the step).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await startServer(project)
  try {
    const secrets = mkdtempSync(join(tmpdir(), 'singularity-test-template-'))
    const template = await createEstateTemplate(server.adminUrl, join(secrets, 'passwords.json'))
    project.provide('estateTemplate', template)
    return async () => {
      if (server.kind === 'external') await dropEstateTemplate(server.adminUrl, template)
      await server.stop()
    }
  } catch (error) {
    await server.stop()
    throw error
  }
}

async function startServer(project: TestProject): Promise<{adminUrl: string; kind: 'external' | 'container' | 'local'; stop: () => Promise<void>}> {
  if (process.env.SINGULARITY_TEST_DATABASE_URL) {
    project.provide('adminUrl', process.env.SINGULARITY_TEST_DATABASE_URL)
    project.provide('serverKind', 'external')
    return {adminUrl: process.env.SINGULARITY_TEST_DATABASE_URL, kind: 'external', stop: async () => {}}
  }
  if (process.env.SINGULARITY_TEST_IMAGE && (await dockerAnswers())) {
    const container = await startContainer(process.env.SINGULARITY_TEST_IMAGE)
    project.provide('adminUrl', container.url)
    project.provide('serverKind', 'container')
    return {adminUrl: container.url, kind: 'container', stop: async () => container.stop()}
  }
  const dir = mkdtempSync(join(tmpdir(), 'singularity-test-'))
  const cleanup = async () => destroyCluster(dir)
  const onSignal = (signal: NodeJS.Signals) => {
    void cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    await startCluster({dir, progress: (m) => process.stderr.write(`[test cluster] ${m}\n`)})
  } catch (error) {
    await cleanup()
    throw error
  }
  const adminUrl = readLocalState(dir)!.adminUrl
  project.provide('adminUrl', adminUrl)
  project.provide('serverKind', 'local')
  return {adminUrl, kind: 'local', stop: cleanup}
}
