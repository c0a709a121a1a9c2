import QueueStatsCommand from './stats.js'

/** `singularity queue` on its own: the same as `queue stats`. */
export default class Queue extends QueueStatsCommand {
  static override summary = 'Queue stats of every database with queues (the same as `queue stats`; see also queue peek, purge, send).'
  static override examples = [
    {description: 'Every queue of the estate', command: '<%= config.bin %> queue'},
    {description: 'shared_queue only, for scripts', command: '<%= config.bin %> queue --db shared_queue --json'},
  ]
}
