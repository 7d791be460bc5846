/**
 * The public test support (`@effect-eventsourcing/postgres/testing`) as a user gets it: the server of the global
 * setup, a fresh database per file (or describe block) that is dropped afterwards, and the `layer` shorthand.
 */
import { EventStore, ExpectedVersion, StreamId } from "@effect-eventsourcing/core"
import * as PostgresEventStore from "@effect-eventsourcing/postgres/PostgresEventStore"
import * as PostgresTesting from "@effect-eventsourcing/postgres/testing"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it, layer } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"

const databases = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) => sql<{ datname: string }>`select datname from pg_database`
)
  .pipe(
    Effect.map((rows) => rows.map((row) => row.datname)),
    Effect.provide(PgClient.layer({ url: Redacted.make(PostgresTesting.serverUrl()), maxConnections: 1 }))
  )

const First = PostgresTesting.freshDatabase("testing_first")

describe("a fresh database", () => {
  const Scoped = PostgresTesting.freshDatabase("testing_scoped")

  layer(PostgresEventStore.layer().pipe(Layer.provideMerge(Scoped.layer)), { excludeTestServices: true })(
    "holds a working event store",
    (it) => {
      it.effect("is empty, named after its prefix, and takes appends", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const [row] = yield* sql<{ db: string }>`select current_database() as db`
          assert.strictEqual(row?.db, Scoped.name)
          assert.match(Scoped.name, /^testing_scoped_/)
          const result = yield* EventStore.append(
            StreamId.unsafeMake("account", "1"),
            [{ type: "Opened", data: {} }],
            ExpectedVersion.NoStream
          )
          assert.strictEqual(result.version, 1)
          assert.include(yield* databases, Scoped.name)
        }))
    }
  )
})

describe("cleanup", () => {
  it.effect("the describe block's database was dropped after the block; the file's is still there", () =>
    Effect.gen(function*() {
      const url = yield* First.url
      assert.strictEqual(new URL(url).pathname, `/${First.name}`)
      const names = yield* databases
      assert.include(names, First.name)
      assert.isFalse(names.some((name) => name.startsWith("testing_scoped_")))
    }))
})

layer(PostgresTesting.layer({ prefix: "testing_layer", maxConnections: 2 }), { excludeTestServices: true })(
  "PostgresTesting.layer",
  (it) => {
    it.effect("is a pool on another fresh database", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const [row] = yield* sql<{ db: string; tables: string }>`select current_database() as db,
          (select count(*) from pg_tables where schemaname not in ('pg_catalog', 'information_schema')) as tables`
        assert.match(row!.db, /^testing_layer_/)
        assert.notStrictEqual(row!.db, First.name)
        assert.strictEqual(Number(row!.tables), 0)
      }))
  }
)
