// Part of bench/scale.sh: the worst hour of an estate's pg_cron jobs, simulated in a few real minutes.
// Every job of the prefix is rescheduled with its minutes of the hour (its staggered ones, or those
// of instance 1 = the seed's unstaggered minutes) and hour, day and weekday set to '*': every daily
// and weekly job falls into the simulated hour as it does at Sunday 00:00, the week's busiest hour.
// The hour's first minutes become the next real minutes. Each run is matched to the minute it was due
// (pg_cron queues a job's due runs and starts them in order: the k-th run is the k-th due minute),
// so a delay past the next minute counts whole, and a run still not started when the window closes
// counts with the time it has waited so far. Prints p95, max, runs not started and the worst minute.
// Usage: node bench/scale-cron-sim.mjs <job name prefix> <minutes> staggered|unstaggered
import pg from 'pg'

const [jobPrefix, minutesText, mode] = process.argv.slice(2)
const minutes = Number(minutesText)
// how long after the window late runs may still start and be counted
const GRACE_MS = 60_000

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

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

function percentile(sorted, p) {
  if (sorted.length === 0) return null
  const rank = p * (sorted.length - 1)
  const low = Math.floor(rank)
  return sorted[low] + (sorted[Math.min(low + 1, sorted.length - 1)] - sorted[low]) * (rank - low)
}

const client = new pg.Client({application_name: 'singularity bench scale'})
await client.connect()
const {rows: jobs} = await client.query(
  `SELECT jobid, jobname, schedule, active FROM cron.job WHERE jobname LIKE $1 AND schedule ~ '^\\S+ \\S+ \\S+ \\S+ \\S+$'`,
  [`${jobPrefix}%`],
)
const jobIds = jobs.map((j) => j.jobid)

// paused first, and nothing of theirs still running: runs due before the window never mix into it
await client.query('SELECT cron.alter_job(jobid, active := false) FROM cron.job WHERE jobid = ANY($1)', [jobIds])
for (let i = 0; ; i++) {
  const {rows} = await client.query("SELECT count(*)::int AS n FROM cron.job_run_details WHERE jobid = ANY($1) AND status IN ('starting', 'running')", [jobIds])
  if (rows[0].n === 0) break
  if (i === 60) throw new Error(`timed out waiting for ${rows[0].n} runs of ${jobPrefix}* to end before the simulation`)
  await sleep(1000)
}

const base = (name) => name.replace(/:\d+$/, '')
const firstInstance = new Map(jobs.filter((j) => !/:\d+$/.test(j.jobname) || /:1$/.test(j.jobname)).map((j) => [base(j.jobname), j.schedule]))
// the simulated hour starts at a real minute at least a minute away (the rescheduling is in place by then)
const start = new Date(Math.floor(Date.now() / 60_000) * 60_000 + 2 * 60_000)
const end = new Date(start.getTime() + minutes * 60_000)
const shift = start.getUTCMinutes()
/** jobid → the due times (ms) in the window, in order */
const due = new Map()
let observedUntil
try {
  await client.query('BEGIN')
  for (const job of jobs) {
    const schedule = mode === 'unstaggered' ? firstInstance.get(base(job.jobname)) ?? job.schedule : job.schedule
    const shifted = new Set([...minuteSet(schedule.split(' ')[0])].map((m) => (m + shift) % 60))
    const times = []
    for (let t = start.getTime(); t < end.getTime(); t += 60_000) if (shifted.has(new Date(t).getUTCMinutes())) times.push(t)
    due.set(job.jobid, times)
    await client.query('SELECT cron.alter_job($1, schedule := $2, active := true)', [job.jobid, `${[...shifted].sort((a, b) => a - b).join(',')} * * * *`])
  }
  await client.query('COMMIT')
  while (Date.now() < end.getTime() + GRACE_MS) await sleep(5000)
  await client.query('SELECT cron.alter_job(jobid, active := false) FROM cron.job WHERE jobid = ANY($1)', [jobIds])
  observedUntil = Date.now()
} finally {
  // the jobs as they were (schedule and active flag): the other mode, or a second run, starts from the estate's own schedules
  await client.query('ROLLBACK').catch(() => {})
  await client.query('BEGIN')
  for (const job of jobs) await client.query('SELECT cron.alter_job($1, schedule := $2, active := $3)', [job.jobid, job.schedule, job.active])
  await client.query('COMMIT')
}
const {rows: runs} = await client.query(
  'SELECT jobid, start_time FROM cron.job_run_details WHERE jobid = ANY($1) AND start_time >= $2 ORDER BY jobid, start_time',
  [jobIds, new Date(start.getTime() - 1000)],
)
await client.end()

const started = new Map()
for (const r of runs) {
  if (!started.has(r.jobid)) started.set(r.jobid, [])
  started.get(r.jobid).push(r.start_time.getTime())
}
const delays = []
const byMinute = new Map()
let notStarted = 0
for (const [jobid, times] of due) {
  // a run that started before the job's first due minute belongs to before the window
  const starts = (started.get(jobid) ?? []).filter((s) => times.length > 0 && s >= times[0] - 1000)
  times.forEach((t, k) => {
    const waited = k < starts.length ? starts[k] - t : observedUntil - t
    if (k >= starts.length) notStarted++
    const seconds = waited / 1000
    delays.push(seconds)
    const minute = byMinute.get(t) ?? {jobs: 0, max: 0}
    byMinute.set(t, {jobs: minute.jobs + 1, max: Math.max(minute.max, seconds)})
  })
}
delays.sort((a, b) => a - b)
const worst = [...byMinute.entries()].sort((a, b) => b[1].max - a[1].max)[0]
const round = (v) => (v === null ? null : Math.round(v * 10) / 10)
console.log(
  JSON.stringify({
    mode,
    jobs: jobs.length,
    window: `${start.toISOString().slice(11, 16)}-${end.toISOString().slice(11, 16)} UTC`,
    due: delays.length,
    started: delays.length - notStarted,
    not_started: notStarted,
    p95: round(percentile(delays, 0.95)),
    max: round(delays.at(-1) ?? null),
    worst: worst ? {minute: new Date(worst[0]).toISOString().slice(11, 16), jobs: worst[1].jobs, max: round(worst[1].max)} : null,
  }),
)
