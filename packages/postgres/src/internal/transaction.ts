/**
 * Connections and transactions of the store: every path that needs a connection of its own or a transaction goes
 * through `reserveSafely` and `transaction`, so that no driver or connection failure escapes as a defect and no
 * interrupted wait strands a pooled connection.
 *
 * @internal
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { Connection } from "@effect/sql/SqlConnection"
import type { SqlError } from "@effect/sql/SqlError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"

/**
 * Runs `effect` on the pool even when the caller is inside a transaction: for reads that must see committed
 * data only, and for notifications that must not wait for the caller's commit.
 */
export const outsideTransaction = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
  Effect.mapInputContext(
    effect,
    (ctx: Context.Context<never>) => Context.omit(SqlClient.TransactionConnection)(ctx)
  )

/**
 * `sql.reserve` without its leak: a connection of the pool for the scope, returned to the pool when the scope
 * closes; the wait for it can be interrupted at any time.
 *
 * The upstream cause (@effect/sql-pg 0.53, `PgClient.ts`, `reserveRaw`): `sql.reserve` is an `Effect.async` around
 * `pool.connect(callback)` that registers no canceller. Interrupting a fiber waiting in it abandons the wait, but
 * pg-pool's queued callback stays: when a connection frees up it is handed to that callback, whose `resume` goes
 * nowhere, so the connection is never released. Every interrupted waiter strands one connection; once all of them
 * are stranded the pool serves nobody, and closing the Layer hangs in `pool.end()` (which waits for them). (Plain
 * queries are not affected: their `pool.connect` callback releases the client when the query was cancelled.
 * `sql.withTransaction` is not affected either: it acquires uninterruptibly, so its wait cannot be interrupted.)
 *
 * Here the wait runs in a fiber of its own that is never interrupted: it always receives the connection (or the
 * pool's error). The caller only awaits that fiber, interruptibly; when the caller is interrupted, the connection
 * is returned to the pool as soon as it arrives. A wait bounded in time comes from the pool (PgClient's
 * `connectTimeout`): pg-pool then fails the wait with "timeout exceeded when trying to connect", a `SqlError`.
 */
export const reserveSafely = (sql: SqlClient.SqlClient): Effect.Effect<Connection, SqlError, Scope.Scope> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.gen(function*() {
      const scope = yield* Effect.scope
      const own = yield* Scope.make()
      const waiter = yield* Effect.forkDaemon(Scope.extend(sql.reserve, own))
      const exit = yield* restore(Fiber.await(waiter)).pipe(
        Effect.onInterrupt(() =>
          // the connection, when it comes, goes straight back to the pool
          Effect.forkDaemon(Effect.flatMap(Fiber.await(waiter), (result) => Scope.close(own, result)))
        )
      )
      if (Exit.isFailure(exit)) {
        yield* Scope.close(own, exit)
        return yield* exit
      }
      const conn = exit.value
      let fatal = false
      // runs before the release (finalizers run last-added first)
      yield* Scope.addFinalizer(
        own,
        Effect.suspend(() => fatal ? Effect.ignore(conn.executeUnprepared("select 1", [], undefined)) : Effect.void)
      )
      yield* Scope.addFinalizer(scope, Scope.close(own, Exit.void))
      return watchFatal(conn, () => {
        fatal = true
      })
    })
  )

/**
 * Whether the server ended the session with this answer (`pg`'s `DatabaseError.severity` `FATAL` or `PANIC`, e.g.
 * 57P01 after `pg_terminate_backend`, or a server shutdown).
 */
export const isFatal = (error: SqlError): boolean => {
  const cause: unknown = error.cause
  return typeof cause === "object" && cause !== null && "severity" in cause &&
    (cause.severity === "FATAL" || cause.severity === "PANIC")
}

/**
 * `conn`, calling `onFatal` when one of its statements gets a fatal answer (`isFatal`).
 *
 * Why (pg 8.23 / pg-pool 3, under @effect/sql-pg 0.53): when the backend ends the session while a statement runs
 * (`pg_terminate_backend`, a shutdown), its `FATAL` answer goes to that statement only; the client still counts as
 * queryable until the socket's end is read a moment later. A reserved connection is released with the error seen
 * by its `error` listener, and there is none yet: pg-pool keeps the client and hands it to the next waiting caller,
 * whose statement then fails with "Connection error: Connection terminated unexpectedly" (for a `withLock` or
 * transaction waiter: an `EventStoreError`, or a `CommitOutcomeUnknown` for an append that never began). This
 * happens when the failed statement was the last one on the connection: a COMMIT killed while it runs; after any
 * other failed statement our ROLLBACK or unlock follows, and its failure comes after the client's `error` event.
 * So `reserveSafely` sends one more statement on such a connection before releasing it: that statement fails only
 * after the client's `error` event, and the connection is released with the error, which makes pg-pool destroy it.
 * Not fixed here (upstream): a statement outside any reserved connection (the plain `sql` path of @effect/sql-pg:
 * the store's reads, `streamVersion`, appends without inline projections, user statements) releases its client in
 * pg's query callback, before the failure reaches any Effect code, and without the error: a caller waiting for the
 * pool at that moment gets the dead client once ("Connection error: Connection terminated unexpectedly"). Pinned by
 * the "upstream:" case of test/DeadConnections.test.ts. An idle pooled client whose backend dies is dropped by
 * pg-pool's idle `error` listener (the FATAL answer arrives with no statement running).
 */
