import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { freshDatabase } from "./utils.js"

const Database = freshDatabase("setup")

layer(Database.layer, { excludeTestServices: true })("test database", (it) => {
  it.effect("is a fresh, empty database on a real server", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const [row] = yield* sql<{ db: string; tables: string }>`select current_database() as db,
        (select count(*) from pg_tables where schemaname not in ('pg_catalog', 'information_schema')) as tables`
      assert.strictEqual(row?.db, Database.name)
      assert.strictEqual(Number(row?.tables), 0)
    }))
})
