/**
 * Issue 12 (hardening) on PostgreSQL: no deadlock with `lock: true`, no stranded connection when waiters are
 * interrupted, and a gap-safety horizon that unrelated transactions of the cluster do not hold back.
 */
import { Aggregate, CommandHandler, EventStore, StreamId } from "@effect-eventsourcing/core"
import { PostgresEventStore } from "@effect-eventsourcing/postgres"
import { SqlClient } from "@effect/sql"
import * as PgClient from "@effect/sql-pg/PgClient"
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Either, Exit, Fiber, Layer, Redacted, Schema, Stream } from "effect"
import { freshDatabase } from "./utils.js"

const Database = freshDatabase("hardening")

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

describe("the gap-safety horizon ignores unrelated transactions", () => {
  it.live(
    "a long write transaction in another database of the cluster holds back neither readAll nor subscribe",
    () =>
      Effect.gen(function*() {
        const other = freshDatabase("hardening_other")
        const otherUrl = yield* other.url
        // an unrelated writer in another database: an xid is assigned and the transaction stays open
        const blocker = yield* Effect.forkScoped(
          Effect.flatMap(SqlClient.SqlClient, (sql) =>
            sql.withTransaction(
              Effect.zipRight(sql`select pg_current_xact_id()`, Effect.never)
            )).pipe(
              Effect.provide(PgClient.layer({ url: Redacted.make(otherUrl), maxConnections: 1 }))
            )
        )
        yield* Effect.sleep("500 millis")
        const store = yield* EventStore.EventStore
        const written = yield* store.append(StreamId.unsafeMake("horizon", "1"), [{
          type: "Added",
          data: { amount: 1 }
        }], {
          _tag: "NoStream"
        })
        const read = yield* Stream.runCollect(store.readAll({ filter: { categories: ["horizon"] } })).pipe(
          Effect.map(Chunk.toArray)
        )
        assert.deepStrictEqual(read.map((e) => e.position), [written.position])
        const live = yield* Stream.runCollect(
          Stream.take(store.subscribe({ filter: { categories: ["horizon"] } }), 1)
        ).pipe(Effect.timeout("5 seconds"), Effect.exit)
        assert.isTrue(Exit.isSuccess(live), "subscribe delivered nothing while an unrelated transaction was open")
        yield* Fiber.interrupt(blocker)
      }).pipe(Effect.provide(storeOn(4)), Effect.scoped),
    30_000
  )
})
