/**
 * Waiting for a pooled connection: interrupting waiters strands no connection (the upstream @effect/sql-pg 0.53
 * leak of `sql.reserve` waiters must not reach the store).
 */
import { Aggregate, CheckpointStore, CommandHandler, EventStore, StreamId } from "@effect-eventsourcing/core"
import { PostgresCheckpointStore, PostgresEventStore } from "@effect-eventsourcing/postgres"
import type * as PgClient from "@effect/sql-pg/PgClient"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Duration, Effect, Either, Exit, Fiber, Layer, Option, Schema, Scope, Stream } from "effect"
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

const storesOn = (options: Partial<PgClient.PgClientConfig>) =>
  Layer.mergeAll(PostgresEventStore.layer(), PostgresCheckpointStore.layer()).pipe(
    Layer.provideMerge(Database.pool(options)),
    Layer.orDie
  )

/** Takes `n` connections of the pool (scoped locks) until the returned fiber is interrupted. */
const holdConnections = (n: number) =>
  Effect.flatMap(EventStore.EventStore, (store) =>
    Effect.forkScoped(
      Effect.all(
        Array.from({ length: n }, (_, i) => store.lock(StreamId.unsafeMake("counter", `hold-${i}`))),
        { concurrency: n }
      ).pipe(Effect.zipRight(Effect.never), Effect.scoped)
    ))

describe("waiting for a connection in the store's own transactions and leases", () => {
  it.live(
    "100 interrupted lease acquisitions and filtered reads strand nothing; the waits can be interrupted",
    () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const checkpoints = yield* CheckpointStore.CheckpointStore
        yield* store.append(StreamId.unsafeMake("waits", "1"), [{ type: "Added", data: { amount: 1 } }], {
          _tag: "Any"
        })
        const holders = yield* holdConnections(2)
        yield* Effect.sleep("300 millis")
        const waiters = yield* Effect.forEach(
          Array.from({ length: 100 }, (_, i) => i),
          (i) =>
            Effect.fork<void, unknown, never>(
              i % 2 === 0
                ? Effect.asVoid(Effect.scoped(checkpoints.acquire(`waiter-${i}`)))
                : Stream.runDrain(store.readAll({ filter: { categories: ["waits"] } }))
            ),
          { concurrency: "unbounded" }
        )
        yield* Effect.sleep("300 millis")
        // interrupting does not wait for a connection to come
        yield* Fiber.interruptAll(waiters).pipe(Effect.timeout("5 seconds"))
        yield* Fiber.interrupt(holders)
        const done = yield* Effect.forEach(
          Array.from({ length: 100 }, (_, i) => i),
          (i): Effect.Effect<void, unknown> =>
            i % 2 === 0
              // (a lease holds its connection: a save on it would need a second one, hence one connection each)
              ? Effect.asVoid(Effect.scoped(checkpoints.acquire(`after-${i}`)))
              : Effect.asVoid(Stream.runCollect(store.readAll({ filter: { categories: ["waits"] } }))),
          { concurrency: 2 }
        ).pipe(Effect.timeout("30 seconds"))
        assert.strictEqual(done.length, 100)
      }).pipe(Effect.scoped, Effect.provide(storesOn({ maxConnections: 2 })), Effect.timeout("60 seconds")),
    90_000
  )

  it.live(
    "a connection that does not come within the pool's connectTimeout is a typed error everywhere",
    () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const checkpoints = yield* CheckpointStore.CheckpointStore
        const holders = yield* holdConnections(1)
        yield* Effect.sleep("300 millis")
        const cases: ReadonlyArray<readonly [string, Effect.Effect<unknown, unknown, Scope.Scope>]> = [
          ["append", store.append(StreamId.unsafeMake("timeout", "1"), [{ type: "Added", data: {} }], { _tag: "Any" })],
          ["readAll with a filter", Stream.runDrain(store.readAll({ filter: { categories: ["timeout"] } }))],
          ["delete", store.delete(StreamId.unsafeMake("timeout", "1"))],
          ["lock", store.lock(StreamId.unsafeMake("timeout", "1"))],
          ["checkpoint acquire", checkpoints.acquire("timeout")],
          ["checkpoint load", checkpoints.load("timeout")]
        ]
        for (const [label, run] of cases) {
          const exit = yield* run.pipe(Effect.scoped, Effect.timeout("10 seconds"), Effect.exit)
          assert.isTrue(Exit.isFailure(exit), label)
          if (Exit.isFailure(exit)) {
            const failure = Cause.failureOption(exit.cause)
            assert.isTrue(Cause.defects(exit.cause).length === 0, `${label}: ${Cause.pretty(exit.cause)}`)
            assert.isTrue(
              Option.isSome(failure) &&
                (failure.value instanceof EventStore.EventStoreError ||
                  failure.value instanceof CheckpointStore.CheckpointStoreError),
              `${label}: ${Cause.pretty(exit.cause)}`
            )
          }
        }
        yield* Fiber.interrupt(holders)
      }).pipe(
        Effect.scoped,
        Effect.provide(storesOn({ maxConnections: 1, connectTimeout: Duration.millis(500) })),
        Effect.timeout("60 seconds")
      ),
    90_000
  )
})
