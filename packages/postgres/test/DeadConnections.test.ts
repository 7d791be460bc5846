/**
 * A pooled connection whose backend died (`pg_terminate_backend`) is never handed to a later caller: after the
 * operation on it failed, every following read, append and `streamVersion` on a pool of one connection succeeds,
 * including the callers that were already waiting for that connection when it died.
 *
 * Each case kills the backend of the pool's only connection from another connection (or from itself), lets the
 * operation fail, then runs operations that queued for the connection while it was held. Without the fix in
 * `reserveSafely` (src/internal/transaction.ts) the COMMIT case fails: one waiting append gets the dead client. The
 * "upstream:" case pins the plain-statement path of @effect/sql-pg 0.53 / pg 8.23, which the store cannot fix.
 */
import { EventStore, ExpectedVersion, StreamId } from "@effect-eventsourcing/core"
import { PostgresEventStore } from "@effect-eventsourcing/postgres"
import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Chunk, Context, Deferred, Effect, Exit, Fiber, Layer, Schedule, Stream } from "effect"
import { freshDatabase } from "./utils.js"

const Database = freshDatabase("deadconn")

const store = PostgresEventStore.layer().pipe(Layer.provideMerge(Database.pool({ maxConnections: 1 })), Layer.orDie)

const stream = StreamId.unsafeMake("dead", "connections")

/** Without the caller's transaction connection (which any `SqlClient` would join), so on the killer's own pool. */
const outside = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
  Effect.mapInputContext(
    effect,
    (context: Context.Context<never>) => Context.omit(SqlClient.TransactionConnection)(context)
  )

/** A second pool, for the statements that kill the store pool's backend. */
const killer = Effect.gen(function*() {
  const context = yield* Layer.build(Database.pool({ maxConnections: 1, applicationName: "killer" }))
  const sql = Context.get(context, SqlClient.SqlClient)
  /** the backend holding an advisory lock */
  const lockHolder = Effect.orDie(Effect.map(
    sql<{ pid: number }>`select pid from pg_locks where locktype = 'advisory' and granted limit 1`,
    (rows) => rows[0]!.pid
  ))
  /** terminates `pid` and waits until the server no longer lists it */
  const kill = (pid: number) =>
    Effect.gen(function*() {
      yield* sql`select pg_terminate_backend(${pid})`
      yield* sql<{ n: number }>`select count(*)::int as n from pg_stat_activity where pid = ${pid}`.pipe(
        Effect.flatMap((rows) => rows[0]?.n === 0 ? Effect.void : Effect.fail("alive" as const)),
        Effect.retry({ times: 500, schedule: Schedule.spaced("10 millis") }),
        Effect.zipLeft(Effect.sleep("20 millis"))
      )
    }).pipe(Effect.orDie, outside)
  return { kill, lockHolder: outside(lockHolder) }
})

const pidOf = (sql: SqlClient.SqlClient) =>
  Effect.map(sql<{ pid: number }>`select pg_backend_pid() as pid`, (rows) => rows[0]!.pid)

/** `n` reads, appends and `streamVersion`s, all started at once: the first ones wait for the pool's connection. */
const operations = (n: number) =>
  Effect.gen(function*() {
    const es = yield* EventStore.EventStore
    return Effect.forEach(
      Array.from({ length: n }, (_, i) => i),
      (i) =>
        Effect.exit(
          i % 3 === 0
            ? Stream.runCollect(es.read(stream)).pipe(Effect.map(Chunk.size))
            : i % 3 === 1
            ? Effect.map(
              es.append(StreamId.unsafeMake("dead", `other-${i}`), [{ type: "E", data: {} }], ExpectedVersion.Any),
              (result) => result.version
            )
            : es.streamVersion(stream)
        ),
      { concurrency: "unbounded" }
    )
  })

const failuresOf = (exits: ReadonlyArray<Exit.Exit<unknown, unknown>>) =>
  exits.filter(Exit.isFailure).map((exit) => String(exit.cause)).slice(0, 3)

/**
 * Runs `kill` (which makes the pool's connection die while the operation holds it), with 9 operations queued behind
 * it; then 9 more. None of the operations may fail.
 */
const afterDeath = (
  kill: (ops: Effect.Effect<unknown>) => Effect.Effect<unknown, unknown, EventStore.EventStore>,
  /** failures allowed among the callers that waited (only for the upstream defect pinned below) */
  allowed = 0
) =>
  Effect.gen(function*() {
    const queued = yield* operations(9)
    const exits = yield* Deferred.make<ReadonlyArray<Exit.Exit<unknown, unknown>>>()
    const go = yield* Deferred.make<void>()
    // forked here, outside the operation: not in its transaction
    yield* Effect.forkScoped(
      Deferred.await(go).pipe(Effect.zipRight(queued), Effect.flatMap((e) => Deferred.succeed(exits, e)))
    )
    const startQueued = Effect.zipRight(Deferred.succeed(go, undefined), Effect.sleep("50 millis"))
    const killed = yield* Effect.exit(kill(startQueued))
    assert.isTrue(Exit.isFailure(killed), "the operation on the killed connection fails")
    if (Exit.isFailure(killed)) assert.isFalse(Cause.isDie(killed.cause), `a typed failure: ${killed.cause}`)
    yield* Deferred.succeed(go, undefined)
    const first = yield* Deferred.await(exits)
    const second = yield* Effect.flatten(operations(9))
    const waited = failuresOf(first)
    if (allowed === 0) assert.deepStrictEqual(waited, [], "operations waiting for the connection when it died")
    else {
      assert.strictEqual(waited.length, allowed, `operations waiting for the connection when it died: ${waited}`)
      assert.include(waited[0], "Connection error")
    }
    assert.deepStrictEqual(failuresOf(second), [], "operations after it died")
  })

