// A user's own vitest tests against the published test-database support: the global setup
// `@effect-eventsourcing/postgres/testing/globalSetup` (registered in vitest.config.ts) hands the workers a
// PostgreSQL server (DATABASE_URL, or an embedded one it starts), and `freshDatabase` gives this file a database
// of its own, dropped after the file.
import { EventStore, ExpectedVersion, StreamId } from "@effect-eventsourcing/core"
import { PostgresEventStore } from "@effect-eventsourcing/postgres"
import * as PostgresTesting from "@effect-eventsourcing/postgres/testing"
import { assert, layer } from "@effect/vitest"
import { Chunk, Effect, Layer, Stream } from "effect"

const Database = PostgresTesting.freshDatabase("smoke_user")
const Store = PostgresEventStore.layer().pipe(Layer.provideMerge(Database.layer))

layer(Store)("a user's tests on a fresh database", (it) => {
  it.effect("appends and reads back through the store", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const stream = StreamId.unsafeMake("account", "a")
      yield* store.append(stream, [{ type: "Opened", data: { owner: "Ada" } }], ExpectedVersion.NoStream)
      yield* store.append(stream, [{ type: "Deposited", data: { amount: 5 } }], ExpectedVersion.Exact(1))
      const events = Chunk.toReadonlyArray(yield* Stream.runCollect(store.read(stream)))
      assert.deepStrictEqual(events.map((e) => `${e.version} ${e.type}`), ["1 Opened", "2 Deposited"])
    }))

  it.effect("the database is this file's own (fresh: nothing from elsewhere)", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const all = Chunk.toReadonlyArray(yield* Stream.runCollect(store.readAll()))
      // only the two events of the test above
      assert.strictEqual(all.length, 2)
      const url = new URL(yield* Database.url)
      console.log(`user test database ${Database.name} on port ${url.port || "5432"}`)
      assert.strictEqual(url.pathname, `/${Database.name}`)
    }))
})
