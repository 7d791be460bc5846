/**
 * W4w split (a warm load through the aggregate cache after one append): the cached Repository.load vs the store's
 * readForFold of the tail vs the same SQL through the same client vs a plain `pg.Client`, and W4's cold
 * Repository.load vs readForFold of the whole stream vs raw-pg's query. Prints the median wall time and this
 * process's CPU time per operation, in milliseconds.
 *
 * Run: [DATABASE_URL=…] npx tsx --conditions=@effect-eventsourcing/source bench/src/w4wsplit.ts
 */
import { Aggregate, EventStore, ExpectedVersion, Repository, StreamId } from "@effect-eventsourcing/core"
import { PostgresEventStore } from "@effect-eventsourcing/postgres"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Chunk, Effect, Either, Layer, Option, Redacted, Schema, Stream } from "effect"
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
/** `ONLY=<label>`: run that case alone, 3,000 times (e.g. under `node --cpu-prof`) */
const only = process.env.ONLY
const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const main = async () => {
  const server = await startServer()
  const db = await freshDatabase(server, "w4wsplit")
  const client = new pg.Client({ connectionString: db.url })
  const cold = Repository.make(Big)
  const warm = Repository.make(Big, { cache: { capacity: 10 } })
  const tailSql = `select version::text || ' ' || position::text as k, type, data from event_store.events ` +
    `where stream_id = $1 and version >= $2 and version <= $3 order by version asc limit $4`
  const prog = Effect.gen(function*() {
    yield* Effect.promise(() => client.connect())
    const store = yield* EventStore.EventStore
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const big = StreamId.unsafeMake("big", "1")
    for (let k = 0; k < 10; k++) {
      yield* store.append(
        big,
        Array.from({ length: 100 }, (_, j) => ({ type: "Deposited", data: { amount: k * 100 + j + 1, note } })),
        ExpectedVersion.Any
      )
    }
    const time = (
      label: string,
      eff: Effect.Effect<unknown, unknown, EventStore.EventStore>,
      before?: Effect.Effect<unknown, unknown, EventStore.EventStore>
    ) =>
      Effect.gen(function*() {
        if (only !== undefined && only !== label) return
        const times: Array<number> = []
        let cpu = process.cpuUsage()
        let cpuUsed = 0
        for (let i = 0; i < (only === undefined ? 300 : 3000); i++) {
          if (before !== undefined) yield* before
          if (i === 50) cpuUsed = 0
          cpu = process.cpuUsage()
          const t0 = performance.now()
          yield* eff
          times.push(performance.now() - t0)
          const used = process.cpuUsage(cpu)
          cpuUsed += used.user + used.system
        }
        console.log(
          label.padEnd(28),
          "wall",
          median(times.slice(50)).toFixed(3),
          "cpu",
          (cpuUsed / times.length / 1000).toFixed(3)
        )
      })
    let version = 1000
    const append = Effect.suspend(() =>
      Effect.map(store.append(big, [{ type: "Deposited", data: { amount: 1, note } }], ExpectedVersion.Any), (r) => {
        version = r.version
      })
    )
    yield* warm.load("1")
    for (let r = 0; r < 2; r++) {
      yield* time("warm Repository.load", warm.load("1"), append)
      yield* time("warm load, no append", warm.load("1"))
      yield* time("warm load, append+sleep", warm.load("1"), Effect.zipRight(append, Effect.sleep("2 millis")))
      yield* time(
        "readForFold tail (2 rows)",
        Effect.suspend(() => store.readForFold(big, { from: version - 1, limit: 5000 }))
      )
      const q = () => sql.unsafe(tailSql, [big, version - 1, Number.MAX_SAFE_INTEGER, 5001])
      yield* time(
        "paginate toPull of sql",
        Effect.suspend(() =>
          Effect.scoped(Effect.flatMap(
            Stream.toPull(
              Stream.paginateChunkEffect(0, () =>
                Effect.map(q(), (a) => [Chunk.unsafeFromArray(a), Option.none<number>()] as const))
            ),
            (pull) =>
              Effect.zipRight(pull, Effect.option(pull))
          ))
        )
      )
      yield* time("stream of sql", Effect.suspend(() => Stream.runDrain(Stream.fromIterableEffect(q()))))
      yield* time(
        "stream+span of sql",
        Effect.suspend(() =>
          Stream.runDrain(Stream.withSpan(Stream.fromIterableEffect(q()), "x", { captureStackTrace: false }))
        )
      )
      yield* time("read tail", Effect.suspend(() => Stream.runDrain(store.read(big, { from: version - 1 }))))
      yield* time("effect span of sql", Effect.suspend(() => Effect.withSpan(q(), "x", { captureStackTrace: false })))
      yield* time(
        "same sql (2 rows)",
        Effect.suspend(() => sql.unsafe(tailSql, [big, version - 1, Number.MAX_SAFE_INTEGER, 5001]))
      )
      yield* time(
        "pg.Client same sql (2 rows)",
        Effect.promise(() => client.query(tailSql, [big, version - 1, Number.MAX_SAFE_INTEGER, 5001]))
      )
      yield* time("cold Repository.load", cold.load("1"))
      yield* time("readForFold all", store.readForFold(big, { limit: 5000 }))
      yield* time("values sql all", sql.unsafe(tailSql, [big, 1, Number.MAX_SAFE_INTEGER, 5001]).values)
      yield* time("same sql all", sql.unsafe(tailSql, [big, 1, Number.MAX_SAFE_INTEGER, 5001]))
      yield* time(
        "pg.Client same sql all",
        Effect.promise(() => client.query(tailSql, [big, 1, Number.MAX_SAFE_INTEGER, 5001]))
      )
      yield* time(
        "pg.Client raw-pg sql",
        Effect.promise(() =>
          client.query("select version, data from event_store.events where stream_id = $1 order by version", [big])
        )
      )
    }
  }).pipe(
    Effect.provide(
      PostgresEventStore.layer(process.env.NOTIFY === "inTransaction" ? { notify: "inTransaction" } : {}).pipe(
        Layer.provideMerge(PgClient.layer({ url: Redacted.make(db.url), maxConnections: 1 }))
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
