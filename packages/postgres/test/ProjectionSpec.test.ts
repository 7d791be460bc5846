/**
 * ProjectionSpec on PostgreSQL: a SQL projection's rows and a view in PostgresViewStore, given events.
 */
import { Projection, View } from "@effect-eventsourcing/core"
import { PostgresViewStore } from "@effect-eventsourcing/postgres"
import { ProjectionSpec } from "@effect-eventsourcing/testing"
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import { freshDatabase } from "./utils.js"

const Database = freshDatabase("projection_spec")

/** A SQL read model: one row per stream with its number of deposits and their total. */
const totals = Projection.make({
  name: "totals",
  handle: (event) =>
    Effect.flatMap(SqlClient.SqlClient, (sql) =>
      event.type === "Deposited"
        ? sql`insert into totals (stream_id, deposits, total) values (${event.streamId}, 1, ${
          (event.data as { amount: number }).amount
        })
          on conflict (stream_id) do update set deposits = totals.deposits + 1, total = totals.total + excluded.total`
        : Effect.void).pipe(Effect.asVoid)
})

const rows = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) => sql<{ stream_id: string; deposits: number; total: number }>`select * from totals order by stream_id`
)

const PerStream = View.make({
  name: "deposits-per-stream",
  schema: Schema.Struct({ total: Schema.Int }),
  key: (event) => event.type === "Deposited" ? event.streamId : undefined,
  initial: { total: 0 },
  evolve: (view, event) => ({ total: view.total + (event.data as { amount: number }).amount })
})

const given = [
  { streamId: "acc-1", type: "Opened", data: {} },
  { streamId: "acc-1", type: "Deposited", data: { amount: 10 } },
  { streamId: "acc-2", type: "Deposited", data: { amount: 3 } },
  { streamId: "acc-1", type: "Deposited", data: { amount: 5 } }
]

layer(PostgresViewStore.layer().pipe(Layer.provideMerge(Database.layer), Layer.orDie), {
  excludeTestServices: true
})("ProjectionSpec on PostgreSQL", (it) => {
  it.effect("a SQL projection's rows, given events (and the report of a difference)", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`create table totals (stream_id text primary key, deposits int not null, total int not null)`
      yield* ProjectionSpec.given(given).project(totals).then(rows, [
        { stream_id: "acc-1", deposits: 2, total: 15 },
        { stream_id: "acc-2", deposits: 1, total: 3 }
      ])
      yield* sql`truncate totals`
      const failure = yield* Effect.flip(
        ProjectionSpec.given(given).project(totals).then(rows, [{ stream_id: "acc-1", deposits: 2, total: 15 }])
      )
      assert.include(failure.message, "+ { \"stream_id\": \"acc-2\", \"deposits\": 1, \"total\": 3 }")
    }))

  it.effect("a view kept in PostgresViewStore, given events", () =>
    ProjectionSpec.given(given).view(PerStream).then({ "acc-1": { total: 15 }, "acc-2": { total: 3 } }))
})
