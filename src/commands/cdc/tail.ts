import {Flags} from '@oclif/core'
import type pg from 'pg'

import {BaseCommand} from '../../base-command.js'
import {connectionFlags, nonBlank} from '../../flags.js'
import {UsageError} from '../../lib/cli/errors.js'
import {parseDuration} from '../../lib/cli/format.js'
import {MAIN_SERVER, resolveConfig} from '../../lib/config/resolve.js'
import {connect, withClient} from '../../lib/db/connect.js'
import {adminTarget, discoverEstate, onDatabase, placementOf, selectDatabases, serverTarget} from '../../lib/estate/targets.js'
import type {ConcreteDatabase} from '../../topology.js'
import {validateName} from '../../lib/names.js'
import {assertCanStream, checkTailSlot, readCdcSettings, resolveTables} from '../../lib/cdc/checks.js'
import {parseLsn, requireLsn} from '../../lib/cdc/lsn.js'
import {streamChanges, type SlotMode, type StreamResult} from '../../lib/cdc/stream.js'
import {DEFAULT_ACTIONS, TAIL_ACTIONS, type QualifiedTable, type TailAction} from '../../lib/cdc/wal2json.js'

export default class CdcTail extends BaseCommand<typeof CdcTail> {
  static override summary = 'Stream changes as they commit (wal2json over the replication protocol), without touching the production slot.'
  static override description = `By default a temporary slot of its own is created: the production slot is never held or advanced, and nothing is left behind, not even after SIGKILL (temporary slots die with the session). --slot <name> reads a persistent slot's backlog through a temporary copy; add --consume to read the slot itself and confirm each position only after the lines up to it were written and flushed (at-least-once across kills and restarts). The last confirmed LSN is printed on stderr at exit; Ctrl-C exits 0 after confirming. Once the stream has started, a line on stderr says so ("tailing …"): a script that starts a tail and then writes should wait for it, as changes committed before it are not streamed.

Output: readable lines on a terminal (time, action, table, key | changed columns); --json prints one JSON object per line {lsn, xid, commitTime, action, schema, table, columns, identity}; --raw passes wal2json's format-version 2 JSON through unchanged (BEGIN/COMMIT objects included, for the transactions that have a change passing the filters).`

  static override examples = [
    {description: 'Watch learned_patterns live (Ctrl-C to stop)', command: '<%= config.bin %> cdc tail --table learned_patterns'},
    {description: 'Deletes and updates only, as JSON lines', command: '<%= config.bin %> cdc tail --action update,delete --json'},
    {description: 'The next 100 changes, or whatever came within 30 s', command: '<%= config.bin %> cdc tail --json --limit 100 --timeout 30s'},
    {description: "Look at the production slot's backlog without consuming it", command: '<%= config.bin %> cdc tail --slot singularity_centralcloud_cdc --until-lsn 0/3000000 --raw'},
    {description: 'Consume a persistent slot of your own (at-least-once)', command: '<%= config.bin %> cdc tail --slot my_export --consume --json >> changes.jsonl'},
  ]

  static override flags = {
    ...connectionFlags,
    db: Flags.string({parse: nonBlank, description: 'Which singularity database (name, e.g. singularity_2); default the first.'}),
    table: Flags.string({parse: nonBlank, description: 'Only this table (schema-qualified or found via search_path); repeatable.', multiple: true}),
    action: Flags.string({parse: nonBlank, description: `Only these actions, comma-separated: ${TAIL_ACTIONS.join(', ')} (default: ${DEFAULT_ACTIONS.join(',')}).`}),
    raw: Flags.boolean({description: "Print wal2json's JSON objects unchanged, one per line."}),
    limit: Flags.integer({description: 'Stop after this many changes.', min: 1}),
    'until-lsn': Flags.string({description: 'Stop once the stream passes this LSN (e.g. 0/3000000); nothing after it is printed.'}),
    timeout: Flags.string({description: 'Stop after this long, e.g. 30s, 5m.'}),
    'from-lsn': Flags.string({description: 'Start with the transactions that commit after this LSN (needs --slot: a temporary slot starts now).'}),
    slot: Flags.string({parse: nonBlank, description: 'Read this persistent slot: through a temporary copy, or itself with --consume.'}),
    consume: Flags.boolean({description: 'Advance --slot as lines are written (at-least-once); refused while another consumer holds it.', dependsOn: ['slot']}),
  }

