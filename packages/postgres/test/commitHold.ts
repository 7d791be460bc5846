/**
 * `EventStoreContract.CommitHold` for a PostgreSQL store, without touching the store: the store is wrapped so that the
 * next append runs inside a transaction of the test's own (`sql.withTransaction`; the store joins a caller's
 * transaction) that stays open until `release`. The append has its positions and its rows while the transaction is
 * open, later appends on other connections commit and are durable meanwhile, and readers must not pass the hole.
 */
import { EventStore } from "@effect-eventsourcing/core"
import { EventStoreContract } from "@effect-eventsourcing/testing"
import * as SqlClient from "@effect/sql/SqlClient"
import { Chunk, Context, Deferred, Effect, FiberId, Layer, Stream } from "effect"

interface Pending {
  readonly reserved: Deferred.Deferred<ReadonlyArray<number>>
  readonly release: Deferred.Deferred<void>
}

/** The positions `requests` got inside the open transaction (read on its connection, so uncommitted rows show). */
const positionsOf = (
  store: EventStore.EventStore.Service,
  requests: ReadonlyArray<EventStore.AppendRequest>,
  results: ReadonlyArray<EventStore.AppendResult>
): Effect.Effect<ReadonlyArray<number>, EventStore.ReadError> =>
  Effect.map(
    Effect.forEach(requests, (request, i) =>
      request.events.length === 0
        ? Effect.succeed(Chunk.empty<EventStore.RecordedEvent>())
        : Stream.runCollect(
          store.read(request.streamId, { from: results[i]!.version - request.events.length + 1 })
        )),
    (chunks) => chunks.flatMap((chunk) => Chunk.toArray(chunk).map((event) => event.position)).sort((a, b) => a - b)
  )

/**
 * Adds `EventStoreContract.CommitHold` to a PostgreSQL `EventStore` Layer. Provide the same `SqlClient` (pool) to the
 * result as to the store.
 */
export const withCommitHold = <E, R>(
  store: Layer.Layer<EventStore.EventStore, E, R>
): Layer.Layer<EventStore.EventStore | EventStoreContract.CommitHold, E, R | SqlClient.SqlClient> =>
  Layer.effectContext(Effect.gen(function*() {
    const inner = yield* EventStore.EventStore
    const sql = yield* SqlClient.SqlClient
    const pending: Array<Pending> = []
    const pendingDeletes: Array<Pending> = []

    const held = (
      method: string,
      requests: ReadonlyArray<EventStore.AppendRequest>,
      run: Effect.Effect<ReadonlyArray<EventStore.AppendResult>, EventStore.AppendError>
    ): Effect.Effect<ReadonlyArray<EventStore.AppendResult>, EventStore.AppendError> =>
      Effect.suspend(() => {
        const hold = pending.shift()
        if (hold === undefined) return run
        return sql.withTransaction(Effect.gen(function*() {
          const results = yield* run
          yield* Deferred.succeed(hold.reserved, yield* positionsOf(inner, requests, results))
          yield* Deferred.await(hold.release)
          return results
        })).pipe(
          Effect.catchTag("SqlError", (cause) => Effect.fail(new EventStore.EventStoreError({ method, cause })))
        )
      })

    const store = EventStore.make({
      ...inner,
      append: (streamId, events, expected) =>
        Effect.map(
          held(
            "append",
            [{ streamId, events, expected }],
            Effect.map(inner.append(streamId, events, expected), (r) => [r])
          ),
          (results) => results[0]!
        ),
      appendMany: (requests) => held("appendMany", requests, inner.appendMany(requests)),
      // the next delete runs in a transaction of the test's that stays open until `release`; its tombstone's
      // position is read on that transaction's connection (uncommitted rows show there)
      delete: (streamId) =>
        Effect.suspend(() => {
          const hold = pendingDeletes.shift()
          if (hold === undefined) return inner.delete(streamId)
          return sql.withTransaction(Effect.gen(function*() {
            yield* inner.delete(streamId)
            const rows = yield* sql<{ readonly position: string }>`select max(position)::text as position
              from "event_store".tombstones where stream_id = ${streamId}`
            yield* Deferred.succeed(hold.reserved, [Number(rows[0]!.position)])
            yield* Deferred.await(hold.release)
          })).pipe(
            Effect.catchTag("SqlError", (cause) =>
              Effect.fail(new EventStore.EventStoreError({ method: "delete", cause })))
          )
        })
    })
    const holdIn = (queue: Array<Pending>) =>
      Effect.sync(() => {
        const next: Pending = {
          reserved: Deferred.unsafeMake<ReadonlyArray<number>>(FiberId.none),
          release: Deferred.unsafeMake<void>(FiberId.none)
        }
        queue.push(next)
        return {
          reserved: Deferred.await(next.reserved),
          release: Effect.asVoid(Deferred.succeed(next.release, undefined))
        }
      })
    const hold: EventStoreContract.CommitHold["Type"] = {
      holdNextCommit: holdIn(pending),
      holdNextDelete: holdIn(pendingDeletes)
    }
    return Context.make(EventStore.EventStore, store).pipe(Context.add(EventStoreContract.CommitHold, hold))
  })).pipe(Layer.provide(store))