describe("a connection whose backend died is not reused", () => {
  // Pins an upstream defect we cannot fix in the store (see `watchFatal` in src/internal/transaction.ts): a plain
  // statement (outside any reserved connection) that gets a FATAL answer releases its pg client without the error,
  // and pg-pool hands the dead client to exactly one waiting caller. If this starts failing because no caller
  // fails, upstream fixed it: drop `allowed`.
  it.live(
    "upstream: a plain statement terminating its own backend hands the dead client to one waiting caller",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* Effect.orDie(sql`select 1`)
        yield* afterDeath((startQueued) =>
          Effect.gen(function*() {
            const fiber = yield* Effect.fork(sql`select pg_sleep(0.2), pg_terminate_backend(pg_backend_pid())`)
            yield* Effect.sleep("50 millis")
            yield* startQueued
            return yield* Fiber.join(fiber)
          }), 1)
      })).pipe(Effect.provide(store)),
    30_000
  )

  it.live(
    "withLock: backend terminated by another connection while the locked effect runs a statement",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const { kill } = yield* killer
        const es = yield* EventStore.EventStore
        const sql = yield* SqlClient.SqlClient
        yield* afterDeath((startQueued) =>
          es.withLock(
            stream,
            Effect.gen(function*() {
              const pid = yield* pidOf(sql)
              yield* startQueued
              const sleeping = yield* Effect.fork(sql`select pg_sleep(5)`)
              yield* Effect.sleep("100 millis")
              yield* kill(pid)
              return yield* Fiber.join(sleeping)
            })
          )
        )
      })).pipe(Effect.provide(store)),
    30_000
  )

  it.live(
    "withLock: backend terminated by another connection between statements",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const { kill } = yield* killer
        const es = yield* EventStore.EventStore
        const sql = yield* SqlClient.SqlClient
        yield* afterDeath((startQueued) =>
          es.withLock(
            stream,
            Effect.gen(function*() {
              const pid = yield* pidOf(sql)
              yield* startQueued
              yield* kill(pid)
              return yield* es.streamVersion(stream)
            })
          )
        )
      })).pipe(Effect.provide(store)),
    30_000
  )

  it.live(
    "withLock: the locked effect terminates its own backend (as the bank-account crash test does)",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const es = yield* EventStore.EventStore
        const sql = yield* SqlClient.SqlClient
        yield* afterDeath((startQueued) =>
          es.withLock(
            stream,
            Effect.gen(function*() {
              yield* startQueued
              yield* Effect.sleep("50 millis")
              yield* Effect.ignore(sql`select pg_terminate_backend(pg_backend_pid())`)
            })
          )
        )
      })).pipe(Effect.provide(store)),
    30_000
  )

  it.live(
    "withLock: backend terminated during COMMIT (a deferred trigger sleeps at commit)",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const { kill } = yield* killer
        const es = yield* EventStore.EventStore
        const sql = yield* SqlClient.SqlClient
        yield* Effect.orDie(sql`create table if not exists slow_commit (id int)`)
        yield* Effect.orDie(
          sql`create or replace function slow_commit_sleep() returns trigger language plpgsql as $$
            begin perform pg_sleep(5); return null; end $$`
        )
        yield* Effect.orDie(sql`drop trigger if exists slow_commit_trigger on slow_commit`)
        yield* Effect.orDie(
          sql`create constraint trigger slow_commit_trigger after insert on slow_commit
            deferrable initially deferred for each row execute function slow_commit_sleep()`
        )
        yield* afterDeath((startQueued) =>
          Effect.gen(function*() {
            const pid = yield* Deferred.make<number>()
            const locked = yield* Effect.fork(es.withLock(
              stream,
              Effect.gen(function*() {
                yield* Deferred.succeed(pid, yield* pidOf(sql))
                yield* sql`insert into slow_commit values (1)`
              })
            ))
            const p = yield* Deferred.await(pid)
            yield* startQueued
            yield* Effect.sleep("300 millis")
            yield* kill(p)
            return yield* Fiber.join(locked)
          })
        )
      })).pipe(Effect.provide(store)),
    30_000
  )

  it.live(
    "lock (session lock): backend terminated by another connection while the lock is held",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const { kill, lockHolder } = yield* killer
        const es = yield* EventStore.EventStore
        yield* afterDeath((startQueued) =>
          Effect.gen(function*() {
            yield* Effect.scoped(Effect.gen(function*() {
              yield* es.lock(stream)
              yield* startQueued
              // the pool's only connection holds the lock
              yield* kill(yield* lockHolder)
            }))
            return yield* Effect.fail("the lock's connection was killed" as const)
          })
        )
      })).pipe(Effect.provide(store)),
    30_000
  )

  it.live("idle connection in the pool terminated by another connection", () =>
    Effect.scoped(Effect.gen(function*() {
      const { kill } = yield* killer
      const sql = yield* SqlClient.SqlClient
      const pid = yield* Effect.orDie(pidOf(sql))
      yield* kill(pid)
      const exits = yield* Effect.flatten(operations(9))
      assert.deepStrictEqual(failuresOf(exits), [])
    })).pipe(Effect.provide(store)), 30_000)
})
