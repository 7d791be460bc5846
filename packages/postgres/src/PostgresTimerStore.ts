/**
 * A PostgreSQL {@link TimerStore.TimerStore} for process managers: timers in a `timers` table of the event store's
 * schema (created by the store's migrations, which `make` runs). Its statements join the current `SqlClient`
 * transaction, so a timer scheduled by a process manager's batch commits with the batch and its checkpoint.
 *
 * @example
 * ```ts
 * import { PostgresCheckpointStore, PostgresEventStore, PostgresTimerStore } from "@effect-eventsourcing/postgres"
 * import { Layer } from "effect"
 *
 * // what a process manager needs, on PostgreSQL (provide a PgClient layer)
 * const Stores = Layer.mergeAll(
 *   PostgresEventStore.layer(),
 *   PostgresCheckpointStore.layer(),
 *   PostgresTimerStore.layer()
 * )
 * ```
 *
 * @since 0.3.0
 */
import * as EventStore from "@effect-eventsourcing/core/EventStore"
import * as TimerStore from "@effect-eventsourcing/core/TimerStore"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as schemaSql from "./internal/schema.js"

/**
 * `schema`: where the `timers` table lives (default `event_store`, the event store's schema).
 *
 * @since 0.3.0
 * @category models
 */
export interface Options {
  readonly schema?: string
}

interface Row {
  readonly id: string
  readonly process_manager: string
  readonly correlation_id: string
  readonly name: string
  readonly due_at: string | number
}

const toTimer = (row: Row): TimerStore.Timer => ({
  id: row.id,
  processManager: row.process_manager,
  correlationId: row.correlation_id,
  name: row.name,
  dueAt: Number(row.due_at)
})

const toStoreError = (method: string) => (cause: unknown) => new TimerStore.TimerStoreError({ method, cause })

/**
 * @since 0.3.0
 * @category constructors
 */
export const make = (
  options?: Options
): Effect.Effect<TimerStore.TimerStore.Service, TimerStore.TimerStoreError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const schema = yield* Effect.mapError(
      schemaSql.validSchema("PostgresTimerStore.make", options?.schema),
      (error) => toStoreError("make")(error instanceof EventStore.EventStoreError ? error.cause : error)
    )
    yield* schemaSql.migrate(sql.withoutTransforms(), schema).pipe(
      Effect.catchAllDefect((defect) => Effect.fail(defect)),
      Effect.mapError(toStoreError("make"))
    )
    // snake_case columns as they are, whatever name transforms the client has
    const raw = sql.withoutTransforms()
    const table = raw(`${schema}.timers`)
    const columns = raw.unsafe(`id::text as id, process_manager, correlation_id, name, due_at`)
    return {
      [TimerStore.TypeId]: TimerStore.TypeId,
      schedule: (timer) =>
        raw`insert into ${table} (id, process_manager, correlation_id, name, due_at)
            values (${timer.id}, ${timer.processManager}, ${timer.correlationId}, ${timer.name}, ${timer.dueAt})
            on conflict (id) do nothing`.pipe(Effect.asVoid, Effect.mapError(toStoreError("schedule"))),
      due: (processManager, now, limit) =>
        raw<Row>`select ${columns} from ${table}
                 where process_manager = ${processManager} and fired_at is null and due_at <= ${now}
                 order by due_at, id limit ${Math.max(0, Math.floor(limit))}`.pipe(
          Effect.map((rows) => rows.map(toTimer)),
          Effect.mapError(toStoreError("due"))
        ),
      markFired: (id) =>
        raw`update ${table} set fired_at = now() where id = ${id} and fired_at is null`.pipe(
          Effect.asVoid,
          Effect.mapError(toStoreError("markFired"))
        ),
      pending: (processManager, correlationId) =>
        raw<Row>`select ${columns} from ${table}
                 where process_manager = ${processManager} and correlation_id = ${correlationId}
                 and fired_at is null order by due_at, id`.pipe(
          Effect.map((rows) => rows.map(toTimer)),
          Effect.mapError(toStoreError("pending"))
        )
    }
  })

/**
 * @since 0.3.0
 * @category layers
 */
export const layer = (
  options?: Options
): Layer.Layer<TimerStore.TimerStore, TimerStore.TimerStoreError, SqlClient.SqlClient> =>
  Layer.effect(TimerStore.TimerStore, make(options))
