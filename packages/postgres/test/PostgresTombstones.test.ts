/**
 * Deletions in the global log on PostgreSQL, beyond the contract (which covers tombstones in flight through
 * `commitHold.ts`): a subscription's `onDelete` runs in the batch's transaction with the checkpoint (exactly once: a
 * failed attempt leaves nothing), and in a consumer group only in the partition owning the stream.
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
import { Effect, Layer, Option, Schedule, Schema, type Tracer } from "effect"
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

  it.scoped("in a consumer group, a deletion runs onDelete once, in the partition owning the stream, in order", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const store = yield* EventStore.EventStore
      const partitions = 3
      yield* sql`create table group_log (id serial primary key, stream_id text, entry text, part text)`
      /** the partition handling the entry: the name on the subscription's batch span, above the transaction's */
      const partitionName = (span: Option.Option<Tracer.AnySpan>): string => {
        let current = Option.getOrUndefined(span)
        while (current !== undefined && current._tag === "Span") {
          if (current.name === "Subscription.handle") return String(current.attributes.get("subscription.name"))
          current = Option.getOrUndefined(current.parent)
        }
        return "none"
      }
      const write = (streamId: string, entry: string) =>
        Effect.flatMap(
          Effect.option(Effect.currentSpan),
          (span) =>
            sql`insert into group_log (stream_id, entry, part) values (${streamId}, ${entry}, ${partitionName(span)})`
        ).pipe(Effect.asVoid)
      const projection = Projection.make({
        name: "unused",
        handle: (event) => write(event.streamId, event.type),
        onDelete: (streamId) => write(streamId, "deleted")
      })
      const options = { group: "tg", partitions, rebalanceEvery: "50 millis" } as const
      const caughtUp = (position: number) =>
        Subscription.groupStatus(options).pipe(
          Effect.flatMap((rows) =>
            rows.every((row) => Option.getOrElse(row.checkpoint, () => 0) >= position)
              ? Effect.void
              : Effect.fail("behind")
          ),
          Effect.retry(Schedule.spaced("50 millis")),
          Effect.timeout("20 seconds")
        )
      yield* Subscription.forkGroupScoped(projection, options)
      const ids = Array.from({ length: 6 }, (_, i) => s(`g${i}`))
      let last = 0
      for (const id of ids) last = (yield* store.append(id, [ev("A"), ev("B")], ExpectedVersion.NoStream)).position
      // the partitions handle the events before the deletions remove them from the log
      yield* caughtUp(last)
      for (const id of ids.slice(0, 3)) yield* store.delete(id)
      for (const id of ids.slice(0, 3)) last = (yield* store.append(id, [ev("C")], ExpectedVersion.NoStream)).position
      yield* caughtUp(last)
      const rows = yield* sql<{ stream_id: string; entry: string; part: string }>`
        select stream_id, entry, part from group_log order by id`
      ids.forEach((id, i) => {
        const mine = rows.filter((row) => row.stream_id === id)
        assert.deepStrictEqual(
          mine.map((row) => row.entry),
          i < 3 ? ["A", "B", "deleted", "C"] : ["A", "B"],
          `stream ${id}: its events and deletion once each, in order`
        )
        const owner = `tg[${Subscription.partitionOf(id, partitions)}/${partitions}]`
        for (const row of mine) assert.strictEqual(row.part, owner, `${id} ${row.entry} in its partition`)
      })
    }))
})
