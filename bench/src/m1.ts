/**
 * M1 in its own process, so that its peak RSS is its own: read the whole global log through the target's readAll
 * (as a stream, with bounded memory), folding a counter. Database targets are seeded by the parent; the in-memory
 * targets seed themselves (their peak RSS then includes the events they hold).
 *
 * usage: node dist/m1.js <target> <database url | -> (compiled by `node build.mjs`, as `npm run bench` does), or
 *        tsx src/m1.ts <target> <database url | ->
 */
import { targets } from "./targets.js"
import { m1Seed } from "./workloads.js"

const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10

const main = async () => {
  const [name, url] = process.argv.slice(2)
  const entry = targets.find((t) => t.name === name)
  if (entry === undefined || url === undefined) throw new Error(`usage: m1.ts <target> <url | ->`)
  const target = await entry.load()
  const session = await target.open(url, 4)
  const read = session.readAll
  if (read === undefined) {
    await session.close()
    process.stdout.write(JSON.stringify({ unsupported: true }) + "\n")
    return
  }
  if (!target.database) await session.appendNew(m1Seed(), 4)
  const rssBefore = process.memoryUsage().rss
  let peak = rssBefore
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss)
  }, 20)
  let count = 0
  let sum = 0
  const start = performance.now()
  await read((events) => {
    count += events.length
    for (const event of events) sum += event.amount
  }, true)
  const seconds = (performance.now() - start) / 1000
  clearInterval(sampler)
  peak = Math.max(peak, process.memoryUsage().rss)
  await session.close()
  process.stdout.write(
    JSON.stringify({
      events: count,
      sum,
      seconds,
      rssBeforeReadMB: mb(rssBefore),
      peakRssDuringReadMB: mb(peak),
      // maxRSS is in kilobytes
      maxRssMB: mb(process.resourceUsage().maxRSS * 1024)
    }) + "\n"
  )
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`)
    process.exit(1)
  }
)
