/**
 * Waiting for a pooled connection: interrupting waiters strands no connection (the upstream @effect/sql-pg 0.53
 * leak of `sql.reserve` waiters must not reach the store).
 */
import { Aggregate, CommandHandler, EventStore, StreamId } from "@effect-eventsourcing/core"
import { PostgresEventStore } from "@effect-eventsourcing/postgres"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Fiber, Layer, Schema } from "effect"
import { freshDatabase } from "./utils.js"

const Database = freshDatabase("waiters")

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

describe("interrupted waiters strand no connection", () => {
  it.live(
    "100 fibers interrupted while waiting for a connection, then 100 commands run and the Layer closes",
    () =>
      Effect.gen(function*() {
        const handle = CommandHandler.make(Counter, { lock: true })
        const unlocked = CommandHandler.make(Counter)
        yield* Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          // both connections of the pool are taken (two scoped locks); 100 locked commands queue for a connection
          const holders = yield* Effect.forkScoped(
            Effect.all([
              store.lock(StreamId.unsafeMake("counter", "hold-a")),
              store.lock(StreamId.unsafeMake("counter", "hold-b"))
            ], { concurrency: 2 }).pipe(Effect.zipRight(Effect.never), Effect.scoped)
          )
          yield* Effect.sleep("300 millis")
          const waiters = yield* Effect.forEach(
            Array.from({ length: 100 }, (_, i) => i),
            (i) => Effect.fork(handle(`waiter-${i}`, { amount: 1 })),
            { concurrency: "unbounded" }
          )
          yield* Effect.sleep("300 millis")
          yield* Fiber.interruptAll(waiters)
          yield* Fiber.interrupt(holders)
          const done = yield* Effect.forEach(
            Array.from({ length: 100 }, (_, i) => i),
            (i) => unlocked(`after-${i % 10}`, { amount: 1 }),
            { concurrency: 10 }
          ).pipe(Effect.timeout("30 seconds"))
          assert.strictEqual(done.length, 100)
        }).pipe(Effect.provide(storeOn(2)), Effect.scoped, Effect.timeout("60 seconds"))
      }),
    90_000
  )
})
