/**
 * `CommandHandler` with `lock: true` on PostgreSQL: the locked cycle never needs a second connection
 * (`EventStore.withLock`: one transaction holding `pg_advisory_xact_lock`), and lock timeouts (issue 12, item 3).
 */
import { Aggregate, CommandHandler, EventStore, ExpectedVersion, StreamId } from "@effect-eventsourcing/core"
import { PostgresEventStore } from "@effect-eventsourcing/postgres"
import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, Either, Fiber, Layer, Schema, Stream } from "effect"
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

const storeOn = (maxConnections: number, options: PostgresEventStore.Options = {}) =>
  PostgresEventStore.layer(options).pipe(Layer.provideMerge(Database.pool({ maxConnections })), Layer.orDie)

const counter = (id: string) => StreamId.unsafeMake("counter", id)

/** Holds `store.lock(streamId)` in a fiber until it is interrupted. */
const holdLock = (store: EventStore.EventStore.Service, streamId: StreamId.StreamId) =>
  Effect.gen(function*() {
    const held = yield* Deferred.make<void>()
    const fiber = yield* Effect.fork(
      Effect.scoped(
        Effect.zipRight(store.lock(streamId), Effect.zipRight(Deferred.succeed(held, undefined), Effect.never))
      )
    )
    yield* Deferred.await(held)
    return fiber
  })

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

  it.live("a locked command completes on a pool of one connection", () =>
    Effect.gen(function*() {
      const handle = CommandHandler.make(Counter, { lock: true })
      const results = yield* Effect.forEach([1, 2, 3], (amount) => handle("single", { amount }), {
        concurrency: "unbounded"
      }).pipe(Effect.timeout("20 seconds"))
      assert.deepStrictEqual(results.map((r) => r.version).sort(), [1, 2, 3])
      assert.strictEqual(results.find((r) => r.version === 3)?.state.total, 6)
    }).pipe(Effect.provide(storeOn(1))), 30_000)

  it.live(
    "lockTimeout: a command that cannot get the lock in time fails with LockTimeout, nothing written",
    () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const sql = yield* SqlClient.SqlClient
        const handle = CommandHandler.make(Counter, { lock: true, lockTimeout: "300 millis" })
        yield* handle("timeout", { amount: 1 })
        const holder = yield* holdLock(store, counter("timeout"))
        const error = yield* Effect.flip(handle("timeout", { amount: 1 }))
        assert(error instanceof EventStore.LockTimeout, `got ${error._tag}`)
        assert.strictEqual(error.streamId, counter("timeout"))
        // the same for lock and withLock given a timeout (SQLSTATE 55P03 from the server's lock_timeout)
        assert.strictEqual(
          (yield* Effect.flip(Effect.scoped(store.lock(counter("timeout"), { timeout: "200 millis" }))))._tag,
          "LockTimeout"
        )
        assert.strictEqual(
          (yield* Effect.flip(store.withLock(counter("timeout"), Effect.void, { timeout: "200 millis" })))._tag,
          "LockTimeout"
        )
        assert.strictEqual(yield* store.streamVersion(counter("timeout")), 1)
        yield* Fiber.interrupt(holder)
        assert.strictEqual((yield* handle("timeout", { amount: 1 })).version, 2)
        // every connection of the pool is back, with its session's lock_timeout untouched
        const settings = yield* Effect.forEach(
          Array.from({ length: 4 }, (_, i) => i),
          () => sql.withTransaction(sql<{ lock_timeout: string }>`show lock_timeout`),
          { concurrency: 4 }
        )
        assert.deepStrictEqual(settings.map((rows) => rows[0]?.lock_timeout), ["0", "0", "0", "0"])
      }).pipe(Effect.provide(storeOn(4))),
    30_000
  )

  it.live(
    "the timeout covers the wait for a connection; the connection that comes later goes back to the pool",
    () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        // the pool's only connection is taken by a lock on another stream
        const holder = yield* holdLock(store, counter("holder"))
        const error = yield* Effect.flip(store.withLock(counter("other"), Effect.void, { timeout: "300 millis" }))
        assert.strictEqual(error._tag, "LockTimeout")
        const interrupted = yield* Effect.fork(store.withLock(counter("other"), Effect.void))
        yield* Effect.sleep("100 millis")
        yield* Fiber.interrupt(interrupted)
        yield* Fiber.interrupt(holder)
        const handle = CommandHandler.make(Counter, { lock: true, lockTimeout: "10 seconds" })
        assert.strictEqual((yield* handle("other", { amount: 1 })).version, 1)
        assert.strictEqual((yield* handle("other", { amount: 1 })).version, 2)
      }).pipe(Effect.provide(storeOn(1))),
    30_000
  )

  it.live(
    "withLock with a timeout keeps the session's own lock_timeout for the locked effect",
    () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const sql = yield* SqlClient.SqlClient
        yield* sql`set lock_timeout = '7s'`
        const inside = yield* store.withLock(counter("setting"), sql<{ lock_timeout: string }>`show lock_timeout`, {
          timeout: "2 seconds"
        })
        assert.strictEqual(inside[0]?.lock_timeout, "7s")
        yield* Effect.scoped(store.lock(counter("setting"), { timeout: "2 seconds" }))
        assert.strictEqual((yield* sql<{ lock_timeout: string }>`show lock_timeout`)[0]?.lock_timeout, "7s")
        yield* sql`reset lock_timeout`
      }).pipe(Effect.provide(storeOn(1))),
    30_000
  )

  it.live(
    "withLock runs the effect's reads and appends in one transaction: a failing effect leaves nothing",
    () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const sql = yield* SqlClient.SqlClient
        const s = counter("atomic")
        const failed = yield* Effect.flip(store.withLock(
          s,
          Effect.gen(function*() {
            yield* store.append(s, [{ type: "Added", data: { amount: 1 } }], ExpectedVersion.NoStream)
            // the append is visible inside the transaction, on the same connection
            assert.strictEqual(yield* store.streamVersion(s), 1)
            const [outside] = yield* sql<
              { n: string }
            >`select count(*)::text as n from pg_stat_activity where state = 'idle in transaction' and datname = current_database()`
            assert.strictEqual(outside?.n, "0", "the effect runs inside the transaction, not beside it")
            return yield* Effect.fail("refused" as const)
          })
        ))
        assert.strictEqual(failed, "refused")
        assert.strictEqual(yield* store.streamVersion(s), 0)
        const result = yield* store.withLock(
          s,
          store.append(s, [{ type: "Added", data: { amount: 1 } }], ExpectedVersion.NoStream)
        )
        assert.strictEqual(result.version, 1)
        assert.strictEqual(yield* store.streamVersion(s), 1)
      }).pipe(Effect.provide(storeOn(1))),
    30_000
  )

  it.live(
    "subscribers see events appended under withLock at its commit (not at the next poll)",
    () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const s = counter("woken")
        const seen = yield* Effect.fork(
          Stream.runCollect(Stream.take(store.subscribe({ filter: { streamIds: [s] } }), 1))
        )
        yield* Effect.sleep("300 millis")
        // the append wakes subscribers before its transaction commits: they find nothing yet, and wait again
        yield* store.withLock(
          s,
          Effect.zipLeft(
            store.append(s, [{ type: "Added", data: { amount: 1 } }], ExpectedVersion.NoStream),
            Effect.sleep("500 millis")
          )
        )
        const events = yield* Fiber.join(seen).pipe(Effect.timeout("5 seconds"))
        assert.deepStrictEqual(Chunk.toArray(events).map((e) => e.version), [1])
      }).pipe(Effect.provide(storeOn(4, { notify: "off", pollInterval: "60 seconds" }))),
    30_000
  )
})
