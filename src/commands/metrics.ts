import {resolve} from 'node:path'

import {Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {connectionFlags, readFlags} from '../flags.js'
import {writeFileAtomic} from '../lib/backup/store.js'
import {CliError, UsageError} from '../lib/cli/errors.js'
import {parseDuration} from '../lib/cli/format.js'
import {resolveConfig} from '../lib/config/resolve.js'
import {collectEstateMetrics, type SectionOutcome} from '../lib/metrics/collect.js'
import {renderExposition, type MetricFamily} from '../lib/metrics/exposition.js'
import {parseListen, serveMetrics} from '../lib/metrics/serve.js'

export interface MetricsResult {
  families: MetricFamily[]
  sections: SectionOutcome[]
  duration_seconds: number
  /** --output: the file written */
  output?: string
}

export default class Metrics extends BaseCommand<typeof Metrics> {
  static override summary = 'The estate as Prometheus metrics: print them, write them for node_exporter (--output), or serve /metrics (--listen).'
  static override description = `Queues (length, visible, in flight, oldest age, sent total, archive size, poison), pg_cron jobs (last run time and success, failure streak), replication slots (retained bytes, active), the age of the newest verified backup per kind, and each database's db status verdict, in the Prometheus text exposition format (0.0.4).

The figures come from the same code as queue stats, jobs list, cdc slots, backup list and db status. The databases are read at once, at most --concurrency at a time (default SINGULARITY_CONCURRENCY, the config file, else 8; never more than a quarter of the server's free connections). Every section, and every database, has the scrape timeout (--timeout, default 10s): a database that refuses or does not answer in time is reported with singularity_scrape_up{section,database} 0 and its figures are left out (the others are still collected); the scrape never hangs.

--output FILE writes the text atomically (a temporary file in the same directory, then rename), mode 0644: node_exporter's textfile collector never reads half a file. From cron:
  * * * * *  singularity metrics --output /var/lib/node_exporter/textfile/singularity.prom

--listen [host:]port serves GET /metrics until interrupted (Ctrl-C exits 130); it binds 127.0.0.1 unless a host is given. Concurrent scrapes share one collection.

Exit codes: 0 ok (also when a section is down: that is in the metrics), 1 the file could not be written or the port could not be bound, 2 bad flags, 130 interrupted.`
  static override examples = [
    {description: 'Print the metrics', command: '<%= config.bin %> metrics'},
    {description: "For node_exporter's textfile collector, from cron", command: '<%= config.bin %> metrics --output /var/lib/node_exporter/textfile/singularity.prom'},
    {description: 'Serve /metrics on 127.0.0.1:9187', command: '<%= config.bin %> metrics --listen 9187'},
    {description: 'Serve on every interface with a 5 s scrape timeout', command: '<%= config.bin %> metrics --listen 0.0.0.0:9187 --timeout 5s'},
  ]

  static override flags = {
    ...connectionFlags,
    concurrency: readFlags.concurrency,
    output: Flags.string({description: 'Write the metrics to this file atomically (temporary file + rename).', exclusive: ['listen']}),
    listen: Flags.string({description: 'Serve GET /metrics on [host:]port (host default 127.0.0.1).', exclusive: ['output']}),
    timeout: Flags.string({description: 'Scrape timeout per section (e.g. 10s, 2s); a database slower than this is reported down.', default: '10s'}),
  }

  protected async execute(): Promise<MetricsResult | undefined> {
    const timeoutSec = parseDuration(this.flags.timeout)
    if (timeoutSec === undefined || timeoutSec <= 0 || timeoutSec > 300) {
      throw new UsageError(`invalid --timeout ${JSON.stringify(this.flags.timeout)}`, {hint: 'a duration between 1s and 5m, e.g. 10s', code: 'BAD_TIMEOUT'})
    }
    const listen = this.flags.listen === undefined ? undefined : parseListen(this.flags.listen)
    const config = resolveConfig(this.flags)
    const collect = () => collectEstateMetrics(config, {timeoutMs: timeoutSec * 1000})

    if (listen) {
      let server
      try {
        server = await serveMetrics(listen, async () => renderExposition((await collect()).families))
      } catch (error) {
        throw new CliError(`cannot listen on ${listen.host}:${listen.port}: ${(error as Error).message}`, {hint: 'choose another port with --listen', code: 'LISTEN_FAILED'})
      }
      const bound = server.address()
      const port = typeof bound === 'object' && bound ? bound.port : listen.port
      const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host
      this.note(`serving http://${host}:${port}/metrics (scrape timeout ${timeoutSec}s); Ctrl-C stops`)
      await new Promise<void>((done) => {
        const stop = (signal: NodeJS.Signals) => {
          server.close()
          server.closeAllConnections()
          process.exitCode = signal === 'SIGINT' ? 130 : 143
          done()
        }
        process.once('SIGINT', stop)
        process.once('SIGTERM', stop)
      })
      // exit code set above; nothing more to print
      process.exit(process.exitCode as number)
    }

    const metrics = await collect()
    if (this.flags.output) {
      const path = resolve(this.flags.output)
      try {
        await writeFileAtomic(path, renderExposition(metrics.families), 0o644)
      } catch (error) {
        throw new CliError(`cannot write ${path}: ${(error as Error).message}`, {hint: 'the directory must exist and be writable (the temporary file goes next to it)', code: 'WRITE_FAILED'})
      }
      for (const s of metrics.sections.filter((x) => !x.up)) this.note(`down: ${s.section}${s.database ? ` ${s.database}` : ''}: ${s.error}`)
      return {...metrics, output: path}
    }
    return metrics
  }

  protected override human(result: MetricsResult | undefined): void {
    if (!result) return
    if (result.output) {
      this.out(`wrote ${result.families.reduce((n, f) => n + f.samples.length, 0)} samples to ${result.output} in ${result.duration_seconds.toFixed(2)}s`)
      return
    }
    for (const s of result.sections.filter((x) => !x.up)) this.note(`down: ${s.section}${s.database ? ` ${s.database}` : ''}: ${s.error}`)
    process.stdout.write(renderExposition(result.families))
  }
}
