// Part of bench/scale.sh: one hour of an estate's pg_cron jobs, simulated in a few real minutes.
// Every job of the prefix is rescheduled with its minutes of the hour (its staggered ones, or those
// of instance 1 = the seed's unstaggered minutes) and hour, day and weekday set to '*': the week's
// daily and weekly jobs all fall into every hour, shifted so that the hour's first minutes (where
// hourly, daily and weekly jobs coincide) are the next real minutes. Then waits, and prints the
// start delay (start_time after the scheduled minute) p95 and the worst minute, as JSON.
// Usage: node bench/scale-cron-sim.mjs <job name prefix> <minutes> staggered|unstaggered
import pg from 'pg'

const [jobPrefix, minutesText, mode] = process.argv.slice(2)
const minutes = Number(minutesText)

/** The minutes (0..59) a cron minute field names: '*', 'n', 'a-b', with '/step', comma lists. */
function minuteSet(field) {
  const out = new Set()
  for (const part of field.split(',')) {
    const [range, stepText] = part.split('/')
    const step = stepText ? Number(stepText) : 1
    const [low, high] = range === '*' ? [0, 59] : range.includes('-') ? range.split('-').map(Number) : [Number(range), stepText ? 59 : Number(range)]
    for (let m = low; m <= high; m += step) out.add(m)
  }
  return out
}

const client = new pg.Client({application_name: 'singularity bench scale'})
await client.connect()
const {rows: jobs} = await client.query(
  `SELECT jobid, jobname, schedule FROM cron.job WHERE jobname LIKE $1 AND schedule ~ '^\\S+ \\S+ \\S+ \\S+ \\S+$'`,
  [`${jobPrefix}%`],
)
const base = (name) => name.replace(/:\d+$/, '')
const firstInstance = new Map(jobs.filter((j) => !/:\d+$/.test(j.jobname) || /:1$/.test(j.jobname)).map((j) => [base(j.jobname), j.schedule]))
// the simulated hour starts at the next real minute (plus one, so the rescheduling is in place)
const now = new Date()
const start = new Date(Math.floor(now.getTime() / 60_000) * 60_000 + 2 * 60_000)
const shift = start.getUTCMinutes()
await client.query('BEGIN')
for (const job of jobs) {
  const schedule = mode === 'unstaggered' ? firstInstance.get(base(job.jobname)) ?? job.schedule : job.schedule
  const shifted = [...minuteSet(schedule.split(' ')[0])].map((m) => (m + shift) % 60).sort((a, b) => a - b)
  await client.query('SELECT cron.alter_job($1, schedule := $2, active := true)', [job.jobid, `${shifted.join(',')} * * * *`])
}
await client.query('COMMIT')
const end = new Date(start.getTime() + minutes * 60_000)
// wait for the window, and for the runs started in it to be recorded
while (Date.now() < end.getTime() + 20_000) await new Promise((r) => setTimeout(r, 5000))
await client.query("SELECT cron.alter_job(jobid, active := false) FROM cron.job WHERE jobname LIKE $1", [`${jobPrefix}%`])
const {rows} = await client.query(
  `WITH runs AS (
     SELECT date_trunc('minute', d.start_time) AS minute, extract(epoch FROM d.start_time - date_trunc('minute', d.start_time))::float8 AS delay
       FROM cron.job_run_details d JOIN cron.job j ON j.jobid = d.jobid
      WHERE j.jobname LIKE $1 AND d.start_time >= $2 AND d.start_time < $3)
   SELECT count(*)::int AS runs, percentile_cont(0.95) WITHIN GROUP (ORDER BY delay) AS p95, max(delay) AS max,
          (SELECT json_build_object('minute', to_char(minute AT TIME ZONE 'UTC', 'HH24:MI'), 'jobs', count(*), 'max', round(max(delay)::numeric, 1))
             FROM runs GROUP BY minute ORDER BY max(delay) DESC LIMIT 1) AS worst
     FROM runs`,
  [`${jobPrefix}%`, start, end],
)
await client.end()
console.log(JSON.stringify({mode, jobs: jobs.length, window: `${start.toISOString().slice(11, 16)}-${end.toISOString().slice(11, 16)} UTC`, ...rows[0]}))
