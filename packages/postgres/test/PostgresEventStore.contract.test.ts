import { EventStore, StoreKit, StreamId } from "@effect-eventsourcing/core"
import { PostgresEventStore } from "@effect-eventsourcing/postgres"
import { EventStoreContract } from "@effect-eventsourcing/testing"
import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { DateTime, Duration, Effect, Layer, Stream } from "effect"
import { withCommitHold } from "./commitHold.js"
import { freshDatabase } from "./utils.js"

const Database = freshDatabase("contract")
const Pool = Database.pool({ maxConnections: 16 })

// the held-commit check runs too: the test's own open transaction holds the next append (see commitHold.ts)
EventStoreContract.suite(
  "PostgresEventStore",
  withCommitHold(PostgresEventStore.layer({ pollInterval: "200 millis" })).pipe(Layer.provide(Pool))
)

interface Row {
  readonly event_id: string
  readonly stream_id: string
  readonly version: string
  readonly position: string
  readonly type: string
  readonly data: unknown
  readonly metadata: EventStore.EventMetadata
  readonly recorded_at: Date
}

/**
 * The PostgreSQL store with a naive `readAll`: every committed row in position order, without the transaction
 * visibility rule, so it passes a commit in flight that holds a lower position.
 */
const ignoresTheHole = withCommitHold(
  Layer.effect(
    EventStore.EventStore,
    Effect.gen(function*() {
      const inner = yield* EventStore.EventStore
      const sql = yield* SqlClient.SqlClient
      return EventStore.make({
        ...inner,
        readAll: (options) =>
          Stream.flatMap(
            Stream.fromEffect(
              sql.unsafe<Row>(
                `select event_id, stream_id, version, position, type, data, metadata, recorded_at
                 from "event_store".events where position >= $1 order by position`,
                [options?.from ?? 1]
              ).pipe(Effect.mapError((cause) => new EventStore.EventStoreError({ method: "readAll", cause })))
            ),
            (rows) =>
              Stream.fromIterable(rows.map((row): EventStore.RecordedEvent => ({
                id: row.event_id,
                streamId: row.stream_id as StreamId.StreamId,
                version: Number(row.version),
                position: Number(row.position),
                type: row.type,
                data: row.data,
                metadata: row.metadata,
                recordedAt: DateTime.unsafeFromDate(row.recorded_at)
              }))).pipe(Stream.filter((event) => StoreKit.matchesFilter(options?.filter, event)))
          )
      })
    })
  ).pipe(Layer.provide(PostgresEventStore.layer({ pollInterval: "200 millis" })))
).pipe(Layer.provide(Pool))

describe("EventStoreContract on PostgreSQL has teeth", () => {
  it.live(
    "a PostgreSQL store whose readAll ignores commits in flight fails subscribeHeldCommit",
    () =>
      Effect.gen(function*() {
        const violation = yield* Effect.flip(EventStoreContract.checks.subscribeHeldCommit)
        assert.strictEqual(violation.check, "subscribeHeldCommit")
        assert.include(violation.description, "readAll must not pass a commit in flight")
      }).pipe(
        Effect.provide(ignoresTheHole),
        Effect.provideService(EventStoreContract.Patience, Duration.seconds(5))
      ),
    60_000
  )
})
