/**
 * A PostgreSQL {@link CheckpointStore.CheckpointStore}: checkpoints in a `checkpoints` table of the event store's
 * schema, leases held with a session advisory lock on a reserved connection, and checkpoint writes that join the
 * current `SqlClient` transaction.
 *
 * - **Exactly-once**: a subscription runs each batch in `lease.transaction` (one transaction on a pooled connection;
 *   a nested `sql.withTransaction` becomes a savepoint); a handler that
 *   writes through the same `SqlClient` (the same pool: provide one PgClient layer to both) commits its writes
 *   together with the checkpoint, so a crash anywhere (the process, the connection, the backend) never applies an
 *   event twice nor loses one. Side effects outside that database (HTTP calls, brokers) stay at-least-once.
 * - **One consumer per name, across processes**: `acquire` waits on `pg_advisory_lock` on a reserved connection. When
 *   the holder's connection dies the lock is released by the server and a waiting consumer takes over.
 *   `tryAcquire` uses `pg_try_advisory_lock` instead and answers `None` at once when the name is held.
 * - **Fencing**: acquiring bumps the row's `generation`; a lease's saves are `update ... where generation = $own
 *   and position is not distinct from $last`, and take the row lock. A consumer that lost its lease (or whose last
 *   commit had an unknown outcome) fails with `LeaseLost` and its transaction rolls back; a consumer taking over waits
 *   for an in-flight batch of the previous holder to commit or roll back before reading the checkpoint.
 * - **Failures** of the connection (including a COMMIT without an answer) are `CheckpointStoreError`s, never defects;
 *   a wait for a connection can be interrupted without stranding it.
 *
 * @example
 * ```ts
 * import { Projection, Subscription } from "@effect-eventsourcing/core"
 * import { PostgresCheckpointStore } from "@effect-eventsourcing/postgres"
 * import { SqlClient } from "@effect/sql"
 * import { Effect } from "effect"
 *
 * // the handler's SQL runs in the same transaction as the checkpoint update: exactly-once
 * const balances = Projection.make({
 *   name: "balances",
 *   handle: (event) =>
 *     Effect.flatMap(SqlClient.SqlClient, (sql) =>
 *       sql`insert into balances (id, amount) values (${event.streamId}, 0) on conflict do nothing`)
 * })
 *
 * const run = Subscription.run(balances).pipe(
 *   Effect.provide(PostgresCheckpointStore.layer({ schema: "event_store" }))
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as CheckpointStore from "@effect-eventsourcing/core/CheckpointStore"
import * as EventStore from "@effect-eventsourcing/core/EventStore"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Operations from "./internal/checkpointOperations.js"
import * as schemaSql from "./internal/schema.js"
import { reserveSafely, transaction } from "./internal/transaction.js"

/**
 * `schema`: where the `checkpoints` table lives (default `event_store`, the event store's schema). The table is
 * created by the event store's migrations, which `make` runs (they are idempotent and safe when several processes
 * start at once).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly schema?: string
}

const isSqlError = (u: unknown): u is SqlError =>
  typeof u === "object" && u !== null && "_tag" in u && u._tag === "SqlError"

const toStoreError = (method: string) => (cause: SqlError) =>
  new CheckpointStore.CheckpointStoreError({ method, cause })

/** `make`'s failures: the schema name check and the migrations report `EventStoreError`s; keep only their cause. */
const toMakeError = (error: unknown) =>
  new CheckpointStore.CheckpointStoreError({
    method: "make",
    cause: error instanceof EventStore.EventStoreError ? error.cause : error
  })