const watchFatal = (conn: Connection, onFatal: () => void): Connection => {
  const watch = (error: SqlError) => {
    if (isFatal(error)) onFatal()
  }
  const tap = <A>(effect: Effect.Effect<A, SqlError>) =>
    Effect.tapError(effect, (error) => Effect.sync(() => watch(error)))
  return {
    execute: (sql, params, transformRows) => tap(conn.execute(sql, params, transformRows)),
    executeRaw: (sql, params) => tap(conn.executeRaw(sql, params)),
    executeStream: (sql, params, transformRows) =>
      Stream.tapError(conn.executeStream(sql, params, transformRows), (error) => Effect.sync(() => watch(error))),
    executeValues: (sql, params) => tap(conn.executeValues(sql, params)),
    executeUnprepared: (sql, params, transformRows) => tap(conn.executeUnprepared(sql, params, transformRows))
  }
}

/** The `SAVEPOINT` names of `@effect/sql`, so that its nested `sql.withTransaction` and ours interleave. */
const savepointName = (depth: number) => `effect_sql_${depth}`

/**
 * `sql.withTransaction` without its defects, for every transaction of the store (its own, and the ones it runs
 * user code in: inline projections, `delete` hooks, exactly-once subscription batches).
 *
 * - Outside a transaction: reserves a connection (`reserveSafely`), sends `BEGIN`, runs `effect` with
 *   `SqlClient.TransactionConnection` provided (every `SqlClient` statement of `effect`, and every nested
 *   `sql.withTransaction`, which becomes a `SAVEPOINT`, joins it), then `COMMIT`, or `ROLLBACK` when `effect`
 *   failed, died or was interrupted.
 * - Inside one (the tag is in the context): a `SAVEPOINT`, rolled back to when `effect` does not succeed.
 *
 * A failed `BEGIN`, `SAVEPOINT` or `COMMIT` is a `SqlError` failure (@effect/sql turns a failed COMMIT or ROLLBACK
 * into a defect). A COMMIT without an answer leaves the outcome unknown: the caller decides by the error
 * (`connectionFailure`). A failed ROLLBACK keeps the failure of `effect` (the server rolls back when the connection
 * is gone). Only `effect` itself is interruptible, and the wait for a connection.
 */
export const transaction = <A, E, R>(
  sql: SqlClient.SqlClient,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E | SqlError, R> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.withFiberRuntime<A, E | SqlError, R>((fiber) => {
      const context = fiber.currentContext as Context.Context<R>
      const joined = Context.getOption(context, SqlClient.TransactionConnection)
      if (joined._tag === "Some") {
        const [conn, depth] = joined.value
        const name = savepointName(depth + 1)
        return Effect.zipRight(
          conn.executeUnprepared(`SAVEPOINT ${name}`, [], undefined),
          Effect.onExit(
            restore(Effect.provideService(effect, SqlClient.TransactionConnection, [conn, depth + 1])),
            (exit) =>
              Exit.isSuccess(exit)
                ? Effect.void
                : Effect.ignore(conn.executeUnprepared(`ROLLBACK TO SAVEPOINT ${name}`, [], undefined))
          )
        )
      }
      return Effect.flatMap(Scope.make(), (scope) =>
        Effect.flatMap(
          restore(Scope.extend(reserveSafely(sql), scope)).pipe(
            Effect.tap((conn) => conn.executeUnprepared("BEGIN", [], undefined)),
            Effect.onError((cause) => Scope.close(scope, Exit.failCause(cause)))
          ),
          (conn) =>
            restore(Effect.provideService(effect, SqlClient.TransactionConnection, [conn, 0])).pipe(
              Effect.exit,
              Effect.flatMap((exit): Effect.Effect<A, E | SqlError> =>
                Exit.isSuccess(exit)
                  ? Effect.as(conn.executeUnprepared("COMMIT", [], undefined), exit.value)
                  : Effect.zipRight(Effect.ignore(conn.executeUnprepared("ROLLBACK", [], undefined)), exit)
              ),
              Effect.onExit((exit) => Scope.close(scope, exit))
            )
        ))
    })
  ).pipe(Effect.withSpan("sql.transaction", { kind: "client", captureStackTrace: false }))
