/**
 * Runs the example on the in-memory store, or on PostgreSQL when DATABASE_URL is set — where an account-balances
 * read model is also kept by a durable subscription.
 */
import { SqlClient } from "@effect/sql"
import { Console, Effect, Option } from "effect"
import { fromEnvironment } from "./layers.js"
import { program } from "./program.js"
import * as ReadModel from "./ReadModel.js"
import { transfers } from "./transfers.js"

const id = process.env.ACCOUNT_ID ?? `demo-${Date.now().toString(36)}`

const main = Effect.gen(function*() {
  const sql = yield* Effect.serviceOption(SqlClient.SqlClient)
  if (Option.isNone(sql)) {
    yield* program(id)
    return yield* transfers(id)
  }
  // on PostgreSQL: keep the read model up to date while the program runs, then show it
  return yield* Effect.scoped(Effect.gen(function*() {
    const readModel = yield* ReadModel.start
    const result = yield* program(id)
    yield* ReadModel.awaitCaughtUp(readModel)
    yield* Console.log("read model:", yield* ReadModel.balanceOf(id))
    yield* transfers(id)
    return result
  })).pipe(Effect.provideService(SqlClient.SqlClient, sql.value))
})

Effect.runPromise(main.pipe(Effect.provide(fromEnvironment))).then(
  () => undefined,
  (error) => {
    console.error(error)
    process.exitCode = 1
  }
)
