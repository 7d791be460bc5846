/**
 * W4 split (W4 of bench/README.md: one stream of 1,000 events, loaded and folded): Repository.load vs store.read
 * fold vs the same SQL through the same client vs minimal columns, and the same queries on a plain `pg.Client` (no
 * Effect). Prints the median wall time and this process's CPU time per load, in milliseconds.
 *
 * Run: [DATABASE_URL=…] npx tsx bench/src/w4split.ts (without DATABASE_URL on the bench's embedded PostgreSQL).
 * tsx adds its own cost to the Effect paths (e.g. source-mapped span stack traces): compile with esbuild as
 * bench/build.mjs does for figures comparable to the bench; add `node --cpu-prof` to profile.
 */
import { Aggregate, EventStore, ExpectedVersion, Repository, StreamId } from "@effect-eventsourcing/core"
import { PostgresEventStore } from "@effect-eventsourcing/postgres"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Effect, Either, Layer, Redacted, Schema, Stream } from "effect"
import pg from "pg"
import { freshDatabase, startServer } from "./db.js"
import { NOTE as note } from "./target.js"

const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number, note: Schema.String })
const Big = Aggregate.make({
  name: "big",
  events: Deposited,
  initialState: 0,
  decide: (_command: unknown, _state) => Either.right([]),
  evolve: (state, event) => state + event.amount
})
const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const main = async () => {
  const server = await startServer()
  const db = await freshDatabase(server, "w4split")
  const client = new pg.Client({ connectionString: db.url })
  const repository = Repository.make(Big)
  const where = `from event_store.events where stream_id = $1 and version >= $2 and version <= $3 ` +
    `order by version asc limit $4`
  // the store's query (see `packed` in packages/postgres/src/internal/reading.ts)
  const sameSql = `select position::text || ' ' || version::text || ' ' || ` +
    `(date_part('epoch', recorded_at) * 1000)::text || ' ' || event_id::text as k, type, data, ` +
    `nullif(metadata, '{}'::jsonb) as metadata ${where}`
  // the same fields as separate columns (the query before the packing)
  const sevenColumns =
    `select position, event_id as id, version, type, data, nullif(metadata, '{}'::jsonb) as metadata, ` +
    `date_part('epoch', recorded_at) * 1000 as recorded_ms ${where}`
  const prog = Effect.gen(function*() {
    yield* Effect.promise(() => client.connect())
    const store = yield* EventStore.EventStore
    const sql = yield* SqlClient.SqlClient
    const big = StreamId.unsafeMake("big", "1")
    for (let k = 0; k < 10; k++) {
      yield* store.append(
        big,
        Array.from({ length: 100 }, (_, j) => ({ type: "Deposited", data: { amount: k * 100 + j + 1, note } })),
        ExpectedVersion.Any
      )
    }
    const time = (label: string, eff: Effect.Effect<unknown, unknown, EventStore.EventStore>) =>
      Effect.gen(function*() {
        const times: Array<number> = []
        let cpu = process.cpuUsage()
        for (let i = 0; i < 300; i++) {
          if (i === 50) cpu = process.cpuUsage()
          const t0 = performance.now()
          yield* eff
          times.push(performance.now() - t0)
        }
        const used = process.cpuUsage(cpu)
        // wall-clock median, and this process's CPU time per operation (less sensitive to a busy machine)
        console.log(
          label.padEnd(24),
          "wall",
          median(times.slice(50)).toFixed(3),
          "cpu",
          ((used.user + used.system) / 250 / 1000).toFixed(3)
        )
      })
    const raw = sql.withoutTransforms()
    for (let r = 0; r < 2; r++) {
      yield* time("Repository.load", repository.load("1"))
      yield* time(
        "store.read",
        Stream.runFold(store.read(big), 0, (acc, e) => acc + (e.data as { amount: number }).amount)
      )
      yield* time(
        "same sql",
        raw.unsafe(sameSql, [big, 1, Number.MAX_SAFE_INTEGER, 5001])
      )
      yield* time(
        "pg.Client same sql",
        Effect.promise(() => client.query(sameSql, [big, 1, Number.MAX_SAFE_INTEGER, 5001]))
      )
      yield* time(
        "pg.Client 7 columns",
        Effect.promise(() => client.query(sevenColumns, [big, 1, Number.MAX_SAFE_INTEGER, 5001]))
      )
      yield* time(
        "pg.Client version,data",
        Effect.promise(() =>
          client.query(`select version, type, data from event_store.events where stream_id = $1 order by version`, [
            big
          ])
        )
      )
      yield* time(
        "version,data",
        raw.unsafe(`select version, type, data from event_store.events where stream_id = $1 order by version`, [big])
      )
    }
  }).pipe(
    Effect.provide(
      PostgresEventStore.layer().pipe(
        Layer.provideMerge(PgClient.layer({ url: Redacted.make(db.url), maxConnections: 2 }))
      )
    )
  )
  try {
    await Effect.runPromise(prog)
  } finally {
    await client.end()
    await db.drop()
    await server.stop()
  }
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
