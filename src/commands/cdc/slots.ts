import {statfsSync} from 'node:fs'

import {Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {connectionFlags, tableFlags} from '../../flags.js'
import {formatBytes, parseDuration, parseSize} from '../../lib/cli/format.js'
import {resolveConfig} from '../../lib/config/resolve.js'
import {connect, withClient} from '../../lib/db/connect.js'
import {KeptClient, parseWatchInterval, perSecond, runWatch, watchFlag, withWatchDefault, type Tick} from '../../lib/cli/watch.js'
import {CliError, UsageError} from '../../lib/cli/errors.js'
import {adminTarget, discoverEstate, discoverEstateUnlessDown, serverNames, severalServers} from '../../lib/estate/targets.js'
import {DEFAULT_DATABASE_TIMEOUT_MS, visitServers} from '../../lib/estate/visit.js'
import {slotCapFinding} from '../../lib/cdc/cap.js'
import {listSlots, slotsOverRetention, withGrowth, type SlotRow, type SlotsReport} from '../../lib/cdc/slots.js'
import {layout} from '../../lib/local-cluster/paths.js'
import {renderSlots} from '../../lib/render/slots.js'

export interface SlotsResult extends SlotsReport {
  /** the estate's persistent slots that do not exist on the server */
  missing: string[]
  threshold: {bytes: number; human: string; exceeded: string[]} | null
}

/** Several servers: how each server answered. */
export interface ServerSlots {
  name: string
  reachable: boolean
  error?: string
  capSetting: string | null
  currentLsn: string | null
}

export default class CdcSlots extends BaseCommand<typeof CdcSlots> {
  static override summary = 'Every replication slot on the server: retained WAL, its growth, wal_status, time left until the cap, consumer, plugin, database.'
  static override description = `A slot nobody reads keeps WAL until the disk is full. Retained WAL is the current WAL position minus the slot's restart_lsn; its growth comes from two readings --sample apart (default 2s; --sample 0 takes one reading). "time left" is how long, at that growth, until max_slot_wal_keep_size invalidates the slot (wal_status becomes lost: its consumer must resync), or with no cap until the WAL disk is full where its free space is known (the local cluster). "waiting" is how long the oldest unconsumed change has waited, at least (the age of the WAL segment holding it). "inactive since" comes from pg_replication_slots.inactive_since (PostgreSQL 17+); older servers do not record it and show "unknown" (null under --json). With --fail-if-retained-gt the command exits 3 when any slot retains more, for alerting. Several servers (the config's servers and placement): every server's slots, each row naming its server; a server that does not answer is reported and the others still listed (exit 1, as queue stats and jobs list do for what they could not read); --watch reads every server on each tick.`

  static override examples = [
    {description: 'All slots', command: '<%= config.bin %> cdc slots'},
    {description: 'Alert when a slot holds more than 1 GB of WAL (exit 3)', command: '<%= config.bin %> cdc slots --fail-if-retained-gt 1GB'},
    {description: 'For scripts', command: '<%= config.bin %> cdc slots --json'},
  ]

  static override flags = {
    ...connectionFlags,
    'fail-if-retained-gt': Flags.string({description: 'Exit 3 when a slot retains more WAL than this, e.g. 1GB, 512MB.'}),
    sample: Flags.string({description: 'Time between the two readings the growth rate comes from (e.g. 2s, 10s); 0 for one reading and no growth.', default: '2s'}),
    ...tableFlags,
    watch: watchFlag,
  }

  override async init(): Promise<void> {
    this.argv = withWatchDefault(this.argv)
    await super.init()
  }

  /**
   * --watch: the slots every interval, with WAL growth per second between ticks: over one kept
   * connection, or over several servers each read afresh per tick (one that does not answer is
   * named, the others shown). Ctrl-C exits 130.
   */
  private async watch(intervalSec: number, config: ReturnType<typeof resolveConfig>): Promise<never> {
    const several = severalServers(config)
    // one server: one connection kept across ticks; several: each tick reads every server afresh
    const admin = several ? null : new KeptClient(() => connect(adminTarget(config), {applicationName: 'singularity cdc slots --watch', statementTimeoutMs: 30_000}))
    return runWatch<WatchedSlots>({
      intervalSec,
      ndjson: this.jsonMode || !process.stdout.isTTY,
      tick: async () => {
        if (!admin) return this.readAcrossServers(config, 0)
        return admin.use(async (client): Promise<SlotsResult> => {
          const estate = await discoverEstate(config, client)
          const estateSlots = estate.databases.flatMap((d) => [d.cdcSlot, d.cdcBridgeSlot].filter((x): x is string => x !== undefined))
          const report: SlotsReport = {...(await listSlots(client, estateSlots)), diskFreeBytes: null}
          return {...report, missing: estateSlots.filter((name) => !report.slots.some((s) => s.name === name)), threshold: null}
        })
      },
      close: async () => admin?.close(),
      document: (current, previous) => tickGrowth(current, previous),
      frame: async (current, previous) => {
        const grown = tickGrowth(current, previous)
        const rate = (v: number | null) => (v === null ? '-' : `${formatBytes(Math.abs(v))}/s${v < 0 ? ' (shrinking)' : ''}`)
        const lines = grown.slots.length === 0 ? ['no replication slots on this server'] : renderSlots(current.value, await this.tableOptions(), several)
        lines.push('')
        if (grown.servers) {
          for (const s of grown.servers) lines.push(s.reachable ? `server ${s.name} WAL: ${rate(s.wal_bytes_per_sec)}` : `server ${s.name}: UNREACHABLE (${s.error}): its slots are not listed`)
        } else {
          lines.push(`server WAL: ${rate(grown.wal_bytes_per_sec)}`)
        }
        for (const s of grown.slots) lines.push(`  ${s.name}${s.server ? ` (${s.server})` : ''}: retained ${s.retained}, growing ${rate(s.retained_bytes_per_sec)}`)
        return lines.join('\n')
      },
    })
  }

  protected async execute(): Promise<SlotsResult> {
    const limitText = this.flags['fail-if-retained-gt']
    const limit = limitText === undefined ? undefined : parseSize(limitText)
    if (limitText !== undefined && limit === undefined) {
      throw new UsageError(`invalid size for --fail-if-retained-gt: ${JSON.stringify(limitText)}`, {hint: 'a size such as 1GB, 512MB or a number of bytes'})
    }
    const sampleSeconds = parseDuration(this.flags.sample)
    if (sampleSeconds === undefined) throw new UsageError(`invalid --sample ${JSON.stringify(this.flags.sample)}`, {hint: 'a duration such as 2s or 10s, or 0 for one reading'})
    const config = resolveConfig(this.flags)
    if (this.flags.watch !== undefined) {
      if (limit !== undefined) throw new UsageError('--watch does not combine with --fail-if-retained-gt', {hint: 'thresholds are for one-shot checks from cron; --watch is for looking'})
      return this.watch(parseWatchInterval(this.flags.watch), config)
    }
    if (severalServers(config)) return this.acrossServers(config, sampleSeconds, limit)
    // The WAL disk's free space is known only when the server is the local cluster, on this machine.
    const diskFreeBytes = config.admin?.source === 'local' ? freeBytes(layout(config.localDir).data) : null
    return withClient(
      adminTarget(config),
      async (client) => {
        const estate = await discoverEstate(config, client)
        const estateSlots = estate.databases.flatMap((d) => [d.cdcSlot, d.cdcBridgeSlot].filter((s): s is string => s !== undefined))
        let report: SlotsReport = {...(await listSlots(client, estateSlots)), diskFreeBytes}
        if (sampleSeconds > 0 && report.slots.length > 0) {
          if (this.colorfulErr && !this.jsonMode) this.note(`reading the slots twice, ${this.flags.sample} apart, for their growth (--sample 0 skips)…`)
          await new Promise((resolve) => setTimeout(resolve, sampleSeconds * 1000))
          report = withGrowth(report, {...(await listSlots(client, estateSlots)), diskFreeBytes})
        }
        const missing = estateSlots.filter((name) => !report.slots.some((s) => s.name === name))
        const result = {...report, missing, threshold: this.threshold(report, limit)}
        if (!this.jsonMode) this.table = renderSlots(result, await this.tableOptions())
        return result
      },
      {applicationName: 'singularity cdc slots', statementTimeoutMs: 30_000},
    )
  }

  /** Several servers: every server's slots, each row naming its server; a server that does not answer is reported (exit 1). */
  private async acrossServers(config: ReturnType<typeof resolveConfig>, sampleSeconds: number, limit: number | undefined): Promise<SlotsResult & {servers: ServerSlots[]}> {
    if (sampleSeconds > 0 && this.colorfulErr && !this.jsonMode) this.note(`reading the slots twice, ${this.flags.sample} apart, for their growth (--sample 0 skips)…`)
    const read = await this.readAcrossServers(config, sampleSeconds)
    const result = {...read, threshold: this.threshold(read, limit)}
    if (read.servers.some((s) => !s.reachable)) this.exitAfterOutput(1)
    if (!this.jsonMode) {
      this.table = renderSlots(result, await this.tableOptions(), true)
      this.unreachable = read.servers.filter((s) => !s.reachable).map((s) => `server ${s.name}: UNREACHABLE (${s.error}): its slots are not listed`)
    }
    return result
  }

  /**
   * Each server's slots (the estate's slots live with their singularity database), read at once,
   * each row naming its server; a server that does not answer is in `servers`. Throws only when no
   * server answers.
   */
  private async readAcrossServers(config: ReturnType<typeof resolveConfig>, sampleSeconds: number): Promise<SlotsResult & {servers: ServerSlots[]}> {
    const estate = await discoverEstateUnlessDown(config, 'singularity cdc slots')
    const names = serverNames(config)
    const slotsOn = (server: string) => estate.databases.filter((d) => (d.server ?? 'main') === server).flatMap((d) => [d.cdcSlot, d.cdcBridgeSlot].filter((x): x is string => x !== undefined))
    const visits = await visitServers(
      config,
      names,
      async (client, server) => {
        let report: SlotsReport = {...(await listSlots(client, slotsOn(server))), diskFreeBytes: null}
        if (sampleSeconds > 0 && report.slots.length > 0) {
          await new Promise((resolve) => setTimeout(resolve, sampleSeconds * 1000))
          report = withGrowth(report, {...(await listSlots(client, slotsOn(server))), diskFreeBytes: null})
        }
        return report
      },
      {timeoutMs: DEFAULT_DATABASE_TIMEOUT_MS + sampleSeconds * 1000, connect: {applicationName: 'singularity cdc slots'}},
    )
    const servers: ServerSlots[] = visits.map((v, i) => (v.ok ? {name: names[i], reachable: true, capSetting: v.value.capSetting, currentLsn: v.value.currentLsn} : {name: names[i], reachable: false, error: v.error.message.split('\n')[0], capSetting: null, currentLsn: null}))
    const reports = visits.flatMap((v, i) => (v.ok ? [{server: names[i], report: v.value}] : []))
    const base = reports.find((r) => r.server === 'main')?.report ?? reports[0]?.report
    if (!base) throw new CliError(`no server of the estate could be reached: ${servers.map((s) => `${s.name} (${s.error})`).join(', ')}`, {code: 'SERVER_UNREACHABLE'})
    const report: SlotsReport = {...base, slots: reports.flatMap((r) => r.report.slots.map((slot) => ({...slot, server: r.server})))}
    const reachableSlots = names.filter((n, i) => visits[i].ok).flatMap(slotsOn)
    const missing = reachableSlots.filter((name) => !report.slots.some((s) => s.name === name))
    return {...report, missing, threshold: null, servers}
  }

  /** --fail-if-retained-gt: the slots above it (exit 3 when there are any); null without the flag. */
  private threshold(report: SlotsReport, limit: number | undefined): SlotsResult['threshold'] {
    if (limit === undefined) return null
    const exceeded = slotsOverRetention(report, limit).map((s) => s.name)
    if (exceeded.length > 0) this.exitAfterOutput(3)
    return {bytes: limit, human: formatBytes(limit), exceeded}
  }

  private unreachable: string[] = []

  private table: string[] = []

  protected override human(result: SlotsResult): void {
    if (result.slots.length === 0) this.out('no replication slots on this server')
    else this.outTable(this.table)
    for (const line of this.unreachable) this.outFolded(line)
    if (!result.inactiveSinceAvailable && result.slots.some((s) => !s.active)) {
      this.outFolded('(this server does not record when a slot went inactive; PostgreSQL 17+ does)')
    }
    for (const name of result.missing) this.outFolded(`missing: estate slot ${name} does not exist; \`singularity db init\` creates it`)
    for (const s of result.slots.filter((x) => x.walStatus === 'lost')) {
      this.outFolded(`LOST: ${s.name} was invalidated by max_slot_wal_keep_size (${result.capSetting}): drop and recreate it (\`singularity cdc slots drop ${s.name} --confirm ${s.name}\`, then \`singularity db init\`); its consumer must resync`)
    }
    const cap = slotCapFinding({max_slot_wal_keep_size: result.capSetting})
    if (cap && result.slots.length > 0) this.outFolded(`warning: ${cap.message}; fix: ${cap.fix}`)
    if (result.threshold) {
      if (result.threshold.exceeded.length > 0) {
        this.outFolded(`UNHEALTHY: retained WAL above ${result.threshold.human}: ${result.threshold.exceeded.join(', ')} — read or drop them (\`singularity cdc slots drop <name>\`)`)
      } else {
        this.out(`ok: no slot retains more than ${result.threshold.human}`)
      }
    }
  }
}

/** Free bytes of the filesystem holding a directory; null when it cannot be read. */
function freeBytes(dir: string): number | null {
  try {
    const fs = statfsSync(dir)
    return Number(fs.bavail) * Number(fs.bsize)
  } catch {
    return null
  }
}

/** An LSN ("16/B374D848") as a byte position. */
function lsnBytes(lsn: string | null): number | null {
  const m = lsn ? /^([0-9A-F]+)\/([0-9A-F]+)$/i.exec(lsn) : null
  return m ? Number((BigInt(`0x${m[1]}`) << 32n) + BigInt(`0x${m[2]}`)) : null
}

/** One --watch tick: one server's slots, or several servers' (each slot and server named). */
type WatchedSlots = SlotsResult & {servers?: ServerSlots[]}

/** WAL growth between two --watch ticks: of each server, and of what each slot retains (a slot is its server and name). */
function tickGrowth(current: Tick<WatchedSlots>, previous: Tick<WatchedSlots> | undefined) {
  const seconds = previous ? (current.at - previous.at) / 1000 : 0
  const slotKey = (s: SlotRow) => `${s.server ?? ''}/${s.name}`
  const before = new Map((previous?.value.slots ?? []).map((s) => [slotKey(s), s]))
  const lsnBefore = new Map((previous?.value.servers ?? []).map((s) => [s.name, s.currentLsn]))
  const servers = current.value.servers?.map((s) => ({...s, wal_bytes_per_sec: perSecond(lsnBytes(s.currentLsn), lsnBytes(lsnBefore.get(s.name) ?? null), seconds)}))
  return {
    ...current.value,
    servers,
    wal_bytes_per_sec: perSecond(lsnBytes(current.value.currentLsn), lsnBytes(previous?.value.currentLsn ?? null), seconds),
    slots: current.value.slots.map((s) => ({...s, retained_bytes_per_sec: perSecond(s.retainedBytes, before.get(slotKey(s))?.retainedBytes, seconds)})),
  }
}
