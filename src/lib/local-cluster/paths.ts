import {existsSync, readFileSync} from 'node:fs'
import {homedir} from 'node:os'
import {join} from 'node:path'

/** What `local start` records about the cluster it made, in <dir>/state.json. */
export interface LocalState {
  port: number
  binDir: string
  version: string
  superuser: string
  createdAt: string
  /** max_slot_wal_keep_size written on every start (absent in clusters made before it existed) */
  maxSlotWalKeepSize?: string
}

export interface LocalStateWithUrl extends LocalState {
  adminUrl: string
}

export const layout = (dir: string) => ({
  dir,
  data: join(dir, 'data'),
  run: join(dir, 'run'),
  log: join(dir, 'run', 'server.log'),
  state: join(dir, 'state.json'),
  passwordFile: join(dir, 'superuser.password'),
  pgpass: join(dir, 'pgpass'),
})

/**
 * Where the embedded cluster lives by default. As root the server runs as the postgres OS user,
 * which cannot enter /root, so root's default is under /var/lib.
 */
export function defaultLocalDir(env: NodeJS.ProcessEnv = process.env): string {
  if (process.getuid?.() === 0) return '/var/lib/singularity/local'
  return join(env.XDG_DATA_HOME ?? join(homedir(), '.local', 'share'), 'singularity', 'local')
}

/** Reads the local cluster's state, or undefined when it was never created. Cheap: no process spawned. */
export function readLocalState(dir: string): LocalStateWithUrl | undefined {
  const paths = layout(dir)
  if (!existsSync(paths.state) || !existsSync(paths.passwordFile)) return undefined
  try {
    const state = JSON.parse(readFileSync(paths.state, 'utf8')) as LocalState
    const password = readFileSync(paths.passwordFile, 'utf8').trim()
    return {...state, adminUrl: localUrl(state, 'postgres', password)}
  } catch {
    return undefined
  }
}

/** The URL of one database on the local cluster (password only when given). */
export function localUrl(state: Pick<LocalState, 'port' | 'superuser'>, database: string, password?: string): string {
  const url = new URL(`postgres://127.0.0.1:${state.port}/${encodeURIComponent(database)}`)
  url.username = state.superuser
  if (password) url.password = encodeURIComponent(password)
  return url.toString()
}
