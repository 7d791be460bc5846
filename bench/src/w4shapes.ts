/**
 * W4 query shapes: one stream of 1,000 events read on a plain `pg.Client` in several shapes, each decoded and
 * folded by hand (sum of amounts): the store's `readForFold` query (one row per event, three fields), one text field
 * per event, one `string_agg` value for the whole page (parsed by one `JSON.parse`), and raw-pg's query. Prints
 * `EXPLAIN ANALYZE` of the aggregate shapes, then the median wall time and this process's CPU time per read, in ms.
 *
 * Measured 2026-12-07 (2 cores, shared, PostgreSQL 15): the aggregate halves the client's CPU (0.7-1.1 ms against
 * 1.7-2.1 ms) but costs the server ~1 ms of execution (0.27 ms for the per-row query, whose jsonb output is not in
 * that figure), and `npm run bench -- --workloads W4` did not improve with it (1.53-2.14x raw-pg against
 * 1.59-1.73x), with or without grouping the page in chunks of 128 versions.
 *
 * Run: [DATABASE_URL=…] npx tsx --conditions=@effect-eventsourcing/source bench/src/w4shapes.ts
 */
import { EventStore, ExpectedVersion, StreamId } from "@effect-eventsourcing/core"
import { PostgresEventStore } from "@effect-eventsourcing/postgres"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import pg from "pg"
import { freshDatabase, startServer } from "./db.js"
import { NOTE as note } from "./target.js"

const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const amountOf = (data: unknown) => (data as { amount: number }).amount

const main = async () => {
  const server = await startServer()
  const db = await freshDatabase(server, "w4shapes")
  const client = new pg.Client({ connectionString: db.url })
  await client.connect()
  await Effect.runPromise(
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const big = StreamId.unsafeMake("big", "1")
      for (let k = 0; k < 10; k++) {
        yield* store.append(
          big,
          Array.from({ length: 100 }, (_, j) => ({ type: "Deposited", data: { amount: k * 100 + j + 1, note } })),
          ExpectedVersion.Any
        )
      }
    }).pipe(
      Effect.provide(
        PostgresEventStore.layer().pipe(
          Layer.provideMerge(PgClient.layer({ url: Redacted.make(db.url), maxConnections: 2 }))
        )
      )
    )
  )
  const where = `from event_store.events where stream_id = $1 and version >= $2 and version <= $3`
  const params = ["big-1", 1, Number.MAX_SAFE_INTEGER, null]
  const aggregate = (order: string, group: string) =>
    `select '[' || string_agg(version::text || ',' || position::text || ',' || to_json(type)::text || ',' || ` +
    `data::text, ','${order}) || ']' as j from (select version, position, type, data ${where} ` +
    `order by version asc limit $4) e${group}`
  const shapes: Record<string, string> = {
    "agg in chunks of 128": aggregate(" order by version", " group by version / 128 order by version / 128"),
    "one agg, ordered": aggregate(" order by version", ""),
    "one agg": aggregate("", "")
  }
  for (const [label, text] of Object.entries(shapes)) {
    let plan: Array<string> = []
    for (let i = 0; i < 3; i++) {
      const { rows } = await client.query<Record<string, string>>(`explain (analyze, timing off) ${text}`, params)
      plan = rows.map((row) => row["QUERY PLAN"]!)
    }
    console.log(label.padEnd(20), plan.filter((line) => /Execution/.test(line)).join(""))
  }
  const perRow = async () => {
    const { rows } = await client.query<{ data: unknown }>(
      `select version::text || ' ' || position::text as k, type, data ${where} order by version asc limit $4`,
      params
    )
    let sum = 0
    for (const row of rows) sum += amountOf(row.data)
    return sum
  }
  const oneText = async () => {
    const { rows } = await client.query<{ k: string }>(
      `select version::text || ' ' || position::text || ' ' || type || ' ' || data::text as k ${where} ` +
        `order by version asc limit $4`,
      params
    )
    let sum = 0
    for (const { k } of rows) {
      const a = k.indexOf(" ")
      const b = k.indexOf(" ", a + 1)
      const c = k.indexOf(" ", b + 1)
      sum += amountOf(JSON.parse(k.slice(c + 1)))
    }
    return sum
  }
  const oneValue = async () => {
    const { rows } = await client.query<{ j: string }>(shapes["one agg"]!, params)
    const values = JSON.parse(rows[0]!.j) as Array<unknown>
    let sum = 0
    for (let i = 3; i < values.length; i += 4) sum += amountOf(values[i])
    return sum
  }
  const rawPg = async () => {
    const { rows } = await client.query<{ data: unknown }>(
      `select version, data from event_store.events where stream_id = $1 order by version`,
      ["big-1"]
    )
    let sum = 0
    for (const row of rows) sum += amountOf(row.data)
    return sum
  }
  const cases: Record<string, () => Promise<number>> = {
    "per row (store)": perRow,
    "one text per row": oneText,
    "one agg value": oneValue,
    "raw-pg": rawPg
  }
  for (let round = 0; round < 3; round++) {
    for (const [label, read] of Object.entries(cases)) {
      const times: Array<number> = []
      let cpu = process.cpuUsage()
      let sum = 0
      for (let i = 0; i < 300; i++) {
        if (i === 50) cpu = process.cpuUsage()
        const t0 = performance.now()
        sum = await read()
        times.push(performance.now() - t0)
      }
      const used = process.cpuUsage(cpu)
      console.log(
        label.padEnd(18),
        "wall",
        median(times.slice(50)).toFixed(3),
        "cpu",
        ((used.user + used.system) / 250 / 1000).toFixed(3),
        sum === 500500 ? "" : `sum ${sum}!`
      )
    }
  }
  await client.end()
  await db.drop()
  await server.stop()
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
