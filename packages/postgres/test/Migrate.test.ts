/**
 * `PostgresEventStore.migrate`: the public entry to the store's migrations (deployment scripts, `eventsourcing
 * migrate`).
 */
import { EventStore, ExpectedVersion, StreamId } from "@effect-eventsourcing/core"
import { PostgresEventStore } from "@effect-eventsourcing/postgres"
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { migrations } from "../src/internal/migrations/index.js"
import { freshDatabase } from "./utils.js"

const Database = freshDatabase("migrate")

const loaderIds = Effect.map(migrations("x"), (all) => all.map(([id, name]) => `${id}_${name}`))

layer(Database.layer, { excludeTestServices: true })("PostgresEventStore.migrate", (it) => {
  it.effect("creates the schema with every migration in order, then runs none; the store then starts on it", () =>
    Effect.gen(function*() {
      const ran = yield* PostgresEventStore.migrate({ schema: "deploy" })
      assert.deepStrictEqual(ran.map((m) => `${m.id}_${m.name}`), yield* loaderIds)
      assert.deepStrictEqual(yield* PostgresEventStore.migrate({ schema: "deploy" }), [])
      const sql = yield* SqlClient.SqlClient
      const recorded = yield* sql<{ readonly n: string }>`select count(*)::text as n from deploy.migrations`
      assert.strictEqual(Number(recorded[0]!.n), ran.length)
      const result = yield* Effect.scoped(Effect.flatMap(
        PostgresEventStore.make({ schema: "deploy" }),
        (store) => store.append(StreamId.unsafeMake("a", "1"), [{ type: "T", data: {} }], ExpectedVersion.NoStream)
      ))
      assert.strictEqual(result.version, 1)
    }))

  it.effect("refuses a schema name that is not a lowercase identifier, creating nothing", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(PostgresEventStore.migrate({ schema: "Bad\"; drop" }))
      assert.instanceOf(error, EventStore.EventStoreError)
      assert.strictEqual(error.method, "migrate")
      const sql = yield* SqlClient.SqlClient
      const schemas = yield* sql`select 1 from pg_namespace where nspname like 'Bad%'`
      assert.strictEqual(schemas.length, 0)
    }))
})