const toPosition = (value: unknown): Option.Option<number> =>
  value === null || value === undefined
    ? Option.none()
    : Option.some(Number(value))

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options?: Options
): Effect.Effect<CheckpointStore.CheckpointStore.Service, CheckpointStore.CheckpointStoreError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const schema = yield* Effect.mapError(
      schemaSql.validSchema("PostgresCheckpointStore.make", options?.schema),
      toMakeError
    )
    // the store's migrations (the checkpoints table is one of them), serialised across processes
    yield* schemaSql.migrate(sql.withoutTransforms(), schema).pipe(
      Effect.catchAllDefect((defect) => Effect.fail(defect)),
      Effect.mapError(toMakeError)
    )
    const table = sql(`${schema}.checkpoints`)
    // the table name is validated above; the statements below are the ones sent over the reserved connection
    const qualified = `"${schema}"."checkpoints"`

    const upsert = (name: string, position: number | null) =>
      sql`insert into ${table} (name, position, generation) values (${name}, ${position}, 1)
          on conflict (name) do update
          set position = excluded.position, generation = ${table}.generation + 1, updated_at = now()`

    /** `wait`: `pg_advisory_lock` (waits); otherwise `pg_try_advisory_lock` (`None` when another session holds it) */
    const take = (name: string, wait: boolean) =>
      Effect.gen(function*() {
        // the connection and its unlock live in a scope of their own, closed at once when the lock is not taken
        const own = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
        const conn = yield* Scope.extend(reserveSafely(sql), own).pipe(
          Effect.onError(() => Scope.close(own, Exit.void))
        )
        const key = `${qualified}:${name}`
        // unlock unconditionally: an interrupted wait may still have obtained the lock on this connection
        yield* Scope.addFinalizer(
          own,
          conn.execute(
            "select pg_advisory_unlock(('x' || substr(md5($1), 1, 16))::bit(64)::bigint)",
            [key],
            undefined
          ).pipe(Effect.ignore)
        )
        const locked = yield* conn.execute(
          `select ${
            wait ? "pg_advisory_lock" : "pg_try_advisory_lock"
          }(('x' || substr(md5($1), 1, 16))::bit(64)::bigint)
           as locked`,
          [key],
          undefined
        )
        if (!wait && (locked[0] as { readonly locked: unknown } | undefined)?.locked !== true) {
          yield* Scope.close(own, Exit.void)
          return Option.none<CheckpointStore.Lease>()
        }
        const rows = yield* conn.execute(
          `insert into ${qualified} (name, position, generation) values ($1, null, 1)
           on conflict (name) do update set generation = ${qualified}.generation + 1, updated_at = now()
           returning position, generation`,
          [name],
          undefined
        )
        const row = rows[0] as { readonly position: unknown; readonly generation: unknown }
        const generation = Number(row.generation)
        let expected: number | null = row.position === null ? null : Number(row.position)
        let pending: { value: number | null } | undefined
        let depth = 0

        // built when it runs (not when `save` is called): the position it expects is the one left by the writes
        // before it, including uncommitted ones of the current transaction
        const fenced = (method: string, position: number | null) =>
          Effect.suspend(() =>
            sql<{ readonly ok: number }>`update ${table}
            set position = ${position}, updated_at = now()
            where name = ${name} and generation = ${generation}
            and position is not distinct from ${depth > 0 && pending !== undefined ? pending.value : expected}
            returning 1 as ok`
          ).pipe(
            Effect.mapError(toStoreError(method)),
            Effect.flatMap((updated) => {
              if (updated.length === 0) return Effect.fail(new CheckpointStore.LeaseLost({ name }))
              // inside a transaction the new position only counts once it commits
              if (depth > 0) pending = { value: position }
              else expected = position
              return Effect.void
            })
          )

        const lease: CheckpointStore.Lease = {
          name,
          position: toPosition(row.position),
          save: (position) =>
            Effect.zipRight(
              CheckpointStore.validatePosition("CheckpointStore.Lease.save", position),
              fenced("save", position)
            ),
          reset: (position) =>
            Effect.zipRight(
              CheckpointStore.validatePosition("CheckpointStore.Lease.reset", position),
              fenced("reset", position ?? null)
            ),
          transaction: <A, E, R>(self: Effect.Effect<A, E, R>) =>
            Effect.suspend(() => {
              depth++
              pending = undefined
              return transaction(sql, self).pipe(
                Effect.tap(() => {
                  if (pending !== undefined) expected = pending.value
                }),
                Effect.ensuring(Effect.sync(() => {
                  depth--
                  pending = undefined
                })),
                Effect.catchAll((error): Effect.Effect<never, E | CheckpointStore.CheckpointStoreError> =>
                  isSqlError(error) ? Effect.fail(toStoreError("transaction")(error)) : Effect.fail(error as E)
                ),
                // a defect of the handler's own nested `sql.withTransaction` (@effect/sql turns a failed ROLLBACK
                // into one) is a store error too
                Effect.catchAllDefect((defect) =>
                  isSqlError(defect)
                    ? Effect.fail(toStoreError("commit")(defect))
                    : Effect.failCause(Cause.die(defect))
                )
              )
            })
        }
        return Option.some(lease)
      }).pipe(
        Effect.mapError((error) => isSqlError(error) ? toStoreError("acquire")(error) : error),
        Effect.withSpan(wait ? "PostgresCheckpointStore.acquire" : "PostgresCheckpointStore.tryAcquire", {
          attributes: { "subscription.name": name }
        })
      )

    const acquire = (name: string) =>
      Effect.flatMap(
        take(name, true),
        Option.match({
          onNone: () =>
            Effect.fail(new CheckpointStore.CheckpointStoreError({ method: "acquire", cause: "lock not taken" })),
          onSome: Effect.succeed
        })
      )

    const operations = Operations.make({ sql: sql.withoutTransforms(), qualified })

    return {
      [CheckpointStore.TypeId]: CheckpointStore.TypeId,
      ...operations,
      load: (name) =>
        sql<{ readonly position: unknown }>`select position from ${table} where name = ${name}`.pipe(
          Effect.map((rows) => rows.length === 0 ? Option.none() : toPosition(rows[0]!.position)),
          Effect.mapError(toStoreError("load"))
        ),
      save: (name, position) =>
        Effect.zipRight(
          CheckpointStore.validatePosition("CheckpointStore.save", position),
          Effect.mapError(Effect.asVoid(upsert(name, position)), toStoreError("save"))
        ),
      reset: (name, position) =>
        Effect.zipRight(
          CheckpointStore.validatePosition("CheckpointStore.reset", position),
          Effect.mapError(Effect.asVoid(upsert(name, position ?? null)), toStoreError("reset"))
        ),
      acquire,
      tryAcquire: (name) => take(name, false)
    }
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options?: Options
): Layer.Layer<CheckpointStore.CheckpointStore, CheckpointStore.CheckpointStoreError, SqlClient.SqlClient> =>
  Layer.effect(CheckpointStore.CheckpointStore, make(options))
