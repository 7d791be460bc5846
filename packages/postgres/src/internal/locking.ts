/**
 * Stream locks: `lock` (a session advisory lock on a reserved connection, until the scope closes) and `withLock` (a
 * transaction holding `pg_advisory_xact_lock`, in which the locked effect runs: the store's reads and appends join
 * it, so the locked cycle never asks the pool for a second connection).
 *
 * Waiting for a pooled connection is never interruptible here: with @effect/sql-pg 0.53, a fiber interrupted while
 * it waits in `sql.reserve` leaves the connection that the pool later hands to it checked out for good (the
 * `pool.connect` callback resumes a fiber that is gone, and nothing releases the client); enough of them empty the
 * pool and closing the Layer hangs. So the wait runs in a fiber of its own that nobody interrupts, the caller only
 * waits for that fiber (which it may stop waiting for: interruption, timeout), and a connection that arrives after
 * the caller left is handed straight back to the pool.
 *
 * A `timeout` bounds the wait for the connection and for the lock together: the lock's part is PostgreSQL's
 * `lock_timeout` (SQLSTATE 55P03), set for the lock statement only.
 *
 * @internal
 */
import * as EventStore from "@effect-eventsourcing/core/EventStore"
import type * as StreamId from "@effect-eventsourcing/core/StreamId"
import * as SqlClient from "@effect/sql/SqlClient"
import type { Connection } from "@effect/sql/SqlConnection"
import type { SqlError } from "@effect/sql/SqlError"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import { sqlState } from "./sqlErrors.js"
import { reserveSafely } from "./transaction.js"

/** PostgreSQL's `lock_not_available`: `lock_timeout` expired. */
const lockNotAvailable = "55P03"

/** `lock_timeout` is an int of milliseconds (0 = no limit) */
const maxLockTimeout = 2_147_483_647

/**
 * The lock statement. With a timeout, `lock_timeout` is set around the lock call only and restored in the same
 * statement: each step is a subquery fenced by `offset 0` (never merged into its parent; its volatile outputs are
 * kept), so the steps run innermost first. If the lock times out, the statement fails and the setting is rolled back
 * with it (a session lock's implicit transaction; a `withLock` transaction is aborted anyway).
 */
const lockStatement = (fn: "pg_advisory_lock" | "pg_advisory_xact_lock", timeout: boolean): string => {
  if (!timeout) return `select ${fn}(hashtextextended($1, 0))`
  const local = fn === "pg_advisory_xact_lock"
  return `select set_config('lock_timeout', previous, ${local}) as restored from (` +
    `select previous, ${fn}(hashtextextended($1, 0)) as locked from (` +
    `select previous, set_config('lock_timeout', $2, ${local}) as applied from (` +
    `select current_setting('lock_timeout') as previous offset 0` +
    `) a offset 0` +
    `) b offset 0` +
    `) c`
}

const sessionLock = lockStatement("pg_advisory_lock", false)
const sessionLockWithin = lockStatement("pg_advisory_lock", true)
const transactionLock = lockStatement("pg_advisory_xact_lock", false)
const transactionLockWithin = lockStatement("pg_advisory_xact_lock", true)

/**
 * A pooled connection for the current scope, waited for without an interruptible wait (`reserveSafely`, see the
 * module note): `None` when `timeout` (milliseconds) passed first.
 */
export const reserve = (
  sql: SqlClient.SqlClient,
  timeout: number | undefined
): Effect.Effect<Option.Option<Connection>, SqlError, Scope.Scope> =>
  timeout === undefined
    ? Effect.asSome(reserveSafely(sql))
    : Effect.timeoutOption(reserveSafely(sql), Duration.millis(timeout))

/** @internal */
export interface Locks {
  readonly lock: EventStore.EventStore.Service["lock"]
  readonly withLock: EventStore.EventStore.Service["withLock"]
}

