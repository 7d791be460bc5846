/**
 * M1 shapes: where the reader's heap grows. Reads the global log of a seeded database (M1's 1,000,000 events) in pages
 * of 1,000 with one query shape per process and prints the peak RSS:
 *
 * - `readAll`  the store's readAll as a Stream
 * - `sql`      the store's page query through @effect/sql (`sql.unsafe`, pooled: a connection per statement)
 * - `nospan`   the same with the tracer disabled; `values` the same as arrays (`.values`)
 * - `reserve`  the same statements on ONE reserved connection (`sql.reserve`, `execute`); `reservePage` a
 *              connection reserved per page
 * - `effpg`    the same query through a plain pg.Pool (`pool.query`) inside the Effect runtime
 * - `effcb`    the same through pool.connect / client.query / release callbacks inside the Effect runtime
 * - `pg`       the same through a plain pg.Pool without Effect
 *
 * Run (after `node build.mjs`): `node dist/m1shapes.js seed <admin url>` prints the url of a new seeded database;
 * then `node dist/m1shapes.js <shape> <that url>`.
 */
import { EventStore } from "@effect-eventsourcing/core"
import { PostgresEventStore } from "@effect-eventsourcing/postgres"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Chunk, Effect, Layer, ManagedRuntime, Redacted, Stream } from "effect"
import pg from "pg"
import { freshDatabase, startServer } from "./db.js"
import { targets } from "./targets.js"
import { m1Seed } from "./workloads.js"

const text =
  `select e.position::text || ' ' || e.version::text || ' ' || (date_part('epoch', e.recorded_at) * 1000)::text ` +
  `|| ' ' || e.event_id::text as k, e.stream_id, e.type, e.data, nullif(e.metadata, '{}'::jsonb) as metadata, ` +
  `e.position as p from event_store.events e where e.position > $1 order by e.position limit $2`

const seed = async (adminUrl: string) => {
  process.env.DATABASE_URL = adminUrl
  const server = await startServer()
  const db = await freshDatabase(server, "m1shapes")
  const target = await targets.find((t) => t.name === "postgres")!.load()
  const session = await target.open(db.url, 4)
  await session.appendNew(m1Seed(), 4)
  await session.close()
  console.log(db.url)
}

const main = async () => {
  const [shape, url] = process.argv.slice(2) as [string, string]
  if (shape === "seed") return seed(url)
  let peak = process.memoryUsage().rss
  const before = peak
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss)
  }, 20)
  let count = 0
  let sum = 0
  const start = performance.now()
  if (shape === "effcb") {
    const pool = new pg.Pool({ connectionString: url, max: 4 })
    const query = (params: Array<unknown>) =>
      Effect.async<ReadonlyArray<{ k: string; data: { amount: number }; p: string }>>((resume) => {
        pool.connect((error, client, release) => {
          if (error || client === undefined) throw error
          client.query(
            text,
            params,
            (err: unknown, result: { rows: Array<{ k: string; data: { amount: number }; p: string }> }) => {
              release()
              if (err) throw err
              resume(Effect.succeed(result.rows))
            }
          )
        })
      })
    await Effect.runPromise(Effect.gen(function*() {
      let cursor = 0
      while (true) {
        const rows = yield* query([cursor, 1000])
        for (const row of rows) sum += row.data.amount
        count += rows.length
        if (rows.length < 1000) break
        cursor = Number(rows[rows.length - 1]!.p)
      }
    }))
    await pool.end()
  } else if (shape === "effpg") {
    const pool = new pg.Pool({ connectionString: url, max: 4 })
    await Effect.runPromise(Effect.gen(function*() {
      let cursor = 0
      while (true) {
        const { rows } = yield* Effect.promise(() =>
          pool.query<{ k: string; data: { amount: number }; p: string }>(text, [cursor, 1000])
        )
        for (const row of rows) sum += row.data.amount
        count += rows.length
        if (rows.length < 1000) break
        cursor = Number(rows[rows.length - 1]!.p)
      }
    }))
    await pool.end()
  } else if (shape === "pg") {
    const pool = new pg.Pool({ connectionString: url, max: 4 })
    let cursor = 0
    while (true) {
      const { rows } = await pool.query<{ k: string; data: { amount: number }; p: string }>(text, [cursor, 1000])
      for (const row of rows) sum += row.data.amount
      count += rows.length
      if (rows.length < 1000) break
      cursor = Number(rows[rows.length - 1]!.p)
    }
    await pool.end()
  } else {
    const layer = PostgresEventStore.layer().pipe(
      Layer.provideMerge(PgClient.layer({ url: Redacted.make(url), maxConnections: 4 }))
    )
    const runtime = ManagedRuntime.make(layer)
    if (shape === "reservePage") {
      await runtime.runPromise(Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        let cursor = 0
        while (true) {
          const rows = (yield* Effect.scoped(
            Effect.flatMap(sql.reserve, (conn) => conn.execute(text, [cursor, 1000], undefined))
          )) as ReadonlyArray<{ k: string; data: { amount: number }; p: string }>
          for (const row of rows) sum += row.data.amount
          count += rows.length
          if (rows.length < 1000) break
          cursor = Number(rows[rows.length - 1]!.p)
        }
      }))
    } else if (shape === "values" || shape === "reserve" || shape === "nospan") {
      await runtime.runPromise(Effect.scoped(Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const conn = shape === "reserve" ? yield* sql.reserve : undefined
        let cursor = 0
        while (true) {
          const rows: ReadonlyArray<{ k: string; data: { amount: number }; p: string }> = shape === "values"
            ? (yield* sql.unsafe(text, [cursor, 1000]).values).map((r) => ({
              k: r[0] as string,
              data: r[3] as { amount: number },
              p: r[5] as string
            }))
            : conn !== undefined
            ? (yield* conn.execute(text, [cursor, 1000], undefined)) as ReadonlyArray<
              { k: string; data: { amount: number }; p: string }
            >
            : yield* Effect.withTracerEnabled(
              sql.unsafe<{ k: string; data: { amount: number }; p: string }>(text, [cursor, 1000]),
              false
            )
          for (const row of rows) sum += row.data.amount
          count += rows.length
          if (rows.length < 1000) break
          cursor = Number(rows[rows.length - 1]!.p)
        }
      })))
    } else if (shape === "sql") {
      await runtime.runPromise(Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        let cursor = 0
        while (true) {
          const rows = yield* sql.unsafe<{ k: string; data: { amount: number }; p: string }>(text, [cursor, 1000])
          for (const row of rows) sum += row.data.amount
          count += rows.length
          if (rows.length < 1000) break
          cursor = Number(rows[rows.length - 1]!.p)
        }
      }))
    } else {
      await runtime.runPromise(Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        yield* Stream.runForEachChunk(store.readAll(), (chunk) =>
          Effect.sync(() => {
            for (const event of Chunk.toReadonlyArray(chunk)) sum += (event.data as { amount: number }).amount
            count += chunk.length
          }))
      }))
    }
    await runtime.dispose()
  }
  clearInterval(sampler)
  console.log(
    JSON.stringify({
      shape,
      count,
      sum,
      seconds: (performance.now() - start) / 1000,
      rssBeforeMB: Math.round(before / 1048576),
      peakMB: Math.round(peak / 1048576),
      growthMB: Math.round((peak - before) / 1048576)
    })
  )
}
main().then(() => process.exit(0), (e) => {
  console.error(e)
  process.exit(1)
})
