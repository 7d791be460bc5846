import { TimerStore } from "@effect-eventsourcing/core"
import { PostgresTimerStore } from "@effect-eventsourcing/postgres"
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { freshDatabase } from "./utils.js"

const Database = freshDatabase("timers")

const uuid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`

const timer = (n: number, dueAt: number, correlationId = "x"): TimerStore.Timer => ({
  id: uuid(n),
  processManager: "p",
  correlationId,
  name: `t${n}`,
  dueAt
})

layer(Database.layer, { excludeTestServices: true, timeout: "60 seconds" })("PostgresTimerStore", (it) => {
  it.effect("schedule keeps the first of an id; due is ordered and bounded; markFired and pending", () =>
    Effect.gen(function*() {
      const timers = yield* PostgresTimerStore.make()
      yield* timers.schedule(timer(2, 20))
      yield* timers.schedule(timer(1, 10))
      yield* timers.schedule(timer(1, 5))
      yield* timers.schedule(timer(3, 30, "y"))
      assert.deepStrictEqual((yield* timers.due("p", 25, 10)).map((t) => [t.name, t.dueAt]), [["t1", 10], ["t2", 20]])
      assert.deepStrictEqual((yield* timers.due("p", 25, 1)).map((t) => t.name), ["t1"])
      assert.deepStrictEqual(yield* timers.due("q", 100, 10), [])
      yield* timers.markFired(uuid(1))
      assert.deepStrictEqual((yield* timers.due("p", 100, 10)).map((t) => t.name), ["t2", "t3"])
      assert.deepStrictEqual(yield* timers.pending("p", "x"), [timer(2, 20)])
      yield* timers.schedule(timer(1, 1))
      assert.deepStrictEqual((yield* timers.due("p", 100, 10)).map((t) => t.name), ["t2", "t3"])
    }))

  it.effect("a timer scheduled in a transaction that rolls back is not stored", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const timers = yield* PostgresTimerStore.make()
      yield* sql.withTransaction(Effect.zipRight(timers.schedule(timer(9, 1, "z")), Effect.fail("rolled back"))).pipe(
        Effect.flip
      )
      assert.deepStrictEqual(yield* timers.pending("p", "z"), [])
      yield* sql.withTransaction(timers.schedule(timer(9, 1, "z")))
      assert.deepStrictEqual((yield* timers.pending("p", "z")).map((t) => t.name), ["t9"])
    }))

  it.effect("an invalid schema name is a TimerStoreError", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(PostgresTimerStore.make({ schema: "Bad-Name" }))
      assert.strictEqual(error._tag, "TimerStoreError")
    }))
})