/** @internal */
export const make = (options: {
  readonly sql: SqlClient.SqlClient
  /** the store's schema name (part of every lock key) */
  readonly schema: string
  /** after a `withLock` transaction committed: appends inside it woke subscribers before their rows were visible */
  readonly committed: () => void
}): Locks => {
  const { schema, sql } = options
  const keyOf = (streamId: StreamId.StreamId) => `effect-eventsourcing:${schema}:lock:${streamId}`

  const timeoutOf = (lockOptions: EventStore.LockOptions | undefined): number | undefined =>
    lockOptions?.timeout === undefined ? undefined : Duration.toMillis(Duration.decode(lockOptions.timeout))

  /**
   * A connection within the timeout (`deadline`, epoch milliseconds, if any), and the `lock_timeout` left for the
   * lock statement ("" for none).
   */
  const connection = (method: string, streamId: StreamId.StreamId, timeout: number | undefined) =>
    Effect.gen(function*() {
      const start = timeout === undefined ? 0 : yield* Clock.currentTimeMillis
      const conn = yield* Effect.mapError(
        reserve(sql, timeout),
        (cause) => new EventStore.EventStoreError({ method, cause })
      )
      if (Option.isNone(conn)) return yield* new EventStore.LockTimeout({ streamId })
      if (timeout === undefined) return { conn: conn.value, left: undefined }
      const left = timeout - ((yield* Clock.currentTimeMillis) - start)
      if (left <= 0) return yield* new EventStore.LockTimeout({ streamId })
      return { conn: conn.value, left: String(Math.min(maxLockTimeout, Math.max(1, Math.ceil(left)))) }
    })

  const lockFailure = (method: string, streamId: StreamId.StreamId) => (error: SqlError) =>
    sqlState(error) === lockNotAvailable
      ? new EventStore.LockTimeout({ streamId })
      : new EventStore.EventStoreError({ method, cause: error })

  const lock = (streamId: StreamId.StreamId, lockOptions?: EventStore.LockOptions) =>
    Effect.uninterruptibleMask((restore) =>
      Effect.gen(function*() {
        // the wait for a connection is safe to interrupt (see `reserve`)
        const { conn, left } = yield* restore(connection("lock", streamId, timeoutOf(lockOptions)))
        const key = keyOf(streamId)
        // unlock unconditionally (ignoring failures: the connection may be gone, and the lock with it); an
        // interrupted wait is cancelled on the server by @effect/sql-pg before this runs
        yield* Effect.addFinalizer(() =>
          conn.execute("select pg_advisory_unlock(hashtextextended($1, 0))", [key], undefined).pipe(Effect.ignore)
        )
        yield* restore(
          left === undefined
            ? conn.execute(sessionLock, [key], undefined)
            : conn.execute(sessionLockWithin, [key, left], undefined)
        ).pipe(Effect.mapError(lockFailure("lock", streamId)))
      })
    )

  const withLock = <A, E, R>(
    streamId: StreamId.StreamId,
    effect: Effect.Effect<A, E, R>,
    lockOptions?: EventStore.LockOptions
  ): Effect.Effect<A, E | EventStore.WithLockError, R> =>
    Effect.uninterruptibleMask((restore) =>
      Effect.scoped(Effect.gen(function*() {
        // the wait for a connection is safe to interrupt (see `reserve`)
        const { conn, left } = yield* restore(connection("withLock", streamId, timeoutOf(lockOptions)))
        const key = keyOf(streamId)
        const rollback = conn.executeUnprepared("rollback", [], undefined).pipe(Effect.ignore)
        yield* Effect.mapError(
          conn.executeUnprepared("begin", [], undefined),
          (cause) => new EventStore.EventStoreError({ method: "withLock", cause })
        )
        const locked = yield* Effect.exit(restore(
          left === undefined
            ? conn.execute(transactionLock, [key], undefined)
            : conn.execute(transactionLockWithin, [key, left], undefined)
        ))
        if (Exit.isFailure(locked)) {
          yield* rollback
          return yield* Effect.failCause(Cause.map(locked.cause, lockFailure("withLock", streamId)))
        }
        // the effect's statements join the transaction (`sql.withTransaction` inside it makes savepoints)
        const exit = yield* Effect.exit(restore(
          Effect.provideService(effect, SqlClient.TransactionConnection, [conn, 0]) as Effect.Effect<A, E, R>
        ))
        if (Exit.isFailure(exit)) {
          yield* rollback
          return yield* Effect.failCause(exit.cause)
        }
        const committed = yield* Effect.exit(conn.executeRaw("commit", []))
        if (Exit.isFailure(committed)) {
          return yield* Effect.failCause(Cause.map(committed.cause, (cause) =>
            // no answer from the server: the commit may or may not have happened
            sqlState(cause) === undefined
              ? new EventStore.CommitOutcomeUnknown({ method: "withLock", cause })
              : new EventStore.EventStoreError({ method: "withLock", cause })))
        }
        // a transaction that a failed statement aborted "commits" as a rollback: what it wrote is gone
        const command = (committed.value as { readonly command?: unknown } | undefined)?.command
        if (command === "ROLLBACK") {
          return yield* new EventStore.EventStoreError({
            method: "withLock",
            cause: new Error("a statement failed inside the locked transaction; it was rolled back")
          })
        }
        options.committed()
        return exit.value
      }))
    )

  return { lock, withLock }
}
