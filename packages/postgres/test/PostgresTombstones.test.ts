/**
 * Deletions in the global log on PostgreSQL, beyond the contract (which covers tombstones in flight through
 * `commitHold.ts`): a subscription's `onDelete` runs in the batch's transaction with the checkpoint (exactly once: a
 * failed attempt leaves nothing).
 */
import {
  CheckpointStore,
  EventStore,
  ExpectedVersion,
  Projection,
  StreamId,
  Subscription
} from "@effect-eventsourcing/core"
import { PostgresCheckpointStore, PostgresEventStore } from "@effect-eventsourcing/postgres"
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Effect, Layer, Option, Schedule, Schema } from "effect"
import { freshDatabase } from "./utils.js"

const Database = freshDatabase("tombstones")

const Stores = Layer.mergeAll(PostgresEventStore.layer({ pollInterval: "100 millis" }), PostgresCheckpointStore.layer())
  .pipe(Layer.provideMerge(Database.pool({ maxConnections: 6 })), Layer.orDie)

const s = (id: string) => StreamId.unsafeMake("acct", id)
const ev = (type: string): EventStore.EventData => ({ type, data: {} })

class Boom extends Schema.TaggedError<Boom>()("Boom", {}) {}

const logRows = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) => sql<{ entry: string }>`select entry from tombstone_log order by id`
).pipe(Effect.map((rows) => rows.map((row) => row.entry)))

layer(Stores, { excludeTestServices: true, timeout: "60 seconds" })("PostgreSQL tombstones", (it) => {
  it.effect("a subscription's onDelete commits with the checkpoint, once, even after a failed attempt", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const store = yield* EventStore.EventStore
      yield* sql`create table tombstone_log (id serial primary key, entry text not null)`
      const write = (entry: string) => sql`insert into tombstone_log (entry) values (${entry})`.pipe(Effect.asVoid)
      let attempts = 0
      const projection = Projection.make({
        name: "tombstone-log",
        handle: (event) => write(`${event.type} ${event.streamId}`),
        // writes, then fails on the first attempt: the write must be rolled back with the batch
        onDelete: (streamId) =>
          Effect.zipRight(write(`deleted ${streamId}`), ++attempts === 1 ? Effect.fail(new Boom()) : Effect.void)
      })
      yield* store.append(s("1"), [ev("A")], ExpectedVersion.NoStream)
      yield* store.delete(s("1"))
      const after = yield* store.append(s("2"), [ev("B")], ExpectedVersion.NoStream)
      yield* Effect.scoped(Effect.gen(function*() {
        const subscription = yield* Subscription.forkScoped(projection, { retry: Schedule.recurs(3), batchSize: 10 })
        yield* subscription.awaitPosition(after.position)
      }))
      assert.strictEqual(attempts, 2)
      // A was deleted before the subscription read it: the tombstone, then B, each once
      assert.deepStrictEqual(yield* logRows, ["deleted acct-1", "B acct-2"])
      const checkpoints = yield* CheckpointStore.CheckpointStore
      assert.deepStrictEqual(yield* checkpoints.load("tombstone-log"), Option.some(after.position))
    }))
})
