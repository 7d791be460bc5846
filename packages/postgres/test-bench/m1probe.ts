/**
 * M1 probe: read the whole global log of a seeded database through readAll (as the bench's M1 child does) and print
 * the peak of each `process.memoryUsage()` figure. Seeds 1,000 streams x 1,000 events on first use.
 * Build: node bench/build.mjs is not needed; run under tsx for a quick look, or compile with esbuild for real RSS:
 *   DATABASE_URL=… npx tsx packages/postgres/test-bench/m1probe.ts [pageSize]
 */
import { EventStore, ExpectedVersion, StreamId } from "@effect-eventsourcing/core"
import { PostgresEventStore } from "@effect-eventsourcing/postgres"
import { PgClient } from "@effect/sql-pg"
import { Chunk, Effect, Layer, Redacted, Stream } from "effect"
import pg from "pg"

const base = process.env.DATABASE_URL ?? "postgres://postgres@localhost:5432/postgres"
const note = "Deposited through the effect-eventsourcing benchmark harness: ".padEnd(64, "#")
const mb = (n: number) => Math.round(n / 1024 / 102.4) / 10

const main = async () => {
  const admin = new pg.Client({ connectionString: base })
  await admin.connect()
  const exists = await admin.query("select 1 from pg_database where datname = 'bench_m1probe'")
  if (exists.rows.length === 0) await admin.query("create database bench_m1probe")
  await admin.end()
  const u = new URL(base)
  u.pathname = "/bench_m1probe"
  const mode = process.argv[2] ?? "store"
  const pageSize = process.argv[3] === undefined ? undefined : Number(process.argv[3])
  const layer = PostgresEventStore.layer(pageSize === undefined ? {} : { pageSize }).pipe(
    Layer.provide(PgClient.layer({ url: Redacted.make(u.toString()), maxConnections: 4 }))
  )
  const prog = Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const head = yield* Stream.runCount(Stream.take(store.readAll({ from: 999_999 }), 10))
    if (head === 0) {
      yield* Effect.forEach(Array.from({ length: 1000 }, (_, i) => i), (i) =>
        store.append(
          StreamId.unsafeMake("account", String(i)),
          Array.from({ length: 1000 }, (_, j) => ({ type: "Deposited", data: { amount: (j % 100) + 1, note } })),
          ExpectedVersion.NoStream
        ), { concurrency: 4, discard: true })
    }
    global.gc?.()
    const before = process.memoryUsage()
    const peak = { ...before }
    const timer = setInterval(() => {
      const m = process.memoryUsage()
      for (const k of Object.keys(peak) as Array<keyof NodeJS.MemoryUsage>) peak[k] = Math.max(peak[k], m[k])
    }, 10)
    let count = 0
    let sum = 0
    const t0 = performance.now()
    const packed = `e.position::text || ' ' || e.version::text || ' ' || ` +
      `(date_part('epoch', e.recorded_at) * 1000)::text || ' ' || e.event_id::text as k`
    const pageSql = (columns: string) =>
      `select ${columns} from (select pg_snapshot_xmin(pg_current_snapshot()) as xmin) s cross join lateral ` +
      `(select * from event_store.events e where e.position > $1 order by e.position limit $2) e`
    if (mode === "pg" || mode === "pgwide") {
      // the driver alone: keyset pages on a plain pg.Client, rows only counted
      const client = new pg.Client({ connectionString: u.toString() })
      yield* Effect.promise(() => client.connect())
      const text = pageSql(
        mode === "pg"
          ? `${packed}, e.stream_id, e.type, e.data, nullif(e.metadata, '{}'::jsonb) as metadata, e.xid < s.xmin as safe`
          : "e.position, e.version, e.data"
      )
      let cursor = 0
      while (true) {
        const { rows } = yield* Effect.promise(() => client.query(text, [cursor, pageSize ?? 1000]))
        if (rows.length === 0) break
        count += rows.length
        for (const row of rows) sum += (row.data as { amount: number }).amount
        const last = rows[rows.length - 1] as { k?: string; position?: string }
        cursor = Number(last.k === undefined ? last.position : last.k.slice(0, last.k.indexOf(" ")))
      }
      yield* Effect.promise(() => client.end())
    } else {yield* Stream.runForEachChunk(store.readAll(), (chunk) =>
        Effect.sync(() => {
          const seen = Chunk.toReadonlyArray(chunk).map((event) => ({
            streamId: event.streamId,
            version: event.version,
            amount: (event.data as { readonly amount: number }).amount
          }))
          count += seen.length
          for (const e of seen) sum += e.amount
        }))}
    clearInterval(timer)
    global.gc?.()
    const after = process.memoryUsage()
    console.log(JSON.stringify({
      count,
      sum,
      seconds: Math.round(performance.now() - t0) / 1000,
      before: Object.fromEntries(Object.entries(before).map(([k, v]) => [k, mb(v)])),
      peak: Object.fromEntries(Object.entries(peak).map(([k, v]) => [k, mb(v)])),
      afterGc: Object.fromEntries(Object.entries(after).map(([k, v]) => [k, mb(v)])),
      maxRSS: mb(process.resourceUsage().maxRSS * 1024)
    }))
  }).pipe(Effect.provide(layer))
  await Effect.runPromise(prog)
}
main()
