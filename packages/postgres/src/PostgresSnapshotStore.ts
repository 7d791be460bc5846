/**
 * A PostgreSQL {@link SnapshotStore.SnapshotStore}: the latest snapshot of each stream, in the `snapshots` table of
 * the event store's schema (created by the same migrations). A save never replaces a newer snapshot, and
 * `PostgresEventStore`'s `delete` removes a stream's snapshot in the same transaction as its events.
 *
 * @since 0.1.0
 */
import * as EventStore from "@effect-eventsourcing/core/EventStore"
import * as SnapshotStore from "@effect-eventsourcing/core/SnapshotStore"
import type { StreamId } from "@effect-eventsourcing/core/StreamId"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as schemaSql from "./internal/schema.js"

/**
 * `schema`: the PostgreSQL schema of the tables (default `"event_store"`, the event store's).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly schema?: string | undefined
}

interface Row {
  readonly stream_id: string
  readonly version: string
  readonly fingerprint: string
  readonly state: unknown
  readonly taken_at: Date
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<SnapshotStore.SnapshotStore.Service, SnapshotStore.SnapshotStoreError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const fail = (method: string) => (cause: unknown) => new SnapshotStore.SnapshotStoreError({ method, cause })
    // the schema name check and the migrations report `EventStoreError`s: keep only their cause
    const failMake = (error: unknown) => fail("make")(error instanceof EventStore.EventStoreError ? error.cause : error)
    const schema = yield* Effect.mapError(schemaSql.validSchema("PostgresSnapshotStore.make", options.schema), failMake)
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    yield* schemaSql.migrate(sql, schema).pipe(
      Effect.catchAllDefect((defect) => Effect.fail(defect)),
      Effect.mapError(failMake)
    )
    const table = `"${schema}".snapshots`
    return {
      load: (streamId: StreamId) =>
        sql.unsafe<Row>(
          `select stream_id, version, fingerprint, state, taken_at from ${table} where stream_id = $1`,
          [streamId]
        ).pipe(
          Effect.map((rows) =>
            Option.map(Option.fromNullable(rows[0]), (row): SnapshotStore.Snapshot => ({
              streamId,
              version: Number(row.version),
              fingerprint: row.fingerprint,
              state: row.state,
              takenAt: DateTime.unsafeFromDate(row.taken_at)
            }))
          ),
          Effect.mapError(fail("load"))
        ),
      save: (snapshot: SnapshotStore.Snapshot) =>
        Effect.suspend(() => {
          const state = JSON.stringify(snapshot.state)
          if (state === undefined || !Number.isSafeInteger(snapshot.version) || snapshot.version < 0) {
            return Effect.fail(fail("save")(new TypeError("the snapshot's state or version is invalid")))
          }
          return sql.unsafe(
            `insert into ${table} as s (stream_id, version, fingerprint, state, taken_at) ` +
              `values ($1, $2, $3, $4::jsonb, $5::timestamptz) on conflict (stream_id) do update ` +
              `set version = excluded.version, fingerprint = excluded.fingerprint, state = excluded.state, ` +
              `taken_at = excluded.taken_at where s.version <= excluded.version`,
            [snapshot.streamId, snapshot.version, snapshot.fingerprint, state, DateTime.formatIso(snapshot.takenAt)]
          ).pipe(Effect.asVoid, Effect.mapError(fail("save")))
        }),
      delete: (streamId: StreamId) =>
        sql.unsafe(`delete from ${table} where stream_id = $1`, [streamId]).pipe(
          Effect.asVoid,
          Effect.mapError(fail("delete"))
        )
    }
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options?: Options
): Layer.Layer<SnapshotStore.SnapshotStore, SnapshotStore.SnapshotStoreError, SqlClient.SqlClient> =>
  Layer.effect(SnapshotStore.SnapshotStore, make(options))

/**
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options>
): Layer.Layer<
  SnapshotStore.SnapshotStore,
  SnapshotStore.SnapshotStoreError | ConfigError.ConfigError,
  SqlClient.SqlClient
> => Layer.unwrapEffect(Effect.map(Config.unwrap(config), (options) => layer(options)))
