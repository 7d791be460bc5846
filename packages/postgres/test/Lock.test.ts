/**
 * `CommandHandler` with `lock: true` on PostgreSQL: the locked cycle never needs a second connection.
 */
import { Aggregate, CommandHandler, EventStore, StreamId } from "@effect-eventsourcing/core"
import { PostgresEventStore } from "@effect-eventsourcing/postgres"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Layer, Schema } from "effect"
import { freshDatabase } from "./utils.js"

const Database = freshDatabase("lock")

class Added extends Schema.TaggedClass<Added>()("Added", { amount: Schema.Number }) {}

const Counter = Aggregate.make({
  name: "counter",
  events: Added,
  initialState: { total: 0 },
  decide: (command: { readonly amount: number }) => Either.right([new Added({ amount: command.amount })]),
  evolve: (state, event) => ({ total: state.total + event.amount })
})

const storeOn = (maxConnections: number) =>
  PostgresEventStore.layer().pipe(Layer.provideMerge(Database.pool({ maxConnections })), Layer.orDie)

describe("CommandHandler lock: true", () => {
  it.live(
    "500 concurrent locked commands on a pool of 10 complete (the lock never waits for a second connection)",
    () =>
      Effect.gen(function*() {
        const handle = CommandHandler.make(Counter, { lock: true })
        const results = yield* Effect.forEach(
          Array.from({ length: 500 }, (_, i) => i),
          (i) => handle(`locked-${i % 25}`, { amount: 1 }),
          { concurrency: "unbounded" }
        ).pipe(Effect.timeout("60 seconds"))
        assert.strictEqual(results.length, 500)
        const store = yield* EventStore.EventStore
        let total = 0
        for (let i = 0; i < 25; i++) total += yield* store.streamVersion(StreamId.unsafeMake("counter", `locked-${i}`))
        assert.strictEqual(total, 500)
      }).pipe(Effect.provide(storeOn(10))),
    90_000
  )
})
