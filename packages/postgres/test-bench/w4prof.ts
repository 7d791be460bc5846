/**
 * W4 for profiling: one stream of 1,000 events, `Repository.load` N times, on the in-memory store or on PostgreSQL.
 * Run: [DATABASE_URL=…] npx tsx packages/postgres/test-bench/w4prof.ts memory|postgres [loads]
 *   (add `node --cpu-prof --import tsx` to profile)
 */
import {
  Aggregate,
  EventStore,
  ExpectedVersion,
  InMemoryEventStore,
  Repository,
  StreamId
} from "@effect-eventsourcing/core"
import { PostgresEventStore } from "@effect-eventsourcing/postgres"
import { PgClient } from "@effect/sql-pg"
import { Effect, Either, Layer, Redacted, Schema } from "effect"
import pg from "pg"

const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number, note: Schema.String })
const Account = Aggregate.make({
  name: "account",
  events: Deposited,
  initialState: 0,
  decide: (command: { readonly amount: number }, _state) =>
    Either.right([Deposited.make({ amount: command.amount, note: "n".repeat(64) })]),
  evolve: (state, event) => state + event.amount
})
const note = "Deposited through the effect-eventsourcing benchmark harness: ".padEnd(64, "#")
const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const main = async () => {
  const which = process.argv[2] ?? "memory"
  const loads = Number(process.argv[3] ?? 2000)
  let layer: Layer.Layer<EventStore.EventStore, unknown>
  if (which === "postgres") {
    const base = process.env.DATABASE_URL ?? "postgres://postgres@localhost:5432/postgres"
    const admin = new pg.Client({ connectionString: base })
    await admin.connect()
    await admin.query("drop database if exists bench_w4prof")
    await admin.query("create database bench_w4prof")
    await admin.end()
    const u = new URL(base)
    u.pathname = "/bench_w4prof"
    layer = PostgresEventStore.layer().pipe(
      Layer.provide(PgClient.layer({ url: Redacted.make(u.toString()), maxConnections: 1 }))
    )
  } else {
    layer = InMemoryEventStore.layer
  }
  const repository = Repository.make(Account)
  const prog = Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    yield* store.append(
      StreamId.unsafeMake("account", "1"),
      Array.from({ length: 1000 }, (_, i) => ({ type: "Deposited", data: { amount: (i % 100) + 1, note } })),
      ExpectedVersion.NoStream
    )
    const times: Array<number> = []
    let sum = 0
    for (let i = 0; i < loads; i++) {
      const t0 = performance.now()
      sum = (yield* repository.load("1")).state
      times.push(performance.now() - t0)
    }
    console.log(which, "median ms/load", median(times.slice(loads / 4)).toFixed(3), "sum", sum)
  }).pipe(Effect.provide(layer))
  await Effect.runPromise(prog)
}
main()
