/** How `cdc slots` looks to people: per slot its retained WAL, growth, status and time left. */
import {formatBytes, formatDuration} from '../cli/format.js'
import {formatTable, type Column, type TableOptions} from '../cli/table.js'
import type {SlotRow, SlotsReport} from '../cdc/slots.js'

function rate(bytesPerSecond: number | null): string | null {
  if (bytesPerSecond === null) return null
  if (bytesPerSecond === 0) return '0 B/s'
  if (Math.abs(bytesPerSecond) < 1) return `${bytesPerSecond < 0 ? '-' : ''}<1 B/s`
  return `${bytesPerSecond > 0 ? '+' : ''}${formatBytes(Math.round(bytesPerSecond))}/s`
}

function timeLeft(s: SlotRow): string | null {
  if (s.walStatus === 'lost') return 'lost'
  if (s.timeLeftSeconds === null) return null
  return `${formatDuration(s.timeLeftSeconds)}${s.timeLeftUntil === 'disk' ? ' (disk)' : ''}`
}

export function slotColumns(report: SlotsReport): Column<SlotRow>[] {
  return [
    {key: 'slot', header: 'slot', priority: 0, text: (s) => s.name + (s.temporary ? ' (temp)' : '')},
    {
      key: 'wal-status',
      header: 'wal_status',
      priority: 1,
      text: (s) => s.walStatus,
      tone: (s) => (s.walStatus === 'lost' ? 'fail' : s.walStatus === 'unreserved' || s.walStatus === 'extended' ? 'warn' : s.walStatus === 'reserved' ? 'ok' : undefined),
    },
    {key: 'retained', header: 'retained WAL', priority: 1, align: 'right', text: (s) => s.retained, raw: (s) => s.retainedBytes},
    {key: 'growth', header: 'growth', priority: 2, align: 'right', text: (s) => rate(s.growthBytesPerSecond), raw: (s) => s.growthBytesPerSecond},
    {
      key: 'time-left',
      header: 'time left',
      priority: 2,
      align: 'right',
      text: timeLeft,
      raw: (s) => s.timeLeftSeconds,
      tone: (s) => (s.walStatus === 'lost' ? 'fail' : s.timeLeftSeconds !== null && s.timeLeftSeconds < 86_400 ? 'warn' : undefined),
    },
    {
      key: 'active',
      header: 'active',
      priority: 3,
      text: (s) => (s.active ? `yes (pid ${s.activePid}${s.activeApplication ? `, ${s.activeApplication}` : ''})` : 'no'),
      tone: (s) => (s.active ? 'ok' : 'warn'),
    },
    {
      key: 'unconsumed',
      header: 'waiting',
      priority: 4,
      align: 'right',
      text: (s) => (s.unconsumedForSeconds === null ? null : `≥${formatDuration(s.unconsumedForSeconds)}`),
      raw: (s) => s.unconsumedForSeconds,
    },
    {key: 'safe-wal-size', header: 'safe_wal_size', priority: 5, align: 'right', text: (s) => (s.walStatus === 'lost' ? null : s.safeWalSize ?? (report.capBytes === null ? 'unlimited' : null)), raw: (s) => s.safeWalSizeBytes},
    {key: 'database', header: 'database', priority: 6, text: (s) => s.database},
    {key: 'plugin', header: 'plugin', priority: 7, text: (s) => s.plugin ?? s.slotType},
    {
      key: 'inactive-since',
      header: 'inactive since',
      priority: 8,
      text: (s) => (s.active ? null : s.inactiveSeconds !== null ? `${formatDuration(s.inactiveSeconds)} ago` : report.inactiveSinceAvailable ? null : 'unknown'),
      raw: (s) => s.inactiveSince,
    },
    {key: 'confirmed-lsn', header: 'confirmed LSN', priority: 9, text: (s) => s.confirmedFlushLsn},
  ]
}

export function renderSlots(report: SlotsReport, options: TableOptions, several = false): string[] {
  const columns = slotColumns(report)
  // several servers: which server holds each slot
  const server: Column<SlotRow> = {key: 'server', header: 'server', priority: 1, text: (s) => s.server ?? 'main'}
  return formatTable(several ? [columns[0], server, ...columns.slice(1)] : columns, report.slots, options).lines
}
