import {existsSync} from 'node:fs'
import {request} from 'node:http'

/** Whether a Docker engine answers on its socket (the client alone is not enough). */
export async function dockerAnswers(): Promise<boolean> {
  const socketPath = (process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock').replace(/^unix:\/\//, '')
  if (!existsSync(socketPath)) return false
  return new Promise((resolve) => {
    const req = request({socketPath, path: '/_ping', timeout: 2000}, (res) => resolve(res.statusCode === 200))
    req.on('error', () => resolve(false))
    req.on('timeout', () => {
      req.destroy()
      resolve(false)
    })
    req.end()
  })
}

/**
 * A PostgreSQL container from an image that has pg_cron and wal2json (SINGULARITY_TEST_IMAGE),
 * started with the settings the product needs.
 */
export async function startContainer(image: string): Promise<{url: string; stop: () => Promise<void>}> {
  const {GenericContainer, Wait} = await import('testcontainers')
  const container = await new GenericContainer(image)
    .withEnvironment({POSTGRES_PASSWORD: 'test'})
    .withCommand(['postgres', '-c', 'shared_preload_libraries=pg_cron', '-c', 'wal_level=logical', '-c', 'cron.use_background_workers=on', '-c', 'max_worker_processes=24'])
    .withExposedPorts(5432)
    .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
    .start()
  const url = `postgres://postgres:test@${container.getHost()}:${container.getMappedPort(5432)}/postgres`
  return {url, stop: async () => void (await container.stop())}
}
