/**
 * A PostgreSQL {@link ParkedEvents.ParkedEvents} store: the `parked_events` table of the event store's schema
 * (migration 7). Its writes join the current `SqlClient` transaction, so a subscription with the `park` failure
 * policy parks an event and moves its checkpoint past it in one transaction (with `PostgresCheckpointStore` on the
 * same pool), and a retried event's handler writes commit together with the removal of its entry: exactly-once.
 *
 * @since 0.3.0
 */
import type * as EventStore from "@effect-eventsourcing/core/EventStore"
import * as ParkedEvents from "@effect-eventsourcing/core/ParkedEvents"
import type { StreamId } from "@effect-eventsourcing/core/StreamId"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as schemaSql from "./internal/schema.js"

/**
 * `schema`: where the `parked_events` table lives (default `event_store`, the event store's schema). The table is
 * created by the event store's migrations, which `make` runs.
 *
 * @since 0.3.0
 * @category models
 */
export interface Options {
  readonly schema?: string
}

interface Row {
  readonly id: unknown
  readonly subscription: string
  readonly position: unknown
  readonly stream_id: string
  readonly version: unknown
  readonly event_id: string
  readonly type: string
  readonly error: string
  readonly attempts: number
  readonly parked_at: Date | string
  readonly state: ParkedEvents.State
}

const toParked = (row: Row): ParkedEvents.ParkedEvent => ({
  id: Number(row.id),
  subscription: row.subscription,
  position: Number(row.position),
  streamId: row.stream_id as StreamId,
  version: Number(row.version),
  eventId: row.event_id,
  type: row.type,
  error: row.error,
  attempts: Number(row.attempts),
  parkedAt: DateTime.unsafeMake(row.parked_at) as DateTime.Utc,
  state: row.state
})

const columns = "id, subscription, position, stream_id, version, event_id, type, error, attempts, parked_at, state"

const storeError = (method: string) => (cause: SqlError) => new ParkedEvents.ParkedEventsError({ method, cause })

/**
 * @since 0.3.0
 * @category constructors
 */
export const make = (
  options?: Options
): Effect.Effect<ParkedEvents.ParkedEvents.Service, ParkedEvents.ParkedEventsError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const schema = yield* Effect.mapError(
      schemaSql.validSchema("PostgresParkedEvents.make", options?.schema),
      (error) => new ParkedEvents.ParkedEventsError({ method: "make", cause: error.cause })
    )
    yield* schemaSql.migrate(sql, schema).pipe(
      Effect.catchAllDefect((defect) => Effect.fail(defect)),
      Effect.mapError((cause) => new ParkedEvents.ParkedEventsError({ method: "make", cause }))
    )
    const table = `"${schema}"."parked_events"`

    /** `update`/`delete` of one entry: `ParkedEventNotFound` when no row matched. */
    const one = (method: string, id: number, text: string) =>
      sql.unsafe<{ readonly id: unknown }>(text, [id]).pipe(
        Effect.mapError(storeError(method)),
        Effect.flatMap((rows) =>
          rows.length === 0 ? Effect.fail(new ParkedEvents.ParkedEventNotFound({ id })) : Effect.void
        )
      )

    return {
      [ParkedEvents.TypeId]: ParkedEvents.TypeId,
      park: (subscription: string, event: EventStore.RecordedEvent, failure) =>
        sql.unsafe<Row>(
          `insert into ${table} as p (subscription, position, stream_id, version, event_id, type, error, attempts)
           values ($1, $2, $3, $4, $5, $6, $7, $8)
           on conflict (subscription, position) do update set stream_id = excluded.stream_id,
             version = excluded.version, event_id = excluded.event_id, type = excluded.type, error = excluded.error,
             attempts = excluded.attempts, parked_at = now(), state = 'parked'
           returning ${columns}`,
          [
            subscription,
            event.position,
            event.streamId,
            event.version,
            event.id,
            event.type,
            failure.error,
            failure.attempts
          ]
        ).pipe(Effect.map((rows) => toParked(rows[0]!)), Effect.mapError(storeError("park"))),
      list: (listOptions) =>
        sql.unsafe<Row>(
          `select ${columns} from ${table}
           where ($1::text is null or subscription = $1) and ($2::text is null or state = $2)
           order by position, subscription collate "C", id`,
          [listOptions?.subscription ?? null, listOptions?.state ?? null]
        ).pipe(Effect.map((rows) => rows.map(toParked)), Effect.mapError(storeError("list"))),
      count: (subscription) =>
        sql.unsafe<{ readonly n: unknown }>(
          `select count(*) as n from ${table} where subscription = $1 and state <> 'skipped'`,
          [subscription]
        ).pipe(Effect.map((rows) => Number(rows[0]?.n ?? 0)), Effect.mapError(storeError("count"))),
      retry: (id) => one("retry", id, `update ${table} set state = 'retry' where id = $1 returning id`),
      skip: (id) => one("skip", id, `update ${table} set state = 'skipped' where id = $1 returning id`),
      resolve: (id) => one("resolve", id, `delete from ${table} where id = $1 and state = 'retry' returning id`),
      retryFailed: (id, failure) =>
        sql.unsafe(
          `update ${table} set state = 'parked', error = $2, attempts = $3, parked_at = now()
           where id = $1 and state = 'retry'`,
          [id, failure.error, failure.attempts]
        ).pipe(Effect.asVoid, Effect.mapError(storeError("retryFailed"))),
      clear: (subscription, position) =>
        sql.unsafe(`delete from ${table} where subscription = $1 and position > $2`, [subscription, position]).pipe(
          Effect.asVoid,
          Effect.mapError(storeError("clear"))
        )
    } satisfies ParkedEvents.ParkedEvents.Service
  })

/**
 * @since 0.3.0
 * @category layers
 */
export const layer = (
  options?: Options
): Layer.Layer<ParkedEvents.ParkedEvents, ParkedEvents.ParkedEventsError, SqlClient.SqlClient> =>
  Layer.effect(ParkedEvents.ParkedEvents, make(options))
