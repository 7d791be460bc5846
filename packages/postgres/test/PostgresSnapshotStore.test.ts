import { ExpectedVersion, SnapshotStore, StreamId } from "@effect-eventsourcing/core"
import { PostgresEventStore, PostgresSnapshotStore } from "@effect-eventsourcing/postgres"
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { DateTime, Effect, Option } from "effect"
import { freshDatabase } from "./utils.js"

const Database = freshDatabase("snapshots")

const snapshot = (streamId: StreamId.StreamId, version: number, state: unknown): SnapshotStore.Snapshot => ({
  streamId,
  version,
  fingerprint: "f1",
  state,
  takenAt: DateTime.unsafeMake(1_700_000_000_000 + version)
})

layer(Database.layer, { excludeTestServices: true, timeout: "60 seconds" })("PostgresSnapshotStore", (it) => {
  it.effect("keeps the latest snapshot per stream; a save never replaces a newer one; delete removes it", () =>
    Effect.gen(function*() {
      const store = yield* PostgresSnapshotStore.make()
      const a = StreamId.unsafeMake("acc", "a")
      const b = StreamId.unsafeMake("acc", "b")
      assert.deepStrictEqual(yield* store.load(a), Option.none())
      yield* store.save(snapshot(a, 5, { balance: 5, tags: ["x"] }))
      yield* store.save(snapshot(b, 1, { balance: 1 }))
      yield* store.save(snapshot(a, 3, { balance: 3 }))
      const loaded = yield* store.load(a)
      assert(Option.isSome(loaded))
      assert.strictEqual(loaded.value.version, 5)
      assert.deepStrictEqual(loaded.value.state, { balance: 5, tags: ["x"] })
      assert.strictEqual(loaded.value.fingerprint, "f1")
      assert.strictEqual(loaded.value.takenAt.epochMillis, 1_700_000_000_005)
      yield* store.save(snapshot(a, 8, "eight"))
      assert.deepStrictEqual(Option.map(yield* store.load(a), (s) => [s.version, s.state]), Option.some([8, "eight"]))
      yield* store.delete(a)
      assert.deepStrictEqual(yield* store.load(a), Option.none())
      assert.strictEqual(Option.map(yield* store.load(b), (s) => s.version).pipe(Option.getOrThrow), 1)
    }))

  it.scoped("deleting a stream from the event store deletes its snapshot in the same transaction", () =>
    Effect.gen(function*() {
      const snapshots = yield* PostgresSnapshotStore.make()
      const events = yield* PostgresEventStore.make()
      const id = StreamId.unsafeMake("acc", "gdpr")
      yield* events.append(id, [{ type: "Deposited", data: { amount: 1 } }], ExpectedVersion.NoStream)
      yield* snapshots.save(snapshot(id, 1, { balance: 1 }))
      yield* events.delete(id)
      assert.deepStrictEqual(yield* snapshots.load(id), Option.none())
      assert.strictEqual(yield* events.streamVersion(id), 0)
    }))

  it.effect("refuses a hostile schema name and an invalid snapshot with typed errors", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(PostgresSnapshotStore.make({ schema: "a; drop schema public" }))
      assert(error instanceof SnapshotStore.SnapshotStoreError)
      assert.match(error.message, /^SnapshotStore\.make failed: invalid schema name/)
      const store = yield* PostgresSnapshotStore.make()
      const invalid = yield* Effect.flip(store.save(snapshot(StreamId.unsafeMake("acc", "x"), -1, {})))
      assert(invalid instanceof SnapshotStore.SnapshotStoreError)
    }))

  it.effect("an infrastructure failure is a SnapshotStoreError naming the method, never the connection", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const store = yield* PostgresSnapshotStore.make({ schema: "snap_broken" })
      yield* sql`drop table snap_broken.snapshots`
      const id = StreamId.unsafeMake("acc", "broken")
      for (
        const [method, attempt] of [
          ["load", Effect.asVoid(store.load(id))],
          ["save", store.save(snapshot(id, 1, {}))],
          ["delete", store.delete(id)]
        ] as const
      ) {
        const error = yield* Effect.flip(attempt)
        assert(error instanceof SnapshotStore.SnapshotStoreError, method)
        assert.strictEqual(error.method, method)
        assert.match(error.message, new RegExp(`^SnapshotStore\\.${method} failed: `))
        assert.notInclude(error.message, "EventStore")
        assert.notInclude(error.message, "postgres://")
      }
    }))
})
