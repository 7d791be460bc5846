/**
 * The wiring of the PostgreSQL event store: options, migrations, and the jobs of `appending.ts`, `reading.ts` and
 * `notification.ts` put together; `delete` lives here, the locks in `locking.ts`.
 *
 * @internal
 */
import * as EventStore from "@effect-eventsourcing/core/EventStore"
import * as StreamId from "@effect-eventsourcing/core/StreamId"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { Options } from "../PostgresEventStore.js"
import * as Appending from "./appending.js"
import * as Locking from "./locking.js"
import * as Notification from "./notification.js"
import * as Reading from "./reading.js"
import * as schemaSql from "./schema.js"
import { storeError } from "./sqlErrors.js"
import { transaction } from "./transaction.js"

/** @internal */
export const make = <R>(
  options: Options<R> = {}
): Effect.Effect<
  EventStore.EventStore.Service,
  EventStore.EventStoreError,
  SqlClient.SqlClient | PgClient.PgClient | Scope.Scope | R
> =>
  Effect.gen(function*() {
    const schema = yield* schemaSql.validSchema("make", options.schema)
    const pageSize = options.pageSize ?? Reading.defaultPageSize
    const globalPageSize = options.pageSize ?? Reading.defaultGlobalPageSize
    if (!Number.isSafeInteger(pageSize) || pageSize < 1) {
      return yield* new EventStore.EventStoreError({
        method: "make",
        cause: new RangeError(`invalid pageSize ${String(pageSize)}`)
      })
    }
    const groupCommit = typeof options.groupCommit === "object" ? options.groupCommit : {}
    for (const key of ["maxBatch", "maxInFlight"] as const) {
      const value = groupCommit[key]
      if (value !== undefined && (!Number.isSafeInteger(value) || value < 1)) {
        return yield* new EventStore.EventStoreError({
          method: "make",
          cause: new RangeError(`invalid groupCommit.${key} ${String(value)}`)
        })
      }
    }
    const pollInterval = Duration.decode(options.pollInterval ?? "1 second")
    const watchdogInterval = Duration.decode(options.watchdogInterval ?? "10 seconds")
    const notify = options.notify ?? "afterCommit"
    const inline = options.inline ?? []
    const channel = schema

    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const pg = yield* PgClient.PgClient
    const context = yield* Effect.context<R>()

    yield* schemaSql.migrate(sql, schema).pipe(
      Effect.catchAllDefect((defect) => Effect.fail(defect)),
      Effect.mapError((cause) => new EventStore.EventStoreError({ method: "make", cause }))
    )

    const s = `"${schema}"`
    const withContext = <A, E>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E> =>
      Effect.mapInputContext(effect, (current: Context.Context<never>) => Context.merge(context, current))

    const notifier = yield* Notification.make({ sql, pg, channel, notify, watchdogInterval })
    const reader = Reading.make({
      sql,
      s,
      pageSize,
      globalPageSize,
      pollInterval,
      signal: notifier.signal,
      startListener: notifier.startListener
    })
    const appender = Appending.make({
      sql,
      s,
      channel,
      notify,
      inline,
      withContext,
      versionOf: reader.versionOf,
      committed: notifier.committed,
      notified: notifier.signal.wake,
      groupCommit: options.groupCommit
    })

    const deleteStream = (streamId: StreamId.StreamId) => {
      const hooks = Effect.forEach(
        inline,
        (projection) => projection.onDelete === undefined ? Effect.void : withContext(projection.onDelete(streamId)),
        { discard: true }
      ).pipe(Effect.mapError(storeError("delete")))
      // events and snapshot gone, and a tombstone at a new global position when the stream had events (migration 8)
      const remove = Effect.flatMap(Clock.currentTimeMillis, (now) =>
        sql.unsafe<{ readonly position: string | null }>(
          `select ${s}.delete_stream($1, $2, $3, $4)::text as position`,
          [
            streamId,
            StreamId.category(streamId),
            new Date(now).toISOString(),
            notify === "inTransaction" ? channel : null
          ]
        ))
      return transaction(sql, Effect.zipRight(hooks, remove)).pipe(
        Effect.tap((rows) =>
          Effect.sync(() => {
            const position = rows[0]?.position
            if (position !== null && position !== undefined) notifier.committed(Number(position))
          })
        ),
        Effect.catchAllDefect((defect) => Effect.fail(defect)),
        Effect.mapError((cause) =>
          typeof cause === "object" && cause !== null && "_tag" in cause && cause._tag === "EventStoreError"
            ? cause as EventStore.EventStoreError
            : new EventStore.EventStoreError({ method: "delete", cause })
        ),
        Effect.asVoid
      )
    }

    const locks = Locking.make({ sql, schema, committed: () => notifier.committed(0) })

    return EventStore.make({
      name: "postgres",
      append: appender.append,
      appendMany: (requests) => appender.commit("appendMany", requests),
      read: reader.read,
      readForFold: reader.readForFold,
      streamVersion: (streamId) => reader.versionOf(streamId).pipe(Effect.mapError(storeError("streamVersion"))),
      readAll: reader.readAll,
      subscribe: reader.subscribe,
      delete: deleteStream,
      lock: locks.lock,
      withLock: locks.withLock,
      headPosition: reader.headPosition
    })
  })
