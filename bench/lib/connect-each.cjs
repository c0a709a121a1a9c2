// Reference for bench/reads.sh: the floor of visiting an estate's databases from Node.js. Connects
// to every database whose name starts with the prefix (argv[2]), `concurrency` (argv[3]) at a time,
// runs SELECT 1 in each and disconnects: what any reader pays before its first real query.
// Connection settings come from the environment (SINGULARITY_ADMIN_URL, PGPASSFILE), as for the CLI.
const {Client} = require('pg')

async function main() {
  const [prefix, concurrency = '8'] = process.argv.slice(2)
  const url = new URL(process.env.SINGULARITY_ADMIN_URL)
  const admin = new Client({connectionString: url.toString()})
  await admin.connect()
  const {rows} = await admin.query("SELECT datname FROM pg_database WHERE left(datname, length($1)) = $1 ORDER BY 1", [prefix])
  await admin.end()
  let next = 0
  const worker = async () => {
    while (next < rows.length) {
      const db = rows[next++].datname
      url.pathname = `/${encodeURIComponent(db)}`
      const client = new Client({connectionString: url.toString()})
      await client.connect()
      await client.query('SELECT 1')
      await client.end()
    }
  }
  await Promise.all(Array.from({length: Number(concurrency)}, worker))
}

main().catch((error) => {
  console.error(error.message)
  process.exit(1)
})