  protected async execute(): Promise<undefined> {
    const flags = this.flags
    if (flags.raw && this.jsonMode) throw new UsageError('--raw and --json are two output formats; choose one', {hint: '--json: our lines; --raw: wal2json as it is'})
    const actions = parseActions(flags.action)
    const untilLsn = flags['until-lsn'] === undefined ? undefined : requireLsn(flags['until-lsn'], '--until-lsn')
    const fromLsn = flags['from-lsn'] === undefined ? undefined : requireLsn(flags['from-lsn'], '--from-lsn')
    const timeoutSeconds = flags.timeout === undefined ? undefined : parseDuration(flags.timeout)
    if (flags.timeout !== undefined && (timeoutSeconds === undefined || timeoutSeconds <= 0)) {
      throw new UsageError(`invalid --timeout: ${JSON.stringify(flags.timeout)}`, {hint: 'a duration such as 30s, 5m or 1h'})
    }
    if (fromLsn !== undefined && !flags.slot) {
      throw new UsageError('--from-lsn needs --slot: a temporary slot only sees changes from the moment it is created', {
        hint: 'pass --slot <persistent slot> (see `singularity cdc slots`)',
      })
    }
    if (flags.slot) validateName('slot', flags.slot)
    const tableNames = (flags.table ?? []).flatMap((t) => t.split(',')).map((t) => t.trim()).filter(Boolean)
    for (const t of tableNames) validateName('table', t)

    const config = resolveConfig(flags)
    const admin = adminTarget(config)
    const options = {applicationName: 'singularity cdc tail'}

    // Checks on an ordinary admin session (slots and settings are server-wide): logical decoding
    // possible, the slot usable, the tables there. The replication session opens meanwhile.
    let check = await connect(admin, {...options, statementTimeoutMs: 30_000})
    let replicationPending: Promise<pg.Client> | undefined
    let db: ConcreteDatabase
    let serverMajor: number
    let tables: QualifiedTable[] = []
    let slot: SlotMode = {kind: 'temporary'}
    try {
      const estate = await discoverEstate(config, check)
      ;[db] = selectDatabases(estate.databases, flags.db ? [flags.db] : undefined, (d) => d.kind === 'singularity')
      // several servers: the instance's slot and settings are on its own server
      const server = placementOf(config, db)
      if (server !== MAIN_SERVER) {
        await check.end().catch(() => {})
        check = await connect(serverTarget(config, server), {...options, statementTimeoutMs: 30_000})
      }
      const target = onDatabase(serverTarget(config, server), db.name)
      replicationPending = connect(target, {...options, replication: true})
      replicationPending.catch(() => {}) // awaited below; a failure there is reported there
      const settings = await readCdcSettings(check)
      serverMajor = settings.serverMajor
      assertCanStream(settings)
      if (flags.slot) {
        const state = await checkTailSlot(check, flags.slot, {consume: flags.consume, database: db.name})
        slot = flags.consume ? {kind: 'consume', name: flags.slot} : {kind: 'copy', source: flags.slot}
        const confirmed = state.confirmedFlushLsn ? parseLsn(state.confirmedFlushLsn) : undefined
        if (fromLsn !== undefined && confirmed !== undefined && fromLsn < confirmed) {
          this.note(`note: --from-lsn ${flags['from-lsn']} is before slot ${flags.slot}'s confirmed position ${state.confirmedFlushLsn}; the server starts there (earlier changes are gone from the slot)`)
        }
      }
      if (tableNames.length > 0) tables = await withClient(target, (client) => resolveTables(client, tableNames), {...options, statementTimeoutMs: 30_000})
    } catch (error) {
      void replicationPending?.then((client) => client.end()).catch(() => {})
      throw error
    } finally {
      await check.end().catch(() => {})
    }
    const replication = await replicationPending!

    const abort = new AbortController()
    let interrupts = 0
    const onSignal = () => {
      interrupts++
      if (interrupts > 1) process.exit(130)
      abort.abort()
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
    const notices = new Set<string>()
    let result: StreamResult
    try {
      result = await this.withProgress('starting the change stream…', (progress) => streamChanges(replication, {
        slot,
        tables,
        actions,
        format: flags.raw ? 'raw' : this.jsonMode ? 'json' : 'human',
        colour: this.colorful,
        limit: flags.limit,
        untilLsn,
        fromLsn,
        timeoutMs: timeoutSeconds === undefined ? undefined : Math.round(timeoutSeconds * 1000),
        out: process.stdout,
        signal: abort.signal,
        serverMajor,
        onNotice: (message) => {
          if (notices.has(message)) return
          notices.add(message)
          this.note(`server: ${message}${/no tuple identifier/.test(message) ? ' (the table needs a primary key or REPLICA IDENTITY for old keys)' : ''}`)
        },
        onStart: (info) => {
          // always said (stderr): a script that starts a tail and then writes waits for this line,
          // since what commits before the stream starts is not in it
          const what = slot.kind === 'consume' ? `consuming slot ${info.slot}` : slot.kind === 'copy' ? `reading a temporary copy of ${slot.source}` : `temporary slot ${info.slot}`
          this.note(`tailing ${db.name} (${what}${tables.length > 0 ? `, tables ${tables.map((t) => `${t.schema}.${t.table}`).join(', ')}` : ''}); Ctrl-C to stop`)
          progress.waiting('waiting for the first change…')
        },
        onFirstOutput: () => progress.stop(),
      }))
    } finally {
      process.removeListener('SIGINT', onSignal)
      process.removeListener('SIGTERM', onSignal)
      await replication.end().catch(() => {})
    }
    this.note(summaryLine(result, slot))
    return undefined
  }

  protected override human(): void {}
}

function parseActions(text: string | undefined): TailAction[] {
  if (text === undefined) return [...DEFAULT_ACTIONS]
  const out: TailAction[] = []
  for (const part of text.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean)) {
    if (!TAIL_ACTIONS.includes(part as TailAction)) {
      throw new UsageError(`unknown action '${part}'`, {hint: `choose from: ${TAIL_ACTIONS.join(', ')} (comma-separated)`})
    }
    if (!out.includes(part as TailAction)) out.push(part as TailAction)
  }
  if (out.length === 0) throw new UsageError('--action is empty', {hint: `choose from: ${TAIL_ACTIONS.join(', ')}`})
  return out
}

function summaryLine(r: StreamResult, slot: SlotMode): string {
  const why = {limit: 'limit reached', 'until-lsn': 'until-lsn reached', timeout: 'timeout', interrupted: 'interrupted', 'output-closed': 'output closed', 'server-ended': 'server ended the stream'}[r.stoppedBy]
  const confirmed = r.serverConfirmedLsn ?? r.confirmedLsn ?? 'none'
  const where =
    slot.kind === 'consume'
      ? `slot ${r.slot}`
      : slot.kind === 'copy'
        ? `temporary copy ${r.slot} (dropped; ${slot.source} untouched)`
        : `temporary slot ${r.slot} (dropped)`
  return `cdc tail: ${r.changes} change${r.changes === 1 ? '' : 's'} (${why}); last LSN ${r.lastLsn ?? 'none'}; last confirmed LSN ${confirmed} on ${where}`
}
